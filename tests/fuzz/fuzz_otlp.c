/* link: xv_exporter xv_common */
/*
 * fuzz_otlp.c — libFuzzer target for the OTLP encoder (exporter/otlp_encode.c,
 * otlp_genai.c): a trace record, whose text comes from the app and the
 * upstream, becomes a span and a whole ExportTraceServiceRequest.
 *
 * Input: byte 0 is a control byte, the rest is a JSON record.
 *   bit 0  encoding: protobuf (0) or OTLP/JSON (1)
 *   bit 1  content capture opted in
 *   bit 2  the text is also tried as a W3C traceparent and as a trace id
 * Besides memory errors (ASan/UBSan), the target checks and aborts on:
 *   - an encode result other than 0, 1 (no span: tool_result) or a
 *     negative code; a span appended when the result is not 0;
 *   - a request body that is not well-formed: protobuf whose fields and
 *     nested messages do not parse to the end, or OTLP/JSON that cJSON
 *     rejects or that lacks resourceSpans;
 *   - with content off, a marked message text ("SECRET:" + [A-Za-z0-9_]*,
 *     held by no other field) appearing in the body (captured text must
 *     not leave without the opt-in);
 *   - an accepted traceparent that is not 55+ characters of lower-case hex
 *     fields, or all-zero ids.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "otlp_int.h"

/* Walk protobuf bytes: every field well-formed; length-delimited fields
 * that look like messages are walked too (depth-bounded). A string field
 * may fail to parse as a message: that is fine, only the outer levels the
 * encoder wrote must parse. Returns 0 when p[0..n) is a message. */
static int pb_walk(const uint8_t *p, size_t n, int depth)
{
    size_t i = 0;
    while (i < n) {
        uint64_t key = 0;
        int shift = 0;
        do {
            if (i >= n || shift > 63)
                return -1;
            key |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } while (p[i++] & 0x80);
        unsigned wt = key & 7;
        if ((key >> 3) == 0)
            return -1;
        if (wt == 0) {
            while (i < n && (p[i] & 0x80))
                i++;
            if (i++ >= n)
                return -1;
        } else if (wt == 1) {
            if (n - i < 8)
                return -1;
            i += 8;
        } else if (wt == 2) {
            uint64_t len = 0;
            shift = 0;
            do {
                if (i >= n || shift > 63)
                    return -1;
                len |= (uint64_t)(p[i] & 0x7f) << shift;
                shift += 7;
            } while (p[i++] & 0x80);
            if (len > n - i)
                return -1;
            if (depth > 0)
                (void)pb_walk(p + i, (size_t)len, depth - 1);
            i += (size_t)len;
        } else {
            return -1;
        }
    }
    return 0;
}

static int has_text(const char *body, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (n > len)
        return 0;
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(body + i, s, n))
            return 1;
    return 0;
}

/* A marked secret: "SECRET:" and then only letters, digits, '_' (no JSON
 * escaping can hide another copy of it in the record). */
static int is_marker(const char *s)
{
    if (strncmp(s, "SECRET:", 7))
        return 0;
    for (s += 7; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* How often s occurs in the printed record (another field may hold it). */
static size_t occurrences(const cJSON *rec, const char *s)
{
    char *all = cJSON_PrintUnformatted(rec);
    size_t hits = 0;
    for (const char *q = all; q && (q = strstr(q, s)); q++)
        hits++;
    free(all);
    return hits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    unsigned ctl = data[0];
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    if (ctl & 4) {
        uint8_t tid[16], sid[8];
        if (xv_exp_otlp_parse_traceparent(text, tid, sid) == 0) {
            size_t n = strlen(text);
            int zero_t = 1, zero_s = 1;
            for (int i = 0; i < 16; i++)
                zero_t &= tid[i] == 0;
            for (int i = 0; i < 8; i++)
                zero_s &= sid[i] == 0;
            if (n < 55 || text[2] != '-' || text[35] != '-' || text[52] != '-' || zero_t || zero_s)
                abort();
            for (size_t i = 3; i < 35; i++)
                if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
                    abort();
        }
        (void)xv_exp_otlp_parse_trace_id(text, tid);
    }

    cJSON *rec = cJSON_Parse(text);
    enum xv_exp_otlp_proto proto = (ctl & 1) ? XV_OTLP_JSON : XV_OTLP_PROTOBUF;
    int content = (ctl & 2) != 0;
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, XV_OTLP_SPAN_MAX + 64);
    b.nspans = 0;
    int rc = xv_exp_otlp_encode_span(proto, content, rec, &b);
    if (rc > 1 || (rc != 0 && (b.nspans || b.frags.len)))
        abort();
    if (rc == 0) {
        struct xv_exp_otlp_cfg cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.proto = proto;
        cfg.service_name = "fuzz";
        cfg.exe_name = "fuzz_otlp";
        char *body = NULL;
        size_t len = 0;
        if (xv_exp_otlp_encode_request(&cfg, &b, &body, &len) == 0) {
            if (proto == XV_OTLP_PROTOBUF) {
                if (pb_walk((const uint8_t *)body, len, 3) != 0)
                    abort();
            } else {
                cJSON *j = cJSON_ParseWithLength(body, len);
                if (!j || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "resourceSpans")))
                    abort();
                cJSON_Delete(j);
            }
            if (!content) {
                const cJSON *m;
                cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(rec, "messages")) {
                    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
                    if (cJSON_IsString(c) && is_marker(c->valuestring) &&
                        has_text(body, len, c->valuestring) && occurrences(rec, c->valuestring) <= 1)
                        abort();
                }
            }
            free(body);
        }
    }
    xv_buf_free(&b.frags);
    cJSON_Delete(rec);
    free(text);
    return 0;
}
