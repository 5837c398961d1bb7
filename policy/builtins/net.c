/*
 * builtins/net.c — net.cidr_contains, net.cidr_intersects, net.cidr_is_valid,
 * net.cidr_expand, net.cidr_contains_matches and net.cidr_merge, with Go's
 * net.ParseIP/ParseCIDR rules (IPv4 dotted quads without leading zeros,
 * IPv6 with "::" and an optional dotted IPv4 tail, IPv4-mapped IPv6 treated
 * as IPv4) and Go's address printing (RFC 5952 compression).
 *
 * Invariant: an address is a family (4 or 6) plus a 128-bit value; a
 * network is its first address, its prefix length and its family.
 * net.lookup_ip_addr answers IP literals and "localhost" (RFC 6761) without
 * any resolver: no DNS query ever leaves a policy evaluation.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

typedef unsigned __int128 u128;

struct ipnet {
    int fam;      /* 4 or 6 */
    u128 ip;      /* network address (masked) or plain address */
    int bits;     /* prefix length */
};

static int width(int fam) { return fam == 4 ? 32 : 128; }

static u128 mask_of(int fam, int bits)
{
    int w = width(fam);
    if (bits <= 0)
        return 0;
    u128 all = fam == 4 ? (u128)0xFFFFFFFFu : ~(u128)0;
    return bits >= w ? all : (all << (w - bits)) & all;
}

static bool parse_v4(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        size_t st = i;
        unsigned x = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - st < 4)
            x = x * 10 + (unsigned)(s[i++] - '0');
        if (i == st || x > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        v = v << 8 | x;
    }
    if (i != n)
        return false;
    *out = v;
    return true;
}

static int hexd(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool parse_v6(const char *s, size_t n, u128 *out)
{
    uint16_t g[8] = {0};
    int ng = 0, ell = -1;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        ell = 0;
        i = 2;
        if (i == n) {
            *out = 0;
            return true;
        }
    }
    while (i < n) {
        if (ng >= 8)
            return false;
        /* an IPv4 tail takes two groups */
        size_t j = i;
        while (j < n && s[j] != ':' && s[j] != '.')
            j++;
        if (j < n && s[j] == '.') {
            uint32_t v4;
            if (ng > 6 || !parse_v4(s + i, n - i, &v4))
                return false;
            g[ng++] = (uint16_t)(v4 >> 16);
            g[ng++] = (uint16_t)v4;
            i = n;
            break;
        }
        unsigned x = 0;
        size_t st = i;
        while (i < n && hexd(s[i]) >= 0 && i - st < 4)
            x = x * 16 + (unsigned)hexd(s[i++]);
        if (i == st)
            return false;
        g[ng++] = (uint16_t)x;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (ell >= 0)
                return false;
            ell = ng;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false;
        }
    }
    if (ell < 0 && ng != 8)
        return false;
    if (ell >= 0 && ng >= 8)
        return false;
    uint16_t full[8] = {0};
    if (ell >= 0) {
        int tail = ng - ell;
        for (int k = 0; k < ell; k++)
            full[k] = g[k];
        for (int k = 0; k < tail; k++)
            full[8 - tail + k] = g[ell + k];
    } else {
        memcpy(full, g, sizeof full);
    }
    u128 v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 16 | full[k];
    *out = v;
    return true;
}

/* net.ParseIP; IPv4-mapped IPv6 becomes IPv4 (Go's To4). */
static bool parse_ip(const char *s, size_t n, int *fam, u128 *ip)
{
    uint32_t v4;
    if (parse_v4(s, n, &v4)) {
        *fam = 4;
        *ip = v4;
        return true;
    }
    if (memchr(s, ':', n) && parse_v6(s, n, ip)) {
        if ((*ip >> 32) == 0xFFFF) {
            *fam = 4;
            *ip &= 0xFFFFFFFFu;
        } else {
            *fam = 6;
        }
        return true;
    }
    return false;
}

/* net.ParseCIDR: address/prefix, the network masked. */
static bool parse_cidr(const char *s, size_t n, struct ipnet *out)
{
    const char *sl = memchr(s, '/', n);
    if (!sl)
        return false;
    size_t an = (size_t)(sl - s);
    uint32_t v4;
    u128 ip;
    int fam;
    if (parse_v4(s, an, &v4)) {
        fam = 4;
        ip = v4;
    } else if (memchr(s, ':', an) && parse_v6(s, an, &ip)) {
        fam = 6;
    } else {
        return false;
    }
    const char *p = sl + 1, *e = s + n;
    if (p == e || e - p > 3)
        return false;
    int bits = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return false;
        bits = bits * 10 + (*p - '0');
    }
    if ((e - sl - 1) > 1 && sl[1] == '0')
        return false;
    if (bits > width(fam))
        return false;
    out->fam = fam;
    out->bits = bits;
    out->ip = ip & mask_of(fam, bits);
    return true;
}

static void fmt_ip(struct xv_val_buf *b, int fam, u128 ip)
{
    if (fam == 4) {
        uint32_t v = (uint32_t)ip;
        xv_val_buf_printf(b, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255,
                                v & 255);
        return;
    }
    uint16_t g[8];
    for (int k = 7; k >= 0; k--) {
        g[k] = (uint16_t)ip;
        ip >>= 16;
    }
    /* longest run of two or more zero groups, leftmost on ties */
    int best = -1, bestlen = 1;
    for (int k = 0; k < 8;) {
        if (g[k] != 0) {
            k++;
            continue;
        }
        int j = k;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - k > bestlen) {
            best = k;
            bestlen = j - k;
        }
        k = j;
    }
    for (int k = 0; k < 8; k++) {
        if (k == best) {
            xv_val_buf_adds(b, "::");
            k += bestlen - 1;
            continue;
        }
        if (k > 0 && k != best + bestlen)
            xv_val_buf_addc(b, ':');
        xv_val_buf_printf(b, "%x", g[k]);
    }
}

static bool net_contains(const struct ipnet *n, int fam, u128 ip)
{
    return n->fam == fam && (ip & mask_of(fam, n->bits)) == n->ip;
}

static u128 last_ip(const struct ipnet *n)
{
    u128 all = n->fam == 4 ? (u128)0xFFFFFFFFu : ~(u128)0;
    return n->ip | (~mask_of(n->fam, n->bits) & all);
}

static int bad_cidr(struct xv_bctx *ctx, const struct xv_value *v)
{
    return xv_bi_error(ctx, "invalid CIDR address: %.*s", (int)(SL(v) > 200 ? 200 : SL(v)), S(v));
}

/* cidr contains cidr-or-ip; -1 on a parse error */
static int contains_str(const char *c, size_t cn, const char *x, size_t xn)
{
    struct ipnet a, b;
    if (!parse_cidr(c, cn, &a))
        return -1;
    int fam;
    u128 ip;
    if (parse_ip(x, xn, &fam, &ip))
        return net_contains(&a, fam, ip);
    if (!parse_cidr(x, xn, &b))
        return -2;
    return net_contains(&a, b.fam, b.ip) && net_contains(&a, b.fam, last_ip(&b));
}

BI_FN(bi_cidr_contains)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    int r = contains_str(S(a[0]), SL(a[0]), S(a[1]), SL(a[1]));
    if (r < 0)
        return bad_cidr(ctx, r == -1 ? a[0] : a[1]);
    *out = xv_val_bool(r);
    return XV_BI_OK;
}

BI_FN(bi_cidr_intersects)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    struct ipnet x, y;
    if (!parse_cidr(S(a[0]), SL(a[0]), &x))
        return bad_cidr(ctx, a[0]);
    if (!parse_cidr(S(a[1]), SL(a[1]), &y))
        return bad_cidr(ctx, a[1]);
    *out = xv_val_bool(net_contains(&x, y.fam, y.ip) || net_contains(&y, x.fam, x.ip));
    return XV_BI_OK;
}

BI_FN(bi_cidr_is_valid)
{
    struct ipnet x;
    *out = xv_val_bool(XV_IS(a[0], XV_T_STRING) && parse_cidr(S(a[0]), SL(a[0]), &x));
    return XV_BI_OK;
}

BI_FN(bi_cidr_expand)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct ipnet x;
    if (!parse_cidr(S(a[0]), SL(a[0]), &x))
        return bad_cidr(ctx, a[0]);
    if (width(x.fam) - x.bits > 20)
        return xv_bi_error(ctx, "CIDR too large to expand: %.*s", (int)SL(a[0]), S(a[0]));
    struct xv_value *set = xv_val_set_new(0);
    u128 last = last_ip(&x);
    for (u128 ip = x.ip; set; ip++) {
        struct xv_val_buf b = {0};
        fmt_ip(&b, x.fam, ip);
        struct xv_value *e = b.p ? xv_val_string(b.p, b.len) : NULL;
        xv_val_buf_free(&b);
        if (!e || xv_val_set_add(set, e)) {
            xv_val_decref(set);
            set = NULL;
        }
        xv_val_decref(e);
        if (ip == last)
            break;
    }
    return xv_bi_ret(ctx, set, out);
}

/* ---- cidr_contains_matches ---- */

struct match_item {
    const struct xv_value *cidr;   /* the string to test (borrowed) */
    const struct xv_value *key;    /* what the result names it by (borrowed) */
};

static int match_items(struct xv_bctx *ctx, const struct xv_value *v, int pos,
                       struct match_item **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cnt = XV_IS(v, XV_T_STRING) ? 1
                 : (XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET)) ? v->u.arr.len
                 : XV_IS(v, XV_T_OBJECT) ? XV_OBJ_LEN(v)
                                         : 0;
    if (!XV_IS(v, XV_T_STRING) && !XV_IS(v, XV_T_ARRAY) && !XV_IS(v, XV_T_SET) &&
        !XV_IS(v, XV_T_OBJECT))
        return xv_bi_type_error(ctx, pos, "one of {string, array, set, object}", v);
    struct match_item *it = calloc(cnt + 1, sizeof *it);
    if (!it)
        return xv_bi_error(ctx, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const struct xv_value *e, *key;
        if (XV_IS(v, XV_T_STRING)) {
            e = v;
            key = v;
        } else if (XV_IS(v, XV_T_OBJECT)) {
            e = XV_OBJ_VAL(v, i);
            key = XV_OBJ_KEY(v, i);
        } else {
            e = v->u.arr.items[i];
            key = NULL;   /* array: the index; set: the element */
            if (XV_IS(v, XV_T_SET))
                key = e;
        }
        if (XV_IS(e, XV_T_ARRAY)) {
            if (XV_ARR_LEN(e) == 0) {
                free(it);
                return xv_bi_error(ctx, "operand %d: element must be string or non-empty array",
                                   pos);
            }
            it[i].cidr = XV_ARR_ITEM(e, 0);
        } else if (XV_IS(e, XV_T_STRING)) {
            it[i].cidr = e;
        } else {
            free(it);
            return xv_bi_error(ctx, "operand %d: element must be string or non-empty array", pos);
        }
        it[i].key = key;
    }
    *out = it;
    *n = cnt;
    return 0;
}

BI_FN(bi_cidr_contains_matches)
{
    struct match_item *x, *y;
    size_t nx, ny;
    if (match_items(ctx, a[0], 1, &x, &nx))
        return XV_BI_ERROR;
    if (match_items(ctx, a[1], 2, &y, &ny)) {
        free(x);
        return XV_BI_ERROR;
    }
    struct xv_value *res = xv_val_set_new(0);
    int rc = res ? XV_BI_OK : xv_bi_error(ctx, "out of memory");
    for (size_t i = 0; rc == XV_BI_OK && i < nx; i++)
        for (size_t j = 0; rc == XV_BI_OK && j < ny; j++) {
            if (!XV_IS(x[i].cidr, XV_T_STRING) || !XV_IS(y[j].cidr, XV_T_STRING))
                continue;
            int r = contains_str(S(x[i].cidr), SL(x[i].cidr), S(y[j].cidr), SL(y[j].cidr));
            if (r < 0) {
                rc = bad_cidr(ctx, r == -1 ? x[i].cidr : y[j].cidr);
                break;
            }
            if (!r)
                continue;
            struct xv_value *ki = x[i].key ? xv_val_incref((struct xv_value *)x[i].key)
                                           : xv_val_int((int64_t)i);
            struct xv_value *kj = y[j].key ? xv_val_incref((struct xv_value *)y[j].key)
                                           : xv_val_int((int64_t)j);
            struct xv_value *pr = xv_val_array_new(2);
            if (!ki || !kj || !pr || xv_val_array_push(pr, ki) || xv_val_array_push(pr, kj) ||
                xv_val_set_add(res, pr))
                rc = xv_bi_error(ctx, "out of memory");
            xv_val_decref(ki);
            xv_val_decref(kj);
            xv_val_decref(pr);
        }
    free(x);
    free(y);
    if (rc != XV_BI_OK) {
        xv_val_decref(res);
        return rc;
    }
    *out = res;
    return XV_BI_OK;
}

/* ---- cidr_merge ---- */

struct range {
    int fam;
    u128 lo, hi;
};

static int cmp_range(const void *pa, const void *pb)
{
    const struct range *a = pa, *b = pb;
    if (a->fam != b->fam)
        return a->fam < b->fam ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->hi < b->hi ? -1 : a->hi > b->hi;
}

/* Go's IP.DefaultMask: classful prefix for a bare IPv4 address. */
static int default_bits(uint32_t v)
{
    unsigned first = v >> 24;
    if (first < 0x80) return 8;
    if (first < 0xC0) return 16;
    if (first < 0xE0) return 24;
    return 32;
}

static int emit_range(struct xv_value *arr, int fam, u128 lo, u128 hi)
{
    int w = width(fam);
    for (;;) {
        /* the largest aligned block starting at lo that stays within hi */
        int bits = w;
        u128 maxv = fam == 4 ? (u128)0xFFFFFFFFu : ~(u128)0;
        while (bits > 0) {
            int nb = bits - 1;
            /* span-1 of a /nb block; a /0 IPv6 block spans all 2^128 */
            u128 span1 = (w - nb >= 128) ? ~(u128)0 : (((u128)1 << (w - nb)) - 1);
            if ((lo & span1) != 0 || hi - lo < span1 || lo + span1 > maxv)
                break;
            bits = nb;
        }
        struct xv_val_buf b = {0};
        fmt_ip(&b, fam, lo);
        xv_val_buf_printf(&b, "/%d", bits);
        struct xv_value *e = b.p ? xv_val_string(b.p, b.len) : NULL;
        xv_val_buf_free(&b);
        int rc = (!e || xv_val_array_push(arr, e)) ? -1 : 0;
        xv_val_decref(e);
        if (rc)
            return rc;
        u128 end = bits == 0 ? maxv : lo + (((u128)1 << (w - bits)) - 1);
        if (end >= hi)
            return 0;
        lo = end + 1;
    }
}

BI_FN(bi_cidr_merge)
{
    const struct xv_value *v = a[0];
    if (!XV_IS(v, XV_T_ARRAY) && !XV_IS(v, XV_T_SET))
        return xv_bi_type_error(ctx, 1, "one of {array, set}", v);
    size_t n = v->u.arr.len;
    struct range *r = calloc(n + 1, sizeof *r);
    if (!r)
        return xv_bi_error(ctx, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct xv_value *e = v->u.arr.items[i];
        if (!XV_IS(e, XV_T_STRING)) {
            free(r);
            return xv_bi_elem_err(ctx, 1, v, e, "string");
        }
        struct ipnet net;
        if (memchr(S(e), '/', SL(e))) {
            if (!parse_cidr(S(e), SL(e), &net)) {
                free(r);
                return bad_cidr(ctx, e);
            }
        } else {
            int fam;
            u128 ip;
            if (!parse_ip(S(e), SL(e), &fam, &ip)) {
                free(r);
                return xv_bi_error(ctx, "IP invalid: %.*s", (int)SL(e), S(e));
            }
            if (fam == 6) {
                free(r);
                return xv_bi_error(ctx, "IPv6 invalid: needs prefix length");
            }
            net.fam = 4;
            net.bits = default_bits((uint32_t)ip);
            net.ip = ip & mask_of(4, net.bits);
        }
        r[i].fam = net.fam;
        r[i].lo = net.ip;
        r[i].hi = last_ip(&net);
    }
    qsort(r, n, sizeof *r, cmp_range);
    struct xv_value *arr = xv_val_array_new(n);
    int rc = arr ? 0 : -1;
    size_t i = 0;
    while (rc == 0 && i < n) {
        struct range cur = r[i++];
        while (i < n && r[i].fam == cur.fam &&
               (r[i].lo <= cur.hi || (cur.hi + 1 != 0 && r[i].lo == cur.hi + 1 &&
                                      !(cur.fam == 4 && cur.hi == 0xFFFFFFFFu)))) {
            if (r[i].hi > cur.hi)
                cur.hi = r[i].hi;
            i++;
        }
        rc = emit_range(arr, cur.fam, cur.lo, cur.hi);
    }
    free(r);
    if (rc) {
        xv_val_decref(arr);
        return xv_bi_error(ctx, "out of memory");
    }
    *out = arr;
    return XV_BI_OK;
}

BI_FN(bi_lookup_ip_addr)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    const char *s = S(a[0]);
    size_t n = SL(a[0]);
    struct xv_value *set = xv_val_set_new(2);
    if (!set)
        return xv_bi_error(ctx, "out of memory");
    int fam;
    u128 ip;
    const char *names[2] = {NULL, NULL};
    struct xv_val_buf b = {0};
    size_t ln = strlen("localhost");
    if (parse_ip(s, n, &fam, &ip)) {
        fmt_ip(&b, fam, ip);
        names[0] = b.p;
    } else if ((n == ln && strncasecmp(s, "localhost", ln) == 0) ||
               (n > ln + 1 && s[n - ln - 1] == '.' && strncasecmp(s + n - ln, "localhost", ln) == 0)) {
        names[0] = "127.0.0.1";
        names[1] = "::1";
    } else {
        xv_val_decref(set);
        return xv_bi_error(ctx, "lookup %.*s: name resolution is disabled for policies",
                           (int)(n > 200 ? 200 : n), s);
    }
    for (int i = 0; i < 2 && set; i++) {
        if (!names[i])
            continue;
        struct xv_value *e = xv_val_cstring(names[i]);
        if (!e || xv_val_set_add(set, e)) {
            xv_val_decref(set);
            set = NULL;
        }
        xv_val_decref(e);
    }
    xv_val_buf_free(&b);
    return xv_bi_ret(ctx, set, out);
}

const struct xv_builtin_def xv_bi_net[] = {
    {"net.lookup_ip_addr", 1, bi_lookup_ip_addr, 0},
    {"net.cidr_overlap", 2, bi_cidr_contains, 0},   /* deprecated alias (v0) */
    {"net.cidr_contains", 2, bi_cidr_contains, 0},
    {"net.cidr_intersects", 2, bi_cidr_intersects, 0},
    {"net.cidr_is_valid", 1, bi_cidr_is_valid, 0},
    {"net.cidr_expand", 1, bi_cidr_expand, 0},
    {"net.cidr_contains_matches", 2, bi_cidr_contains_matches, 0},
    {"net.cidr_merge", 1, bi_cidr_merge, 0},
    {NULL, 0, NULL, 0},
};
