/*
 * engine.c — the public API of xv_policy.h: loading modules and data,
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

#include "ast/tree.h"
#include "eval/query.h"

struct xv_policy {
    struct xv_compiled c;       /* modules and rule tree */
    struct module *last;        /* tail of c.mods */
    struct xv_value *data;      /* frozen base document or NULL */
    int compiled;               /* compile succeeded */
    struct node *deny;          /* data.xenovia.policy.deny (or another package's, below) */
    struct node *redact;        /* data.xenovia.policy.redact_fields */
    struct node *decision;      /* data.xenovia.decision */
    const char *contract_pkg;   /* package the contract rules were read from when it is
                                   not one of the two standard ones (path without
                                   "data."); NULL otherwise */
    int contract_candidates;    /* other packages defining deny/decision when none of the
                                   standard rules exist (read only when exactly 1) */
    struct node **deny_rules;   /* one private node per deny rule (same body, no
                                   siblings): which rule produced a reason */
    const char **deny_ids;      /* rule id of each: METADATA id/title, else file:line */
    int ndeny;                  /* count */
    const char *redact_id;      /* rule id of redact_fields when one rule defines it */
};

struct xv_policy *xv_policy_new(void)
{
    struct xv_policy *p = calloc(1, sizeof(struct xv_policy));
    if (p)
        p->c.lookup = xv_eval_builtin_lookup;
    return p;
}

void xv_policy_free(struct xv_policy *p)
{
    if (!p)
        return;
    xv_ast_arena_free(&p->c.ar);
    xv_val_free_frozen(&p->c.fz);
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
    if (xv_ast_parse_module(&p->c.ar, &p->c.fz, file, src, len, v, &m, &pe)) {
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
    struct xv_value *copy = data ? xv_val_copy(data) : NULL;
    if (data && !copy)
        return XV_E_NOMEM;
    if (copy && xv_val_freeze(copy, &p->c.fz))
        return XV_E_NOMEM;
    p->data = copy;
    return 0;
}

static struct node *find_path(struct node *n, const char *const *path, int np)
{
    for (int i = 0; n && i < np; i++)
        n = xv_ast_node_child(n, path[i], strlen(path[i]));
    return n;
}

/* A node that defines a document (has rules), or NULL. */
static struct node *rule_node(struct node *n)
{
    return n && !n->is_func && (n->nrules || n->dflt) ? n : NULL;
}

/*
 * Neither standard package defines a contract rule: read `decision` /
 * `deny` / `redact_fields` from another package when exactly one package
 * defines `decision` or `deny` (a user who named the package
 * `mycompany.llm` still gets the decision they wrote, never a silent
 * allow). Several such packages are ambiguous: none is read, and
 * `xenovia policy check` says so.
 */
static void other_package_contract(struct xv_policy *p)
{
    struct node *found = NULL;
    int count = 0;
    for (struct module *m = p->c.mods; m; m = m->next) {
        struct node *pkg = p->c.root;
        for (int i = 0; pkg && i < m->npkg; i++)
            pkg = xv_ast_node_child(pkg, m->pkgpath[i], strlen(m->pkgpath[i]));
        if (!pkg || pkg == found)
            continue;
        if (!rule_node(xv_ast_node_child(pkg, "decision", 8)) && !rule_node(xv_ast_node_child(pkg, "deny", 4)))
            continue;
        int seen = 0; /* the same package in another module */
        for (struct module *o = p->c.mods; o != m && !seen; o = o->next) {
            struct node *q = p->c.root;
            for (int i = 0; q && i < o->npkg; i++)
                q = xv_ast_node_child(q, o->pkgpath[i], strlen(o->pkgpath[i]));
            seen = q == pkg;
        }
        if (seen)
            continue;
        found = pkg;
        count++;
    }
    p->contract_candidates = count;
    if (count != 1)
        return;
    p->decision = rule_node(xv_ast_node_child(found, "decision", 8));
    p->deny = rule_node(xv_ast_node_child(found, "deny", 4));
    p->redact = rule_node(xv_ast_node_child(found, "redact_fields", 13));
    p->contract_pkg = strncmp(found->path, "data.", 5) == 0 ? found->path + 5 : found->path;
}

/* A rule's id for records: METADATA `id` (also under `custom`), else
 * `title`, else "file:line" (base name of the file). Arena string. */
static const char *rule_id_of(struct xv_policy *p, const struct rule *r)
{
    const struct xv_value *a = r->annot;
    const char *keys[] = {"id", "title"};
    for (int k = 0; a && a->type == XV_T_OBJECT && k < 2; k++) {
        long i = xv_val_object_find_str((struct xv_value *)a, keys[k], strlen(keys[k]));
        struct xv_value *v = i >= 0 ? XV_OBJ_VAL(a, i) : NULL;
        if (!v && k == 0) {
            long ci = xv_val_object_find_str((struct xv_value *)a, "custom", 6);
            struct xv_value *cu = ci >= 0 ? XV_OBJ_VAL(a, ci) : NULL;
            long j = cu && cu->type == XV_T_OBJECT ? xv_val_object_find_str(cu, "id", 2) : -1;
            v = j >= 0 ? XV_OBJ_VAL(cu, j) : NULL;
        }
        if (v && v->type == XV_T_STRING && XV_STRLEN(v))
            return XV_STR(v);
    }
    const char *file = r->loc.file ? r->loc.file : (r->mod ? r->mod->file : "policy");
    const char *slash = strrchr(file, '/');
    char buf[300];
    snprintf(buf, sizeof buf, "%s:%d", slash ? slash + 1 : file, r->loc.line);
    return xv_ast_arena_strdup(&p->c.ar, buf, strlen(buf));
}

/* One private node per deny rule, evaluated only when a request was denied
 * to learn which rule gave the reason. The nodes share the rules' compiled
 * bodies (a shallow copy of the rule with no sibling) and get their own
 * cache ids; they are not in the tree. */
static int index_deny_rules(struct xv_policy *p)
{
    if (p->redact && p->redact->nrules == 1 && p->redact->rules)
        p->redact_id = rule_id_of(p, p->redact->rules);
    struct node *d = p->deny;
    if (!d || !d->nrules)
        return 0;
    p->deny_rules = xv_ast_arena_alloc(&p->c.ar, (size_t)d->nrules * sizeof *p->deny_rules);
    p->deny_ids = xv_ast_arena_alloc(&p->c.ar, (size_t)d->nrules * sizeof *p->deny_ids);
    if (!p->deny_rules || !p->deny_ids)
        return XV_E_NOMEM;
    for (struct rule *r = d->rules; r; r = r->next) {
        struct node *n = xv_ast_arena_alloc(&p->c.ar, sizeof *n);
        struct rule *copy = xv_ast_arena_alloc(&p->c.ar, sizeof *copy);
        if (!n || !copy)
            return XV_E_NOMEM;
        *copy = *r;
        copy->next = NULL;
        n->name = d->name;
        n->key = d->key;
        n->parent = d->parent;
        n->path = d->path;
        n->rules = copy;
        n->nrules = 1;
        n->has_set = d->has_set;
        n->has_complete = r->kind == R_COMPLETE;
        n->id = p->c.nnodes++;
        p->deny_ids[p->ndeny] = rule_id_of(p, r);
        p->deny_rules[p->ndeny++] = n;
    }
    return 0;
}

int xv_policy_compile(struct xv_policy *p, char *err, size_t errlen)
{
    struct xv_cerr ce;
    memset(&ce, 0, sizeof ce);
    if (xv_ast_compile_modules(&p->c, &ce)) {
        if (err && errlen)
            snprintf(err, errlen, "%s:%d:%d: %s: %s", ce.loc.file ? ce.loc.file : "?",
                     ce.loc.line, ce.loc.col, ce.code, ce.msg);
        return XV_E_PARSE;
    }
    static const char *const deny[] = {"xenovia", "policy", "deny"};
    static const char *const redact[] = {"xenovia", "policy", "redact_fields"};
    static const char *const decision[] = {"xenovia", "decision"};
    p->deny = rule_node(find_path(p->c.root, deny, 3));
    p->redact = rule_node(find_path(p->c.root, redact, 3));
    p->decision = rule_node(find_path(p->c.root, decision, 2));
    if (!p->deny && !p->redact && !p->decision)
        other_package_contract(p);
    if (index_deny_rules(p) != 0) {
        snprintf(err, errlen, "%s:1:1: rego_compile_error: out of memory", "policy");
        return XV_E_NOMEM;
    }
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
    int rc = xv_val_json_parse(src, len, &v, msg, sizeof msg);
    free(src);
    if (rc) {
        snprintf(err, errlen, "%s:1:1: invalid JSON: %s", path, msg);
        return XV_E_PARSE;
    }
    rc = xv_policy_set_data(p, v);
    xv_val_decref(v);
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
    if (xv_ast_parse_query(&p->c.ar, &p->c.fz, query, strlen(query), &q, &pe)) {
        snprintf(err, errlen, "query:%d:%d: rego_parse_error: %s", pe.loc.line, pe.loc.col, pe.msg);
        return XV_E_PARSE;
    }
    int nslots = 0;
    const char **names = NULL;
    struct xv_cerr ce;
    memset(&ce, 0, sizeof ce);
    if (xv_ast_compile_query(&p->c, q, &nslots, &names, &ce)) {
        snprintf(err, errlen, "query:%d:%d: %s: %s", ce.loc.line, ce.loc.col, ce.code, ce.msg);
        return XV_E_PARSE;
    }
    struct xv_eval_opts eo = {opts ? opts->strict : 0, opts ? opts->max_steps : 0,
                             opts ? opts->timeout_ms * 1000000ull : 0, NULL};
    struct xv_eval_error ee;
    if (xv_eval_query(&p->c, q, nslots, names, input, p->data, &eo, rows, &ee)) {
        format_eval_error(&ee, err, errlen);
        return XV_E_STATE;
    }
    return 0;
}

/* ---- decisions ---- */

const char *xv_policy_outcome_name(enum xv_outcome o)
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

/* "xenovia.policy.deny" for a node at data.xenovia.policy.deny. */
static const char *node_name(const struct node *n)
{
    if (!n || !n->path)
        return "policy";
    return strncmp(n->path, "data.", 5) == 0 ? n->path + 5 : n->path;
}

/* An unknown action's name as recorded: printable ASCII, at most
 * XV_ACTION_MAX bytes, other bytes as '_'. */
static void action_name(const char *a, char out[XV_ACTION_MAX + 1])
{
    size_t n = 0;
    for (; a[n] && n < XV_ACTION_MAX; n++) {
        unsigned char ch = (unsigned char)a[n];
        out[n] = (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '_';
    }
    out[n] = '\0';
    if (!n)
        snprintf(out, XV_ACTION_MAX + 1, "invalid_action");
}

/* The id of the deny rule that produced `reason` (or, for a boolean deny,
 * the first rule that holds). With one rule that is its id; otherwise the
 * rules are evaluated one by one — only on this denied path. */
static const char *deny_rule_id(const struct xv_policy *p, struct xv_value *input,
                                const struct xv_eval_opts *eo, struct xv_value *denyv,
                                const char *reason)
{
    if (p->ndeny == 1)
        return p->deny_ids[0];
    if (p->ndeny < 1)
        return node_name(p->deny); /* only a default rule */
    struct xv_value **vals = calloc((size_t)p->ndeny, sizeof *vals);
    if (!vals)
        return node_name(p->deny);
    const char *id = node_name(p->deny);
    struct xv_eval_error ee;
    struct xv_compiled *c = (struct xv_compiled *)&p->c;
    if (xv_eval_nodes(c, p->deny_rules, p->ndeny, input, p->data, eo, vals, &ee) == 0) {
        for (int i = 0; i < p->ndeny; i++) {
            struct xv_value *v = vals[i];
            int hit = 0;
            if (v && v->type == XV_T_BOOL)
                hit = XV_BOOLV(v) && denyv->type == XV_T_BOOL;
            else if (v && (v->type == XV_T_SET || v->type == XV_T_ARRAY) && XV_ARR_LEN(v)) {
                hit = !reason; /* a set with no string reason: first rule that yields */
                for (size_t k = 0; !hit && k < XV_ARR_LEN(v); k++) {
                    struct xv_value *e = XV_ARR_ITEM(v, k);
                    hit = e->type == XV_T_STRING && !strcmp(XV_STR(e), reason);
                }
            }
            if (hit) {
                id = p->deny_ids[i];
                break;
            }
        }
    }
    for (int i = 0; i < p->ndeny; i++)
        xv_val_decref(vals[i]);
    free(vals);
    return id;
}

int xv_policy_decide(const struct xv_policy *p, struct xv_value *input,
                     const struct xv_policy_opts *opts, struct xv_decision *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->outcome = XV_OUTCOME_ALLOW;
    struct xv_eval_opts eo = {opts ? opts->strict : 0, opts ? opts->max_steps : 0,
                             opts ? opts->timeout_ms * 1000000ull : 0, NULL};
    struct xv_eval_error ee;
    struct xv_value *v = NULL;
    struct xv_compiled *c = (struct xv_compiled *)&p->c;
    struct xv_policy_memo *memo = opts ? opts->memo : NULL;
    /* only partial sets are reused: a complete rule's value is all or nothing */
    struct xv_eval_reuse ru = {{p->deny && p->deny->has_set ? p->deny : NULL,
                                p->redact && p->redact->has_set ? p->redact : NULL},
                               memo ? memo->changed : 0,
                               memo ? memo->use : 0, {NULL, NULL}, {0, 0}};
    if (memo && (!memo->use || (memo->valid && memo->filled_by == p &&
                                memo->filled_changed == memo->changed))) {
        if (memo->use)
            for (int j = 0; j < 2; j++)
                ru.kept[j] = memo->kept[j]; /* borrowed */
        eo.reuse = &ru;
    }
    int response = 0;
    if (input && input->type == XV_T_OBJECT) {
        long i = xv_val_object_find_str(input, "stage", 5);
        if (i >= 0 && XV_OBJ_VAL(input, i)->type == XV_T_STRING &&
            !strcmp(XV_STR(XV_OBJ_VAL(input, i)), "response"))
            response = 1;
    }
    /* one evaluation for all three documents (shared rule cache) */
    struct node *nodes[3] = {p->deny, p->redact, p->decision};
    struct xv_value *vals[3] = {NULL, NULL, NULL};
    int erc = (nodes[0] || nodes[1] || nodes[2]) &&
              xv_eval_nodes(c, nodes, 3, input, p->data, &eo, vals, &ee);
    if (eo.reuse && !memo->use) {
        /* filled: valid only when every reused document was evaluated */
        xv_policy_memo_clear(memo);
        int all = !erc;
        for (int j = 0; j < 2; j++) {
            memo->kept[j] = ru.kept[j];
            all &= !ru.nodes[j] || ru.filled[j];
        }
        memo->valid = all;
        memo->filled_by = p;
        memo->filled_changed = memo->changed;
    }
    eo.reuse = NULL; /* deny_rule_id evaluates single rules afresh */
    if (erc)
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
            set_str(&out->rule_id, deny_rule_id(p, input, &eo, v, out->reason));
        }
    }
    v = vals[1];
    if (v && (v->type == XV_T_SET || v->type == XV_T_ARRAY) && XV_ARR_LEN(v) > 0) {
        add_redact(out, v);
        if (strength(out->outcome) < 1) {
            out->outcome = response ? XV_OUTCOME_REDACT_RESPONSE : XV_OUTCOME_REDACT;
            set_str(&out->rule_id, p->redact_id ? p->redact_id : node_name(p->redact));
        }
    }
    /* contract 2: package xenovia, decision object */
    v = vals[2];
    if (v && v->type == XV_T_OBJECT) {
        long ai = xv_val_object_find_str(v, "action", 6);
        enum xv_outcome o = XV_OUTCOME_ALLOW;
        char action[XV_ACTION_MAX + 1] = "";
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
            else if (strcmp(a, "allow") != 0) {
                /* escalate, or an action this engine does not know: never a
                 * silent allow. It blocks (the request, or the response at
                 * that stage) and is recorded under its own name. */
                o = response ? XV_OUTCOME_BLOCK_RESPONSE : XV_OUTCOME_BLOCK;
                action_name(a, action);
            }
        } else if (ai >= 0) {
            o = response ? XV_OUTCOME_BLOCK_RESPONSE : XV_OUTCOME_BLOCK;
            snprintf(action, sizeof action, "invalid_action");
        }
        long ri = xv_val_object_find_str(v, "redact_fields", 13);
        if (ri >= 0)
            add_redact(out, XV_OBJ_VAL(v, ri));
        if (strength(o) > strength(out->outcome)) {
            out->outcome = o;
            set_str(&out->action, action[0] ? action : NULL);
            long ru = xv_val_object_find_str(v, "rule", 4);
            set_str(&out->rule_id, ru >= 0 && XV_OBJ_VAL(v, ru)->type == XV_T_STRING
                                       ? XV_STR(XV_OBJ_VAL(v, ru))
                                       : node_name(p->decision));
            long re = xv_val_object_find_str(v, "reason", 6);
            if (re >= 0 && XV_OBJ_VAL(v, re)->type == XV_T_STRING)
                set_str(&out->reason, XV_STR(XV_OBJ_VAL(v, re)));
        }
    }
    for (int i = 0; i < 3; i++)
        xv_val_decref(vals[i]);
    return 0;
fail:
    format_eval_error(&ee, err, errlen);
    return XV_E_STATE;
}

void xv_policy_decision_free(struct xv_decision *d)
{
    free(d->rule_id);
    free(d->reason);
    free(d->action);
    for (size_t i = 0; i < d->nredact; i++)
        free(d->redact_fields[i]);
    free(d->redact_fields);
    memset(d, 0, sizeof *d);
}

char *xv_policy_decision_json(const struct xv_decision *d)
{
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 24);
    xv_buf_appendf(&b, "{\"outcome\":\"%s\",", xv_policy_outcome_name(d->outcome));
    if (d->action)
        xv_buf_appendf(&b, "\"action\":\"%s\",", d->action); /* printable, no quotes */
    xv_buf_append(&b, "\"rule_id\":", 10);
    if (d->rule_id)
        xv_val_json_write_string(&b, d->rule_id, strlen(d->rule_id), 0);
    else
        xv_buf_append(&b, "null", 4);
    xv_buf_append(&b, ",\"reason\":", 10);
    if (d->reason)
        xv_val_json_write_string(&b, d->reason, strlen(d->reason), 0);
    else
        xv_buf_append(&b, "null", 4);
    xv_buf_append(&b, ",\"redact_fields\":[", 18);
    for (size_t i = 0; i < d->nredact; i++) {
        if (i)
            xv_buf_append(&b, ",", 1);
        xv_val_json_write_string(&b, d->redact_fields[i], strlen(d->redact_fields[i]), 0);
    }
    xv_buf_append(&b, "]}", 2);
    return xv_buf_steal(&b, NULL);
}

int xv_policy_contract(const struct xv_policy *p, const char **pkg, int *candidates)
{
    int bits = (p->deny ? XV_POLICY_HAS_DENY : 0) | (p->redact ? XV_POLICY_HAS_REDACT : 0) |
               (p->decision ? XV_POLICY_HAS_DECISION : 0);
    if (pkg)
        *pkg = p->contract_pkg;
    if (candidates)
        *candidates = p->contract_candidates;
    return bits;
}

int xv_policy_nondeterministic(const struct xv_policy *p)
{
    return !p || !p->compiled || p->c.nondet;
}

uint64_t xv_policy_input_bits(const struct xv_policy *p, const char *const *keys, int n)
{
    if (!p || !p->compiled || p->c.input_any)
        return ~(uint64_t)0;
    uint64_t bits = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < p->c.ninput_keys; i++)
            if (!strcmp(p->c.input_keys[i], keys[k]))
                bits |= (uint64_t)1 << i;
    return bits;
}

void xv_policy_memo_clear(struct xv_policy_memo *m)
{
    for (int j = 0; j < 2; j++) {
        xv_val_decref(m->kept[j]);
        m->kept[j] = NULL;
    }
    m->valid = 0;
}

int xv_policy_reads_input(const struct xv_policy *p, const char *key)
{
    if (!p || !p->compiled || p->c.input_any)
        return 1;
    for (int i = 0; i < p->c.ninput_keys; i++)
        if (!strcmp(p->c.input_keys[i], key))
            return 1;
    return 0;
}

int xv_policy_parse_term(const char *src, size_t len, struct xv_value **out, char *err,
                         size_t errlen)
{
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    if (xv_ast_parse_value_term(src, len, out, &pe)) {
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
        xv_val_decref(v);
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
                             opts ? opts->timeout_ms * 1000000ull : 0, NULL};
    return run_tests(p, p->c.root, &eo, cb, ud);
}
