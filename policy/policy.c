/*
 * policy.c — the public API of xv_policy.h: loading modules and data,
 * compiling, running queries and making SPEC §5 decisions.
 *
 * Invariant: after xv_policy_compile succeeds, p->compiled is set and the
 * rule tree, the data document and the decision nodes never change again
 * (queries compiled later only add nodes to the arena, never to the tree).
 * Thread safety: xv_policy_decide is safe concurrently; everything else
 * needs exclusive access to p.
 */
#include "xv_policy.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ast.h"

struct xv_policy {
    struct xv_compiled c;       /* modules and rule tree */
    struct module *last;        /* tail of c.mods */
    struct xv_value *data;      /* frozen base document or NULL */
    int compiled;               /* compile succeeded */
    struct node *deny;          /* data.xenovia.policy.deny */
    struct node *redact;        /* data.xenovia.policy.redact_fields */
    struct node *decision;      /* data.xenovia.decision */
};

struct xv_policy *xv_policy_new(void)
{
    return calloc(1, sizeof(struct xv_policy));
}

void xv_policy_free(struct xv_policy *p)
{
    if (!p)
        return;
    xv_arena_free(&p->c.ar);
    xv_value_free_frozen(&p->c.fz);
    free(p);
}

int xv_policy_add_module(struct xv_policy *p, const char *file, const char *src, size_t len,
                         int version, char *err, size_t errlen)
{
    struct module *m = NULL;
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    int v = version == XV_REGO_VERSION_V0 ? XV_REGO_V0
          : version == XV_REGO_VERSION_V1 ? XV_REGO_V1 : XV_REGO_AUTO;
    if (xv_parse_module(&p->c.ar, &p->c.fz, file, src, len, v, &m, &pe)) {
        if (err && errlen)
            snprintf(err, errlen, "%s:%d:%d: rego_parse_error: %s", file, pe.loc.line,
                     pe.loc.col, pe.msg);
        return XV_E_PARSE;
    }
    if (p->last)
        p->last->next = m;
    else
        p->c.mods = m;
    p->last = m;
    return 0;
}

int xv_policy_set_data(struct xv_policy *p, struct xv_value *data)
{
    if (data && data->type != XV_T_OBJECT)
        return XV_E_PARSE;
    struct xv_value *copy = data ? xv_value_copy(data) : NULL;
    if (data && !copy)
        return XV_E_NOMEM;
    if (copy && xv_value_freeze(copy, &p->c.fz))
        return XV_E_NOMEM;
    p->data = copy;
    return 0;
}

static struct node *find_path(struct node *n, const char *const *path, int np)
{
    for (int i = 0; n && i < np; i++)
        n = xv_node_child(n, path[i], strlen(path[i]));
    return n;
}

int xv_policy_compile(struct xv_policy *p, char *err, size_t errlen)
{
    struct xv_cerr ce;
    memset(&ce, 0, sizeof ce);
    if (xv_compile_modules(&p->c, &ce)) {
        if (err && errlen)
            snprintf(err, errlen, "%s:%d:%d: %s: %s", ce.loc.file ? ce.loc.file : "?",
                     ce.loc.line, ce.loc.col, ce.code, ce.msg);
        return XV_E_PARSE;
    }
    static const char *const deny[] = {"xenovia", "policy", "deny"};
    static const char *const redact[] = {"xenovia", "policy", "redact_fields"};
    static const char *const decision[] = {"xenovia", "decision"};
    p->deny = find_path(p->c.root, deny, 3);
    p->redact = find_path(p->c.root, redact, 3);
    p->decision = find_path(p->c.root, decision, 2);
    p->compiled = 1;
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap > ((size_t)64 << 20)) {
            free(buf);
            buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(struct xv_policy *p, const char *path, int version, char *err, size_t errlen)
{
    size_t len = 0;
    char *src = read_file(path, &len);
    if (!src) {
        snprintf(err, errlen, "%s:1:1: cannot read file", path);
        return XV_E_IO;
    }
    int rc = xv_policy_add_module(p, path, src, len, version, err, errlen);
    free(src);
    return rc;
}

static int load_data(struct xv_policy *p, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *src = read_file(path, &len);
    if (!src) {
        snprintf(err, errlen, "%s:1:1: cannot read file", path);
        return XV_E_IO;
    }
    struct xv_value *v = NULL;
    char msg[200];
    int rc = xv_json_parse(src, len, &v, msg, sizeof msg);
    free(src);
    if (rc) {
        snprintf(err, errlen, "%s:1:1: invalid JSON: %s", path, msg);
        return XV_E_PARSE;
    }
    rc = xv_policy_set_data(p, v);
    xv_decref(v);
    if (rc)
        snprintf(err, errlen, "%s:1:1: data must be a JSON object", path);
    return rc;
}

int xv_policy_load(const char *path, const char *data_path, int version,
                   struct xv_policy **out, char *err, size_t errlen)
{
    *out = NULL;
    struct xv_policy *p = xv_policy_new();
    if (!p)
        return XV_E_NOMEM;
    struct stat st;
    int rc = 0;
    char dpath[4096] = "";
    if (stat(path, &st)) {
        snprintf(err, errlen, "%s:1:1: no such file or directory", path);
        xv_policy_free(p);
        return XV_E_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        char **names = NULL;
        size_t nn = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l > 5 && !strcmp(de->d_name + l - 5, ".rego")) {
                char **nv = realloc(names, (nn + 1) * sizeof *nv);
                if (!nv)
                    break;
                names = nv;
                names[nn++] = strdup(de->d_name);
            }
        }
        if (d)
            closedir(d);
        if (names)
            qsort(names, nn, sizeof *names, cmp_str);
        for (size_t i = 0; i < nn; i++) {
            char fp[4096];
            snprintf(fp, sizeof fp, "%s/%s", path, names[i]);
            if (!rc && names[i])
                rc = add_file(p, fp, version, err, errlen);
            free(names[i]);
        }
        free(names);
        snprintf(dpath, sizeof dpath, "%s/data.json", path);
    } else {
        rc = add_file(p, path, version, err, errlen);
        const char *slash = strrchr(path, '/');
        snprintf(dpath, sizeof dpath, "%.*sdata.json", slash ? (int)(slash - path + 1) : 0, path);
    }
    if (!rc) {
        if (data_path)
            rc = load_data(p, data_path, err, errlen);
        else if (!stat(dpath, &st) && S_ISREG(st.st_mode))
            rc = load_data(p, dpath, err, errlen);
    }
    if (!rc)
        rc = xv_policy_compile(p, err, errlen);
    if (rc) {
        xv_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void format_eval_error(const struct xv_eval_error *e, char *err, size_t errlen)
{
    if (!err || !errlen)
        return;
    if (e->loc.file)
        snprintf(err, errlen, "%s:%d: %s: %s", e->loc.file, e->loc.line, e->code, e->msg);
    else
        snprintf(err, errlen, "%s: %s", e->code, e->msg);
}

int xv_policy_query(struct xv_policy *p, const char *query, struct xv_value *input,
                    const struct xv_policy_opts *opts, struct xv_value **rows, char *err,
                    size_t errlen)
{
    *rows = NULL;
    if (!p->compiled && xv_policy_compile(p, err, errlen))
        return XV_E_PARSE;
    struct body *q = NULL;
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    if (xv_parse_query(&p->c.ar, &p->c.fz, query, strlen(query), &q, &pe)) {
        snprintf(err, errlen, "query:%d:%d: rego_parse_error: %s", pe.loc.line, pe.loc.col, pe.msg);
        return XV_E_PARSE;
    }
    int nslots = 0;
    const char **names = NULL;
    struct xv_cerr ce;
    memset(&ce, 0, sizeof ce);
    if (xv_compile_query(&p->c, q, &nslots, &names, &ce)) {
        snprintf(err, errlen, "query:%d:%d: %s: %s", ce.loc.line, ce.loc.col, ce.code, ce.msg);
        return XV_E_PARSE;
    }
    struct xv_eval_opts eo = {opts ? opts->strict : 0, opts ? opts->max_steps : 0,
                             opts ? opts->timeout_ms * 1000000ull : 0};
    struct xv_eval_error ee;
    if (xv_eval_query(&p->c, q, nslots, names, input, p->data, &eo, rows, &ee)) {
        format_eval_error(&ee, err, errlen);
        return XV_E_STATE;
    }
    return 0;
}

/* ---- decisions ---- */

const char *xv_outcome_name(enum xv_outcome o)
{
    switch (o) {
    case XV_OUTCOME_BLOCK: return "block";
    case XV_OUTCOME_REDACT: return "redact";
    case XV_OUTCOME_BLOCK_RESPONSE: return "block_response";
    case XV_OUTCOME_REDACT_RESPONSE: return "redact_response";
    default: return "allow";
    }
}

/* block > redact > allow; the response variants rank with their kind. */
static int strength(enum xv_outcome o)
{
    switch (o) {
    case XV_OUTCOME_BLOCK:
    case XV_OUTCOME_BLOCK_RESPONSE:
        return 2;
    case XV_OUTCOME_REDACT:
    case XV_OUTCOME_REDACT_RESPONSE:
        return 1;
    default:
        return 0;
    }
}

static void add_redact(struct xv_decision *d, struct xv_value *v)
{
    if (!v || (v->type != XV_T_SET && v->type != XV_T_ARRAY))
        return;
    for (size_t i = 0; i < XV_ARR_LEN(v); i++) {
        struct xv_value *e = XV_ARR_ITEM(v, i);
        if (e->type != XV_T_STRING)
            continue;
        int dup = 0;
        for (size_t j = 0; j < d->nredact && !dup; j++)
            dup = !strcmp(d->redact_fields[j], XV_STR(e));
        if (dup)
            continue;
        char **nv = realloc(d->redact_fields, (d->nredact + 1) * sizeof *nv);
        if (!nv)
            return;
        d->redact_fields = nv;
        d->redact_fields[d->nredact++] = strdup(XV_STR(e));
    }
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

int xv_policy_decide(const struct xv_policy *p, struct xv_value *input,
                     const struct xv_policy_opts *opts, struct xv_decision *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->outcome = XV_OUTCOME_ALLOW;
    struct xv_eval_opts eo = {opts ? opts->strict : 0, opts ? opts->max_steps : 0,
                             opts ? opts->timeout_ms * 1000000ull : 0};
    struct xv_eval_error ee;
    struct xv_value *v = NULL;
    struct xv_compiled *c = (struct xv_compiled *)&p->c;
    int response = 0;
    if (input && input->type == XV_T_OBJECT) {
        long i = xv_object_find_str(input, "stage", 5);
        if (i >= 0 && XV_OBJ_VAL(input, i)->type == XV_T_STRING &&
            !strcmp(XV_STR(XV_OBJ_VAL(input, i)), "response"))
            response = 1;
    }
    /* one evaluation for all three documents (shared rule cache) */
    struct node *nodes[3] = {p->deny, p->redact, p->decision};
    struct xv_value *vals[3] = {NULL, NULL, NULL};
    if ((nodes[0] || nodes[1] || nodes[2]) &&
        xv_eval_nodes(c, nodes, 3, input, p->data, &eo, vals, &ee))
        goto fail;
    /* contract 1: package xenovia.policy */
    v = vals[0];
    if (v) {
        int denied = 0;
        if (v->type == XV_T_BOOL && XV_BOOLV(v))
            denied = 1;
        if ((v->type == XV_T_SET || v->type == XV_T_ARRAY) && XV_ARR_LEN(v) > 0) {
            denied = 1;
            struct xv_value *first = XV_ARR_ITEM(v, 0);
            if (first->type == XV_T_STRING)
                set_str(&out->reason, XV_STR(first));
        }
        if (denied) {
            out->outcome = response ? XV_OUTCOME_BLOCK_RESPONSE : XV_OUTCOME_BLOCK;
            set_str(&out->rule_id, "xenovia.policy.deny");
        }
    }
    v = vals[1];
    if (v && (v->type == XV_T_SET || v->type == XV_T_ARRAY) && XV_ARR_LEN(v) > 0) {
        add_redact(out, v);
        if (strength(out->outcome) < 1) {
            out->outcome = response ? XV_OUTCOME_REDACT_RESPONSE : XV_OUTCOME_REDACT;
            set_str(&out->rule_id, "xenovia.policy.redact_fields");
        }
    }
    /* contract 2: package xenovia, decision object */
    v = vals[2];
    if (v && v->type == XV_T_OBJECT) {
        long ai = xv_object_find_str(v, "action", 6);
        enum xv_outcome o = XV_OUTCOME_ALLOW;
        if (ai >= 0 && XV_OBJ_VAL(v, ai)->type == XV_T_STRING) {
            const char *a = XV_STR(XV_OBJ_VAL(v, ai));
            if (!strcmp(a, "block"))
                o = XV_OUTCOME_BLOCK;
            else if (!strcmp(a, "redact"))
                o = XV_OUTCOME_REDACT;
            else if (!strcmp(a, "block_response"))
                o = XV_OUTCOME_BLOCK_RESPONSE;
            else if (!strcmp(a, "redact_response"))
                o = XV_OUTCOME_REDACT_RESPONSE;
        }
        long ri = xv_object_find_str(v, "redact_fields", 13);
        if (ri >= 0)
            add_redact(out, XV_OBJ_VAL(v, ri));
        if (strength(o) > strength(out->outcome)) {
            out->outcome = o;
            long ru = xv_object_find_str(v, "rule", 4);
            set_str(&out->rule_id, ru >= 0 && XV_OBJ_VAL(v, ru)->type == XV_T_STRING
                                       ? XV_STR(XV_OBJ_VAL(v, ru))
                                       : "xenovia.decision");
            long re = xv_object_find_str(v, "reason", 6);
            if (re >= 0 && XV_OBJ_VAL(v, re)->type == XV_T_STRING)
                set_str(&out->reason, XV_STR(XV_OBJ_VAL(v, re)));
        }
    }
    for (int i = 0; i < 3; i++)
        xv_decref(vals[i]);
    return 0;
fail:
    format_eval_error(&ee, err, errlen);
    return XV_E_STATE;
}

void xv_decision_free(struct xv_decision *d)
{
    free(d->rule_id);
    free(d->reason);
    for (size_t i = 0; i < d->nredact; i++)
        free(d->redact_fields[i]);
    free(d->redact_fields);
    memset(d, 0, sizeof *d);
}

char *xv_decision_json(const struct xv_decision *d)
{
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 24);
    xv_buf_appendf(&b, "{\"outcome\":\"%s\",\"rule_id\":", xv_outcome_name(d->outcome));
    if (d->rule_id)
        xv_json_write_string(&b, d->rule_id, strlen(d->rule_id), 0);
    else
        xv_buf_append(&b, "null", 4);
    xv_buf_append(&b, ",\"reason\":", 10);
    if (d->reason)
        xv_json_write_string(&b, d->reason, strlen(d->reason), 0);
    else
        xv_buf_append(&b, "null", 4);
    xv_buf_append(&b, ",\"redact_fields\":[", 18);
    for (size_t i = 0; i < d->nredact; i++) {
        if (i)
            xv_buf_append(&b, ",", 1);
        xv_json_write_string(&b, d->redact_fields[i], strlen(d->redact_fields[i]), 0);
    }
    xv_buf_append(&b, "]}", 2);
    return xv_buf_steal(&b, NULL);
}

int xv_policy_parse_term(const char *src, size_t len, struct xv_value **out, char *err,
                         size_t errlen)
{
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    if (xv_parse_value_term(src, len, out, &pe)) {
        if (err && errlen)
            snprintf(err, errlen, "%d:%d: %s", pe.loc.line, pe.loc.col, pe.msg);
        return XV_E_PARSE;
    }
    return 0;
}

static int run_tests(struct xv_policy *p, struct node *n, const struct xv_eval_opts *eo,
                     void (*cb)(void *, const char *, int, const char *), void *ud)
{
    int failed = 0;
    if ((n->nrules || n->dflt) && !n->is_func && !strncmp(n->name, "test_", 5)) {
        struct xv_value *v = NULL;
        struct xv_eval_error ee;
        char err[800];
        if (xv_eval_node(&p->c, n, NULL, p->data, eo, &v, &ee)) {
            format_eval_error(&ee, err, sizeof err);
            cb(ud, n->path, 0, err);
            failed++;
        } else {
            int pass = v && !(v->type == XV_T_BOOL && !XV_BOOLV(v));
            cb(ud, n->path, pass, NULL);
            failed += !pass;
        }
        xv_decref(v);
    }
    for (int i = 0; i < n->nkids; i++)
        failed += run_tests(p, n->kids[i], eo, cb, ud);
    return failed;
}

int xv_policy_test(struct xv_policy *p, const struct xv_policy_opts *opts,
                   void (*cb)(void *ud, const char *name, int passed, const char *err),
                   void *ud)
{
    if (!p->compiled)
        return -1;
    struct xv_eval_opts eo = {opts ? opts->strict : 0, opts ? opts->max_steps : 0,
                             opts ? opts->timeout_ms * 1000000ull : 0};
    return run_tests(p, p->c.root, &eo, cb, ud);
}
