/*
 * go/re2syntax.c — Go's regexp syntax (RE2) checked as Go's parser checks
 * it, with Go's error texts, and translated into a PCRE2 pattern that
 * means the same: Go-only forms rewritten, every literal that PCRE could
 * read differently escaped. go/regexp.c compiles and runs the result.
 *
 * Invariant: a pattern Go rejects is rejected here with Go's message; an
 * accepted one produces a pattern PCRE2 reads with Go's meaning.
 * Thread safety: reentrant; no state.
 */
#include "go/re2syntax.h"
#include "value/buf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- Go-syntax validation and translation ---------------------------------- */

struct tr {
    const char *s;        /* the Go pattern */
    size_t n;             /* its length */
    size_t i;             /* parse position */
    struct xv_val_buf out; /* the PCRE2 pattern */
    char *err;            /* Go error message, once one happened */
    int ngroups;          /* capture groups seen */
    int depth;            /* open groups */
    /* what the last item was: 0 nothing repeatable (start, '(' or '|'),
     * 1 an atom, 2 a repetition operator */
    int last;
    size_t last_rep;      /* start of the previous repetition operator */
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
/* A named capture (?P<name>re) or (?<name>re) at t->i: emit PCRE's
 * (?<name>. False (with t->err) on a bad name. */
static bool tr_named(struct tr *t)
{
    struct xv_val_buf *o = &t->out;
    const char *r = t->s + t->i;
    size_t rl = t->n - t->i;
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
    t->depth++;
    t->i += end + 1;
    t->last = 0;
    return true;
}

/* Flags at t->i: (?imsU-imsU) or (?imsU-imsU:re). False on bad syntax. */
static bool tr_flags(struct tr *t)
{
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
        xv_val_buf_add(&t->out, t->s + t->i, j - t->i);
    t->i = j;
    if (open) {
        t->depth++;
        t->last = 0;
    }
    /* a flag-only group leaves the last item as it was, as in Go */
    return true;
}

/* '(' at t->i: a group, a named capture or flags. */
static bool tr_group(struct tr *t)
{
    if (t->depth >= 1000) {
        tr_fail(t, "expression nests too deeply", t->s, t->n);
        return false;
    }
    if (t->i + 1 < t->n && t->s[t->i + 1] == '?') {
        const char *r = t->s + t->i;
        size_t rl = t->n - t->i;
        if ((rl > 4 && r[2] == 'P' && r[3] == '<') || (rl > 3 && r[2] == '<'))
            return tr_named(t);
        return tr_flags(t);
    }
    xv_val_buf_addc(&t->out, '(');
    t->ngroups++;
    t->depth++;
    t->i++;
    t->last = 0;
    return true;
}

/* A repetition operator (*, +, ?, {n,m}, each maybe non-greedy) at t->i;
 * a '{' that does not start a count is a literal brace, as in Go. */
static bool tr_repeat(struct tr *t)
{
    char c = t->s[t->i];
    size_t st = t->i, end = t->i + 1;
    long mn = 0, mx = 0;
    if (c == '{' && !parse_repeat(t, &end, &mn, &mx)) {
        xv_val_buf_adds(&t->out, "\\{");
        t->i++;
        t->last = 1;
        return true;
    }
    if (end < t->n && t->s[end] == '?')
        end++;   /* non-greedy */
    if (t->last == 0) {
        tr_fail(t, "missing argument to repetition operator", t->s + st, end - st);
        return false;
    }
    if (t->last == 2) {
        tr_fail(t, "invalid nested repetition operator", t->s + t->last_rep, end - t->last_rep);
        return false;
    }
    if (c == '{' && (mn > 1000 || mx > 1000 || (mx >= 0 && mx < mn))) {
        tr_fail(t, "invalid repeat count", t->s + st, end - st);
        return false;
    }
    xv_val_buf_add(&t->out, t->s + st, end - st);
    t->i = end;
    t->last = 2;
    t->last_rep = st;
    return true;
}

/* A backslash at t->i: assertions, \Q...\E, classes, escaped characters. */
static bool tr_backslash(struct tr *t)
{
    struct xv_val_buf *o = &t->out;
    if (t->i + 1 >= t->n) {
        tr_fail(t, "trailing backslash at end of expression", "", 0);
        return false;
    }
    char e = t->s[t->i + 1];
    if (e == 'A' || e == 'z' || e == 'b' || e == 'B') {
        xv_val_buf_addc(o, '\\');
        xv_val_buf_addc(o, e);
        t->i += 2;
        t->last = 1;
        return true;
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
            t->last = 1;
        }
        t->i = j < t->n ? j + 2 : t->n;
        return true;
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
    t->last = 1;
    return true;
}

/* The whole pattern: Go's parser's checks, PCRE2 syntax out. */
static bool translate(struct tr *t)
{
    struct xv_val_buf *o = &t->out;
    bool ok = true;
    while (ok && t->i < t->n && !t->err) {
        char c = t->s[t->i];
        switch (c) {
        case '(':
            ok = tr_group(t);
            break;
        case ')':
            if (t->depth == 0) {
                tr_fail(t, "unexpected )", t->s, t->n);
                return false;
            }
            t->depth--;
            xv_val_buf_addc(o, ')');
            t->i++;
            t->last = 1;
            break;
        case '|':
            xv_val_buf_addc(o, '|');
            t->i++;
            t->last = 0;
            break;
        case '*': case '+': case '?': case '{':
            ok = tr_repeat(t);
            break;
        case '[':
            ok = tr_class(t);
            t->last = 1;
            break;
        case '^': case '$': case '.':
            xv_val_buf_addc(o, c);
            t->i++;
            t->last = 1;
            break;
        case '\\':
            ok = tr_backslash(t);
            break;
        default: {
            uint32_t cp;
            ok = next_cp(t, &cp);
            if (ok)
                emit_cp(o, cp);
            t->last = 1;
            break;
        }
        }
    }
    if (!ok || t->err)
        return false;
    if (t->depth > 0) {
        tr_fail(t, "missing closing )", t->s, t->n);
        return false;
    }
    return !o->oom;
}

char *xv_go_re2_translate(const char *pat, size_t n, size_t *outlen, char **err)
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
    char *pcre = xv_val_buf_take(&t.out, outlen);
    if (!pcre && err)
        *err = strdup("error parsing regexp: out of memory");
    return pcre;
}
