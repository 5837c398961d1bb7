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
 *
 * Invariant: a struct xv_go_re is immutable after compilation; the cache owns
 * one reference, each user one more.
 *
 * Thread safety: the cache is guarded by g.lock; compiled patterns are shared
 * read-only between threads (PCRE2 code is thread-safe; match data is per call).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "value/buf.h"
#include "go/regexp.h"

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

/* ---- Go-syntax validation and translation ---------------------------------- */

struct tr {
    const char *s;        /* the Go pattern */
    size_t n;             /* its length */
    size_t i;             /* parse position */
    struct xv_val_buf out; /* the PCRE2 pattern */
    char *err;            /* Go error message, once one happened */
    int ngroups;          /* capture groups seen */
};

static void tr_fail(struct tr *t, const char *code, const char *expr, size_t elen)
{
    if (t->err)
        return;
    struct xv_val_buf b = {0};
    xv_val_buf_adds(&b, "error parsing regexp: ");
    xv_val_buf_adds(&b, code);
    xv_val_buf_adds(&b, ": `");
    xv_val_buf_add(&b, expr, elen);
    xv_val_buf_adds(&b, "`");
    t->err = xv_val_buf_take(&b, NULL);
    if (!t->err)
        t->err = strdup("error parsing regexp: out of memory");
}

static void emit_cp(struct xv_val_buf *o, uint32_t cp)
{
    /* Alphanumerics and non-ASCII go through as is; everything else as a hex
     * escape so no character can change meaning in PCRE. */
    if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
        xv_val_buf_addc(o, (char)cp);
    else if (cp >= 0x80)
        xv_val_buf_addcp(o, cp);
    else
        xv_val_buf_printf(o, "\\x{%x}", (unsigned)cp);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_word(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Next code point of the pattern; Go rejects invalid UTF-8 in patterns. */
static bool next_cp(struct tr *t, uint32_t *cp)
{
    size_t k = xv_val_utf8_decode(t->s + t->i, t->n - t->i, cp);
    if (*cp == XV_VAL_RUNE_ERROR && k == 1 && (unsigned char)t->s[t->i] >= 0x80) {
        tr_fail(t, "invalid UTF-8", t->s + t->i, t->n - t->i);
        return false;
    }
    t->i += k;
    return true;
}

/* Class escapes usable both in and out of brackets. Returns 1 when one was
 * emitted (t->i advanced), 0 when the escape at t->i is not a class escape. */
static int class_escape(struct tr *t, bool in_class)
{
    size_t st = t->i;            /* at the backslash */
    char c = t->s[st + 1];
    struct xv_val_buf *o = &t->out;
    switch (c) {
    case 'd': case 'D': case 'w': case 'W':
        /* Without PCRE2_UCP these are ASCII, as in Go. */
        xv_val_buf_addc(o, '\\');
        xv_val_buf_addc(o, c);
        t->i += 2;
        return 1;
    case 's':
        /* Go's \s is [\t\n\f\r ]; PCRE's also has \v. */
        xv_val_buf_adds(o, in_class ? "\\t\\n\\f\\r\\x{20}" : "[\\t\\n\\f\\r\\x{20}]");
        t->i += 2;
        return 1;
    case 'S':
        xv_val_buf_adds(o, in_class ? "\\x{0}-\\x{8}\\x{b}\\x{e}-\\x{1f}\\x{21}-\\x{10ffff}"
                                          : "[^\\t\\n\\f\\r\\x{20}]");
        t->i += 2;
        return 1;
    case 'p': case 'P': {
        size_t j = st + 2;
        if (j >= t->n) {
            tr_fail(t, "invalid character class range", t->s + st, t->n - st);
            return -1;
        }
        const char *name;
        size_t nlen;
        if (t->s[j] == '{') {
            size_t e = j + 1;
            while (e < t->n && t->s[e] != '}')
                e++;
            if (e >= t->n) {
                tr_fail(t, "invalid character class range", t->s + st, t->n - st);
                return -1;
            }
            name = t->s + j + 1;
            nlen = e - j - 1;
            t->i = e + 1;
        } else {
            uint32_t cp;
            size_t save = t->i;
            t->i = j;
            if (!next_cp(t, &cp))
                return -1;
            name = t->s + j;
            nlen = t->i - j;
            (void)save;
        }
        bool neg = (c == 'P');
        if (nlen > 0 && name[0] == '^') {
            neg = !neg;
            name++;
            nlen--;
        }
        bool ok = nlen > 0 && nlen < 64;
        for (size_t k = 0; ok && k < nlen; k++)
            ok = is_word(name[k]);
        if (!ok) {
            tr_fail(t, "invalid character class range", t->s + st, t->i - st);
            return -1;
        }
        xv_val_buf_adds(o, neg ? "\\P{" : "\\p{");
        xv_val_buf_add(o, name, nlen);
        xv_val_buf_addc(o, '}');
        return 1;
    }
    default:
        return 0;
    }
}

/* A single-character escape (after class escapes were ruled out). Returns the
 * code point, or -1 after an error. Handles Go's octal, \x, \a\f\t\n\r\v and
 * escaped punctuation. */
static long char_escape(struct tr *t)
{
    size_t st = t->i;
    if (st + 1 >= t->n) {
        tr_fail(t, "trailing backslash at end of expression", "", 0);
        return -1;
    }
    unsigned char c = (unsigned char)t->s[st + 1];
    t->i = st + 2;
    if (c < 0x80 && !is_word((char)c) ) {
        return c;   /* escaped punctuation is always a literal */
    }
    switch (c) {
    case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        /* A lone non-zero digit would be a backreference: unsupported. */
        if (t->i >= t->n || t->s[t->i] < '0' || t->s[t->i] > '7')
            break;
        /* fall through */
    case '0': {
        long r = c - '0';
        for (int k = 1; k < 3; k++) {
            if (t->i >= t->n || t->s[t->i] < '0' || t->s[t->i] > '7')
                break;
            r = r * 8 + (t->s[t->i] - '0');
            t->i++;
        }
        return r;
    }
    case 'x': {
        if (t->i >= t->n)
            break;
        if (t->s[t->i] == '{') {
            long r = 0;
            size_t j = t->i + 1, nd = 0;
            while (j < t->n && hexval(t->s[j]) >= 0) {
                r = r * 16 + hexval(t->s[j]);
                if (r > 0x10FFFF)
                    break;
                j++;
                nd++;
            }
            if (nd == 0 || j >= t->n || t->s[j] != '}' || r > 0x10FFFF) {
                t->i = j < t->n ? j + 1 : t->n;
                break;
            }
            t->i = j + 1;
            return r;
        }
        if (t->i + 1 < t->n && hexval(t->s[t->i]) >= 0 && hexval(t->s[t->i + 1]) >= 0) {
            long r = hexval(t->s[t->i]) * 16 + hexval(t->s[t->i + 1]);
            t->i += 2;
            return r;
        }
        t->i = t->i + 1 <= t->n ? t->i + 1 : t->n;
        break;
    }
    case 'a': return 7;
    case 'f': return 12;
    case 't': return 9;
    case 'n': return 10;
    case 'r': return 13;
    case 'v': return 11;
    default:
        break;
    }
    /* Go's Expr for a bad escape is the escape text consumed so far. */
    size_t e = t->i;
    if (c >= 0x80) {
        uint32_t cp;
        e = st + 1 + xv_val_utf8_decode(t->s + st + 1, t->n - st - 1, &cp);
    }
    tr_fail(t, "invalid escape sequence", t->s + st, e - st);
    return -1;
}

static const char *const posix_names[] = {
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
    "print", "punct", "space", "upper", "word", "xdigit", NULL,
};

/* One class character: literal or escape. Returns code point or -1 (error),
 * -2 when a class escape was emitted instead. */
static long class_char(struct tr *t, size_t class_start)
{
    if (t->i >= t->n) {
        tr_fail(t, "missing closing ]", t->s + class_start, t->n - class_start);
        return -1;
    }
    if (t->s[t->i] == '\\') {
        if (t->i + 1 < t->n) {
            int r = class_escape(t, true);
            if (r < 0)
                return -1;
            if (r > 0)
                return -2;
        }
        return char_escape(t);
    }
    uint32_t cp;
    if (!next_cp(t, &cp))
        return -1;
    return cp;
}

/* Parse a bracket expression starting at '['. */
static bool tr_class(struct tr *t)
{
    size_t st = t->i;
    struct xv_val_buf *o = &t->out;
    t->i++;
    xv_val_buf_addc(o, '[');
    if (t->i < t->n && t->s[t->i] == '^') {
        xv_val_buf_addc(o, '^');
        t->i++;
    }
    bool first = true;
    for (;;) {
        if (t->i >= t->n) {
            tr_fail(t, "missing closing ]", t->s + st, t->n - st);
            return false;
        }
        if (t->s[t->i] == ']' && !first)
            break;
        first = false;
        /* POSIX [:name:] and [:^name:] */
        if (t->i + 2 < t->n && t->s[t->i] == '[' && t->s[t->i + 1] == ':') {
            const char *e = NULL;
            for (size_t j = t->i + 2; j + 1 < t->n; j++)
                if (t->s[j] == ':' && t->s[j + 1] == ']') {
                    e = t->s + j;
                    break;
                }
            if (e) {
                const char *nm = t->s + t->i + 2;
                size_t nl = (size_t)(e - nm);
                bool neg = nl > 0 && nm[0] == '^';
                const char *bare = neg ? nm + 1 : nm;
                size_t bl = neg ? nl - 1 : nl;
                bool known = false;
                for (int k = 0; posix_names[k]; k++)
                    if (strlen(posix_names[k]) == bl && memcmp(posix_names[k], bare, bl) == 0)
                        known = true;
                if (!known) {
                    tr_fail(t, "invalid character class range", t->s + t->i,
                            (size_t)(e + 2 - (t->s + t->i)));
                    return false;
                }
                xv_val_buf_add(o, t->s + t->i, (size_t)(e + 2 - (t->s + t->i)));
                t->i = (size_t)(e + 2 - t->s);
                continue;
            }
        }
        size_t rs = t->i;
        long lo = class_char(t, st);
        if (lo == -1)
            return false;
        if (lo == -2)
            continue;
        long hi = lo;
        /* [a-] means a or -: only a '-' not followed by ']' makes a range */
        if (t->i + 1 < t->n && t->s[t->i] == '-' && t->s[t->i + 1] != ']') {
            t->i++;
            hi = class_char(t, st);
            if (hi == -1)
                return false;
            if (hi == -2 || hi < lo) {
                if (!t->err)
                    tr_fail(t, "invalid character class range", t->s + rs, t->i - rs);
                return false;
            }
        }
        emit_cp(o, (uint32_t)lo);
        if (hi != lo) {
            xv_val_buf_addc(o, '-');
            emit_cp(o, (uint32_t)hi);
        }
    }
    t->i++;
    xv_val_buf_addc(o, ']');
    return true;
}

/* Try to parse {n}, {n,}, {n,m} at t->i. Returns true and sets *end when it is
 * a repeat; a malformed one is a literal '{' in Go. */
static bool parse_repeat(struct tr *t, size_t *end, long *min, long *max)
{
    size_t j = t->i + 1;
    long a = 0, b;
    size_t d = 0;
    while (j < t->n && t->s[j] >= '0' && t->s[j] <= '9') {
        if (a < 100000)
            a = a * 10 + (t->s[j] - '0');
        j++;
        d++;
    }
    if (d == 0 || j >= t->n)
        return false;
    if (t->s[j] == '}') {
        b = a;
    } else if (t->s[j] == ',') {
        j++;
        if (j < t->n && t->s[j] == '}') {
            b = -1;
        } else {
            b = 0;
            d = 0;
            while (j < t->n && t->s[j] >= '0' && t->s[j] <= '9') {
                if (b < 100000)
                    b = b * 10 + (t->s[j] - '0');
                j++;
                d++;
            }
            if (d == 0 || j >= t->n || t->s[j] != '}')
                return false;
        }
    } else {
        return false;
    }
    *end = j + 1;
    *min = a;
    *max = b;
    return true;
}

/* Translate the whole pattern. */
static bool translate(struct tr *t)
{
    struct xv_val_buf *o = &t->out;
    int depth = 0;
    /* what the last item was: 0 nothing repeatable (start, '(' or '|'),
     * 1 an atom, 2 a repetition operator */
    int last = 0;
    size_t last_rep = 0;   /* start of the previous repetition operator */
    while (t->i < t->n && !t->err) {
        char c = t->s[t->i];
        size_t st = t->i;
        switch (c) {
        case '(': {
            if (depth >= 1000) {
                tr_fail(t, "expression nests too deeply", t->s, t->n);
                return false;
            }
            if (t->i + 1 < t->n && t->s[t->i + 1] == '?') {
                const char *r = t->s + t->i;
                size_t rl = t->n - t->i;
                /* named captures: (?P<name> and (?<name> */
                if ((rl > 4 && r[2] == 'P' && r[3] == '<') || (rl > 3 && r[2] == '<')) {
                    size_t begin = r[2] == 'P' ? 4 : 3;
                    const char *gt = memchr(r, '>', rl);
                    if (!gt) {
                        tr_fail(t, "invalid named capture", r, rl);
                        return false;
                    }
                    size_t end = (size_t)(gt - r);
                    bool ok = end > begin;
                    for (size_t k = begin; ok && k < end; k++)
                        ok = is_word(r[k]);
                    /* PCRE group names cannot start with a digit */
                    if (!ok || (r[begin] >= '0' && r[begin] <= '9')) {
                        tr_fail(t, "invalid named capture", r, end + 1);
                        return false;
                    }
                    xv_val_buf_adds(o, "(?<");
                    xv_val_buf_add(o, r + begin, end - begin);
                    xv_val_buf_addc(o, '>');
                    t->ngroups++;
                    depth++;
                    t->i += end + 1;
                    last = 0;
                    continue;
                }
                /* flags: (?imsU-imsU) or (?imsU-imsU:re) */
                size_t j = t->i + 2;
                int sign = 1;
                bool saw = false, done = false, open = false;
                while (j < t->n && !done) {
                    char f = t->s[j++];
                    if (f == 'i' || f == 'm' || f == 's' || f == 'U') {
                        saw = true;
                    } else if (f == '-' && sign > 0) {
                        sign = -1;
                        saw = false;
                    } else if ((f == ':' || f == ')') && (sign > 0 || saw)) {
                        done = true;
                        open = (f == ':');
                    } else {
                        break;
                    }
                }
                if (!done) {
                    /* Go's Expr covers the text up to the offending rune */
                    size_t e = j;
                    if (e > t->i + 2 && e <= t->n && (unsigned char)t->s[e - 1] >= 0x80) {
                        uint32_t cp;
                        e = e - 1 + xv_val_utf8_decode(t->s + e - 1, t->n - e + 1, &cp);
                    }
                    tr_fail(t, "invalid or unsupported Perl syntax", t->s + t->i, e - t->i);
                    return false;
                }
                if (j - t->i > 3 || open)   /* "(?)" sets nothing: emit nothing */
                    xv_val_buf_add(o, t->s + t->i, j - t->i);
                t->i = j;
                if (open) {
                    depth++;
                    last = 0;
                }
                /* a flag-only group leaves the last item as it was, as in Go */
                continue;
            }
            xv_val_buf_addc(o, '(');
            t->ngroups++;
            depth++;
            t->i++;
            last = 0;
            continue;
        }
        case ')':
            if (depth == 0) {
                tr_fail(t, "unexpected )", t->s, t->n);
                return false;
            }
            depth--;
            xv_val_buf_addc(o, ')');
            t->i++;
            last = 1;
            continue;
        case '|':
            xv_val_buf_addc(o, '|');
            t->i++;
            last = 0;
            continue;
        case '*': case '+': case '?': case '{': {
            size_t end = t->i + 1;
            long mn = 0, mx = 0;
            if (c == '{') {
                if (!parse_repeat(t, &end, &mn, &mx)) {
                    /* a literal brace */
                    xv_val_buf_adds(o, "\\{");
                    t->i++;
                    last = 1;
                    continue;
                }
            }
            if (end < t->n && t->s[end] == '?')
                end++;   /* non-greedy */
            if (last == 0) {
                tr_fail(t, "missing argument to repetition operator", t->s + st, end - st);
                return false;
            }
            if (last == 2) {
                tr_fail(t, "invalid nested repetition operator", t->s + last_rep, end - last_rep);
                return false;
            }
            if (c == '{' && (mn > 1000 || mx > 1000 || (mx >= 0 && mx < mn))) {
                tr_fail(t, "invalid repeat count", t->s + st, end - st);
                return false;
            }
            xv_val_buf_add(o, t->s + st, end - st);
            t->i = end;
            last = 2;
            last_rep = st;
            continue;
        }
        case '[':
            if (!tr_class(t))
                return false;
            last = 1;
            continue;
        case '^': case '$': case '.':
            xv_val_buf_addc(o, c);
            t->i++;
            last = 1;
            continue;
        case '\\': {
            if (t->i + 1 >= t->n) {
                tr_fail(t, "trailing backslash at end of expression", "", 0);
                return false;
            }
            char e = t->s[t->i + 1];
            if (e == 'A' || e == 'z' || e == 'b' || e == 'B') {
                xv_val_buf_addc(o, '\\');
                xv_val_buf_addc(o, e);
                t->i += 2;
                last = 1;
                continue;
            }
            if (e == 'Q') {
                /* \Q...\E quotes literally, up to \E or the end */
                size_t j = t->i + 2;
                while (j < t->n) {
                    if (t->s[j] == '\\' && j + 1 < t->n && t->s[j + 1] == 'E')
                        break;
                    uint32_t cp;
                    size_t k = xv_val_utf8_decode(t->s + j, t->n - j, &cp);
                    emit_cp(o, cp);
                    j += k;
                    last = 1;
                }
                t->i = j < t->n ? j + 2 : t->n;
                continue;
            }
            int r = class_escape(t, false);
            if (r < 0)
                return false;
            if (r == 0) {
                long cp = char_escape(t);
                if (cp < 0)
                    return false;
                emit_cp(o, (uint32_t)cp);
            }
            last = 1;
            continue;
        }
        default: {
            uint32_t cp;
            if (!next_cp(t, &cp))
                return false;
            emit_cp(o, cp);
            last = 1;
            continue;
        }
        }
    }
    if (t->err)
        return false;
    if (depth > 0) {
        tr_fail(t, "missing closing )", t->s, t->n);
        return false;
    }
    return !o->oom;
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
    struct tr t = { .s = pat, .n = n };
    if (!translate(&t)) {
        xv_val_buf_free(&t.out);
        if (err)
            *err = t.err ? t.err : strdup("error parsing regexp: out of memory");
        else
            free(t.err);
        return NULL;
    }
    size_t plen;
    char *pcre = xv_val_buf_take(&t.out, &plen);
    if (!pcre) {
        if (err)
            *err = strdup("error parsing regexp: out of memory");
        return NULL;
    }
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
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
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
