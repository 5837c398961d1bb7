/*
 * go/regexp.c — Go `regexp` (RE2 syntax) regular expressions for the policy
 * builtins, implemented on PCRE2.
 *
 * OPA evaluates regex.* with Go's regexp package, so the pattern language is
 * Go's regexp/syntax (Perl flags). We parse every pattern with a small Go-syntax
 * validator that rejects what Go rejects (backreferences, lookaround, atomic
 * groups, possessive quantifiers, \C, \Z, unknown escapes, repeat counts over
 * 1000, nested repetition) with Go's error text, and emits an equivalent PCRE2
 * pattern in which every construct whose meaning differs between the two
 * engines is spelled out explicitly (\s, \v, octal and hex escapes, literal
 * punctuation). PCRE2 then runs with UTF (no UCP: Go's \d \w \b and POSIX
 * classes are ASCII-only), DOLLAR_ENDONLY (Go's `$` without (?m) is `\z`), LF
 * newlines and MATCH_INVALID_UTF. For the supported subset, PCRE's
 * backtracking leftmost-first search picks the same match as RE2's
 * leftmost-first semantics. See docs/policy-builtins.md for what still differs.
 * The validator/translator is go/re2syntax.c; this file compiles, caches and
 * runs its output (match, FindAll, ReplaceAll, QuoteMeta).
 *
 * Invariant: a struct xv_go_re is immutable after compilation; the cache owns
 * one reference, each user one more.
 *
 * Thread safety: the cache is guarded by g.lock; compiled patterns are shared
 * read-only between threads (PCRE2 code is thread-safe; match data is per call,
 * or, for xv_go_re_match, per thread along with its last few patterns).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "value/buf.h"
#include "go/regexp.h"
#include "go/re2syntax.h"
#include "xv_tkey.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct xv_go_re {
    pcre2_code *code;    /* compiled translation */
    int ngroups;         /* capture groups */
    char *src;           /* the Go pattern (cache key), NUL-terminated */
    size_t srclen;       /* its length */
    unsigned refs;       /* references; guarded by g.lock */
    char **names;        /* group index -> name or NULL; ngroups+1 entries */
    bool jit;            /* JIT-compiled: a match keeps nothing in the match data */
};

/* Bounded cache of compiled patterns. When full, it is emptied wholesale:
 * policies use a handful of patterns, and a flood of distinct dynamic
 * patterns must not grow memory. */
#define RE_CACHE_SLOTS 512
#define RE_CACHE_MAX 256
static struct {
    pthread_mutex_t lock;                 /* guards everything below */
    struct xv_go_re *slot[RE_CACHE_SLOTS];  /* open addressing by hash of src */
    unsigned count;                       /* occupied slots */
    pcre2_match_context *mctx;            /* shared limits; written once by mctx_init */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The shared match context, created once before the first pattern is
 * handed out (so readers need no lock). */
static pthread_once_t g_mctx_once = PTHREAD_ONCE_INIT;

static void mctx_init(void)
{
    g.mctx = pcre2_match_context_create(NULL);
    /* RE2 runs in linear time; PCRE backtracks. These limits turn a
     * catastrophic pattern into an error instead of a hang. */
    if (g.mctx) {
        pcre2_set_match_limit(g.mctx, 10000000);
        pcre2_set_depth_limit(g.mctx, 100000);
    }
}

/* A Go identifier character: letter, digit or underscore (ASCII). */
static bool is_word(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* ---- compile and cache ------------------------------------------------------ */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void re_destroy(struct xv_go_re *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    if (re->names) {
        for (int i = 0; i <= re->ngroups; i++)
            free(re->names[i]);
        free(re->names);
    }
    free(re->src);
    free(re);
}

static struct xv_go_re *re_compile(const char *pat, size_t n, char **err)
{
    size_t plen;
    char *pcre = xv_go_re2_translate(pat, n, &plen, err);
    if (!pcre)
        return NULL;
    int ec;
    PCRE2_SIZE eo;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc)
        pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pcre, plen,
                                     PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF |
                                         PCRE2_NO_UTF_CHECK,
                                     &ec, &eo, cc);
    pcre2_compile_context_free(cc);
    free(pcre);
    if (!code) {
        /* The validator accepted it, so this is a construct Go parses and
         * PCRE does not (an unknown \p name, a too-large program). Go reports
         * unknown property names as a bad class range. */
        if (err) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            struct xv_val_buf b = {0};
            if (strstr((char *)msg, "property"))
                xv_val_buf_adds(&b, "error parsing regexp: invalid character class range: `");
            else {
                xv_val_buf_adds(&b, "error parsing regexp: ");
                xv_val_buf_adds(&b, (char *)msg);
                xv_val_buf_adds(&b, ": `");
            }
            xv_val_buf_add(&b, pat, n);
            xv_val_buf_addc(&b, '`');
            *err = xv_val_buf_take(&b, NULL);
        }
        return NULL;
    }
    /* JIT is an optimisation only; failure leaves the interpreter. */
    bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    struct xv_go_re *re = calloc(1, sizeof *re);
    if (!re || !(re->src = malloc(n + 1))) {
        free(re);
        pcre2_code_free(code);
        if (err)
            *err = strdup("error parsing regexp: out of memory");
        return NULL;
    }
    memcpy(re->src, pat, n);
    re->src[n] = '\0';
    re->srclen = n;
    re->code = code;
    re->jit = jit;
    uint32_t cap = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &cap);
    re->ngroups = (int)cap;
    re->refs = 1;
    /* group names for ${name} in replacements */
    uint32_t nn = 0, esz = 0;
    PCRE2_SPTR tab = NULL;
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &nn);
    if (nn > 0) {
        pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &esz);
        pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &tab);
        re->names = calloc((size_t)cap + 1, sizeof(char *));
        if (re->names)
            for (uint32_t k = 0; k < nn; k++) {
                const unsigned char *ent = tab + (size_t)k * esz;
                int idx = (ent[0] << 8) | ent[1];
                if (idx >= 0 && idx <= (int)cap)
                    re->names[idx] = strdup((const char *)ent + 2);
            }
    }
    return re;
}

int xv_go_re_get(const char *pat, size_t n, struct xv_go_re **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    uint32_t h = hash_bytes(pat, n);
    pthread_mutex_lock(&g.lock);
    for (unsigned k = 0; k < RE_CACHE_SLOTS; k++) {
        struct xv_go_re *e = g.slot[(h + k) % RE_CACHE_SLOTS];
        if (!e)
            break;
        if (e->srclen == n && memcmp(e->src, pat, n) == 0) {
            e->refs++;
            *out = e;
            pthread_mutex_unlock(&g.lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&g.lock);

    struct xv_go_re *re = re_compile(pat, n, err);
    if (!re)
        return -1;

    pthread_once(&g_mctx_once, mctx_init);
    pthread_mutex_lock(&g.lock);
    if (g.count >= RE_CACHE_MAX) {
        for (unsigned k = 0; k < RE_CACHE_SLOTS; k++) {
            struct xv_go_re *e = g.slot[k];
            if (e && --e->refs == 0)
                re_destroy(e);
            g.slot[k] = NULL;
        }
        g.count = 0;
    }
    for (unsigned k = 0; k < RE_CACHE_SLOTS; k++) {
        unsigned s = (h + k) % RE_CACHE_SLOTS;
        if (!g.slot[s]) {
            g.slot[s] = re;
            re->refs++;   /* the cache's reference */
            g.count++;
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
    *out = re;
    return 0;
}

void xv_go_re_release(struct xv_go_re *re)
{
    if (!re)
        return;
    pthread_mutex_lock(&g.lock);
    bool dead = --re->refs == 0;
    pthread_mutex_unlock(&g.lock);
    if (dead)
        re_destroy(re);
}

int xv_go_re_ngroups(const struct xv_go_re *re)
{
    return re->ngroups;
}

int xv_go_re_exec(const struct xv_go_re *re, const char *s, size_t n, size_t start,
                         long *ov)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        return -1;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, 0, md, g.mctx);
    int ret;
    if (rc == PCRE2_ERROR_NOMATCH) {
        ret = 0;
    } else if (rc < 0) {
        ret = -1;
    } else {
        PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
        for (int k = 0; k <= re->ngroups; k++) {
            if (k < rc && v[2 * k] != PCRE2_UNSET) {
                ov[2 * k] = (long)v[2 * k];
                ov[2 * k + 1] = (long)v[2 * k + 1];
            } else {
                ov[2 * k] = ov[2 * k + 1] = -1;
            }
        }
        ret = 1;
    }
    pcre2_match_data_free(md);
    return ret;
}

/* ---- regex.match's per-thread fast path ------------------------------------ */

/* A decision calls regex.match with the same few constant patterns over and
 * over (once per message). Through the cache above each call hashes the
 * pattern, takes the lock twice and allocates match data; instead a thread
 * keeps its last T_SLOTS patterns (one reference each) and one match-data
 * block, reached without a lock. Bounded: T_SLOTS patterns and one small
 * block per thread, given back when the thread exits (a pthread key whose
 * destructor drains them, as value/pool.c does for its lists). Only JIT
 * patterns share the block: the interpreter leaves its backtracking frames
 * in the match data, which could keep megabytes per thread. */
#define T_SLOTS 4
struct tre {
    struct xv_go_re *re[T_SLOTS]; /* held references, or NULL */
    pcre2_match_data *md;         /* one ovector pair (a yes/no test needs no more) */
    uint8_t next;                 /* the slot the next new pattern replaces */
    unsigned char state;          /* XV_TKEY_NEW, _ON (registered), _OFF (never again) */
};
/* The default TLS model, unlike value/pool.c's lists: the engine object is
 * dlopen'd, and the static TLS left for such objects is small; one
 * __tls_get_addr call is little beside a match. */
static __thread struct tre t_re;

static struct xv_tkey g_tkey;

/* Thread exit: drop the references and the block; the thread's later calls
 * (other destructors) take the locked path. */
static void tre_drain(void *arg)
{
    struct tre *t = arg;
    for (int k = 0; k < T_SLOTS; k++) {
        xv_go_re_release(t->re[k]);
        t->re[k] = NULL;
    }
    pcre2_match_data_free(t->md);
    t->md = NULL;
    t->state = XV_TKEY_OFF;
}

/* The calling thread's slots, registered on first use; NULL when it cannot
 * register (no key, or exiting). */
static struct tre *tre_mine(void)
{
    if (__builtin_expect(t_re.state == XV_TKEY_ON, 1))
        return &t_re;
    return xv_tkey_join(&g_tkey, tre_drain, &t_re, &t_re.state) ? &t_re : NULL;
}

/* Does re match anywhere in s[0..n)? 1, 0, or -2 (resource limit, memory). */
static int re_test(const struct xv_go_re *re, struct tre *t, const char *s, size_t n)
{
    pcre2_match_data *md = NULL, *own = NULL;
    if (t && re->jit)
        md = t->md ? t->md : (t->md = pcre2_match_data_create(1, NULL));
    if (!md && !(md = own = pcre2_match_data_create_from_pattern(re->code, NULL)))
        return -2;
    /* pcre2_jit_match skips pcre2_match's checks, all of which hold here
     * (no options; PCRE2_MATCH_INVALID_UTF needs no UTF check) */
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, g.mctx)
                     : pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, g.mctx);
    pcre2_match_data_free(own);
    /* 0: matched, but the groups did not fit the ovector (not asked for) */
    return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -2;
}

int xv_go_re_match(const char *pat, size_t n, const char *s, size_t sn, char **err)
{
    if (err)
        *err = NULL;
    struct tre *t = tre_mine();
    struct xv_go_re *re = NULL;
    for (int k = 0; t && k < T_SLOTS && !re; k++) {
        struct xv_go_re *e = t->re[k];
        if (e && e->srclen == n && memcmp(e->src, pat, n) == 0)
            re = e;
    }
    if (re)
        return re_test(re, t, s, sn);
    if (xv_go_re_get(pat, n, &re, err))
        return -1;
    int r = re_test(re, t, s, sn);
    if (t) {
        /* the slot takes over our reference */
        struct xv_go_re *old = t->re[t->next];
        t->re[t->next] = re;
        t->next = (uint8_t)((t->next + 1) % T_SLOTS);
        xv_go_re_release(old);
    } else {
        xv_go_re_release(re);
    }
    return r;
}

int xv_go_re_find_all(const struct xv_go_re *re, const char *s, size_t n, long max,
                             int (*cb)(const long *ov, void *ud), void *ud)
{
    long *ov = malloc(sizeof(long) * 2 * ((size_t)re->ngroups + 1));
    if (!ov)
        return -1;
    size_t pos = 0;
    long prev_end = -1, found = 0;
    int ret = 0;
    while ((max < 0 || found < max) && pos <= n) {
        int rc = xv_go_re_exec(re, s, n, pos, ov);
        if (rc < 0) {
            ret = -1;
            break;
        }
        if (rc == 0)
            break;
        bool accept = true;
        if ((size_t)ov[1] == pos) {
            /* An empty match right after the previous match is skipped;
             * either way step one code point forward. */
            if (ov[0] == prev_end)
                accept = false;
            if (pos < n) {
                uint32_t cp;
                pos += xv_val_utf8_decode(s + pos, n - pos, &cp);
            } else {
                pos = n + 1;
            }
        } else {
            pos = (size_t)ov[1];
        }
        prev_end = ov[1];
        if (accept) {
            found++;
            int r = cb(ov, ud);
            if (r) {
                ret = r;
                break;
            }
        }
    }
    free(ov);
    return ret;
}

/* Append the expansion of template repl for match ov (Go's Regexp.expand). */
static void expand(const struct xv_go_re *re, struct xv_val_buf *b, const char *repl, size_t rn,
                   const char *s, const long *ov)
{
    size_t i = 0;
    while (i < rn) {
        const char *d = memchr(repl + i, '$', rn - i);
        if (!d) {
            xv_val_buf_add(b, repl + i, rn - i);
            return;
        }
        size_t j = (size_t)(d - repl);
        xv_val_buf_add(b, repl + i, j - i);
        i = j + 1;
        if (i < rn && repl[i] == '$') {
            xv_val_buf_addc(b, '$');
            i++;
            continue;
        }
        /* name: ${name} or the longest run of word characters */
        const char *nm;
        size_t nl = 0;
        bool ok = false;
        if (i < rn && repl[i] == '{') {
            size_t k = i + 1;
            while (k < rn && is_word(repl[k]))
                k++;
            if (k < rn && repl[k] == '}' && k > i + 1) {
                nm = repl + i + 1;
                nl = k - i - 1;
                i = k + 1;
                ok = true;
            }
        } else {
            size_t k = i;
            while (k < rn && is_word(repl[k]))
                k++;
            if (k > i) {
                nm = repl + i;
                nl = k - i;
                i = k;
                ok = true;
            }
        }
        if (!ok) {
            /* a malformed reference stays a literal '$' */
            xv_val_buf_addc(b, '$');
            continue;
        }
        long idx = -1;
        bool digits = true;
        for (size_t k = 0; k < nl; k++)
            if (nm[k] < '0' || nm[k] > '9')
                digits = false;
        if (digits) {
            idx = 0;
            for (size_t k = 0; k < nl && idx <= 100000; k++)
                idx = idx * 10 + (nm[k] - '0');
        } else if (re->names) {
            for (int g2 = 0; g2 <= re->ngroups; g2++)
                if (re->names[g2] && strlen(re->names[g2]) == nl &&
                    memcmp(re->names[g2], nm, nl) == 0) {
                    idx = g2;
                    break;
                }
        }
        if (idx >= 0 && idx <= re->ngroups && ov[2 * idx] >= 0)
            xv_val_buf_add(b, s + ov[2 * idx], (size_t)(ov[2 * idx + 1] - ov[2 * idx]));
    }
}

char *xv_go_re_replace_all(const struct xv_go_re *re, const char *s, size_t n,
                                  const char *repl, size_t rn, size_t *outlen)
{
    long *ov = malloc(sizeof(long) * 2 * ((size_t)re->ngroups + 1));
    if (!ov)
        return NULL;
    struct xv_val_buf b = {0};
    size_t last_end = 0, pos = 0;
    while (pos <= n) {
        int rc = xv_go_re_exec(re, s, n, pos, ov);
        if (rc <= 0)
            break;
        xv_val_buf_add(&b, s + last_end, (size_t)ov[0] - last_end);
        /* no replacement for an empty match right after a previous match */
        if ((size_t)ov[1] > last_end || ov[0] == 0)
            expand(re, &b, repl, rn, s, ov);
        last_end = (size_t)ov[1];
        size_t w = 0;
        if (pos < n) {
            uint32_t cp;
            w = xv_val_utf8_decode(s + pos, n - pos, &cp);
        }
        if (pos + w > (size_t)ov[1])
            pos += w;
        else if (pos + 1 > (size_t)ov[1])
            pos++;
        else
            pos = (size_t)ov[1];
    }
    xv_val_buf_add(&b, s + last_end, n - last_end);
    free(ov);
    return xv_val_buf_take(&b, outlen);
}

char *xv_go_re_quote_meta(const char *s, size_t n, size_t *outlen)
{
    struct xv_val_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\.+*?()|[]{}^$", s[i]) && s[i])
            xv_val_buf_addc(&b, '\\');
        xv_val_buf_addc(&b, s[i]);
    }
    return xv_val_buf_take(&b, outlen);
}
