/*
 * go/glob.c — glob patterns with the rules of Go's gobwas/glob (what OPA's
 * glob.match uses), and the "glob-like regex" intersection test behind
 * regex.globs_match.
 *
 * Glob syntax (gobwas): `*` any run of non-delimiter code points, `**` any run
 * at all, `?` one non-delimiter code point, `[abc]`/`[a-z]` one code point from
 * a list or range (`[!...]` negates; delimiters are not excluded), `{a,b}`
 * alternatives that may nest and hold patterns, `\x` a literal x; `]`, `}` and
 * `,` outside their constructs are literal text. A pattern is lexed as gobwas
 * lexes it and translated into an anchored PCRE2 pattern, so matching never
 * backtracks in our own code.
 *
 * Invariant: a struct xv_go_glob is immutable after compilation; the cache
 * holds one reference, each caller another (xv_go_glob_free drops it).
 * Thread safety: reentrant; compiled globs are shared read-only, the cache
 * and reference counts are guarded by g_globs.lock.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "value/buf.h"
#include "go/glob.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct xv_go_glob {
    pcre2_code *code;  /* anchored translation */
    char *key;         /* pattern, NUL, delimiters (cache key) */
    size_t keylen;
    unsigned refs;     /* guarded by g_globs.lock */
};

/* Bounded cache of compiled globs (emptied wholesale when full), so a
 * policy calling glob.match on every decision compiles each pattern once. */
#define GLOB_CACHE 128
static struct {
    pthread_mutex_t lock;                /* guards slots and refs */
    struct xv_go_glob *slot[GLOB_CACHE]; /* cached globs (one reference each) */
    unsigned n;                          /* slots in use */
} g_globs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void glob_destroy(struct xv_go_glob *g)
{
    pcre2_code_free(g->code);
    free(g->key);
    free(g);
}

struct gl {
    const char *s;          /* pattern */
    size_t n;               /* its length */
    size_t i;               /* position */
    const uint32_t *delims; /* delimiter code points */
    size_t nd;              /* how many */
    struct xv_val_buf out;   /* PCRE2 pattern */
    const char *err;        /* static gobwas-style error text */
};

static void put_cp(struct xv_val_buf *o, uint32_t cp)
{
    xv_val_buf_printf(o, "\\x{%x}", (unsigned)cp);
}

static void put_not_delim(struct gl *g)
{
    if (g->nd == 0) {
        xv_val_buf_addc(&g->out, '.');
        return;
    }
    xv_val_buf_adds(&g->out, "[^");
    for (size_t k = 0; k < g->nd; k++)
        put_cp(&g->out, g->delims[k]);
    xv_val_buf_addc(&g->out, ']');
}

static uint32_t gl_read(struct gl *g)
{
    uint32_t cp;
    g->i += xv_val_utf8_decode(g->s + g->i, g->n - g->i, &cp);
    return cp;
}

/* A run of text up to a breaker; backslash escapes the next code point. */
static void gl_text(struct gl *g, int terms, bool in_range, struct xv_val_buf *dst)
{
    bool esc = false;
    while (g->i < g->n) {
        size_t save = g->i;
        uint32_t c = gl_read(g);
        if (!esc) {
            if (c == '\\') {
                esc = true;
                continue;
            }
            bool brk = in_range ? c == ']'
                                : (c == '?' || c == '*' || c == '[' || c == '{' ||
                                   (terms > 0 && (c == '}' || c == ',')));
            if (brk) {
                g->i = save;
                break;
            }
        }
        esc = false;
        put_cp(dst, c);
    }
}

static bool gl_range(struct gl *g)
{
    /* after '[' */
    struct xv_val_buf *o = &g->out;
    bool neg = false;
    if (g->i < g->n && g->s[g->i] == '!') {
        neg = true;
        g->i++;
    }
    if (g->i >= g->n) {
        g->err = "unexpected end of input";
        return false;
    }
    size_t save = g->i;
    uint32_t lo = gl_read(g);
    if (g->i < g->n && g->s[g->i] == '-') {
        g->i++;
        if (g->i >= g->n) {
            g->err = "unexpected end of input";
            return false;
        }
        uint32_t hi = gl_read(g);
        if (g->i >= g->n) {
            g->err = "unexpected end of input";
            return false;
        }
        if (g->s[g->i] != ']') {
            g->err = "expected close range character";
            return false;
        }
        g->i++;
        if (hi < lo) {
            g->err = "hi character should be greater than lo character";
            return false;
        }
        xv_val_buf_adds(o, neg ? "[^" : "[");
        put_cp(o, lo);
        xv_val_buf_addc(o, '-');
        put_cp(o, hi);
        xv_val_buf_addc(o, ']');
        return true;
    }
    g->i = save;
    struct xv_val_buf list = {0};
    gl_text(g, 0, true, &list);
    if (g->i >= g->n) {
        xv_val_buf_free(&list);
        g->err = "unexpected end of input";
        return false;
    }
    g->i++;   /* ']' */
    if (list.len == 0) {
        xv_val_buf_free(&list);
        g->err = "unexpected token";
        return false;
    }
    xv_val_buf_adds(o, neg ? "[^" : "[");
    xv_val_buf_add(o, list.p, list.len);
    xv_val_buf_addc(o, ']');
    xv_val_buf_free(&list);
    return true;
}

static bool gl_seq(struct gl *g, int terms)
{
    struct xv_val_buf *o = &g->out;
    while (g->i < g->n) {
        char c = g->s[g->i];
        if (terms > 0 && (c == ',' || c == '}'))
            return true;
        g->i++;
        switch (c) {
        case '*':
            if (g->i < g->n && g->s[g->i] == '*') {
                g->i++;
                xv_val_buf_adds(o, "(?s:.)*");
            } else {
                put_not_delim(g);
                xv_val_buf_addc(o, '*');
            }
            break;
        case '?':
            put_not_delim(g);
            break;
        case '[':
            if (!gl_range(g))
                return false;
            break;
        case '{':
            xv_val_buf_adds(o, "(?:");
            for (;;) {
                if (!gl_seq(g, terms + 1))
                    return false;
                if (g->i >= g->n) {
                    g->err = "unexpected end of input";
                    return false;
                }
                if (g->s[g->i++] == '}')
                    break;
                xv_val_buf_addc(o, '|');
            }
            xv_val_buf_addc(o, ')');
            break;
        default:
            g->i--;
            gl_text(g, terms, false, o);
            break;
        }
    }
    return true;
}

static int glob_compile(const char *pat, size_t n, const uint32_t *delims, size_t ndelim,
                        struct xv_go_glob **out, char **err);

int xv_go_glob_compile(const char *pat, size_t n, const uint32_t *delims, size_t ndelim,
                              struct xv_go_glob **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    size_t kl = n + 1 + ndelim * sizeof(uint32_t);
    char *key = malloc(kl ? kl : 1);
    if (!key) {
        if (err)
            *err = strdup("out of memory");
        return -1;
    }
    memcpy(key, pat, n);
    key[n] = '\0';
    if (ndelim)
        memcpy(key + n + 1, delims, ndelim * sizeof(uint32_t));
    pthread_mutex_lock(&g_globs.lock);
    for (unsigned i = 0; i < g_globs.n; i++) {
        struct xv_go_glob *c = g_globs.slot[i];
        if (c->keylen == kl && memcmp(c->key, key, kl) == 0) {
            c->refs++;
            pthread_mutex_unlock(&g_globs.lock);
            free(key);
            *out = c;
            return 0;
        }
    }
    pthread_mutex_unlock(&g_globs.lock);
    struct xv_go_glob *gl;
    if (glob_compile(pat, n, delims, ndelim, &gl, err)) {
        free(key);
        return -1;
    }
    gl->key = key;
    gl->keylen = kl;
    gl->refs = 1;
    pthread_mutex_lock(&g_globs.lock);
    if (g_globs.n >= GLOB_CACHE) {
        for (unsigned i = 0; i < g_globs.n; i++)
            if (--g_globs.slot[i]->refs == 0)
                glob_destroy(g_globs.slot[i]);
        g_globs.n = 0;
    }
    gl->refs++;   /* the cache's reference */
    g_globs.slot[g_globs.n++] = gl;
    pthread_mutex_unlock(&g_globs.lock);
    *out = gl;
    return 0;
}

static int glob_compile(const char *pat, size_t n, const uint32_t *delims, size_t ndelim,
                        struct xv_go_glob **out, char **err)
{
    struct gl g = { .s = pat, .n = n, .delims = delims, .nd = ndelim };
    if (!gl_seq(&g, 0) || g.out.oom) {
        xv_val_buf_free(&g.out);
        if (err)
            *err = strdup(g.err ? g.err : "out of memory");
        return -1;
    }
    size_t plen;
    char *p = xv_val_buf_take(&g.out, &plen);
    if (!p) {
        if (err)
            *err = strdup("out of memory");
        return -1;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, plen,
                                     PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                                         PCRE2_DOTALL | PCRE2_MATCH_INVALID_UTF,
                                     &ec, &eo, NULL);
    free(p);
    if (!code) {
        if (err) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            *err = strdup((char *)msg);
        }
        return -1;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    struct xv_go_glob *gl = calloc(1, sizeof *gl);
    if (!gl) {
        pcre2_code_free(code);
        if (err)
            *err = strdup("out of memory");
        return -1;
    }
    gl->code = code;
    *out = gl;
    return 0;
}

bool xv_go_glob_match(const struct xv_go_glob *g, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return false;
    int rc = pcre2_match(g->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

void xv_go_glob_free(struct xv_go_glob *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g_globs.lock);
    bool dead = --g->refs == 0;
    pthread_mutex_unlock(&g_globs.lock);
    if (dead)
        glob_destroy(g);
}

char *xv_go_glob_quote_meta(const char *s, size_t n, size_t *outlen)
{
    /* gobwas' special characters; all ASCII, so a byte loop is exact */
    struct xv_val_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] && strchr("*?\\[]{}", s[i]))
            xv_val_buf_addc(&b, '\\');
        xv_val_buf_addc(&b, s[i]);
    }
    return xv_val_buf_take(&b, outlen);
}

/* ---- regex.globs_match ---------------------------------------------------------
 * Both operands are "glob-like regexes": literals, `.`, `[...]` sets (ranges,
 * `^` negation), each optionally followed by `*` or `+`, and `\` escapes.
 * Two patterns share a string iff the product of their automata reaches the
 * pair of final states, taking a step only where the two current sets
 * intersect — sets at different steps are independent, so this is exact. */

#define GI_MAXRANGES 64
struct gi_tok {
    uint32_t lo[GI_MAXRANGES], hi[GI_MAXRANGES]; /* sorted disjoint ranges */
    int nr;                                      /* number of ranges */
    bool star;                                   /* repeat zero or more */
};

static void gi_err(char **err, const char *in, size_t n, size_t pos, const char *msg)
{
    if (!err)
        return;
    struct xv_val_buf b = {0};
    xv_val_buf_adds(&b, "input:");
    xv_val_buf_add(&b, in, n);
    xv_val_buf_printf(&b, ", pos:%zu, %s: the input provided is invalid", pos, msg);
    *err = xv_val_buf_take(&b, NULL);
}

static int cmp_range(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* normalise ranges (sort, merge), optionally complementing */
static void gi_norm(struct gi_tok *t, bool neg)
{
    uint32_t pr[GI_MAXRANGES][2];
    for (int k = 0; k < t->nr; k++) {
        pr[k][0] = t->lo[k];
        pr[k][1] = t->hi[k];
    }
    qsort(pr, (size_t)t->nr, sizeof pr[0], cmp_range);
    int m = 0;
    for (int k = 0; k < t->nr; k++) {
        if (m > 0 && pr[k][0] <= pr[m - 1][1] + 1) {
            if (pr[k][1] > pr[m - 1][1])
                pr[m - 1][1] = pr[k][1];
        } else {
            pr[m][0] = pr[k][0];
            pr[m][1] = pr[k][1];
            m++;
        }
    }
    if (!neg) {
        for (int k = 0; k < m; k++) {
            t->lo[k] = pr[k][0];
            t->hi[k] = pr[k][1];
        }
        t->nr = m;
        return;
    }
    int o = 0;
    uint32_t next = 0;
    for (int k = 0; k < m; k++) {
        if (pr[k][0] > next) {
            t->lo[o] = next;
            t->hi[o] = pr[k][0] - 1;
            o++;
        }
        next = pr[k][1] + 1;
    }
    if (next <= 0x10FFFF) {
        t->lo[o] = next;
        t->hi[o] = 0x10FFFF;
        o++;
    }
    t->nr = o;
}

static int gi_parse(const char *s, size_t n, struct gi_tok **out, size_t *nt, char **err)
{
    size_t cap = n * 2 + 2, cnt = 0, i = 0;
    struct gi_tok *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    while (i < n) {
        uint32_t c;
        size_t k = xv_val_utf8_decode(s + i, n - i, &c);
        i += k;
        if (c == '*' || c == '+') {
            if (cnt == 0 || t[cnt - 1].star) {
                gi_err(err, s, n, i, c == '*' ? "quantifier '*' with no preceding character"
                                              : "quantifier '+' with no preceding character");
                free(t);
                return -1;
            }
            if (c == '*') {
                t[cnt - 1].star = true;
            } else {
                t[cnt] = t[cnt - 1];
                t[cnt].star = true;
                cnt++;
            }
            continue;
        }
        struct gi_tok *tk = &t[cnt];
        memset(tk, 0, sizeof *tk);
        if (c == ']') {
            gi_err(err, s, n, i, "set-close ']' with no preceding '['");
            free(t);
            return -1;
        } else if (c == '.') {
            tk->lo[0] = 0;
            tk->hi[0] = 0x10FFFF;
            tk->nr = 1;
        } else if (c == '\\') {
            if (i >= n) {
                gi_err(err, s, n, i, "escape '\\' at end of input");
                free(t);
                return -1;
            }
            i += xv_val_utf8_decode(s + i, n - i, &c);
            tk->lo[0] = tk->hi[0] = c;
            tk->nr = 1;
        } else if (c == '[') {
            bool neg = false, closed = false;
            if (i < n && s[i] == '^') {
                neg = true;
                i++;
            }
            while (i < n) {
                uint32_t a;
                i += xv_val_utf8_decode(s + i, n - i, &a);
                if (a == ']') {
                    closed = true;
                    break;
                }
                if (a == '\\' && i < n)
                    i += xv_val_utf8_decode(s + i, n - i, &a);
                uint32_t b = a;
                if (i + 1 < n && s[i] == '-' && s[i + 1] != ']') {
                    i++;
                    i += xv_val_utf8_decode(s + i, n - i, &b);
                    if (b == '\\' && i < n)
                        i += xv_val_utf8_decode(s + i, n - i, &b);
                    if (b < a) {
                        gi_err(err, s, n, i, "range with lower bound greater than upper bound");
                        free(t);
                        return -1;
                    }
                }
                if (tk->nr >= GI_MAXRANGES) {
                    gi_err(err, s, n, i, "set too large");
                    free(t);
                    return -1;
                }
                tk->lo[tk->nr] = a;
                tk->hi[tk->nr] = b;
                tk->nr++;
            }
            if (!closed) {
                gi_err(err, s, n, i, "set-open '[' with no closing ']'");
                free(t);
                return -1;
            }
            gi_norm(tk, neg);
        } else {
            tk->lo[0] = tk->hi[0] = c;
            tk->nr = 1;
        }
        cnt++;
    }
    *out = t;
    *nt = cnt;
    return 0;
}

static bool gi_meet(const struct gi_tok *a, const struct gi_tok *b)
{
    int i = 0, j = 0;
    while (i < a->nr && j < b->nr) {
        if (a->hi[i] < b->lo[j])
            i++;
        else if (b->hi[j] < a->lo[i])
            j++;
        else
            return true;
    }
    return false;
}

int xv_go_globs_intersect(const char *a, size_t an, const char *b, size_t bn, char **err)
{
    if (err)
        *err = NULL;
    struct gi_tok *ta = NULL, *tb = NULL;
    size_t na = 0, nb = 0;
    if (gi_parse(a, an, &ta, &na, err) < 0)
        return -1;
    if (gi_parse(b, bn, &tb, &nb, err) < 0) {
        free(ta);
        return -1;
    }
    size_t W = nb + 1, total = (na + 1) * W;
    unsigned char *seen = calloc(total, 1);
    size_t *stack = malloc(sizeof(size_t) * (total + 1));
    int found = 0;
    if (!seen || !stack) {
        found = -1;
        if (err)
            *err = strdup("out of memory");
        goto out;
    }
    size_t sp = 0;
    stack[sp++] = 0;
    seen[0] = 1;
    while (sp > 0) {
        size_t st = stack[--sp];
        size_t i = st / W, j = st % W;
        if (i == na && j == nb) {
            found = 1;
            break;
        }
        size_t next[3];
        int nn = 0;
        if (i < na && ta[i].star)
            next[nn++] = (i + 1) * W + j;
        if (j < nb && tb[j].star)
            next[nn++] = i * W + j + 1;
        if (i < na && j < nb && gi_meet(&ta[i], &tb[j]))
            next[nn++] = (ta[i].star ? i : i + 1) * W + (tb[j].star ? j : j + 1);
        for (int k = 0; k < nn; k++)
            if (!seen[next[k]]) {
                seen[next[k]] = 1;
                stack[sp++] = next[k];
            }
    }
out:
    free(seen);
    free(stack);
    free(ta);
    free(tb);
    return found;
}
