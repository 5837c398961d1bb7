/*
 * builtins/uuid.c — uuid.rfc4122 (a random version 4 UUID, the same for the
 * same key within one evaluation) and uuid.parse (google/uuid's forms and
 * fields).
 *
 * Invariant: uuid.rfc4122 is memoised per (evaluation, key) through the
 * builtin context, as OPA's is.
 * Thread safety: reentrant; reads the kernel's random source.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define OOM(ctx) xv_bi_error((ctx), "out of memory")

BI_FN(bi_uuid_rfc4122)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_value *key = xv_val_string_fmt("uuid.rfc4122:%s", S(a[0]));
    if (!key)
        return OOM(ctx);
    struct xv_value *memo = xv_bi_ctx_memo_get(ctx, key);
    if (memo) {
        xv_val_decref(key);
        *out = memo;
        return XV_BI_OK;
    }
    unsigned char u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u) {
        xv_val_decref(key);
        return xv_bi_error(ctx, "no random source");
    }
    u[6] = (unsigned char)((u[6] & 0x0F) | 0x40);   /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
    struct xv_value *v = xv_val_string_fmt(
        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
        u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    if (v)
        xv_bi_ctx_memo_put(ctx, key, v);
    xv_val_decref(key);
    return xv_bi_ret(ctx, v, out);
}

/* google/uuid Parse: 36 (dashed), 38 ({...}), 45 (urn:uuid:...) or 32 hex. */
static bool parse_uuid(const char *s, size_t n, unsigned char u[16])
{
    if (n == 45) {
        if (strncasecmp(s, "urn:uuid:", 9) != 0)
            return false;
        s += 9;
        n = 36;
    } else if (n == 38) {
        if (s[0] != '{' || s[37] != '}')
            return false;
        s++;
        n = 36;
    }
    if (n == 32) {
        for (int i = 0; i < 16; i++) {
            int hi = xv_bi_hexv((unsigned char)s[2 * i]), lo = xv_bi_hexv((unsigned char)s[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return false;
            u[i] = (unsigned char)(hi << 4 | lo);
        }
        return true;
    }
    if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return false;
    static const int pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; i++) {
        int hi = xv_bi_hexv((unsigned char)s[pos[i]]), lo = xv_bi_hexv((unsigned char)s[pos[i] + 1]);
        if (hi < 0 || lo < 0)
            return false;
        u[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static int set_int(struct xv_value *o, const char *k, int64_t v)
{
    struct xv_value *x = xv_val_int(v);
    int rc = x ? xv_val_object_set_str(o, k, x) : -1;
    xv_val_decref(x);
    return rc;
}

static int set_str(struct xv_value *o, const char *k, const char *v)
{
    struct xv_value *x = xv_val_cstring(v);
    int rc = x ? xv_val_object_set_str(o, k, x) : -1;
    xv_val_decref(x);
    return rc;
}

BI_FN(bi_uuid_parse)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    unsigned char u[16];
    if (!parse_uuid(S(a[0]), SL(a[0]), u))
        return xv_bi_error(ctx, "invalid UUID format");
    struct xv_value *o = xv_val_object_new(8);
    if (!o)
        return OOM(ctx);
    int ver = u[6] >> 4;
    const char *variant = (u[8] & 0xC0) == 0x80 ? "RFC4122"
                          : (u[8] & 0xE0) == 0xC0 ? "Microsoft"
                          : (u[8] & 0xE0) == 0xE0 ? "Future"
                                                  : "Reserved";
    int rc = set_int(o, "version", ver) | set_str(o, "variant", variant);
    if (ver == 1 || ver == 2) {
        uint64_t tl = (uint64_t)u[0] << 24 | (uint64_t)u[1] << 16 | (uint64_t)u[2] << 8 | u[3];
        uint64_t tm = (uint64_t)u[4] << 8 | u[5];
        uint64_t th = ((uint64_t)u[6] << 8 | u[7]) & 0x0FFF;
        int64_t t = (int64_t)(th << 48 | tm << 32 | tl);
        /* 100 ns intervals since 1582-10-15 -> Unix ns */
        int64_t d = t - 122192928000000000LL;
        int64_t ns = (d / 10000000) * 1000000000LL + (d % 10000000) * 100;
        char node[18];
        snprintf(node, sizeof node, "%02x-%02x-%02x-%02x-%02x-%02x", u[10], u[11], u[12], u[13],
                 u[14], u[15]);
        char mac[32];
        snprintf(mac, sizeof mac, "%s:%s", (u[10] & 0x02) ? "local" : "global",
                 (u[10] & 0x01) ? "multicast" : "unicast");
        rc |= set_int(o, "time", ns) | set_int(o, "clocksequence", ((u[8] << 8) | u[9]) & 0x3FFF) |
              set_str(o, "nodeid", node) | set_str(o, "macvariables", mac);
        if (ver == 2) {
            char dom[24];
            static const char *const names[] = {"Person", "Group", "Org"};
            if (u[9] < 3)
                snprintf(dom, sizeof dom, "%s", names[u[9]]);
            else
                snprintf(dom, sizeof dom, "Domain%d", u[9]);
            rc |= set_str(o, "domain", dom) |
                  set_int(o, "id", (int64_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
                                             (uint32_t)u[2] << 8 | u[3]));
        }
    }
    if (rc) {
        xv_val_decref(o);
        return OOM(ctx);
    }
    *out = o;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_uuid[] = {
    {"uuid.rfc4122", 1, bi_uuid_rfc4122, XV_BIF_NONDET},
    {"uuid.parse", 1, bi_uuid_parse, 0},
    {NULL, 0, NULL, 0},
};
