/*
 * value/yaml.c — the project's one YAML reader: yaml.unmarshal and
 * yaml.is_valid (builtins/yaml.c) and METADATA annotations (ast/annotations.c).
 *
 * OPA reads YAML with sigs.k8s.io/yaml (go-yaml v2, YAML 1.1 scalars). This
 * file implements the YAML that configuration and
 * policy data use: block mappings and sequences (including sequences at
 * their key's indentation), flow collections, plain / single- / double-
 * quoted scalars, literal and folded block scalars, comments, and "---"
 * document starts. Scalars resolve as go-yaml v2 does: null (~, null, empty),
 * booleans (true/false/yes/no/on/off in any common case), integers
 * (decimal, 0x, 0o), floats; everything else is a string. Anchors, aliases,
 * tags and multi-document streams are rejected as errors.
 *
 * Invariant: nesting depth is bounded (XV_VAL_YAML_MAX_DEPTH) and every read is
 * bounded by the line table.
 * Thread safety: reentrant.
 */
#include "value/yaml.h"
#include "value/buf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

struct yline {
    int indent;          /* leading spaces */
    const char *p;       /* content after the indentation */
    size_t n;            /* content length without comment / trailing spaces */
    int no;              /* 1-based line number */
};

struct yp {
    const char *end;     /* end of the document (it need not be NUL-terminated) */
    struct yline *l;     /* lines that carry content */
    int nl, cur;         /* count, current line */
    char err[200];       /* first error */
    int depth;
};

static void yerr(struct yp *y, int line, const char *msg)
{
    if (!y->err[0])
        snprintf(y->err, sizeof y->err, "yaml: line %d: %s", line, msg);
}

/* ---- scalars ---- */

struct xv_value *xv_val_yaml_resolve_plain(const char *s, size_t n)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
                                        "ON", "y", "Y"};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off",
                                         "Off", "OFF", "n", "N"};
    if (n == 0)
        return xv_val_null();
    for (size_t i = 0; i < 4; i++)
        if (strlen(nulls[i]) == n && !memcmp(s, nulls[i], n))
            return xv_val_null();
    for (size_t i = 0; i < 11; i++) {
        if (strlen(trues[i]) == n && !memcmp(s, trues[i], n))
            return xv_val_bool(1);
        if (strlen(falses[i]) == n && !memcmp(s, falses[i], n))
            return xv_val_bool(0);
    }
    /* numbers: decimal ints and floats as JSON numbers; 0x / 0o ints */
    char buf[128];
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        size_t k = 0;
        bool neg = false;
        if (buf[k] == '+' || buf[k] == '-')
            neg = buf[k++] == '-';
        if ((buf[k] == '0') && (buf[k + 1] == 'x' || buf[k + 1] == 'o') && buf[k + 2]) {
            int base = buf[k + 1] == 'x' ? 16 : 8;
            mpz_t z;
            if (mpz_init_set_str(z, buf + k + 2, base) == 0) {
                if (neg)
                    mpz_neg(z, z);
                struct xv_value *v = xv_val_number_from_mpz(z);
                mpz_clear(z);
                return v;
            }
            mpz_clear(z);
        }
        bool digits = false, bad = false;
        for (size_t i = k; buf[i]; i++) {
            if (isdigit((unsigned char)buf[i]))
                digits = true;
            else if (!strchr(".eE+-", buf[i]))
                bad = true;
        }
        if (digits && !bad) {
            struct xv_value *v = xv_val_number_parse(buf[0] == '+' ? buf + 1 : buf,
                                                 buf[0] == '+' ? n - 1 : n);
            if (v)
                return v;
        }
    }
    return xv_val_string(s, n);
}

/* Double-quoted scalar body at s[0..n) (without quotes). */
static struct xv_value *dquoted(const char *s, size_t n)
{
    struct xv_val_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            xv_val_buf_addc(&b, s[i]);
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'n': xv_val_buf_addc(&b, '\n'); break;
        case 't': xv_val_buf_addc(&b, '\t'); break;
        case 'r': xv_val_buf_addc(&b, '\r'); break;
        case '0': xv_val_buf_addc(&b, '\0'); break;
        case 'u': case 'x': case 'U': {
            int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            unsigned cp = 0;
            for (int k = 0; k < len && i + 1 < n; k++) {
                char h = s[++i];
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10) & 15);
            }
            xv_val_buf_addcp(&b, cp);
            break;
        }
        default: xv_val_buf_addc(&b, e);
        }
    }
    xv_val_buf_add(&b, "", 0);
    size_t len;
    char *p = xv_val_buf_take(&b, &len);
    struct xv_value *v = p ? xv_val_string(p, len) : NULL;
    free(p);
    return v;
}

/* A single-quoted scalar: '' is a quote, nothing else escapes. */
static struct xv_value *squoted(const char *s, size_t n)
{
    struct xv_val_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        xv_val_buf_addc(&b, s[i]);
        if (s[i] == '\'' && i + 1 < n && s[i + 1] == '\'')
            i++;
    }
    xv_val_buf_add(&b, "", 0);
    size_t len;
    char *p = xv_val_buf_take(&b, &len);
    struct xv_value *v = p ? xv_val_string(p, len) : NULL;
    free(p);
    return v;
}

/* ---- flow collections (a cursor over joined text) ---- */

struct flow {
    const char *p, *e;   /* remaining text */
    int line;            /* for messages */
};

static void fws(struct flow *f)
{
    while (f->p < f->e && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

static struct xv_value *flow_value(struct yp *y, struct flow *f, bool in_flow);

/* A plain or quoted scalar inside (or starting) flow context; plain ones
 * end at , ] } when in_flow, and resolve as go-yaml v2 does. */
static struct xv_value *flow_scalar(struct yp *y, struct flow *f, bool in_flow)
{
    fws(f);
    if (f->p >= f->e)
        return xv_val_null();
    char q = *f->p;
    if (q == '"' || q == '\'') {
        const char *st = ++f->p;
        while (f->p < f->e && *f->p != q) {
            if (q == '"' && *f->p == '\\' && f->p + 1 < f->e)
                f->p++;
            else if (q == '\'' && *f->p == '\'' && f->p + 1 < f->e && f->p[1] == '\'')
                f->p++;
            f->p++;
        }
        if (f->p >= f->e) {
            yerr(y, f->line, "found unexpected end of stream");
            return NULL;
        }
        struct xv_value *v = q == '"' ? dquoted(st, (size_t)(f->p - st)) : squoted(st, (size_t)(f->p - st));
        f->p++;
        return v;
    }
    if (q == '&' || q == '*' || q == '!') {
        yerr(y, f->line, "anchors, aliases and tags are not supported");
        return NULL;
    }
    const char *st = f->p;
    while (f->p < f->e) {
        char c = *f->p;
        if (in_flow && (c == ',' || c == ']' || c == '}'))
            break;
        if (c == ':' && (f->p + 1 == f->e || f->p[1] == ' ' ||
                         (in_flow && f->p[1] && strchr(",]}", f->p[1]))))
            break;
        f->p++;
    }
    const char *en = f->p;
    while (en > st && (en[-1] == ' ' || en[-1] == '\t'))
        en--;
    return xv_val_yaml_resolve_plain(st, (size_t)(en - st));
}

/* A flow node: [sequence], {mapping} (depth-bounded) or a scalar. */
static struct xv_value *flow_value(struct yp *y, struct flow *f, bool in_flow)
{
    if (++y->depth > XV_VAL_YAML_MAX_DEPTH) {
        yerr(y, f->line, "exceeded max depth");
        y->depth--;
        return NULL;
    }
    fws(f);
    struct xv_value *v = NULL;
    if (f->p < f->e && *f->p == '[') {
        f->p++;
        v = xv_val_array_new(4);
        for (;;) {
            fws(f);
            if (f->p >= f->e) {
                yerr(y, f->line, "did not find expected ',' or ']'");
                break;
            }
            if (*f->p == ']') {
                f->p++;
                break;
            }
            struct xv_value *e = flow_value(y, f, true);
            if (!e)
                break;
            xv_val_array_push(v, e);
            xv_val_decref(e);
            fws(f);
            if (f->p < f->e && *f->p == ',') {
                f->p++;
                continue;
            }
            if (f->p < f->e && *f->p == ']')
                continue;
            yerr(y, f->line, "did not find expected ',' or ']'");
            break;
        }
    } else if (f->p < f->e && *f->p == '{') {
        f->p++;
        v = xv_val_object_new(4);
        for (;;) {
            fws(f);
            if (f->p >= f->e) {
                yerr(y, f->line, "did not find expected ',' or '}'");
                break;
            }
            if (*f->p == '}') {
                f->p++;
                break;
            }
            struct xv_value *k = flow_scalar(y, f, true);
            if (!k)
                break;
            fws(f);
            struct xv_value *val;
            if (f->p < f->e && *f->p == ':') {
                f->p++;
                val = flow_value(y, f, true);
            } else {
                val = xv_val_null();
            }
            if (!val) {
                xv_val_decref(k);
                break;
            }
            xv_val_object_set(v, k, val);
            xv_val_decref(k);
            xv_val_decref(val);
            fws(f);
            if (f->p < f->e && *f->p == ',') {
                f->p++;
                continue;
            }
            if (f->p < f->e && *f->p == '}')
                continue;
            yerr(y, f->line, "did not find expected ',' or '}'");
            break;
        }
    } else {
        v = flow_scalar(y, f, in_flow);
    }
    y->depth--;
    if (y->err[0]) {
        xv_val_decref(v);
        return NULL;
    }
    return v;
}

/* ---- block structure ---- */

static struct xv_value *block_node(struct yp *y, int min_indent);

/* Position of a "key:" separator on a block line, or -1. */
static long key_colon(const char *p, size_t n)
{
    size_t i = 0;
    if (n && (p[0] == '"' || p[0] == '\'')) {
        char q = p[0];
        for (i = 1; i < n && p[i] != q; i++)
            if (q == '"' && p[i] == '\\')
                i++;
        i++;
    }
    if (n && (p[0] == '[' || p[0] == '{'))
        return -1;
    for (; i < n; i++)
        if (p[i] == ':' && (i + 1 == n || p[i + 1] == ' ' || p[i + 1] == '\t'))
            return (long)i;
    return -1;
}

/* A scalar or flow value that starts on line `li` at text (p, n); flow
 * collections may continue on following lines. */
static struct xv_value *inline_value(struct yp *y, const char *p, size_t n, int li)
{
    if (n > 0 && (p[0] == '|' || p[0] == '>')) {
        /* block scalar: the following more-indented lines */
        bool fold = p[0] == '>';
        char chomp = n > 1 ? p[1] : 0;
        int base = y->l[li].indent;
        struct xv_val_buf b = {0};
        int ind = -1, prevno = y->l[li].no;
        while (y->cur < y->nl && y->l[y->cur].indent > base) {
            struct yline *l = &y->l[y->cur];
            if (ind < 0)
                ind = l->indent;
            for (int k = prevno + 1; k < l->no; k++)
                xv_val_buf_addc(&b, '\n');   /* blank lines kept */
            if (b.len && l->no == prevno + 1)
                xv_val_buf_addc(&b, fold ? ' ' : '\n');
            else if (b.len)
                xv_val_buf_addc(&b, '\n');
            for (int k = ind; k < l->indent; k++)
                xv_val_buf_addc(&b, ' ');
            /* block scalars keep '#' text: use the raw line end */
            const char *end = l->p;
            while (end < y->end && *end != '\n' && *end != '\r')
                end++;
            xv_val_buf_add(&b, l->p, (size_t)(end - l->p));
            prevno = l->no;
            y->cur++;
        }
        if (chomp != '-')
            xv_val_buf_addc(&b, '\n');
        size_t len;
        char *s = xv_val_buf_take(&b, &len);
        struct xv_value *v = s ? xv_val_string(s, len) : NULL;
        free(s);
        return v;
    }
    if (n > 0 && (p[0] == '[' || p[0] == '{')) {
        /* join continuation lines until the brackets balance */
        struct xv_val_buf b = {0};
        xv_val_buf_add(&b, p, n);
        int depth = 0;
        bool q = false;
        char qc = 0;
        for (;;) {
            depth = 0;
            q = false;
            for (size_t i = 0; i < b.len; i++) {
                char c = b.p[i];
                if (q) {
                    if (c == qc)
                        q = false;
                    else if (c == '\\' && qc == '"')
                        i++;
                } else if (c == '"' || c == '\'') {
                    q = true;
                    qc = c;
                } else if (c == '[' || c == '{') {
                    depth++;
                } else if (c == ']' || c == '}') {
                    depth--;
                }
            }
            if (depth <= 0 || y->cur >= y->nl)
                break;
            xv_val_buf_addc(&b, '\n');
            xv_val_buf_add(&b, y->l[y->cur].p, y->l[y->cur].n);
            y->cur++;
        }
        struct flow f = {b.p, b.p + b.len, y->l[li].no};
        struct xv_value *v = flow_value(y, &f, false);
        fws(&f);
        if (v && f.p < f.e) {
            yerr(y, y->l[li].no, "did not find expected <document start>");
            xv_val_decref(v);
            v = NULL;
        }
        xv_val_buf_free(&b);
        return v;
    }
    struct flow f = {p, p + n, y->l[li].no};
    struct xv_value *v = flow_scalar(y, &f, false);
    /* a plain scalar may continue on more-indented lines (folded by spaces) */
    if (v && XV_IS(v, XV_T_STRING) && p[0] != '"' && p[0] != '\'' && y->cur < y->nl &&
        y->l[y->cur].indent > y->l[li].indent && key_colon(y->l[y->cur].p, y->l[y->cur].n) < 0 &&
        y->l[y->cur].p[0] != '-') {
        struct xv_val_buf b = {0};
        xv_val_buf_add(&b, S(v), SL(v));
        while (y->cur < y->nl && y->l[y->cur].indent > y->l[li].indent) {
            xv_val_buf_addc(&b, ' ');
            xv_val_buf_add(&b, y->l[y->cur].p, y->l[y->cur].n);
            y->cur++;
        }
        size_t len;
        char *s = xv_val_buf_take(&b, &len);
        xv_val_decref(v);
        v = s ? xv_val_string(s, len) : NULL;
        free(s);
    }
    return v;
}

static bool is_seq_item(const struct yline *l)
{
    return l->n >= 1 && l->p[0] == '-' && (l->n == 1 || l->p[1] == ' ');
}

/* A block node at indentation >= min_indent: a sequence of `- ` items
 * (also at its key's indentation, as go-yaml allows), a mapping of
 * `key: value` lines, or a single scalar / flow node. */
static struct xv_value *block_node(struct yp *y, int min_indent)
{
    if (++y->depth > XV_VAL_YAML_MAX_DEPTH) {
        yerr(y, y->cur < y->nl ? y->l[y->cur].no : 0, "exceeded max depth");
        y->depth--;
        return NULL;
    }
    struct xv_value *v = NULL;
    if (y->cur >= y->nl || y->l[y->cur].indent < min_indent) {
        y->depth--;
        return xv_val_null();
    }
    struct yline *first = &y->l[y->cur];
    int ind = first->indent;
    if (is_seq_item(first)) {
        v = xv_val_array_new(4);
        while (!y->err[0] && y->cur < y->nl && y->l[y->cur].indent == ind &&
               is_seq_item(&y->l[y->cur])) {
            struct yline *l = &y->l[y->cur];
            struct xv_value *item;
            size_t skip = l->n > 1 ? 2 : 1;
            while (skip < l->n && l->p[skip] == ' ')
                skip++;
            if (skip >= l->n) {
                y->cur++;
                item = block_node(y, ind + 1);
            } else {
                /* the rest of the line is a node at a deeper indentation */
                l->indent += (int)skip;
                l->p += skip;
                l->n -= skip;
                item = block_node(y, l->indent);
            }
            if (!item)
                break;
            xv_val_array_push(v, item);
            xv_val_decref(item);
        }
    } else if (key_colon(first->p, first->n) >= 0) {
        v = xv_val_object_new(4);
        while (!y->err[0] && y->cur < y->nl && y->l[y->cur].indent == ind) {
            struct yline *l = &y->l[y->cur];
            long c = key_colon(l->p, l->n);
            if (c < 0) {
                yerr(y, l->no, "could not find expected ':'");
                break;
            }
            struct flow kf = {l->p, l->p + c, l->no};
            struct xv_value *key = flow_scalar(y, &kf, false);
            if (!key)
                break;
            const char *rest = l->p + c + 1;
            size_t rn = l->n - (size_t)c - 1;
            while (rn && (*rest == ' ' || *rest == '\t')) {
                rest++;
                rn--;
            }
            int li = y->cur;
            y->cur++;
            struct xv_value *val;
            if (rn == 0) {
                /* value on the following lines: deeper, or a sequence at our indent */
                if (y->cur < y->nl && (y->l[y->cur].indent > ind ||
                                       (y->l[y->cur].indent == ind && is_seq_item(&y->l[y->cur]))))
                    val = block_node(y, y->l[y->cur].indent);
                else
                    val = xv_val_null();
            } else {
                val = inline_value(y, rest, rn, li);
            }
            if (!val) {
                xv_val_decref(key);
                break;
            }
            /* sigs.k8s.io/yaml turns every key into a JSON object key (string) */
            if (!XV_IS(key, XV_T_STRING)) {
                /* a scalar key's Rego text ("null", "true", "1.5") */
                struct xv_buf kb;
                xv_buf_init(&kb, XV_VAL_BUF_MAX);
                int bad = XV_IS(key, XV_T_NULL) ? xv_buf_append(&kb, "null", 4)
                                                : xv_val_rego_write(&kb, key);
                xv_val_decref(key);
                key = bad ? NULL : xv_val_string(kb.data ? kb.data : "", kb.len);
                xv_buf_free(&kb);
            }
            if (key)
                xv_val_object_set(v, key, val);
            xv_val_decref(key);
            xv_val_decref(val);
        }
    } else {
        int li = y->cur;
        y->cur++;
        v = inline_value(y, first->p, first->n, li);
    }
    y->depth--;
    if (y->err[0]) {
        xv_val_decref(v);
        return NULL;
    }
    return v;
}

/* Split the text into content lines (comments and blank lines dropped,
 * one leading --- allowed, a second document refused, ... ends it), then
 * read one block node from the top. */
struct xv_value *xv_val_yaml_parse(const char *s, size_t n, char *err, size_t errlen)
{
    /* split into content lines */
    size_t cap = 16;
    struct yp y = {0};
    y.end = s + n;
    y.l = malloc(cap * sizeof *y.l);
    if (!y.l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t i = 0;
    int no = 0, docs = 0;
    while (i < n) {
        size_t st = i;
        while (i < n && s[i] != '\n')
            i++;
        no++;
        size_t en = i;
        if (i < n)
            i++;
        if (en > st && s[en - 1] == '\r')
            en--;
        int ind = 0;
        size_t p = st;
        while (p < en && s[p] == ' ') {
            ind++;
            p++;
        }
        if (p < en && s[p] == '\t') {
            snprintf(err, errlen, "yaml: line %d: found character that cannot start any token", no);
            free(y.l);
            return NULL;
        }
        /* strip a comment that is outside quotes */
        size_t e2 = p;
        bool q = false;
        char qc = 0;
        for (; e2 < en; e2++) {
            char c = s[e2];
            if (q) {
                if (c == qc)
                    q = false;
                else if (c == '\\' && qc == '"')
                    e2++;
            } else if ((c == '"' || c == '\'') && (e2 == p || strchr(" [{,:-", s[e2 - 1]))) {
                q = true;
                qc = c;
            } else if (c == '#' && (e2 == p || s[e2 - 1] == ' ' || s[e2 - 1] == '\t')) {
                break;
            }
        }
        if (e2 > en)
            e2 = en;   /* a trailing backslash inside quotes skipped past the end */
        while (e2 > p && (s[e2 - 1] == ' ' || s[e2 - 1] == '\t'))
            e2--;
        if (e2 == p)
            continue;
        if (ind == 0 && e2 - p >= 3 && !memcmp(s + p, "---", 3) && (e2 - p == 3 || s[p + 3] == ' ')) {
            if (++docs > 1 || y.nl > 0) {
                snprintf(err, errlen, "yaml: line %d: multiple documents are not supported", no);
                free(y.l);
                return NULL;
            }
            if (e2 - p == 3)
                continue;
            p += 4;
            ind = 4;
        }
        if (ind == 0 && e2 - p == 3 && !memcmp(s + p, "...", 3))
            break;
        if (y.nl == (int)cap) {
            cap *= 2;
            struct yline *nl2 = realloc(y.l, cap * sizeof *y.l);
            if (!nl2) {
                free(y.l);
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            y.l = nl2;
        }
        y.l[y.nl++] = (struct yline){ind, s + p, e2 - p, no};
    }
    struct xv_value *v = y.nl ? block_node(&y, 0) : xv_val_null();
    if (!y.err[0] && y.cur < y.nl)
        yerr(&y, y.l[y.cur].no, "did not find expected <document start>");
    free(y.l);
    if (y.err[0]) {
        xv_val_decref(v);
        snprintf(err, errlen, "%s", y.err);
        return NULL;
    }
    return v;
}

