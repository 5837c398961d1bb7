/*
 * otlp_encode.c — trace record → OTLP span, and complete request bodies in
 * both OTLP encodings: protobuf (hand-written writer; field numbers from the
 * public opentelemetry-proto definitions: collector/trace/v1, trace/v1,
 * common/v1, resource/v1) and OTLP/JSON (lowerCamelCase, hex ids, 64-bit
 * integers as strings, enums as integers).
 *
 * Mapping (SPEC §7, GenAI semantic conventions): see docs/exporter.md;
 * the attributes are otlp_genai.c's. A call record becomes a CLIENT span
 * "{operation} {model}" in the trace of its trace_id (hyphenated UUID or
 * 32 hex digits) — or, when the app sent a valid W3C traceparent, in the
 * app's trace under the app's span, with its tracestate. A tool_call step
 * becomes an INTERNAL span "execute_tool {tool_name}", child of its call's
 * span; a tool_result step is no span (its tool call has the one span).
 * The call's span id is the low 64 bits of its trace id, so steps name it
 * without any table, in any process.
 *
 * Invariant: the encoders only read the record (borrowed); every buffer
 * they fill has a hard limit (XV_OTLP_SPAN_MAX per span).
 * Thread safety: all functions may run on any thread; no shared state
 * (random_bytes' fallback state is per thread).
 */
#include "otlp_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SPAN_KIND_INTERNAL 1
#define SPAN_KIND_CLIENT 3
#define STATUS_CODE_ERROR 2

/* ---- ids ---- */

static void random_bytes(uint8_t *out, size_t n)
{
    if (getrandom(out, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    /* Entropy pool not ready (early boot): a per-thread xorshift is good
     * enough for span ids, which only need to be unlikely to collide. */
    static _Thread_local uint64_t s;
    if (!s)
        s = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&s;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out[i] = (uint8_t)s;
    }
}

static int nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

static void new_span_id(uint8_t sid[8])
{
    do
        random_bytes(sid, 8);
    while (!nonzero(sid, 8));
}

/* Hex text of exactly 2n digits → n bytes. Returns 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = xv_hex_value((unsigned char)s[2 * i]), lo = xv_hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    xv_hex_encode(p, n, out);   /* common/bytes.c */
}

/* ---- trace id → span id of the call ---- */

/* A call's span id is derived from its trace id (its low 64 bits, random
 * like the rest): the call's span and its tool steps' parent link agree
 * whichever path encodes them, in whatever order, in whatever process —
 * no table to keep, nothing to lose to eviction or a fork. */
static void call_span_id(const uint8_t tid[16], uint8_t sid[8])
{
    memcpy(sid, tid + 8, 8);
    if (!nonzero(sid, 8))
        sid[7] = 1;
}

void xv_exp_otlp_note_call(const cJSON *record)
{
    (void)record; /* span ids are derived, nothing to note (kept for the push path) */
}

void xv_exp_otlp_span_map_reset(void)
{
}

/* ---- time ---- */

uint64_t xv_exp_otlp_parse_time(const char *s)
{
    int Y, M, D, h, m, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n < 19)
        return 0;
    struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                     .tm_min = m, .tm_sec = sec };
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return 0;
    uint64_t frac = 0;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (digits < 9) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                digits++;
            }
        while (digits++ < 9)
            frac *= 10;
    }
    if (*p != 'Z' && *p != 'z')
        return 0;
    return (uint64_t)t * 1000000000u + frac;
}

/* ---- protobuf writer ---- */

static size_t vlen(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static int pb_varint(struct xv_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    return xv_buf_append(b, t, n);
}

/* Wire types: 0 varint, 1 fixed64, 2 length-delimited. */
static int pb_tag(struct xv_buf *b, unsigned field, unsigned wt)
{
    return pb_varint(b, ((uint64_t)field << 3) | wt);
}

static int pb_len(struct xv_buf *b, unsigned field, size_t len)
{
    int rc = pb_tag(b, field, 2);
    return rc ? rc : pb_varint(b, len);
}

static int pb_bytes(struct xv_buf *b, unsigned field, const void *p, size_t n)
{
    int rc = pb_len(b, field, n);
    return rc ? rc : xv_buf_append(b, p, n);
}

static int pb_fixed64(struct xv_buf *b, unsigned field, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    int rc = pb_tag(b, field, 1);
    return rc ? rc : xv_buf_append(b, t, 8);
}

/* AnyValue sizes (fields: 1 string, 2 bool, 3 int64, 4 double, 5 array). */
static size_t av_str_size(size_t n)
{
    return 1 + vlen(n) + n;
}

/* KeyValue{1: key, 2: AnyValue} as field `field` of the enclosing message;
 * `av` is the already encoded AnyValue. */
static int pb_kv(struct xv_buf *b, unsigned field, const char *k, const uint8_t *av, size_t avn)
{
    size_t kl = strlen(k);
    size_t body = 1 + vlen(kl) + kl + 1 + vlen(avn) + avn;
    int rc = pb_len(b, field, body);
    if (!rc)
        rc = pb_bytes(b, 1, k, kl);
    if (!rc)
        rc = pb_bytes(b, 2, av, avn);
    return rc;
}

/* ---- attribute emitter for both encodings (struct in otlp_int.h) ---- */

static void j_kv(struct xv_exp_otlp_emit *e, const char *k, cJSON *value)
{
    cJSON *kv = value ? cJSON_CreateObject() : NULL;
    if (!kv || !cJSON_AddStringToObject(kv, "key", k) ||
        !cJSON_AddItemToObject(kv, "value", value)) {
        /* value is ours until AddItemToObject succeeded */
        if (!kv || !cJSON_GetObjectItemCaseSensitive(kv, "value"))
            cJSON_Delete(value);
        cJSON_Delete(kv);
        e->rc = XV_E_NOMEM;
        return;
    }
    cJSON_AddItemToArray(e->jattrs, kv);
}

static cJSON *j_wrap(const char *type, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !v || !cJSON_AddItemToObject(o, type, v)) {
        cJSON_Delete(o);
        cJSON_Delete(v);
        return NULL;
    }
    return o;
}

void xv_exp_otlp_attr_strn(struct xv_exp_otlp_emit *e, const char *k, const char *v, size_t n)
{
    if (e->rc)
        return;
    if (e->proto == XV_OTLP_JSON) {
        char *t = strndup(v, n);
        j_kv(e, k, t ? j_wrap("stringValue", cJSON_CreateString(t)) : NULL);
        free(t);
        return;
    }
    struct xv_buf av;
    xv_buf_init(&av, XV_OTLP_SPAN_MAX);
    e->rc = pb_bytes(&av, 1, v, n);
    if (!e->rc)
        e->rc = pb_kv(e->pb, e->field, k, (const uint8_t *)av.data, av.len);
    xv_buf_free(&av);
}

void xv_exp_otlp_attr_str(struct xv_exp_otlp_emit *e, const char *k, const char *v)
{
    if (v)
        xv_exp_otlp_attr_strn(e, k, v, strlen(v));
}

void xv_exp_otlp_attr_int(struct xv_exp_otlp_emit *e, const char *k, int64_t v)
{
    if (e->rc)
        return;
    if (e->proto == XV_OTLP_JSON) {
        char t[24];
        snprintf(t, sizeof t, "%lld", (long long)v);
        j_kv(e, k, j_wrap("intValue", cJSON_CreateString(t)));
        return;
    }
    uint8_t av[12];
    struct xv_buf b;
    xv_buf_init(&b, sizeof av);
    e->rc = pb_tag(&b, 3, 0);
    if (!e->rc)
        e->rc = pb_varint(&b, (uint64_t)v);   /* int64: two's complement, 10 bytes if < 0 */
    if (!e->rc)
        e->rc = pb_kv(e->pb, e->field, k, (const uint8_t *)b.data, b.len);
    xv_buf_free(&b);
}

void xv_exp_otlp_attr_double(struct xv_exp_otlp_emit *e, const char *k, double v)
{
    if (e->rc || !isfinite(v))
        return;
    if (e->proto == XV_OTLP_JSON) {
        j_kv(e, k, j_wrap("doubleValue", cJSON_CreateNumber(v)));
        return;
    }
    uint64_t bits;
    memcpy(&bits, &v, 8);
    uint8_t av[9];
    av[0] = (4 << 3) | 1;
    for (int i = 0; i < 8; i++)
        av[1 + i] = (uint8_t)(bits >> (8 * i));
    e->rc = pb_kv(e->pb, e->field, k, av, sizeof av);
}

void xv_exp_otlp_attr_bool(struct xv_exp_otlp_emit *e, const char *k, int v)
{
    if (e->rc)
        return;
    if (e->proto == XV_OTLP_JSON) {
        j_kv(e, k, j_wrap("boolValue", cJSON_CreateBool(v)));
        return;
    }
    uint8_t av[2] = { (2 << 3) | 0, v ? 1 : 0 };
    e->rc = pb_kv(e->pb, e->field, k, av, sizeof av);
}

/* A string array (non-string members skipped). */
void xv_exp_otlp_attr_strarr(struct xv_exp_otlp_emit *e, const char *k, const cJSON *arr)
{
    if (e->rc)
        return;
    const cJSON *it;
    if (e->proto == XV_OTLP_JSON) {
        cJSON *vals = cJSON_CreateArray();
        cJSON_ArrayForEach(it, arr)
            if (cJSON_IsString(it) && vals)
                cJSON_AddItemToArray(vals, j_wrap("stringValue", cJSON_CreateString(it->valuestring)));
        cJSON *av = cJSON_CreateObject();
        if (av && vals && cJSON_AddItemToObject(av, "values", vals)) {
            j_kv(e, k, j_wrap("arrayValue", av));
        } else {
            cJSON_Delete(av);
            cJSON_Delete(vals);
            e->rc = XV_E_NOMEM;
        }
        return;
    }
    /* ArrayValue{1: repeated AnyValue} inside AnyValue field 5. */
    size_t inner = 0;
    cJSON_ArrayForEach(it, arr)
        if (cJSON_IsString(it)) {
            size_t a = av_str_size(strlen(it->valuestring));
            inner += 1 + vlen(a) + a;
        }
    struct xv_buf b;
    xv_buf_init(&b, XV_OTLP_SPAN_MAX);
    int rc = pb_len(&b, 5, inner);
    cJSON_ArrayForEach(it, arr)
        if (!rc && cJSON_IsString(it)) {
            size_t n = strlen(it->valuestring);
            rc = pb_len(&b, 1, av_str_size(n));
            if (!rc)
                rc = pb_bytes(&b, 1, it->valuestring, n);
        }
    if (!rc)
        rc = pb_kv(e->pb, e->field, k, (const uint8_t *)b.data, b.len);
    xv_buf_free(&b);
    e->rc = rc;
}

/* ---- the span ---- */

static const char *str(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Lower-case hex only (W3C trace context rejects anything else). */
static int lhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1;
    char t[33];
    if (n > 16)
        return -1;
    memcpy(t, s, 2 * n);
    t[2 * n] = '\0';
    return unhex(t, out, n);
}

int xv_exp_otlp_parse_trace_id(const char *s, uint8_t out[16])
{
    char hex[33];
    size_t len = s ? strlen(s) : 0, k = 0;
    if (len == 36) {               /* 8-4-4-4-12 */
        for (size_t i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (s[i] != '-')
                    return -1;
            } else {
                hex[k++] = s[i];
            }
        }
        hex[k] = '\0';
        s = hex;
    } else if (len != 32) {
        return -1;
    }
    return unhex(s, out, 16) == 0 && nonzero(out, 16) ? 0 : -1;
}

int xv_exp_otlp_parse_traceparent(const char *s, uint8_t tid[16], uint8_t psid[8])
{
    /* version "-" trace-id(32) "-" parent-id(16) "-" flags(2); version ff
     * is invalid; version 00 is exactly 55 characters, a later version may
     * append "-…"; all-zero ids are invalid. */
    uint8_t ver, flags;
    size_t n = s ? strlen(s) : 0;
    if (n < 55 || lhex(s, &ver, 1) < 0 || ver == 0xff || s[2] != '-' || s[35] != '-' ||
        s[52] != '-' || lhex(s + 53, &flags, 1) < 0)
        return -1;
    if ((ver == 0 && n != 55) || (n > 55 && s[55] != '-'))
        return -1;
    if (lhex(s + 3, tid, 16) < 0 || lhex(s + 36, psid, 8) < 0 || !nonzero(tid, 16) ||
        !nonzero(psid, 8))
        return -1;
    return 0;
}

/* What the span is, apart from its attributes. */
struct span_head {
    uint8_t tid[16], sid[8], psid[8];
    int has_parent;
    char name[512];
    int kind;
    uint64_t start_ns, end_ns;
    const char *error;             /* borrowed from the record */
    const char *tracestate;        /* the app's W3C tracestate (borrowed), or NULL */
};

/* Returns 1 when the record is no span of its own (a tool_result step:
 * its tool call already has the one execute_tool span), else 0. */
static int head_from_record(const cJSON *r, struct span_head *h, int step)
{
    memset(h, 0, sizeof *h);
    const char *st = str(r, "step_type");
    if (step && st && !strcmp(st, "tool_result"))
        return 1;
    /* The call's trace id: a call's own; a step names its call with
     * parent_call_trace_id (older records) or parent_trace_id. */
    const char *call_tid = str(r, "trace_id");
    if (step)
        call_tid = str(r, "parent_call_trace_id") ? str(r, "parent_call_trace_id")
                                                  : str(r, "parent_trace_id");
    uint8_t ctid[16], ptid[16], psid[8];
    if (xv_exp_otlp_parse_trace_id(call_tid, ctid) < 0) {
        /* No usable call (a foreign record): its own trace id, else a
         * fresh one; a root span. */
        if (xv_exp_otlp_parse_trace_id(str(r, "trace_id"), h->tid) < 0)
            do
                random_bytes(h->tid, 16);
            while (!nonzero(h->tid, 16));
        new_span_id(h->sid);
    } else {
        /* The call's span id is derived from its trace id, so steps name
         * it without any table. An app that sent traceparent gets the
         * call (and its steps) in its own trace, under its span. */
        uint8_t csid[8];
        call_span_id(ctid, csid);
        int app = xv_exp_otlp_parse_traceparent(str(r, "traceparent"), ptid, psid) == 0;
        memcpy(h->tid, app ? ptid : ctid, 16);
        if (step) {
            memcpy(h->psid, csid, 8);
            h->has_parent = 1;
            new_span_id(h->sid);
        } else {
            memcpy(h->sid, csid, 8);
            if (app) {
                memcpy(h->psid, psid, 8);
                h->has_parent = 1;
                h->tracestate = str(r, "tracestate");
            }
        }
    }
    if (step) {
        const char *tool = str(r, "tool_name");
        xv_utf8_snprintf(h->name, sizeof h->name, "execute_tool%s%.*s", tool && *tool ? " " : "",
                         tool ? (int)xv_utf8_cut(tool, strlen(tool), 400) : 0, tool ? tool : "");
        h->kind = SPAN_KIND_INTERNAL;
    } else {
        const char *model = str(r, "model");
        /* An unknown request_type is its own operation name: cut it between
         * characters too (fuzz_otlp_record found the 64-byte cut). */
        const char *op = xv_exp_otlp_operation(str(r, "request_type"));
        xv_utf8_snprintf(h->name, sizeof h->name, "%.*s%s%.*s",
                         (int)xv_utf8_cut(op, strlen(op), 64), op, model && *model ? " " : "",
                         model ? (int)xv_utf8_cut(model, strlen(model), 400) : 0, model ? model : "");
        h->kind = SPAN_KIND_CLIENT;
    }
    h->start_ns = xv_exp_otlp_parse_time(str(r, "start_time"));
    h->end_ns = xv_exp_otlp_parse_time(str(r, "end_time"));
    if (!h->start_ns)
        h->start_ns = h->end_ns ? h->end_ns : xv_now_wall_ns();
    if (h->end_ns < h->start_ns)
        h->end_ns = h->start_ns;
    h->error = str(r, "error");
    return 0;
}

static int encode_pb(const cJSON *r, int step, int content, const struct span_head *h,
                     struct xv_exp_otlp_batch *b)
{
    struct xv_buf s;
    xv_buf_init(&s, XV_OTLP_SPAN_MAX);
    int rc = pb_bytes(&s, 1, h->tid, 16);
    if (!rc)
        rc = pb_bytes(&s, 2, h->sid, 8);
    if (!rc && h->tracestate && *h->tracestate)
        rc = pb_bytes(&s, 3, h->tracestate, strlen(h->tracestate));
    if (!rc && h->has_parent)
        rc = pb_bytes(&s, 4, h->psid, 8);
    if (!rc)
        rc = pb_bytes(&s, 5, h->name, strlen(h->name));
    if (!rc)
        rc = pb_tag(&s, 6, 0);
    if (!rc)
        rc = pb_varint(&s, (uint64_t)h->kind);
    if (!rc)
        rc = pb_fixed64(&s, 7, h->start_ns);
    if (!rc)
        rc = pb_fixed64(&s, 8, h->end_ns);
    if (!rc) {
        struct xv_exp_otlp_emit e = { .proto = XV_OTLP_PROTOBUF, .pb = &s, .field = 9 };
        xv_exp_otlp_attrs_from_record(&e, r, step, content);
        rc = e.rc;
    }
    if (!rc && h->error) {
        /* Status{2: message, 3: code} */
        size_t ml = strlen(h->error);
        if (ml > 4096)
            ml = 4096;
        rc = pb_len(&s, 15, 1 + vlen(ml) + ml + 2);
        if (!rc)
            rc = pb_bytes(&s, 2, h->error, ml);
        if (!rc)
            rc = pb_tag(&s, 3, 0);
        if (!rc)
            rc = pb_varint(&s, STATUS_CODE_ERROR);
    }
    /* ScopeSpans field 2 wraps it. */
    size_t old = b->frags.len;
    if (!rc)
        rc = pb_bytes(&b->frags, 2, s.data, s.len);
    if (rc)
        b->frags.len = old;
    xv_buf_free(&s);
    return rc;
}

static int encode_json(const cJSON *r, int step, int content, const struct span_head *h,
                       struct xv_exp_otlp_batch *b)
{
    char hex[33], t[24];
    cJSON *o = cJSON_CreateObject();
    cJSON *attrs = cJSON_CreateArray();
    if (!o || !attrs) {
        cJSON_Delete(o);
        cJSON_Delete(attrs);
        return XV_E_NOMEM;
    }
    tohex(h->tid, 16, hex);
    cJSON_AddStringToObject(o, "traceId", hex);
    tohex(h->sid, 8, hex);
    cJSON_AddStringToObject(o, "spanId", hex);
    if (h->tracestate && *h->tracestate)
        cJSON_AddStringToObject(o, "traceState", h->tracestate);
    if (h->has_parent) {
        tohex(h->psid, 8, hex);
        cJSON_AddStringToObject(o, "parentSpanId", hex);
    }
    cJSON_AddStringToObject(o, "name", h->name);
    cJSON_AddNumberToObject(o, "kind", h->kind);
    snprintf(t, sizeof t, "%llu", (unsigned long long)h->start_ns);
    cJSON_AddStringToObject(o, "startTimeUnixNano", t);
    snprintf(t, sizeof t, "%llu", (unsigned long long)h->end_ns);
    cJSON_AddStringToObject(o, "endTimeUnixNano", t);
    struct xv_exp_otlp_emit e = { .proto = XV_OTLP_JSON, .jattrs = attrs };
    xv_exp_otlp_attrs_from_record(&e, r, step, content);
    cJSON_AddItemToObject(o, "attributes", attrs);
    if (h->error) {
        cJSON *st = cJSON_AddObjectToObject(o, "status");
        if (st) {
            char *m = strndup(h->error, 4096);
            cJSON_AddStringToObject(st, "message", m ? m : "");
            free(m);
            cJSON_AddNumberToObject(st, "code", STATUS_CODE_ERROR);
        }
    }
    int rc = e.rc;
    char *txt = rc ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!rc && !txt)
        rc = XV_E_NOMEM;
    if (!rc && strlen(txt) > XV_OTLP_SPAN_MAX)
        rc = XV_E_LIMIT;
    size_t old = b->frags.len;
    if (!rc && b->nspans)
        rc = xv_buf_append(&b->frags, ",", 1);
    if (!rc)
        rc = xv_buf_append(&b->frags, txt, strlen(txt));
    if (rc)
        b->frags.len = old;
    free(txt);
    return rc;
}

int xv_exp_otlp_encode_span(enum xv_exp_otlp_proto proto, int content, const cJSON *record,
                            struct xv_exp_otlp_batch *b)
{
    if (!cJSON_IsObject(record))
        return XV_E_PARSE;
    int step = str(record, "step_type") != NULL;
    struct span_head h;
    if (head_from_record(record, &h, step))
        return 1;
    int rc = proto == XV_OTLP_JSON ? encode_json(record, step, content, &h, b)
                                   : encode_pb(record, step, content, &h, b);
    if (rc == 0)
        b->nspans++;
    return rc;
}

/* ---- the request around the spans ---- */

#define SCOPE_NAME "libxenovia"
#define SCOPE_VERSION "0.1.0"

/* Resource per the SDK specification: service.name, the
 * OTEL_RESOURCE_ATTRIBUTES (the user's value of a key wins over ours),
 * process.pid, process.executable.name, telemetry.sdk.*. */
static int user_set(const struct xv_exp_otlp_cfg *cfg, const char *k)
{
    for (size_t i = 0; i < cfg->nres; i++)
        if (!strcmp(cfg->res[i].key, k))
            return 1;
    return 0;
}

static void resource_attrs(struct xv_exp_otlp_emit *e, const struct xv_exp_otlp_cfg *cfg)
{
    xv_exp_otlp_attr_str(e, "service.name", cfg->service_name);
    for (size_t i = 0; i < cfg->nres; i++)
        xv_exp_otlp_attr_str(e, cfg->res[i].key, cfg->res[i].value);
    if (!user_set(cfg, "process.pid"))
        xv_exp_otlp_attr_int(e, "process.pid", (int64_t)getpid());
    if (cfg->exe_name && !user_set(cfg, "process.executable.name"))
        xv_exp_otlp_attr_str(e, "process.executable.name", cfg->exe_name);
    if (!user_set(cfg, "telemetry.sdk.name"))
        xv_exp_otlp_attr_str(e, "telemetry.sdk.name", "libxenovia");
    /* The agent is written in C, which has no well-known value; the
     * conventions allow a custom one. */
    if (!user_set(cfg, "telemetry.sdk.language"))
        xv_exp_otlp_attr_str(e, "telemetry.sdk.language", "c");
    if (!user_set(cfg, "telemetry.sdk.version"))
        xv_exp_otlp_attr_str(e, "telemetry.sdk.version", SCOPE_VERSION);
}

static int request_pb(const struct xv_exp_otlp_cfg *cfg, const struct xv_exp_otlp_batch *b, char **out,
                      size_t *out_len)
{
    struct xv_buf res, scope, req;
    xv_buf_init(&res, 1 << 20);
    xv_buf_init(&scope, 256);
    struct xv_exp_otlp_emit e = { .proto = XV_OTLP_PROTOBUF, .pb = &res, .field = 1 };
    resource_attrs(&e, cfg);                          /* Resource{1: attributes} */
    int rc = e.rc;
    if (!rc)
        rc = pb_bytes(&scope, 1, SCOPE_NAME, strlen(SCOPE_NAME));
    if (!rc)
        rc = pb_bytes(&scope, 2, SCOPE_VERSION, strlen(SCOPE_VERSION));
    /* ScopeSpans{1: scope, 2: spans…, 3: schema_url}; ResourceSpans{1:
     * resource, 2: scope_spans, 3: schema_url};
     * ExportTraceServiceRequest{1: resource_spans}. */
    size_t ul = strlen(XV_OTLP_SCHEMA_URL);
    size_t url = 1 + vlen(ul) + ul;
    size_t ss = 1 + vlen(scope.len) + scope.len + b->frags.len + url;
    size_t rs = 1 + vlen(res.len) + res.len + 1 + vlen(ss) + ss + url;
    size_t total = 1 + vlen(rs) + rs;
    xv_buf_init(&req, total);
    if (!rc)
        rc = pb_len(&req, 1, rs);
    if (!rc)
        rc = pb_bytes(&req, 1, res.data ? res.data : "", res.len);
    if (!rc)
        rc = pb_len(&req, 2, ss);
    if (!rc)
        rc = pb_bytes(&req, 1, scope.data, scope.len);
    if (!rc)
        rc = xv_buf_append(&req, b->frags.data ? b->frags.data : "", b->frags.len);
    if (!rc)
        rc = pb_bytes(&req, 3, XV_OTLP_SCHEMA_URL, ul);  /* ScopeSpans.schema_url */
    if (!rc)
        rc = pb_bytes(&req, 3, XV_OTLP_SCHEMA_URL, ul);  /* ResourceSpans.schema_url */
    xv_buf_free(&res);
    xv_buf_free(&scope);
    if (rc) {
        xv_buf_free(&req);
        return rc;
    }
    *out = xv_buf_steal(&req, out_len);
    return *out ? 0 : XV_E_NOMEM;
}

static int request_json(const struct xv_exp_otlp_cfg *cfg, const struct xv_exp_otlp_batch *b, char **out,
                        size_t *out_len)
{
    cJSON *res = cJSON_CreateObject();
    cJSON *attrs = cJSON_CreateArray();
    if (!res || !attrs) {
        cJSON_Delete(res);
        cJSON_Delete(attrs);
        return XV_E_NOMEM;
    }
    struct xv_exp_otlp_emit e = { .proto = XV_OTLP_JSON, .jattrs = attrs };
    resource_attrs(&e, cfg);
    cJSON_AddItemToObject(res, "attributes", attrs);
    char *rtxt = e.rc ? NULL : cJSON_PrintUnformatted(res);
    cJSON_Delete(res);
    if (!rtxt)
        return XV_E_NOMEM;
    struct xv_buf req;
    xv_buf_init(&req, SIZE_MAX / 2);
    int rc = xv_buf_appendf(&req, "{\"resourceSpans\":[{\"resource\":%s,\"scopeSpans\":[{\"scope\":"
                            "{\"name\":\"" SCOPE_NAME "\",\"version\":\"" SCOPE_VERSION "\"},"
                            "\"spans\":[", rtxt);
    free(rtxt);
    if (!rc)
        rc = xv_buf_append(&req, b->frags.data ? b->frags.data : "", b->frags.len);
    if (!rc)
        rc = xv_buf_append(&req, "],\"schemaUrl\":\"" XV_OTLP_SCHEMA_URL "\"}],"
                           "\"schemaUrl\":\"" XV_OTLP_SCHEMA_URL "\"}]}",
                           strlen("],\"schemaUrl\":\"\"}],\"schemaUrl\":\"\"}]}") +
                               2 * strlen(XV_OTLP_SCHEMA_URL));
    if (rc) {
        xv_buf_free(&req);
        return rc;
    }
    *out = xv_buf_steal(&req, out_len);
    return *out ? 0 : XV_E_NOMEM;
}

int xv_exp_otlp_encode_request(const struct xv_exp_otlp_cfg *cfg, const struct xv_exp_otlp_batch *b,
                           char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    return cfg->proto == XV_OTLP_JSON ? request_json(cfg, b, out, out_len)
                                      : request_pb(cfg, b, out, out_len);
}
