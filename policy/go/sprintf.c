/*
 * go/sprintf.c — Go's fmt.Sprintf for the sprintf builtin.
 *
 * OPA converts each Rego argument to a Go value (int when the number's text
 * parses as int64, *big.Int for larger integers, float64 otherwise, string
 * for strings, and the Rego text of anything else as a string) and calls
 * fmt.Sprintf. This file reproduces fmt's verb handling for those four Go
 * types: flags `#0+- `, width, precision, `*` and `[n]` argument indexes, and
 * the error forms `%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int=1)`,
 * `%!(NOVERB)`, `%!d(BADINDEX)`, `%!(BADWIDTH)`, `%!(BADPREC)`.
 *
 * Invariant: output is byte-for-byte what Go prints for the supported verbs;
 * float digits come from glibc (correctly rounded, like strconv), shortest
 * representations from a round-trip search.
 *
 * Thread safety: reentrant; no global state.
 */
#include "value/buf.h"
#include "go/fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct spec {
    bool sharp, zero, plus, minus, space; /* flags */
    bool sharpv, plusv;                   /* %#v / %+v */
    bool widp, precp;                     /* width / precision present */
    int wid, prec;                        /* their values */
};

/* n copies of c, appended a block at a time: widths reach 1e6 (Go's
 * limit), and a byte-at-a-time append made sprintf("%999999d") cost ~1e6
 * calls (the slowest path fuzz_policy_builtins found). */
static void pad_n(struct xv_val_buf *b, int n, char c)
{
    char run[256];
    memset(run, c, sizeof run);
    for (; n > 0; n -= (int)sizeof run)
        xv_val_buf_add(b, run, n < (int)sizeof run ? (size_t)n : sizeof run);
}

/* Go's fmt.pad: honour width with spaces (or zeros when allowed). */
static void pad(struct xv_val_buf *b, const struct spec *f, const char *s, size_t n, bool zero)
{
    if (!f->widp || f->wid == 0) {
        xv_val_buf_add(b, s, n);
        return;
    }
    int w = f->wid - (int)xv_val_utf8_count(s, n);
    if (w <= 0) {
        xv_val_buf_add(b, s, n);
        return;
    }
    if (!f->minus) {
        pad_n(b, w, zero && f->zero ? '0' : ' ');
        xv_val_buf_add(b, s, n);
    } else {
        xv_val_buf_add(b, s, n);
        pad_n(b, w, ' ');
    }
}

/* ---- integers ---------------------------------------------------------------- */

/* Digits of |v| (given as decimal digit string) in base 2, 8, 10 or 16. */
static char *digits_in_base(const char *dec, size_t n, int base, bool upper)
{
    static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
    const char *dig = upper ? up : lo;
    if (base == 10) {
        char *r = malloc(n + 1);
        if (r) {
            memcpy(r, dec, n);
            r[n] = '\0';
        }
        return r;
    }
    /* repeated division of the decimal digit array */
    unsigned char *num = malloc(n + 1);
    char *out = malloc(n * 4 + 2);
    if (!num || !out) {
        free(num);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        num[i] = (unsigned char)(dec[i] - '0');
    size_t len = n, o = 0, st = 0;
    while (st < len && num[st] == 0)
        st++;
    if (st == len)
        out[o++] = '0';
    while (st < len) {
        unsigned rem = 0;
        for (size_t i = st; i < len; i++) {
            unsigned cur = rem * 10 + num[i];
            num[i] = (unsigned char)(cur / (unsigned)base);
            rem = cur % (unsigned)base;
        }
        out[o++] = dig[rem];
        while (st < len && num[st] == 0)
            st++;
    }
    free(num);
    for (size_t i = 0; i < o / 2; i++) {
        char t = out[i];
        out[i] = out[o - 1 - i];
        out[o - 1 - i] = t;
    }
    out[o] = '\0';
    return out;
}

/* fmt.fmtInteger for Go int (and for %d-family on int64). */
static void fmt_integer(struct xv_val_buf *b, struct spec *f, int64_t v, int base, char verb)
{
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u);
    char *dg = digits_in_base(tmp, strlen(tmp), base, verb == 'X');
    if (!dg) {
        b->oom = true;
        return;
    }
    int prec = 0;
    if (f->precp) {
        prec = f->prec;
        if (prec == 0 && u == 0) {
            bool oz = f->zero;
            f->zero = false;
            pad_n(b, f->widp ? f->wid : 0, ' ');
            f->zero = oz;
            free(dg);
            return;
        }
    } else if (f->zero && !f->minus && f->widp) {
        prec = f->wid;
        if (neg || f->plus || f->space)
            prec--;
    }
    struct xv_val_buf s = {0};
    if (neg)
        xv_val_buf_addc(&s, '-');
    else if (f->plus)
        xv_val_buf_addc(&s, '+');
    else if (f->space)
        xv_val_buf_addc(&s, ' ');
    size_t dl = strlen(dg);
    if (f->sharp) {
        if (base == 2)
            xv_val_buf_adds(&s, "0b");
        else if (base == 16)
            xv_val_buf_adds(&s, verb == 'X' ? "0X" : "0x");
        else if (base == 8 && (int)dl >= prec && dg[0] != '0')
            xv_val_buf_addc(&s, '0');
    }
    if (verb == 'O')
        xv_val_buf_adds(&s, "0o");
    if ((int)dl < prec)
        pad_n(&s, prec - (int)dl, '0');
    xv_val_buf_add(&s, dg, dl);
    free(dg);
    pad(b, f, s.p ? s.p : "", s.len, false);
    xv_val_buf_free(&s);
}

/* math/big's Int.Format. */
static void fmt_bigint(struct xv_val_buf *b, struct spec *f, const char *s, size_t n, char verb)
{
    int base;
    switch (verb) {
    case 'b': base = 2; break;
    case 'o': case 'O': base = 8; break;
    case 'd': case 's': case 'v': base = 10; break;
    case 'x': case 'X': base = 16; break;
    default:
        xv_val_buf_printf(b, "%%!%c(big.Int=", verb);
        xv_val_buf_add(b, s, n);
        xv_val_buf_addc(b, ')');
        return;
    }
    bool neg = n > 0 && s[0] == '-';
    if (neg) {
        s++;
        n--;
    }
    const char *sign = neg ? "-" : (f->plus || f->plusv) ? "+" : f->space ? " " : "";
    const char *prefix = "";
    if (f->sharp) {
        if (verb == 'b') prefix = "0b";
        else if (verb == 'o') prefix = "0";
        else if (verb == 'x') prefix = "0x";
        else if (verb == 'X') prefix = "0X";
    }
    if (verb == 'O')
        prefix = "0o";
    char *dg = digits_in_base(s, n, base, verb == 'X');
    if (!dg) {
        b->oom = true;
        return;
    }
    int dl = (int)strlen(dg), left = 0, zeros = 0, right = 0;
    if (f->precp) {
        if (dl < f->prec)
            zeros = f->prec - dl;
        else if (dl == 1 && dg[0] == '0' && f->prec == 0) {
            free(dg);
            return;
        }
    }
    int length = (int)strlen(sign) + (int)strlen(prefix) + zeros + dl;
    if (f->widp && length < f->wid) {
        int d = f->wid - length;
        if (f->minus)
            right = d;
        else if (f->zero && !f->precp)
            zeros = d;
        else
            left = d;
    }
    pad_n(b, left, ' ');
    xv_val_buf_adds(b, sign);
    xv_val_buf_adds(b, prefix);
    pad_n(b, zeros, '0');
    xv_val_buf_add(b, dg, (size_t)dl);
    pad_n(b, right, ' ');
    free(dg);
}

/* ---- floats ------------------------------------------------------------------ */

/* Shortest decimal digits that round-trip: digits into d (no dot), returns
 * count; *dp is the decimal point position (value = 0.d × 10^dp). v > 0. */
static int shortest_digits(double v, char *d, int *dp)
{
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v || p == 17)
            break;
    }
    /* tmp is d.ddde±x */
    int n = 0;
    const char *e = strchr(tmp, 'e');
    for (const char *c = tmp; c < e; c++)
        if (*c >= '0' && *c <= '9')
            d[n++] = *c;
    int ex = atoi(e + 1);
    while (n > 1 && d[n - 1] == '0')
        n--;
    d[n] = '\0';
    *dp = ex + 1;
    return n;
}

static void put_e(struct xv_val_buf *b, const char *d, int nd, int dp, int prec, char e)
{
    /* d[0].d[1..prec] e±XX with zero fill beyond nd */
    xv_val_buf_addc(b, nd > 0 ? d[0] : '0');
    if (prec > 0) {
        xv_val_buf_addc(b, '.');
        for (int i = 1; i <= prec; i++)
            xv_val_buf_addc(b, i < nd ? d[i] : '0');
    }
    int ex = (nd == 0 || (nd == 1 && d[0] == '0')) ? 0 : dp - 1;
    xv_val_buf_printf(b, "%c%c%02d", e, ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
}

static void put_f(struct xv_val_buf *b, const char *d, int nd, int dp, int prec)
{
    if (dp > 0) {
        for (int i = 0; i < dp; i++)
            xv_val_buf_addc(b, i < nd ? d[i] : '0');
    } else {
        xv_val_buf_addc(b, '0');
    }
    if (prec > 0) {
        xv_val_buf_addc(b, '.');
        for (int i = 0; i < prec; i++) {
            int j = dp + i;
            xv_val_buf_addc(b, (j < 0 || j >= nd) ? '0' : d[j]);
        }
    }
}

/* strconv.AppendFloat(f, verb, prec) for finite |v| (sign handled by caller). */
void xv_go_fmt_float_shortest(struct xv_val_buf *b, double v, char verb, int prec)
{
    char d[40];
    int nd, dp;
    if (v == 0) {
        d[0] = '0';
        d[1] = '\0';
        nd = 1;
        dp = 1;
    }
    if (verb == 'x' || verb == 'X') {
        /* hexadecimal mantissa, binary exponent with at least two digits
         * (Go prints 0x1.8p+01 where C prints 0x1.8p+1) */
        char tmp[128], fmt[16];
        if (prec >= 0)
            snprintf(fmt, sizeof fmt, "%%.%d%c", prec > 60 ? 60 : prec, verb == 'x' ? 'a' : 'A');
        else
            snprintf(fmt, sizeof fmt, "%%%c", verb == 'x' ? 'a' : 'A');
        snprintf(tmp, sizeof tmp, fmt, v);
        char *pp = strchr(tmp, verb == 'x' ? 'p' : 'P');
        if (pp && pp[1] && pp[2] && !pp[3]) {
            xv_val_buf_add(b, tmp, (size_t)(pp - tmp) + 2);
            xv_val_buf_addc(b, '0');
            xv_val_buf_adds(b, pp + 2);
        } else {
            xv_val_buf_adds(b, tmp);
        }
        return;
    }
    if (verb == 'b') {
        /* decimal mantissa and binary exponent, as strconv's 'b' format */
        int e;
        double m = frexp(v, &e);
        long long mant = (long long)ldexp(m, 53);
        if (v == 0)
            xv_val_buf_adds(b, "0p-1074");
        else
            xv_val_buf_printf(b, "%lldp%+d", mant, e - 53);
        return;
    }
    if (prec < 0) {
        if (v != 0)
            nd = shortest_digits(v, d, &dp);
        switch (verb) {
        case 'e': case 'E':
            put_e(b, d, nd, dp, nd - 1, verb);
            return;
        case 'f': case 'F':
            put_f(b, d, nd, dp, nd - dp > 0 ? nd - dp : 0);
            return;
        default: { /* g, G */
            int ex = dp - 1;
            if (v == 0)
                ex = 0;
            /* strconv: for the shortest form the e-form threshold is 6 */
            if (ex < -4 || ex >= 6) {
                put_e(b, d, nd, dp, nd - 1, verb == 'G' ? 'E' : 'e');
            } else {
                put_f(b, d, nd, dp, nd - dp > 0 ? nd - dp : 0);
            }
            return;
        }
        }
    }
    /* explicit precision: glibc rounds exactly, like strconv */
    char fmtbuf[16], tmp[512];
    switch (verb) {
    case 'e': case 'E': case 'f': case 'F':
        snprintf(fmtbuf, sizeof fmtbuf, "%%.%d%c", prec > 300 ? 300 : prec, verb);
        if (verb == 'f' || verb == 'F') {
            /* %f of huge values can be long: size it */
            int need = snprintf(NULL, 0, fmtbuf, v);
            char *big = malloc((size_t)need + 1);
            if (!big) {
                b->oom = true;
                return;
            }
            snprintf(big, (size_t)need + 1, fmtbuf, v);
            xv_val_buf_add(b, big, (size_t)need);
            free(big);
            return;
        }
        snprintf(tmp, sizeof tmp, fmtbuf, v);
        xv_val_buf_adds(b, tmp);
        return;
    default: {
        /* %g with precision: Go picks e-form when exp < -4 || exp >= eprec,
         * where eprec = prec, lowered to the digit count when all digits
         * are before the point. */
        if (prec == 0)
            prec = 1;
        if (prec > 17)
            prec = 17;   /* a double has no more significant digits */
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        char *e = strchr(tmp, 'e');
        int n2 = 0;
        for (char *c = tmp; c < e; c++)
            if (*c >= '0' && *c <= '9')
                d[n2++] = *c;
        while (n2 > 1 && d[n2 - 1] == '0')
            n2--;
        d[n2] = '\0';
        dp = atoi(e + 1) + 1;
        if (v == 0)
            dp = 1;
        int eprec = prec;
        if (eprec > n2 && n2 >= dp)
            eprec = n2;
        int ex = dp - 1;
        if (ex < -4 || ex >= eprec) {
            int p = prec > n2 ? n2 : prec;
            put_e(b, d, n2, dp, p - 1, verb == 'G' ? 'E' : 'e');
        } else {
            int p = prec > dp ? n2 : prec;
            put_f(b, d, n2, dp, p - dp > 0 ? p - dp : 0);
        }
        return;
    }
    }
}

static void fmt_float(struct xv_val_buf *b, struct spec *f, double v, char verb)
{
    int prec = -1;
    if (verb == 'v')
        verb = 'g';
    else if (verb == 'f' || verb == 'e' || verb == 'E' || verb == 'F')
        prec = 6;
    if (f->precp)
        prec = f->prec;
    struct xv_val_buf num = {0};
    if (isinf(v) || isnan(v)) {
        if (isnan(v))
            xv_val_buf_adds(&num, f->plus ? "+NaN" : f->space ? " NaN" : "NaN");
        else if (v < 0)
            xv_val_buf_adds(&num, "-Inf");
        else
            xv_val_buf_adds(&num, f->plus ? "+Inf" : f->space ? " Inf" : "Inf");
        pad(b, f, num.p, num.len, false);
        xv_val_buf_free(&num);
        return;
    }
    bool neg = signbit(v);
    xv_val_buf_addc(&num, neg ? '-' : f->plus ? '+' : f->space ? ' ' : '+');
    xv_go_fmt_float_shortest(&num, fabs(v), verb, prec);
    if (num.oom) {
        b->oom = true;
        xv_val_buf_free(&num);
        return;
    }
    if (f->plus || neg || f->space) {
        if (f->zero && !f->minus && f->widp && f->wid > (int)num.len) {
            xv_val_buf_addc(b, num.p[0]);
            pad_n(b, f->wid - (int)num.len, '0');
            xv_val_buf_add(b, num.p + 1, num.len - 1);
        } else {
            pad(b, f, num.p, num.len, true);
        }
    } else {
        pad(b, f, num.p + 1, num.len - 1, true);
    }
    xv_val_buf_free(&num);
}

/* ---- strings ------------------------------------------------------------------ */

/* strconv.Quote: Go escapes, keeps printable Unicode. */
static void quote(struct xv_val_buf *b, const char *s, size_t n)
{
    xv_val_buf_addc(b, '"');
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = xv_val_utf8_decode(s + i, n - i, &cp);
        if (cp == XV_VAL_RUNE_ERROR && k == 1) {
            xv_val_buf_printf(b, "\\x%02x", (unsigned char)s[i]);
        } else if (cp == '"' || cp == '\\') {
            xv_val_buf_addc(b, '\\');
            xv_val_buf_addc(b, (char)cp);
        } else if (cp >= 0x20 && cp < 0x7F) {
            xv_val_buf_addc(b, (char)cp);
        } else if (cp == '\a') xv_val_buf_adds(b, "\\a");
        else if (cp == '\b') xv_val_buf_adds(b, "\\b");
        else if (cp == '\f') xv_val_buf_adds(b, "\\f");
        else if (cp == '\n') xv_val_buf_adds(b, "\\n");
        else if (cp == '\r') xv_val_buf_adds(b, "\\r");
        else if (cp == '\t') xv_val_buf_adds(b, "\\t");
        else if (cp == '\v') xv_val_buf_adds(b, "\\v");
        else if (cp < 0x20 || cp == 0x7F)
            xv_val_buf_printf(b, "\\x%02x", (unsigned)cp);
        else if ((cp >= 0x80 && cp < 0xA0) || cp == 0xAD || (cp >= 0x2028 && cp <= 0x2029) ||
                 cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB))
            /* non-printing: an approximation of unicode.IsPrint */
            xv_val_buf_printf(b, cp < 0x10000 ? "\\u%04x" : "\\U%08x", (unsigned)cp);
        else
            xv_val_buf_add(b, s + i, k);
        i += k;
    }
    xv_val_buf_addc(b, '"');
}

static void fmt_string(struct xv_val_buf *b, struct spec *f, const char *s, size_t n, char verb)
{
    switch (verb) {
    case 'v':
        if (f->sharpv) {
            struct xv_val_buf q = {0};
            quote(&q, s, n);
            pad(b, f, q.p, q.len, true);
            xv_val_buf_free(&q);
            return;
        }
        /* fall through */
    case 's': {
        size_t len = n;
        if (f->precp)
            len = xv_val_utf8_offset(s, n, (size_t)f->prec);
        pad(b, f, s, len, true);
        return;
    }
    case 'q': {
        struct xv_val_buf q = {0};
        size_t len = n;
        if (f->precp)
            len = xv_val_utf8_offset(s, n, (size_t)f->prec);
        bool back = f->sharp && memchr(s, '`', len) == NULL;
        for (size_t i = 0; back && i < len; i++)
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
                back = false;
        if (back) {
            xv_val_buf_addc(&q, '`');
            xv_val_buf_add(&q, s, len);
            xv_val_buf_addc(&q, '`');
        } else {
            quote(&q, s, len);
        }
        pad(b, f, q.p, q.len, true);
        xv_val_buf_free(&q);
        return;
    }
    case 'x': case 'X': {
        const char *dg = verb == 'x' ? "0123456789abcdef" : "0123456789ABCDEF";
        struct xv_val_buf h = {0};
        size_t len = n;
        if (f->precp && (size_t)f->prec < len)
            len = (size_t)f->prec;
        for (size_t i = 0; i < len; i++) {
            if (f->space && i > 0)
                xv_val_buf_addc(&h, ' ');
            if (f->sharp && (f->space || i == 0))
                xv_val_buf_adds(&h, verb == 'x' ? "0x" : "0X");
            xv_val_buf_addc(&h, dg[(unsigned char)s[i] >> 4]);
            xv_val_buf_addc(&h, dg[(unsigned char)s[i] & 15]);
        }
        pad(b, f, h.p ? h.p : "", h.len, true);
        xv_val_buf_free(&h);
        return;
    }
    default:
        break;
    }
}

/* ---- dispatch ------------------------------------------------------------------ */

static const char *type_name(const struct xv_go_fmt_arg *a)
{
    switch (a->kind) {
    case XV_GO_FMT_INT: return "int";
    case XV_GO_FMT_BIGINT: return "*big.Int";
    case XV_GO_FMT_FLOAT: return "float64";
    default: return "string";
    }
}

static void print_arg(struct xv_val_buf *b, struct spec *f, const struct xv_go_fmt_arg *a, char verb);

static void bad_verb(struct xv_val_buf *b, struct spec *f, const struct xv_go_fmt_arg *a, char verb)
{
    xv_val_buf_printf(b, "%%!%c(%s=", verb, type_name(a));
    print_arg(b, f, a, 'v');
    xv_val_buf_addc(b, ')');
}

static void print_arg(struct xv_val_buf *b, struct spec *f, const struct xv_go_fmt_arg *a, char verb)
{
    switch (a->kind) {
    case XV_GO_FMT_INT:
        switch (verb) {
        case 'v': case 'd': fmt_integer(b, f, a->i, 10, verb); return;
        case 'b': fmt_integer(b, f, a->i, 2, verb); return;
        case 'o': case 'O': fmt_integer(b, f, a->i, 8, verb); return;
        case 'x': case 'X': fmt_integer(b, f, a->i, 16, verb); return;
        case 'c': {
            char tmp[4];
            uint32_t cp = (a->i < 0 || a->i > 0x10FFFF) ? XV_VAL_RUNE_ERROR : (uint32_t)a->i;
            size_t k = xv_val_utf8_encode(cp, tmp);
            pad(b, f, tmp, k, true);
            return;
        }
        case 'q': {
            char tmp[4];
            uint32_t cp = (a->i < 0 || a->i > 0x10FFFF) ? XV_VAL_RUNE_ERROR : (uint32_t)a->i;
            size_t k = xv_val_utf8_encode(cp, tmp);
            struct xv_val_buf q = {0};
            if (cp == '\'') {
                xv_val_buf_adds(&q, "'\\''");
            } else {
                quote(&q, tmp, k);
                if (q.p) {
                    q.p[0] = '\'';
                    q.p[q.len - 1] = '\'';
                    if (cp == '"') {   /* a double quote needs no escape in a rune */
                        xv_val_buf_free(&q);
                        xv_val_buf_adds(&q, "'\"'");
                    }
                }
            }
            pad(b, f, q.p, q.len, true);
            xv_val_buf_free(&q);
            return;
        }
        case 'U': {
            char tmp[32];
            int k = snprintf(tmp, sizeof tmp, "U+%04llX", (unsigned long long)a->i);
            pad(b, f, tmp, (size_t)k, true);
            return;
        }
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
        default:
            bad_verb(b, f, a, verb);
            return;
        }
    case XV_GO_FMT_BIGINT:
        fmt_bigint(b, f, a->s, a->slen, verb);
        return;
    case XV_GO_FMT_FLOAT:
        switch (verb) {
        case 'v': case 'b': case 'g': case 'G': case 'x': case 'X':
        case 'f': case 'F': case 'e': case 'E':
            fmt_float(b, f, a->f, verb);
            return;
        default:
            bad_verb(b, f, a, verb);
            return;
        }
    case XV_GO_FMT_STRING:
        switch (verb) {
        case 'v': case 's': case 'q': case 'x': case 'X':
            fmt_string(b, f, a->s, a->slen, verb);
            return;
        default:
            bad_verb(b, f, a, verb);
            return;
        }
    }
}

/* parsenum: decimal digits at fmt[*i..end) */
static bool parse_num(const char *fmt, size_t end, size_t *i, int *out)
{
    if (*i >= end || fmt[*i] < '0' || fmt[*i] > '9')
        return false;
    int n = 0;
    while (*i < end && fmt[*i] >= '0' && fmt[*i] <= '9') {
        if (n > 1000000)
            return false;   /* Go: too large; treat as absent */
        n = n * 10 + (fmt[*i] - '0');
        (*i)++;
    }
    *out = n;
    return true;
}

/* [n] argument index; returns the new argNum and whether an index was seen. */
static void arg_number(const char *fmt, size_t end, size_t *i, size_t *argnum, size_t nargs,
                       bool *after, bool *good, bool *reordered)
{
    *after = false;
    if (*i >= end || fmt[*i] != '[')
        return;
    *reordered = true;
    size_t j = *i + 1;
    int n = 0;
    bool ok = false;
    while (j < end && fmt[j] != ']') {
        if (fmt[j] < '0' || fmt[j] > '9') {
            n = -1;
            break;
        }
        n = n * 10 + (fmt[j] - '0');
        if (n > 1000000)
            n = 1000000;
        j++;
    }
    if (j < end && fmt[j] == ']' && n >= 1 && j > *i + 1)
        ok = true;
    if (!ok) {
        /* Go: a bad index skips to the closing bracket if any */
        size_t k = *i + 1;
        while (k < end && fmt[k] != ']')
            k++;
        *good = false;
        *i = k < end ? k + 1 : *i + 1;
        *after = true;
        return;
    }
    *i = j + 1;
    *argnum = (size_t)(n - 1);
    *after = true;
}

static bool int_from_arg(const struct xv_go_fmt_arg *args, size_t nargs, size_t *argnum, int *out)
{
    bool ok = false;
    if (*argnum < nargs) {
        const struct xv_go_fmt_arg *a = &args[*argnum];
        if (a->kind == XV_GO_FMT_INT && a->i >= -1000000 && a->i <= 1000000) {
            *out = (int)a->i;
            ok = true;
        }
        (*argnum)++;
    }
    return ok;
}

char *xv_go_fmt_sprintf(const char *fmt, size_t end, const struct xv_go_fmt_arg *args,
                               size_t nargs, size_t *outlen)
{
    struct xv_val_buf b = {0};
    size_t argnum = 0, i = 0;
    bool reordered = false;
    while (i < end) {
        bool good = true;
        size_t last = i;
        while (i < end && fmt[i] != '%')
            i++;
        if (i > last)
            xv_val_buf_add(&b, fmt + last, i - last);
        if (i >= end)
            break;
        i++;
        struct spec f = {0};
        for (; i < end; i++) {
            char c = fmt[i];
            if (c == '#') f.sharp = true;
            else if (c == '0') f.zero = !f.minus;
            else if (c == '+') f.plus = true;
            else if (c == '-') { f.minus = true; f.zero = false; }
            else if (c == ' ') f.space = true;
            else break;
        }
        bool after = false;
        arg_number(fmt, end, &i, &argnum, nargs, &after, &good, &reordered);
        if (i < end && fmt[i] == '*') {
            i++;
            f.widp = int_from_arg(args, nargs, &argnum, &f.wid);
            if (!f.widp)
                xv_val_buf_adds(&b, "%!(BADWIDTH)");
            if (f.wid < 0) {
                f.wid = -f.wid;
                f.minus = true;
                f.zero = false;
            }
            after = false;
        } else {
            f.widp = parse_num(fmt, end, &i, &f.wid);
            if (after && f.widp)
                good = false;
        }
        if (i + 1 < end && fmt[i] == '.') {
            i++;
            if (after)
                good = false;
            arg_number(fmt, end, &i, &argnum, nargs, &after, &good, &reordered);
            if (i < end && fmt[i] == '*') {
                i++;
                f.precp = int_from_arg(args, nargs, &argnum, &f.prec);
                if (f.prec < 0) {
                    f.prec = 0;
                    f.precp = false;
                }
                if (!f.precp)
                    xv_val_buf_adds(&b, "%!(BADPREC)");
                after = false;
            } else {
                f.precp = parse_num(fmt, end, &i, &f.prec);
                if (!f.precp) {
                    f.prec = 0;
                    f.precp = true;
                }
            }
        }
        if (!after)
            arg_number(fmt, end, &i, &argnum, nargs, &after, &good, &reordered);
        if (i >= end) {
            xv_val_buf_adds(&b, "%!(NOVERB)");
            break;
        }
        uint32_t verb;
        size_t vk = xv_val_utf8_decode(fmt + i, end - i, &verb);
        i += vk;
        char vc = verb < 0x80 ? (char)verb : '?';
        if (verb == '%') {
            xv_val_buf_addc(&b, '%');
        } else if (!good) {
            xv_val_buf_adds(&b, "%!");
            xv_val_buf_addcp(&b, verb);
            xv_val_buf_adds(&b, "(BADINDEX)");
        } else if (argnum >= nargs) {
            xv_val_buf_adds(&b, "%!");
            xv_val_buf_addcp(&b, verb);
            xv_val_buf_adds(&b, "(MISSING)");
        } else {
            if (verb == 'v') {
                f.sharpv = f.sharp;
                f.sharp = false;
                f.plusv = f.plus;
                f.plus = false;
            }
            if (verb >= 0x80) {
                /* a non-ASCII verb is always bad */
                xv_val_buf_adds(&b, "%!");
                xv_val_buf_addcp(&b, verb);
                xv_val_buf_printf(&b, "(%s=", type_name(&args[argnum]));
                print_arg(&b, &f, &args[argnum], 'v');
                xv_val_buf_addc(&b, ')');
            } else {
                print_arg(&b, &f, &args[argnum], vc);
            }
            argnum++;
        }
    }
    if (!reordered && argnum < nargs) {
        xv_val_buf_adds(&b, "%!(EXTRA ");
        for (size_t k = argnum; k < nargs; k++) {
            if (k > argnum)
                xv_val_buf_adds(&b, ", ");
            xv_val_buf_adds(&b, type_name(&args[k]));
            xv_val_buf_addc(&b, '=');
            struct spec f = {0};
            print_arg(&b, &f, &args[k], 'v');
        }
        xv_val_buf_addc(&b, ')');
    }
    return xv_val_buf_take(&b, outlen);
}
