/*
 * builtins/graphql_schema.c — graphql.schema_is_valid, graphql.is_valid,
 * graphql.parse and graphql.parse_and_verify: schema loading (prelude
 * scalars and directives, extensions merged into their types — an
 * extension of an undefined type defines it, as gqlparser allows) and the
 * validation rules the conformance suite exercises: undefined and misplaced
 * types, interface implementation (including inherited interfaces), union
 * members, empty types, unknown directives and root operation types; for
 * queries: fields on their parent type, known and required arguments, leaf
 * selections, fragments and type conditions.
 *
 * Invariant: validation reads the AST objects the parsers build (or that a
 * policy passes back in); it never modifies them.
 * Thread safety: reentrant.
 */
#include "builtins/graphql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define MAXTYPES 512
#define MAXDIRS 128

static const struct xv_value *get(const struct xv_value *o, const char *k)
{
    if (!o || !XV_IS(o, XV_T_OBJECT))
        return NULL;
    long at = xv_val_object_find_str(o, k, strlen(k));
    return at < 0 ? NULL : XV_OBJ_VAL(o, at);
}

static const char *gets(const struct xv_value *o, const char *k)
{
    const struct xv_value *v = get(o, k);
    return v && XV_IS(v, XV_T_STRING) ? S(v) : "";
}

static size_t alen(const struct xv_value *v)
{
    return v && XV_IS(v, XV_T_ARRAY) ? XV_ARR_LEN(v) : 0;
}

static const struct xv_value *aitem(const struct xv_value *v, size_t i)
{
    return XV_ARR_ITEM(v, i);
}

/* ---- schema model ---- */

struct gtype {
    const char *name, *kind;          /* borrowed from the AST */
    bool builtin;
    const struct xv_value *defs[16];  /* definition + extensions contributing to it */
    int ndefs;
};

struct schema {
    struct gtype t[MAXTYPES];
    int nt;
    const char *dirs[MAXDIRS];        /* directive names */
    int nd;
    const char *roots[3];             /* query, mutation, subscription type names */
    char err[300];
};

static void serr(struct schema *s, const char *fmt, const char *a, const char *b)
{
    if (!s->err[0])
        snprintf(s->err, sizeof s->err, fmt, a, b ? b : "");
}

static struct gtype *find_type(struct schema *s, const char *name)
{
    for (int i = 0; i < s->nt; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return &s->t[i];
    return NULL;
}

static bool has_dir(const struct schema *s, const char *name)
{
    for (int i = 0; i < s->nd; i++)
        if (strcmp(s->dirs[i], name) == 0)
            return true;
    return false;
}

/* Fields of an object/interface/input type across its definitions. */
static const struct xv_value *find_field(const struct gtype *t, const char *name)
{
    for (int d = 0; d < t->ndefs; d++) {
        const struct xv_value *fs = get(t->defs[d], "Fields");
        for (size_t i = 0; i < alen(fs); i++)
            if (strcmp(gets(aitem(fs, i), "Name"), name) == 0)
                return aitem(fs, i);
    }
    return NULL;
}

static bool implements(const struct gtype *t, const char *iface)
{
    for (int d = 0; d < t->ndefs; d++) {
        const struct xv_value *is = get(t->defs[d], "Interfaces");
        for (size_t i = 0; i < alen(is); i++)
            if (XV_IS(aitem(is, i), XV_T_STRING) && strcmp(S(aitem(is, i)), iface) == 0)
                return true;
    }
    return false;
}

static const char *named(const struct xv_value *type)
{
    while (type && get(type, "Elem"))
        type = get(type, "Elem");
    return gets(type, "NamedType");
}

static void type_str(const struct xv_value *type, struct xv_val_buf *b)
{
    const struct xv_value *elem = get(type, "Elem");
    if (elem) {
        xv_val_buf_addc(b, '[');
        type_str(elem, b);
        xv_val_buf_addc(b, ']');
    } else {
        xv_val_buf_adds(b, gets(type, "NamedType"));
    }
    const struct xv_value *nn = get(type, "NonNull");
    if (nn && XV_IS(nn, XV_T_BOOL) && XV_BOOLV(nn))
        xv_val_buf_addc(b, '!');
}

static bool is_input(const struct gtype *t)
{
    return !strcmp(t->kind, "SCALAR") || !strcmp(t->kind, "ENUM") || !strcmp(t->kind, "INPUT_OBJECT");
}

static void check_directives(struct schema *s, const struct xv_value *dirs)
{
    for (size_t i = 0; i < alen(dirs); i++)
        if (!has_dir(s, gets(aitem(dirs, i), "Name")))
            serr(s, "Undefined directive %s.", gets(aitem(dirs, i), "Name"), NULL);
}

static void check_type_ref(struct schema *s, const struct xv_value *type, bool want_input,
                           const char *where)
{
    const char *n = named(type);
    struct gtype *t = find_type(s, n);
    if (!t) {
        serr(s, "Undefined type %s.", n, NULL);
        return;
    }
    if (want_input && !is_input(t))
        serr(s, "%s must be an input type, not %s.", where, t->kind);
    if (!want_input && !strcmp(t->kind, "INPUT_OBJECT"))
        serr(s, "%s must be an output type, not %s.", where, t->kind);
}

static void add_builtin(struct schema *s, const char *name, const char *kind)
{
    struct gtype *t = &s->t[s->nt++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->kind = kind;
    t->builtin = true;
}

/* The interfaces type t's definition def says it implements: each must
 * exist, be an INTERFACE, and have its fields and interfaces in t. */
static void check_interfaces(struct schema *s, struct gtype *t, const struct xv_value *def)
{
    const struct xv_value *is = get(def, "Interfaces");
    for (size_t k = 0; k < alen(is); k++) {
        const char *in = XV_IS(aitem(is, k), XV_T_STRING) ? S(aitem(is, k)) : "";
        struct gtype *it = find_type(s, in);
        if (!it) {
            serr(s, "Undefined type %s.", in, NULL);
            continue;
        }
        if (strcmp(it->kind, "INTERFACE")) {
            serr(s, "%s is a non interface type %s.", t->name, in);
            continue;
        }
        /* every field of the interface, and its own interfaces */
        for (int id = 0; id < it->ndefs; id++) {
            const struct xv_value *ifs = get(it->defs[id], "Fields");
            for (size_t m = 0; m < alen(ifs); m++)
                if (!find_field(t, gets(aitem(ifs, m), "Name")))
                    serr(s, "For %s to implement %s it must have a field called %s.",
                         t->name, in);
            const struct xv_value *iis = get(it->defs[id], "Interfaces");
            for (size_t m = 0; m < alen(iis); m++)
                if (XV_IS(aitem(iis, m), XV_T_STRING) && !implements(t, S(aitem(iis, m))))
                    serr(s, "%s must implement %s because it is implemented by another interface.",
                         t->name, S(aitem(iis, m)));
        }
    }
}

/* Load and validate a schema document. */
static bool load_schema(const struct xv_value *doc, struct schema *s)
{
    memset(s, 0, sizeof *s);
    static const char *const scalars[] = {"Int", "Float", "String", "Boolean", "ID"};
    for (int i = 0; i < 5; i++)
        add_builtin(s, scalars[i], "SCALAR");
    static const char *const dirs[] = {"include", "skip", "deprecated", "specifiedBy", "oneOf",
                                       "defer"};
    for (int i = 0; i < 6; i++)
        s->dirs[s->nd++] = dirs[i];
    if (!doc || !XV_IS(doc, XV_T_OBJECT)) {
        serr(s, "invalid schema document", NULL, NULL);
        return false;
    }
    const struct xv_value *dd = get(doc, "Directives");
    for (size_t i = 0; i < alen(dd) && s->nd < MAXDIRS; i++) {
        const char *n = gets(aitem(dd, i), "Name");
        if (has_dir(s, n) && strcmp(n, "deprecated") && strcmp(n, "specifiedBy"))
            serr(s, "Cannot redeclare directive %s.", n, NULL);
        s->dirs[s->nd++] = n;
    }
    const struct xv_value *defs = get(doc, "Definitions"), *exts = get(doc, "Extensions");
    for (size_t i = 0; i < alen(defs); i++) {
        const struct xv_value *d = aitem(defs, i);
        const char *n = gets(d, "Name");
        if (find_type(s, n)) {
            serr(s, "Cannot redeclare type %s.", n, NULL);
            continue;
        }
        if (s->nt >= MAXTYPES) {
            serr(s, "too many types", NULL, NULL);
            return false;
        }
        struct gtype *t = &s->t[s->nt++];
        memset(t, 0, sizeof *t);
        t->name = n;
        t->kind = gets(d, "Kind");
        t->defs[t->ndefs++] = d;
    }
    for (size_t i = 0; i < alen(exts); i++) {
        const struct xv_value *e = aitem(exts, i);
        const char *n = gets(e, "Name");
        struct gtype *t = find_type(s, n);
        if (!t) {
            if (s->nt >= MAXTYPES)
                return false;
            t = &s->t[s->nt++];
            memset(t, 0, sizeof *t);
            t->name = n;
            t->kind = gets(e, "Kind");
        }
        if (strcmp(t->kind, gets(e, "Kind")) != 0) {
            serr(s, "Cannot extend type %s because the base type is a %s.", n, t->kind);
            continue;
        }
        if (t->builtin || t->ndefs >= 16) {
            serr(s, "Cannot extend type %s.", n, NULL);
            continue;
        }
        t->defs[t->ndefs++] = e;
    }
    /* per-type rules */
    for (int i = 0; i < s->nt && !s->err[0]; i++) {
        struct gtype *t = &s->t[i];
        if (t->builtin)
            continue;
        if (!strncmp(t->name, "__", 2))
            serr(s, "Name \"%s\" must not begin with \"__\".", t->name, NULL);
        size_t nfields = 0, nvals = 0, ntypes = 0;
        for (int d = 0; d < t->ndefs; d++) {
            const struct xv_value *def = t->defs[d];
            check_directives(s, get(def, "Directives"));
            const struct xv_value *fs = get(def, "Fields");
            nfields += alen(fs);
            for (size_t k = 0; k < alen(fs); k++) {
                const struct xv_value *f = aitem(fs, k);
                bool input = !strcmp(t->kind, "INPUT_OBJECT");
                check_type_ref(s, get(f, "Type"), input, gets(f, "Name"));
                check_directives(s, get(f, "Directives"));
                const struct xv_value *args = get(f, "Arguments");
                for (size_t m = 0; m < alen(args); m++) {
                    check_type_ref(s, get(aitem(args, m), "Type"), true, gets(aitem(args, m), "Name"));
                    check_directives(s, get(aitem(args, m), "Directives"));
                }
            }
            const struct xv_value *ev = get(def, "EnumValues");
            nvals += alen(ev);
            for (size_t k = 0; k < alen(ev); k++)
                check_directives(s, get(aitem(ev, k), "Directives"));
            const struct xv_value *ut = get(def, "Types");
            ntypes += alen(ut);
            for (size_t k = 0; k < alen(ut); k++) {
                const char *mn = XV_IS(aitem(ut, k), XV_T_STRING) ? S(aitem(ut, k)) : "";
                struct gtype *m = find_type(s, mn);
                if (!m)
                    serr(s, "Undefined type %s.", mn, NULL);
                else if (strcmp(m->kind, "OBJECT"))
                    serr(s, "UNION type \"%s\" must be OBJECT.", mn, NULL);
            }
            check_interfaces(s, t, def);
        }
        if ((!strcmp(t->kind, "OBJECT") || !strcmp(t->kind, "INTERFACE") ||
             !strcmp(t->kind, "INPUT_OBJECT")) && nfields == 0)
            serr(s, "%s %s: must define one or more fields.", t->kind, t->name);
        if (!strcmp(t->kind, "ENUM") && nvals == 0)
            serr(s, "ENUM %s: must define one or more unique enum values.", t->name, NULL);
        if (!strcmp(t->kind, "UNION") && ntypes == 0)
            serr(s, "UNION %s: must define one or more unique member types.", t->name, NULL);
    }
    /* root operation types */
    static const char *const ops[] = {"query", "mutation", "subscription"};
    static const char *const defaults[] = {"Query", "Mutation", "Subscription"};
    bool explicit_schema = false;
    const char *lists[] = {"Schema", "SchemaExtension"};
    for (int l = 0; l < 2; l++) {
        const struct xv_value *sd = get(doc, lists[l]);
        for (size_t i = 0; i < alen(sd); i++) {
            explicit_schema = true;
            check_directives(s, get(aitem(sd, i), "Directives"));
            const struct xv_value *ot = get(aitem(sd, i), "OperationTypes");
            for (size_t k = 0; k < alen(ot); k++) {
                const char *op = gets(aitem(ot, k), "Operation"), *ty = gets(aitem(ot, k), "Type");
                struct gtype *t = find_type(s, ty);
                if (!t || strcmp(t->kind, "OBJECT"))
                    serr(s, "Undefined type %s.", ty, NULL);
                for (int o = 0; o < 3; o++)
                    if (!strcmp(op, ops[o]))
                        s->roots[o] = ty;
            }
        }
    }
    if (!explicit_schema)
        for (int o = 0; o < 3; o++) {
            struct gtype *t = find_type(s, defaults[o]);
            if (t && !strcmp(t->kind, "OBJECT"))
                s->roots[o] = defaults[o];
        }
    return !s->err[0];
}

/* ---- query validation ---- */

struct qv {
    struct schema *s;
    const struct xv_value *doc;
    char err[300];
    int depth;
};

static void qerr(struct qv *q, const struct xv_value *field, const char *msg)
{
    if (q->err[0])
        return;
    const struct xv_value *pos = get(field, "__pos");
    if (pos && alen(pos) == 2) {
        int64_t l = 0, c = 0;
        xv_val_number_get_int64(aitem(pos, 0), &l);
        xv_val_number_get_int64(aitem(pos, 1), &c);
        snprintf(q->err, sizeof q->err, "%s in GraphQL string at location %lld:%lld", msg,
                 (long long)l, (long long)c);
    } else {
        snprintf(q->err, sizeof q->err, "%s", msg);
    }
}

static const struct xv_value *find_fragment(struct qv *q, const char *name)
{
    const struct xv_value *fs = get(q->doc, "Fragments");
    for (size_t i = 0; i < alen(fs); i++)
        if (!strcmp(gets(aitem(fs, i), "Name"), name))
            return aitem(fs, i);
    return NULL;
}

static void check_selections(struct qv *q, const struct xv_value *sel, struct gtype *parent);

static void check_field(struct qv *q, const struct xv_value *f, struct gtype *parent)
{
    char msg[300];
    const char *name = gets(f, "Name");
    if (!strcmp(name, "__typename"))
        return;
    const struct xv_value *def = strcmp(parent->kind, "UNION") ? find_field(parent, name) : NULL;
    if (!def) {
        snprintf(msg, sizeof msg, "Cannot query field \"%s\" on type \"%s\".", name, parent->name);
        qerr(q, f, msg);
        return;
    }
    /* known and required arguments */
    const struct xv_value *args = get(def, "Arguments"), *given = get(f, "Arguments");
    for (size_t k = 0; k < alen(given); k++) {
        bool known = false;
        for (size_t i = 0; i < alen(args) && !known; i++)
            known = !strcmp(gets(aitem(args, i), "Name"), gets(aitem(given, k), "Name"));
        if (!known) {
            snprintf(msg, sizeof msg, "Unknown argument \"%s\" on field \"%s.%s\".",
                     gets(aitem(given, k), "Name"), parent->name, name);
            qerr(q, f, msg);
            return;
        }
    }
    for (size_t i = 0; i < alen(args); i++) {
        const struct xv_value *ad = aitem(args, i), *nn = get(get(ad, "Type"), "NonNull");
        if (!(nn && XV_IS(nn, XV_T_BOOL) && XV_BOOLV(nn)) || get(ad, "DefaultValue"))
            continue;
        bool found = false;
        for (size_t k = 0; k < alen(given) && !found; k++)
            found = !strcmp(gets(aitem(given, k), "Name"), gets(ad, "Name"));
        if (!found) {
            struct xv_val_buf ts = {0};
            type_str(get(ad, "Type"), &ts);
            snprintf(msg, sizeof msg,
                     "Field \"%s\" argument \"%s\" of type \"%s\" is required, but it was not provided",
                     name, gets(ad, "Name"), ts.p ? ts.p : "");
            xv_val_buf_free(&ts);
            qerr(q, f, msg);
            return;
        }
    }
    struct gtype *ft = find_type(q->s, named(get(def, "Type")));
    const struct xv_value *sel = get(f, "SelectionSet");
    if (!ft)
        return;
    bool leaf = !strcmp(ft->kind, "SCALAR") || !strcmp(ft->kind, "ENUM");
    if (leaf && alen(sel)) {
        snprintf(msg, sizeof msg, "Field \"%s\" must not have a selection since type \"%s\" has no subfields.",
                 name, ft->name);
        qerr(q, f, msg);
    } else if (!leaf && !alen(sel)) {
        snprintf(msg, sizeof msg, "Field \"%s\" of type \"%s\" must have a selection of subfields.",
                 name, ft->name);
        qerr(q, f, msg);
    } else if (!leaf) {
        check_selections(q, sel, ft);
    }
}

static void check_selections(struct qv *q, const struct xv_value *sel, struct gtype *parent)
{
    if (++q->depth > 100) {
        qerr(q, NULL, "selection too deep");
        q->depth--;
        return;
    }
    for (size_t i = 0; i < alen(sel) && !q->err[0]; i++) {
        const struct xv_value *x = aitem(sel, i);
        if (get(x, "Alias")) {
            check_field(q, x, parent);
        } else if (get(x, "TypeCondition")) {
            const char *tc = gets(x, "TypeCondition");
            struct gtype *t = tc[0] ? find_type(q->s, tc) : parent;
            if (!t) {
                char msg[200];
                snprintf(msg, sizeof msg, "Unknown type \"%s\".", tc);
                qerr(q, x, msg);
                break;
            }
            check_selections(q, get(x, "SelectionSet"), t);
        } else {
            const struct xv_value *fr = find_fragment(q, gets(x, "Name"));
            if (!fr) {
                char msg[200];
                snprintf(msg, sizeof msg, "Unknown fragment \"%s\".", gets(x, "Name"));
                qerr(q, x, msg);
                break;
            }
            struct gtype *t = find_type(q->s, gets(fr, "TypeCondition"));
            if (!t) {
                char msg[200];
                snprintf(msg, sizeof msg, "Unknown type \"%s\".", gets(fr, "TypeCondition"));
                qerr(q, x, msg);
                break;
            }
            check_selections(q, get(fr, "SelectionSet"), t);
        }
    }
    q->depth--;
}

static bool validate_query(const struct xv_value *doc, struct schema *s, char *err, size_t errlen)
{
    struct qv q = {s, doc, "", 0};
    const struct xv_value *ops = get(doc, "Operations");
    static const char *const names[] = {"query", "mutation", "subscription"};
    for (size_t i = 0; i < alen(ops) && !q.err[0]; i++) {
        const struct xv_value *op = aitem(ops, i);
        const char *kind = gets(op, "Operation");
        struct gtype *root = NULL;
        for (int k = 0; k < 3; k++)
            if (!strcmp(kind, names[k]) && s->roots[k])
                root = find_type(s, s->roots[k]);
        if (!root) {
            char msg[200];
            snprintf(msg, sizeof msg, "Schema does not support operation type \"%s\"", kind);
            qerr(&q, NULL, msg);
            break;
        }
        check_selections(&q, get(op, "SelectionSet"), root);
    }
    if (q.err[0])
        snprintf(err, errlen, "%s", q.err);
    return !q.err[0];
}

/* ---- builtins ---- */

/* Operand as a document: strings are parsed, objects used as they are. */
static struct xv_value *as_doc(const struct xv_value *v, bool schema, bool keep_pos, char *err,
                               size_t errlen)
{
    if (XV_IS(v, XV_T_OBJECT))
        return xv_val_incref((struct xv_value *)v);
    if (!XV_IS(v, XV_T_STRING)) {
        snprintf(err, errlen, "expected a string or an AST object");
        return NULL;
    }
    return schema ? xv_bi_gql_parse_schema(XV_STR(v), XV_STRLEN(v), err, errlen)
                  : xv_bi_gql_parse_query(XV_STR(v), XV_STRLEN(v), keep_pos, err, errlen);
}

static int type_check(struct xv_bctx *ctx, struct xv_value *const *a, int n)
{
    for (int i = 0; i < n; i++)
        if (!XV_IS(a[i], XV_T_STRING) && !XV_IS(a[i], XV_T_OBJECT))
            return xv_bi_type_error(ctx, i + 1, "one of {string, object}", a[i]);
    return 0;
}

BI_FN(bi_schema_is_valid)
{
    if (type_check(ctx, a, 1))
        return XV_BI_ERROR;
    char err[300];
    struct xv_value *doc = as_doc(a[0], true, false, err, sizeof err);
    struct schema *s = malloc(sizeof *s);
    bool ok = doc && s && load_schema(doc, s);
    free(s);
    xv_val_decref(doc);
    *out = xv_val_bool(ok);
    return XV_BI_OK;
}

/* Validate (query, schema); 0 when valid, else -1 with err set. The
 * documents returned are the plain ASTs (no validator positions). */
static int check_pair(const struct xv_value *qv, const struct xv_value *sv, char *err, size_t errlen,
                      struct xv_value **qdoc, struct xv_value **sdoc)
{
    *qdoc = *sdoc = NULL;
    struct xv_value *sd = as_doc(sv, true, false, err, errlen);
    if (!sd)
        return -1;
    struct schema *s = malloc(sizeof *s);
    if (!s || !load_schema(sd, s)) {
        if (s)
            snprintf(err, errlen, "%s", s->err);
        free(s);
        xv_val_decref(sd);
        return -1;
    }
    struct xv_value *qd = as_doc(qv, false, true, err, errlen);
    bool ok = qd && validate_query(qd, s, err, errlen);
    free(s);
    xv_val_decref(qd);
    if (!ok) {
        xv_val_decref(sd);
        return -1;
    }
    *qdoc = as_doc(qv, false, false, err, errlen);
    *sdoc = sd;
    return *qdoc ? 0 : -1;
}

BI_FN(bi_is_valid)
{
    if (type_check(ctx, a, 2))
        return XV_BI_ERROR;
    char err[300];
    struct xv_value *qd, *sd;
    int rc = check_pair(a[0], a[1], err, sizeof err, &qd, &sd);
    xv_val_decref(qd);
    xv_val_decref(sd);
    *out = xv_val_bool(rc == 0);
    return XV_BI_OK;
}

BI_FN(bi_parse)
{
    if (type_check(ctx, a, 2))
        return XV_BI_ERROR;
    char err[300];
    struct xv_value *qd, *sd;
    if (check_pair(a[0], a[1], err, sizeof err, &qd, &sd))
        return xv_bi_error(ctx, "%s", err);
    struct xv_value *r = xv_val_array_new(2);
    if (!r || xv_val_array_push(r, qd) || xv_val_array_push(r, sd)) {
        xv_val_decref(r);
        r = NULL;
    }
    xv_val_decref(qd);
    xv_val_decref(sd);
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_parse_and_verify)
{
    if (type_check(ctx, a, 2))
        return XV_BI_ERROR;
    char err[300];
    struct xv_value *qd, *sd;
    bool ok = check_pair(a[0], a[1], err, sizeof err, &qd, &sd) == 0;
    struct xv_value *r = xv_val_array_new(3);
    if (!ok) {
        xv_val_decref(qd);
        xv_val_decref(sd);
        qd = xv_val_object_new(0);
        sd = xv_val_object_new(0);
    }
    if (!r || !qd || !sd || xv_val_array_push(r, xv_val_bool(ok)) || xv_val_array_push(r, qd) ||
        xv_val_array_push(r, sd)) {
        xv_val_decref(r);
        r = NULL;
    }
    xv_val_decref(qd);
    xv_val_decref(sd);
    return xv_bi_ret(ctx, r, out);
}

const struct xv_builtin_def xv_bi_graphql_validate[] = {
    {"graphql.schema_is_valid", 1, bi_schema_is_valid, 0},
    {"graphql.is_valid", 2, bi_is_valid, 0},
    {"graphql.parse", 2, bi_parse, 0},
    {"graphql.parse_and_verify", 2, bi_parse_and_verify, 0},
    {NULL, 0, NULL, 0},
};
