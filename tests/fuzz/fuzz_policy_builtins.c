/* link: xv_policy */
/*
 * fuzz_policy_builtins.c — libFuzzer target for the byte-level helpers behind
 * the policy builtins, each of which parses text a policy or its input
 * controls: the Go-regexp translator (and PCRE2 matching of what it
 * accepts), gobwas globs, glob-regex intersection, the Go fmt engine, Go
 * time layouts and durations, PEM/DER key parsing (JWT certificates arrive
 * in policy input), and the GraphQL and YAML parsers.
 *
 * Input: byte 0 selects the helper; the rest is split at the first 0x00 byte
 * into two strings (pattern and subject, layout and value, ...).
 * Besides memory errors (ASan/UBSan), the target checks invariants: a
 * compiled regex reports matches inside the subject, ReplaceAll with the
 * empty template equals the subject minus its matches' total length, and
 * sprintf with no arguments never reads one.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/pubkey.h"
#include "builtins/graphql.h"
#include "go/time.h"
#include "value/yaml.h"
#include "value/buf.h"
#include "go/regexp.h"
#include "go/glob.h"
#include "go/fmt.h"

static size_t total_match;
static size_t subj_len;

static int on_match(const long *ov, void *ud)
{
    (void)ud;
    if (ov[0] < 0 || ov[1] < ov[0] || (size_t)ov[1] > subj_len)
        abort();
    total_match += (size_t)(ov[1] - ov[0]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0] % 9;
    const char *a = (const char *)data + 1;
    size_t n = size - 1;
    const char *z = memchr(a, 0, n);
    size_t an = z ? (size_t)(z - a) : n;
    const char *b = z ? z + 1 : a + n;
    size_t bn = z ? n - an - 1 : 0;
    switch (sel) {
    case 0: {
        struct xv_go_re *re;
        char *err = NULL;
        if (xv_go_re_get(a, an, &re, &err) == 0) {
            total_match = 0;
            subj_len = bn;
            int rc = xv_go_re_find_all(re, b, bn, -1, on_match, NULL);
            size_t ol;
            char *r = xv_go_re_replace_all(re, b, bn, "", 0, &ol);
            /* removing every match leaves exactly the unmatched bytes */
            if (r && rc == 0 && ol + total_match != bn)
                abort();
            free(r);
            xv_go_re_release(re);
        } else if (!err || strncmp(err, "error parsing regexp: ", 22) != 0) {
            abort();
        }
        free(err);
        break;
    }
    case 1: {
        uint32_t d[2] = {'.', '/'};
        struct xv_go_glob *g;
        char *err = NULL;
        if (xv_go_glob_compile(a, an, d, an % 3, &g, &err) == 0) {
            (void)xv_go_glob_match(g, b, bn);
            xv_go_glob_free(g);
        }
        free(err);
        size_t ql;
        free(xv_go_glob_quote_meta(a, an, &ql));
        break;
    }
    case 2: {
        char *err = NULL;
        (void)xv_go_globs_intersect(a, an, b, bn, &err);
        free(err);
        break;
    }
    case 3: {
        struct xv_go_fmt_arg args[4] = {
            {XV_GO_FMT_STRING, 0, 0, b, bn},
            {XV_GO_FMT_INT, (int64_t)bn - 3, 0, NULL, 0},
            {XV_GO_FMT_FLOAT, 0, (double)bn / 7.0, NULL, 0},
            {XV_GO_FMT_BIGINT, 0, 0, "-123456789012345678901234567890", 31},
        };
        size_t ol;
        free(xv_go_fmt_sprintf(a, an, args, 4, &ol));
        free(xv_go_fmt_sprintf(a, an, NULL, 0, &ol));
        break;
    }
    case 4: {
        int64_t sec, ns;
        int32_t nsec;
        char err[256];
        if (xv_go_time_parse(a, an, b, bn, &sec, &nsec, err, sizeof err) == 0) {
            struct xv_go_tm tm;
            xv_go_time_split(sec % 100000000000LL, nsec, NULL, &tm);
            size_t ol;
            free(xv_go_time_format(&tm, a, an, &ol));
        }
        (void)xv_go_parse_duration(b, bn, &ns, err, sizeof err);
        break;
    }
    case 5: {
        char *type;
        unsigned char *der;
        size_t dl, rest;
        struct xv_crypto_key k;
        const char *err;
        if (xv_crypto_pem_decode(a, n, &type, &der, &dl, &rest) == 0) {
            xv_crypto_key_init(&k);
            (void)xv_crypto_key_from_cert(der, dl, &k, &err);
            xv_crypto_key_clear(&k);
            free(type);
            free(der);
        }
        xv_crypto_key_init(&k);
        (void)xv_crypto_key_from_spki((const unsigned char *)a, n, &k, &err);
        xv_crypto_key_clear(&k);
        xv_crypto_key_init(&k);
        (void)xv_crypto_key_from_cert((const unsigned char *)a, n, &k, &err);
        xv_crypto_key_clear(&k);
        break;
    }
    case 7: {
        char err[400];
        struct xv_value *q = xv_bi_gql_parse_query(a, n, data[0] & 0x80, err, sizeof err);
        struct xv_value *s = xv_bi_gql_parse_schema(a, n, err, sizeof err);
        xv_val_decref(q);
        xv_val_decref(s);
        break;
    }
    case 8: {
        char err[300];
        xv_val_decref(xv_val_yaml_parse(a, n, err, sizeof err));
        break;
    }
    default: {
        size_t cnt = xv_val_utf8_count(a, n);
        size_t off = xv_val_utf8_offset(a, n, cnt / 2);
        if (off > n)
            abort();
        break;
    }
    }
    return 0;
}
