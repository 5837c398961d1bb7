/* link: xv_exporter xv_common */
/*
 * fuzz_otlp_record.c — libFuzzer target for the OTLP encoder after the
 * exporter's UTF-8 pass (fuzz_otlp.c covers the encoder alone): a trace record (as
 * the exporter gets it; in the agent its strings come from the app and the
 * upstream) → span(s) → a complete ExportTraceServiceRequest, in protobuf
 * and in OTLP/JSON, with and without captured content.
 *
 * Input: byte 0 is a control byte, the rest is a JSON record (a second
 * record after a NUL byte, e.g. a tool step).
 *   bit 0     protobuf (0) or JSON (1)
 *   bit 1     capture content
 *   bit 2     push the records through the exporter's UTF-8 sanitising
 *             path first (as the agent does) — then every output must be
 *             valid UTF-8
 * Invariants checked (abort on violation): protobuf output is well-formed
 * wire format down to every nested length-delimited field that parses as
 * a message; JSON output parses with cJSON; with sanitised input every
 * string in either output is valid UTF-8 (the JSON text as a whole).
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_int.h"
#include "xv_common.h"

static struct xv_exp_otlp_cfg *g_cfg[2];

static void setup(void)
{
    if (g_cfg[0])
        return;
    static const char *const protos[2] = { "http/protobuf", "http/json" };
    for (int i = 0; i < 2; i++) {
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
        setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protos[i], 1);
        setenv("OTEL_SERVICE_NAME", "fuzz-svc", 1);
        setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=fuzz,team=a%2Cb", 1);
        setenv("XENOVIA_SPOOL_DIR", "/nonexistent/xv-fuzz-spool", 1);
        g_cfg[i] = xv_exp_otlp_cfg_from_env();
        if (!g_cfg[i])
            abort();
    }
}

static int varint(const unsigned char *p, size_t n, size_t *at, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*at >= n)
            return -1;
        unsigned char b = p[(*at)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Is p[0..n) a sequence of well-formed fields? Nested length-delimited
 * fields are walked when they themselves parse (strings and bytes need not);
 * `strict` demands it at the top. `utf8`: length-delimited fields that are
 * not messages must be valid UTF-8 unless they are ids (8 or 16 bytes). */
static int walk(const unsigned char *p, size_t n, int depth, int utf8)
{
    size_t at = 0;
    if (depth > 16)
        return 0;
    while (at < n) {
        uint64_t key, v;
        if (varint(p, n, &at, &key) || (key >> 3) == 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (varint(p, n, &at, &v))
                return -1;
            break;
        case 1:
            if (n - at < 8)
                return -1;
            at += 8;
            break;
        case 5:
            if (n - at < 4)
                return -1;
            at += 4;
            break;
        case 2:
            if (varint(p, n, &at, &v) || v > n - at)
                return -1;
            /* 8 and 16 bytes: span and trace ids, random bytes that must
             * not be walked (they may look like a message holding
             * non-UTF-8 "strings": a false alarm seen once per ~1000 runs). */
            /* A field that is valid UTF-8 as a whole is taken as a string
             * and not descended into: a string can happen to parse as a
             * message whose "fields" are slices of it, cut anywhere (a false
             * alarm seen on a span name of U+FFFD characters). */
            if (v != 8 && v != 16 && !xv_utf8_valid((const char *)p + at, (size_t)v) &&
                walk(p + at, (size_t)v, depth + 1, utf8) != 0 && utf8)
                abort();
            at += (size_t)v;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

/* The exporter's sanitising pass, reproduced through the public path: a
 * record printed and re-parsed after xv_utf8_fix of every string. */
static void sanitize(cJSON *v)
{
    for (; v; v = v->next) {
        if (v->string && !(v->type & cJSON_StringIsConst) &&
            !xv_utf8_valid(v->string, strlen(v->string))) {
            char *t = xv_utf8_fix(v->string, strlen(v->string), 3 * strlen(v->string), NULL);
            if (t) {
                cJSON_free(v->string);
                v->string = t;
            }
        }
        if (cJSON_IsString(v) && v->valuestring &&
            !xv_utf8_valid(v->valuestring, strlen(v->valuestring))) {
            size_t l = strlen(v->valuestring);
            char *t = xv_utf8_fix(v->valuestring, l, 3 * l, NULL);
            if (t) {
                cJSON_free(v->valuestring);
                v->valuestring = t;
            }
        }
        if (v->child)
            sanitize(v->child);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    setup();
    unsigned ctl = data[0];
    int json = ctl & 1, content = (ctl >> 1) & 1, clean = (ctl >> 2) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(text, 0, len);
    size_t l1 = nul ? (size_t)(nul - text) : len;
    cJSON *recs[2] = { cJSON_ParseWithLength(text, l1),
                       nul ? cJSON_ParseWithLength(nul + 1, len - l1 - 1) : NULL };
    struct xv_exp_otlp_batch b;
    memset(&b, 0, sizeof b);
    xv_buf_init(&b.frags, 16u << 20);
    for (int i = 0; i < 2; i++) {
        if (!recs[i])
            continue;
        if (clean)
            sanitize(recs[i]);
        xv_exp_otlp_encode_span(json ? XV_OTLP_JSON : XV_OTLP_PROTOBUF, content, recs[i], &b);
    }
    char *out = NULL;
    size_t out_len = 0;
    if (b.nspans && xv_exp_otlp_encode_request(g_cfg[json], &b, &out, &out_len) == 0) {
        if (json) {
            cJSON *back = cJSON_ParseWithLength(out, out_len);
            if (!back)
                abort();
            cJSON_Delete(back);
            if (clean && !xv_utf8_valid(out, out_len))
                abort();
        } else if (walk((const unsigned char *)out, out_len, 0, clean) != 0) {
            abort();
        }
    }
    free(out);
    xv_buf_free(&b.frags);
    cJSON_Delete(recs[0]);
    cJSON_Delete(recs[1]);
    return 0;
}
