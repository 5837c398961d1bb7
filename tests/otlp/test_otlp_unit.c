/*
 * test_otlp_unit.c — unit tests for the OTLP output's pieces (exporter/otlp*):
 * the protobuf request checked with a small protobuf decoder written here
 * (wire format only: varint, fixed64, length-delimited), the OTLP/JSON
 * request checked with cJSON: the GenAI semantic-convention mapping of call
 * and tool-step records, content opt-in, the app's trace context. The
 * environment, timestamps, gzip and the spool: test_otlp_config.c.
 *
 * Single-threaded; each test sets the environment it needs and clears it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "otlp_int.h"

/* ---- a minimal protobuf reader ---- */

struct pb {
    const uint8_t *p, *end;
};

struct field {
    unsigned num, wt;
    uint64_t v;                    /* varint / fixed64 value */
    const uint8_t *data;           /* length-delimited payload */
    size_t len;
};

static int pb_next(struct pb *r, struct field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key = 0;
    int shift = 0;
    for (;;) {
        assert_true(r->p < r->end);
        uint8_t b = *r->p++;
        key |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
        assert_true(shift < 64);
    }
    f->num = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    f->v = 0;
    f->data = NULL;
    f->len = 0;
    if (f->wt == 0 || f->wt == 2) {
        uint64_t v = 0;
        shift = 0;
        for (;;) {
            assert_true(r->p < r->end);
            uint8_t b = *r->p++;
            v |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
            shift += 7;
            assert_true(shift < 70);
        }
        if (f->wt == 0) {
            f->v = v;
        } else {
            assert_true(v <= (uint64_t)(r->end - r->p));
            f->data = r->p;
            f->len = (size_t)v;
            r->p += v;
        }
    } else if (f->wt == 1) {
        assert_true(r->end - r->p >= 8);
        for (int i = 0; i < 8; i++)
            f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += 8;
    } else {
        fail_msg("unexpected wire type %u", f->wt);
    }
    return 1;
}

static struct pb sub(const struct field *f)
{
    assert_int_equal(f->wt, 2);
    struct pb r = { f->data, f->data + f->len };
    return r;
}

/* A decoded attribute: type 1 string, 2 bool, 3 int, 4 double, 5 array. */
struct attr {
    char key[128];
    int type;
    char s[4096];
    int64_t i;
    double d;
    int nstr;
    char arr[4][64];
};

static void decode_kv(struct pb kvr, struct attr *a)
{
    memset(a, 0, sizeof *a);
    struct field f;
    while (pb_next(&kvr, &f)) {
        if (f.num == 1) {
            assert_true(f.len < sizeof a->key);
            memcpy(a->key, f.data, f.len);
        } else if (f.num == 2) {
            struct pb av = sub(&f);
            struct field g;
            while (pb_next(&av, &g)) {
                a->type = (int)g.num;
                if (g.num == 1) {
                    assert_true(g.len < sizeof a->s);
                    memcpy(a->s, g.data, g.len);
                } else if (g.num == 2 || g.num == 3) {
                    a->i = (int64_t)g.v;
                } else if (g.num == 4) {
                    memcpy(&a->d, &g.v, 8);
                } else if (g.num == 5) {
                    struct pb arr = sub(&g);
                    struct field h;
                    while (pb_next(&arr, &h)) {
                        assert_int_equal(h.num, 1);
                        struct pb inner = sub(&h);
                        struct field s;
                        assert_true(pb_next(&inner, &s));
                        assert_int_equal(s.num, 1);
                        assert_true(a->nstr < 4 && s.len < 64);
                        memcpy(a->arr[a->nstr++], s.data, s.len);
                    }
                }
            }
        }
    }
}

struct span {
    uint8_t tid[16], sid[8], psid[8];
    int has_parent;
    char name[256];
    uint64_t kind, start, end;
    int status_code;
    char status_msg[256];
    char trace_state[256];
    struct attr attrs[64];
    int nattrs;
};

static void decode_span(struct pb r, struct span *s)
{
    memset(s, 0, sizeof *s);
    struct field f;
    while (pb_next(&r, &f)) {
        switch (f.num) {
        case 1: assert_int_equal(f.len, 16); memcpy(s->tid, f.data, 16); break;
        case 2: assert_int_equal(f.len, 8); memcpy(s->sid, f.data, 8); break;
        case 3: memcpy(s->trace_state, f.data, f.len < 255 ? f.len : 255); break;
        case 4: assert_int_equal(f.len, 8); memcpy(s->psid, f.data, 8); s->has_parent = 1; break;
        case 5: memcpy(s->name, f.data, f.len < 255 ? f.len : 255); break;
        case 6: assert_int_equal(f.wt, 0); s->kind = f.v; break;
        case 7: assert_int_equal(f.wt, 1); s->start = f.v; break;
        case 8: assert_int_equal(f.wt, 1); s->end = f.v; break;
        case 9: assert_true(s->nattrs < 64); decode_kv(sub(&f), &s->attrs[s->nattrs++]); break;
        case 15: {
            struct pb st = sub(&f);
            struct field g;
            while (pb_next(&st, &g)) {
                if (g.num == 3)
                    s->status_code = (int)g.v;
                if (g.num == 2)
                    memcpy(s->status_msg, g.data, g.len < 255 ? g.len : 255);
            }
            break;
        }
        default: fail_msg("unexpected span field %u", f.num);
        }
    }
}

static const struct attr *find(const struct attr *a, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].key, key))
            return &a[i];
    return NULL;
}

/* Decode a whole request: resource attributes and spans. */
struct request {
    struct attr res[32];
    int nres;
    char scope[64];
    char schema_res[128], schema_scope[128]; /* schema_url of ResourceSpans / ScopeSpans */
    struct span spans[8];
    int nspans;
};

static void decode_request(const char *body, size_t len, struct request *q)
{
    memset(q, 0, sizeof *q);
    struct pb r = { (const uint8_t *)body, (const uint8_t *)body + len };
    struct field f;
    int nrs = 0;
    while (pb_next(&r, &f)) {
        assert_int_equal(f.num, 1);                       /* resource_spans */
        nrs++;
        struct pb rs = sub(&f);
        struct field g;
        while (pb_next(&rs, &g)) {
            if (g.num == 1) {                             /* resource */
                struct pb res = sub(&g);
                struct field h;
                while (pb_next(&res, &h)) {
                    assert_int_equal(h.num, 1);
                    decode_kv(sub(&h), &q->res[q->nres++]);
                }
            } else if (g.num == 2) {                      /* scope_spans */
                struct pb ss = sub(&g);
                struct field h;
                while (pb_next(&ss, &h)) {
                    if (h.num == 1) {
                        struct pb sc = sub(&h);
                        struct field k;
                        while (pb_next(&sc, &k))
                            if (k.num == 1)
                                memcpy(q->scope, k.data, k.len < 63 ? k.len : 63);
                    } else if (h.num == 3) {
                        memcpy(q->schema_scope, h.data, h.len < 127 ? h.len : 127);
                    } else {
                        assert_int_equal(h.num, 2);
                        assert_true(q->nspans < 8);
                        decode_span(sub(&h), &q->spans[q->nspans++]);
                    }
                }
            } else if (g.num == 3) {
                memcpy(q->schema_res, g.data, g.len < 127 ? g.len : 127);
            } else {
                fail_msg("unexpected ResourceSpans field %u", g.num);
            }
        }
    }
    assert_int_equal(nrs, 1);
}

/* ---- fixtures ---- */

static const char *CALL_TID = "0af7651916cd43dd8448eb211c80319c";
/* The same id as records spell it (RFC 4122, hyphenated). */
static const char *CALL_UUID = "0af76519-16cd-43dd-8448-eb211c80319c";

static cJSON *call_record(int with_error)
{
    char txt[4096];
    snprintf(txt, sizeof txt,
             "{\"trace_id\":\"%s\",\"session_id\":\"sess-1\",\"session_turn\":2,"
             "\"provider\":\"openai\",\"server_address\":\"api.openai.com\",\"server_port\":443,"
             "\"transport\":\"tls\",\"start_time\":\"2026-11-27T01:02:03.123456Z\","
             "\"end_time\":\"2026-11-27T01:02:04.000001Z\",\"latency_ms\":876.545,"
             "\"request_type\":\"chat_completions\",\"model\":\"gpt-4o-mini\",\"stream\":true,"
             "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
             "{\"role\":\"user\",\"content\":\"hi SECRET1\"},{\"role\":\"assistant\","
             "\"tool_calls\":[{\"id\":\"c0\",\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"c0\",\"content\":\"SECRET2\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"description\":\"SECRET3\",\"parameters\":{\"type\":\"object\"}}}],"
             "\"response_content\":\"SECRET4\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"g\","
             "\"arguments\":\"{\\\"q\\\":\\\"SECRET5\\\"}\"}],"
             "\"request_params\":{\"temperature\":0.5,\"top_p\":0.9,\"max_tokens\":100,"
             "\"frequency_penalty\":0.1,\"presence_penalty\":0.2,\"seed\":7,\"n\":2,"
             "\"stop\":[\"END\"],\"output_type\":\"json\"},\"tokens_cached\":5,"
             "\"tokens_reasoning\":6,\"ttft_ms\":250,"
             "\"response_id\":\"chatcmpl-1\",\"response_model\":\"gpt-4o-mini-2024\","
             "\"finish_reasons\":[\"stop\",\"length\"],\"tokens_in\":12,\"tokens_out\":34,"
             "\"status_code\":%d%s,\"custom_properties\":{\"team\":\"a\"},\"pid\":42,"
             "\"process\":\"python3\"}",
             CALL_UUID, with_error ? 503 : 200,
             with_error ? ",\"error\":\"upstream answered 503\"" : "");
    cJSON *r = cJSON_Parse(txt);
    assert_non_null(r);
    return r;
}

static cJSON *step_record(const char *parent)
{
    char txt[1024];
    snprintf(txt, sizeof txt,
             "{\"trace_id\":\"11111111111111111111111111111111\",\"parent_call_trace_id\":\"%s\","
             "\"step_type\":\"tool_call\",\"session_id\":\"sess-1\",\"session_turn\":2,"
             "\"start_time\":\"2026-11-27T01:02:03.123456Z\","
             "\"end_time\":\"2026-11-27T01:02:04.000001Z\",\"pid\":42,\"call_id\":\"call_9\","
             "\"tool_name\":\"get_weather\",\"tool_args\":\"{\\\"city\\\":\\\"Oslo\\\"}\","
             "\"status\":\"requested\"}",
             parent);
    cJSON *r = cJSON_Parse(txt);
    assert_non_null(r);
    return r;
}

static void clear_env(void)
{
    const char *vars[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                           "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                           "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                           "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TIMEOUT",
                           "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "XENOVIA_SPOOL_DIR",
                           "XENOVIA_SPOOL_MAX_MB", NULL };
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
}

static struct xv_exp_otlp_cfg *cfg_for(const char *proto)
{
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto, 1);
    setenv("OTEL_SERVICE_NAME", "unit-svc", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=a%2Cb", 1);
    setenv("XENOVIA_SPOOL_DIR", "/nonexistent/spool", 1);
    struct xv_exp_otlp_cfg *c = xv_exp_otlp_cfg_from_env();
    assert_non_null(c);
    return c;
}

static void hex16(const char *h, uint8_t out[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* ---- tests ---- */

/* The resource: service name, percent-decoded extra attributes, pid, SDK. */
static void check_resource(const struct request *q)
{
    const struct attr *a = find(q->res, q->nres, "service.name");
    assert_non_null(a);
    assert_string_equal(a->s, "unit-svc");
    a = find(q->res, q->nres, "team");
    assert_non_null(a);
    assert_string_equal(a->s, "a,b");                     /* percent-decoded */
    a = find(q->res, q->nres, "process.pid");
    assert_non_null(a);
    assert_int_equal(a->type, 3);
    assert_int_equal(a->i, getpid());
    assert_non_null(find(q->res, q->nres, "telemetry.sdk.name"));
}

/* The execute_tool span of the step record: in the call's trace, child of
 * the call span, inside its time range, arguments only as gen_ai.*. */
static void check_tool_span(const struct span *t, const struct span *s, const uint8_t *tid)
{
    const struct attr *a;
    assert_memory_equal(t->tid, tid, 16);                 /* in the call's trace */
    assert_true(t->has_parent);
    assert_memory_equal(t->psid, s->sid, 8);              /* child of the call span */
    assert_string_equal(t->name, "execute_tool get_weather");
    assert_int_equal(t->kind, 1);
    assert_int_equal(t->status_code, 0);
    a = find(t->attrs, t->nattrs, "gen_ai.tool.name");
    assert_non_null(a);
    assert_string_equal(a->s, "get_weather");
    a = find(t->attrs, t->nattrs, "gen_ai.tool.call.id");
    assert_non_null(a);
    assert_string_equal(a->s, "call_9");
    a = find(t->attrs, t->nattrs, "xenovia.trace_id");
    assert_non_null(a);
    assert_string_equal(a->s, "11111111111111111111111111111111");
    /* within its parent's time range */
    assert_true(t->start >= s->start && t->end <= s->end && t->end > t->start);
    a = find(t->attrs, t->nattrs, "gen_ai.tool.call.arguments");
    assert_true(a && !strcmp(a->s, "{\"city\":\"Oslo\"}"));
    assert_null(find(t->attrs, t->nattrs, "xenovia.tool_args"));

}

static void test_protobuf_request(void **state)
{
    (void)state;
    xv_exp_otlp_span_map_reset();
    struct xv_exp_otlp_cfg *cfg = cfg_for("http/protobuf");
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 24);
    b.nspans = 0;
    cJSON *call = call_record(1), *step = step_record(CALL_TID);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, call, &b), 0);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, step, &b), 0);
    assert_int_equal(b.nspans, 2);
    char *body;
    size_t len;
    assert_int_equal(xv_exp_otlp_encode_request(cfg, &b, &body, &len), 0);

    struct request q;
    decode_request(body, len, &q);
    assert_string_equal(q.scope, "libxenovia");
    check_resource(&q);
    const struct attr *a;

    assert_int_equal(q.nspans, 2);
    struct span *s = &q.spans[0];
    uint8_t tid[16];
    hex16(CALL_TID, tid);
    assert_memory_equal(s->tid, tid, 16);
    assert_false(s->has_parent);
    assert_string_equal(s->name, "chat gpt-4o-mini");
    assert_int_equal(s->kind, 3);
    assert_true(s->start == 1795741323123456000ull);      /* 2026-11-27T01:02:03.123456Z */
    assert_true(s->end == 1795741324000001000ull);
    assert_int_equal(s->status_code, 2);
    assert_string_equal(s->status_msg, "upstream answered 503");
    struct { const char *k; int type; const char *s; int64_t i; } want[] = {
        { "gen_ai.operation.name", 1, "chat", 0 },
        { "gen_ai.provider.name", 1, "openai", 0 },
        { "gen_ai.request.model", 1, "gpt-4o-mini", 0 },
        { "gen_ai.response.model", 1, "gpt-4o-mini-2024", 0 },
        { "gen_ai.response.id", 1, "chatcmpl-1", 0 },
        { "gen_ai.usage.input_tokens", 3, NULL, 12 },
        { "gen_ai.usage.output_tokens", 3, NULL, 34 },
        { "gen_ai.conversation.id", 1, "sess-1", 0 },
        { "server.address", 1, "api.openai.com", 0 },
        { "server.port", 3, NULL, 443 },
        { "error.type", 1, "503", 0 },
        { "xenovia.request_type", 1, "chat_completions", 0 },
        { "xenovia.session_turn", 3, NULL, 2 },
        { "gen_ai.request.stream", 2, NULL, 1 },
        { "gen_ai.request.max_tokens", 3, NULL, 100 },
        { "gen_ai.request.seed", 3, NULL, 7 },
        { "gen_ai.request.choice.count", 3, NULL, 2 },
        { "gen_ai.output.type", 1, "json", 0 },
        { "gen_ai.usage.cache_read.input_tokens", 3, NULL, 5 },
        { "gen_ai.usage.reasoning.output_tokens", 3, NULL, 6 },
        { "xenovia.status_code", 3, NULL, 503 },
        { "gen_ai.input.messages", 1,
          "[{\"role\":\"system\",\"parts\":[{\"type\":\"text\",\"content\":\"be brief\"}]},"
          "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi SECRET1\"}]},"
          "{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"id\":\"c0\",\"name\":\"f\","
          "\"arguments\":{\"a\":1}}]},{\"role\":\"tool\",\"parts\":[{\"type\":"
          "\"tool_call_response\",\"id\":\"c0\",\"response\":\"SECRET2\"}]}]", 0 },
        { "gen_ai.output.messages", 1,
          "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"SECRET4\"},"
          "{\"type\":\"tool_call\",\"id\":\"c1\",\"name\":\"g\",\"arguments\":{\"q\":\"SECRET5\"}}],"
          "\"finish_reason\":\"stop\"}]", 0 },
        { "gen_ai.tool.definitions", 1,
          "[{\"type\":\"function\",\"name\":\"f\",\"description\":\"SECRET3\","
          "\"parameters\":{\"type\":\"object\"}}]", 0 },
        { "xenovia.custom_properties", 1, "{\"team\":\"a\"}", 0 },
        { "xenovia.process", 1, "python3", 0 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        a = find(s->attrs, s->nattrs, want[i].k);
        if (!a)
            fail_msg("attribute %s missing", want[i].k);
        assert_int_equal(a->type, want[i].type);
        if (want[i].s)
            assert_string_equal(a->s, want[i].s);
        else
            assert_int_equal(a->i, want[i].i);
    }
    a = find(s->attrs, s->nattrs, "xenovia.latency_ms");
    assert_non_null(a);
    assert_int_equal(a->type, 4);
    assert_true(a->d > 876.54 && a->d < 876.55);
    struct { const char *k; double d; } dbl[] = {
        { "gen_ai.request.temperature", 0.5 }, { "gen_ai.request.top_p", 0.9 },
        { "gen_ai.request.frequency_penalty", 0.1 }, { "gen_ai.request.presence_penalty", 0.2 },
        { "gen_ai.response.time_to_first_chunk", 0.25 },
    };
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        a = find(s->attrs, s->nattrs, dbl[i].k);
        if (!a)
            fail_msg("attribute %s missing", dbl[i].k);
        assert_int_equal(a->type, 4);
        assert_true(a->d == dbl[i].d);
    }
    a = find(s->attrs, s->nattrs, "gen_ai.request.stop_sequences");
    assert_true(a && a->type == 5 && a->nstr == 1 && !strcmp(a->arr[0], "END"));
    /* captured text only in the gen_ai content attributes, never xenovia.* */
    for (int i = 0; i < s->nattrs; i++)
        if (!strncmp(s->attrs[i].key, "xenovia.", 8) && s->attrs[i].type == 1)
            assert_null(strstr(s->attrs[i].s, "SECRET"));
    assert_null(find(s->attrs, s->nattrs, "gen_ai.system_instructions")); /* chat: in history */
    assert_string_equal(q.schema_res, "https://opentelemetry.io/schemas/1.41.0");
    assert_string_equal(q.schema_scope, "https://opentelemetry.io/schemas/1.41.0");
    a = find(q.res, q.nres, "telemetry.sdk.language");
    assert_true(a && !strcmp(a->s, "c"));
    a = find(q.res, q.nres, "process.executable.name");
    assert_true(a && !strcmp(a->s, "test_otlp_unit"));
    a = find(s->attrs, s->nattrs, "gen_ai.response.finish_reasons");
    assert_non_null(a);
    assert_int_equal(a->type, 5);
    assert_int_equal(a->nstr, 2);
    assert_string_equal(a->arr[0], "stop");
    assert_string_equal(a->arr[1], "length");
    /* mapped fields are not repeated as xenovia.* */
    assert_null(find(s->attrs, s->nattrs, "xenovia.model"));
    assert_null(find(s->attrs, s->nattrs, "xenovia.trace_id"));
    assert_null(find(s->attrs, s->nattrs, "xenovia.tokens_in"));
    assert_null(find(s->attrs, s->nattrs, "xenovia.request_params"));

    check_tool_span(&q.spans[1], s, tid);

    free(body);
    cJSON_Delete(call);
    cJSON_Delete(step);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
}

static void test_step_unknown_parent(void **state)
{
    (void)state;
    xv_exp_otlp_span_map_reset();
    struct xv_exp_otlp_cfg *cfg = cfg_for("http/protobuf");
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 24);
    b.nspans = 0;
    const char *parent = "00000000000000000102030405060708";
    cJSON *step = step_record(parent);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, step, &b), 0);
    char *body;
    size_t len;
    assert_int_equal(xv_exp_otlp_encode_request(cfg, &b, &body, &len), 0);
    struct request q;
    decode_request(body, len, &q);
    assert_int_equal(q.nspans, 1);
    assert_true(q.spans[0].has_parent);
    /* derived from the trace id: its last 8 bytes */
    const uint8_t want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    assert_memory_equal(q.spans[0].psid, want, 8);
    free(body);
    cJSON_Delete(step);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
}

static const cJSON *jattr(const cJSON *attrs, const char *key)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, attrs) {
        const cJSON *k = cJSON_GetObjectItem(it, "key");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, key))
            return cJSON_GetObjectItem(it, "value");
    }
    return NULL;
}

static void test_json_request(void **state)
{
    (void)state;
    xv_exp_otlp_span_map_reset();
    struct xv_exp_otlp_cfg *cfg = cfg_for("http/json");
    assert_int_equal(cfg->proto, XV_OTLP_JSON);
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 24);
    b.nspans = 0;
    cJSON *call = call_record(0), *step = step_record(CALL_TID);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 1, call, &b), 0);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 1, step, &b), 0);
    char *body;
    size_t len;
    assert_int_equal(xv_exp_otlp_encode_request(cfg, &b, &body, &len), 0);
    cJSON *j = cJSON_ParseWithLength(body, len);
    assert_non_null(j);
    const cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceSpans"), 0);
    assert_non_null(rs);
    const cJSON *rattrs = cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "resource"), "attributes");
    assert_string_equal(cJSON_GetObjectItem(jattr(rattrs, "service.name"), "stringValue")->valuestring,
                        "unit-svc");
    /* int64 as a decimal string */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(jattr(rattrs, "process.pid"), "intValue")));
    const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ss, "scope"), "name")->valuestring,
                        "libxenovia");
    const cJSON *spans = cJSON_GetObjectItem(ss, "spans");
    assert_int_equal(cJSON_GetArraySize(spans), 2);
    const cJSON *s = cJSON_GetArrayItem(spans, 0);
    assert_string_equal(cJSON_GetObjectItem(s, "traceId")->valuestring, CALL_TID);
    assert_int_equal(strlen(cJSON_GetObjectItem(s, "spanId")->valuestring), 16);
    assert_null(cJSON_GetObjectItem(s, "parentSpanId"));
    assert_string_equal(cJSON_GetObjectItem(s, "name")->valuestring, "chat gpt-4o-mini");
    assert_int_equal(cJSON_GetObjectItem(s, "kind")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(s, "startTimeUnixNano")->valuestring,
                        "1795741323123456000");
    assert_null(cJSON_GetObjectItem(s, "status"));         /* no error: UNSET */
    const cJSON *attrs = cJSON_GetObjectItem(s, "attributes");
    assert_string_equal(cJSON_GetObjectItem(jattr(attrs, "gen_ai.usage.input_tokens"),
                                            "intValue")->valuestring, "12");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(jattr(attrs, "gen_ai.request.stream"), "boolValue")));
    assert_string_equal(cJSON_GetObjectItem(ss, "schemaUrl")->valuestring,
                        "https://opentelemetry.io/schemas/1.41.0");
    assert_string_equal(cJSON_GetObjectItem(rs, "schemaUrl")->valuestring,
                        "https://opentelemetry.io/schemas/1.41.0");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(jattr(attrs, "xenovia.latency_ms"),
                                                   "doubleValue")));
    const cJSON *fr = cJSON_GetObjectItem(cJSON_GetObjectItem(jattr(attrs,
                                          "gen_ai.response.finish_reasons"), "arrayValue"), "values");
    assert_int_equal(cJSON_GetArraySize(fr), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(fr, 1), "stringValue")->valuestring,
                        "length");
    assert_null(jattr(attrs, "error.type"));
    const cJSON *t = cJSON_GetArrayItem(spans, 1);
    assert_string_equal(cJSON_GetObjectItem(t, "parentSpanId")->valuestring,
                        cJSON_GetObjectItem(s, "spanId")->valuestring);
    assert_string_equal(cJSON_GetObjectItem(t, "traceId")->valuestring, CALL_TID);
    assert_int_equal(cJSON_GetObjectItem(t, "kind")->valueint, 1);
    cJSON_Delete(j);
    free(body);
    cJSON_Delete(call);
    cJSON_Delete(step);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
}

static void test_operation_names(void **state)
{
    (void)state;
    const char *types[][2] = { { "responses", "chat o3" }, { "embeddings", "embeddings o3" },
                               { "completions", "text_completion o3" } };
    for (int i = 0; i < 3; i++) {
        struct xv_exp_otlp_batch b;
        xv_buf_init(&b.frags, 1 << 20);
        b.nspans = 0;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "trace_id", CALL_TID);
        cJSON_AddStringToObject(r, "request_type", types[i][0]);
        cJSON_AddStringToObject(r, "model", "o3");
        assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 1, r, &b), 0);
        cJSON *s = cJSON_Parse(b.frags.data);
        assert_string_equal(cJSON_GetObjectItem(s, "name")->valuestring, types[i][1]);
        /* no tokens in the record: no usage attributes (absent, not zero) */
        assert_null(jattr(cJSON_GetObjectItem(s, "attributes"), "gen_ai.usage.input_tokens"));
        cJSON_Delete(s);
        cJSON_Delete(r);
        xv_buf_free(&b.frags);
    }
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 20);
    b.nspans = 0;
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, arr, &b), XV_E_PARSE);
    cJSON_Delete(arr);
    xv_buf_free(&b.frags);
}

/* Odd values: negative and huge numbers, mixed arrays, nulls, a bad trace
 * id; the request must still decode and keep what can be kept. */
static void test_odd_record(void **state)
{
    (void)state;
    xv_exp_otlp_span_map_reset();
    struct xv_exp_otlp_cfg *cfg = cfg_for("http/protobuf");
    const char *txt =
        "{\"trace_id\":5,\"request_type\":\"completions\",\"tokens_in\":-3,"
        "\"finish_reasons\":[1,\"x\",null],\"big\":1e300,\"neg\":-2.5,"
        "\"nested\":{\"a\":[1,2]},\"empty\":\"\",\"n\":null,\"flag\":false,"
        "\"start_time\":\"not a time\",\"error\":\"boom\",\"status_code\":200}";
    cJSON *r = cJSON_Parse(txt);
    assert_non_null(r);
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 24);
    b.nspans = 0;
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, r, &b), 0);
    char *body;
    size_t len;
    assert_int_equal(xv_exp_otlp_encode_request(cfg, &b, &body, &len), 0);
    struct request q;
    decode_request(body, len, &q);
    struct span *s = &q.spans[0];
    uint8_t zero[16] = { 0 };
    assert_memory_not_equal(s->tid, zero, 16);           /* a fresh trace id */
    assert_string_equal(s->name, "text_completion");      /* no model */
    assert_true(s->start > 0 && s->end == s->start);
    const struct attr *a = find(s->attrs, s->nattrs, "gen_ai.usage.input_tokens");
    assert_non_null(a);
    assert_int_equal(a->i, -3);                           /* 10-byte varint */
    a = find(s->attrs, s->nattrs, "gen_ai.response.finish_reasons");
    assert_int_equal(a->nstr, 1);
    assert_string_equal(a->arr[0], "x");
    a = find(s->attrs, s->nattrs, "xenovia.big");
    assert_int_equal(a->type, 4);
    assert_true(a->d == 1e300);
    a = find(s->attrs, s->nattrs, "xenovia.neg");
    assert_true(a->type == 4 && a->d == -2.5);
    a = find(s->attrs, s->nattrs, "xenovia.nested");
    assert_string_equal(a->s, "{\"a\":[1,2]}");
    a = find(s->attrs, s->nattrs, "xenovia.empty");
    assert_true(a && a->type == 1 && a->s[0] == '\0');
    a = find(s->attrs, s->nattrs, "xenovia.flag");
    assert_true(a && a->type == 2 && a->i == 0);
    assert_null(find(s->attrs, s->nattrs, "xenovia.n"));
    a = find(s->attrs, s->nattrs, "error.type");
    assert_string_equal(a->s, "_OTHER");                  /* no 4xx/5xx status */
    assert_int_equal(s->status_code, 2);
    free(body);
    cJSON_Delete(r);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
}

/* Content is opt-in: without it no captured text is encoded anywhere in the
 * request (neither gen_ai.* nor xenovia.*), and a tool_result step is no
 * span of its own (its tool call has the one execute_tool span). */
static void test_content_opt_in(void **state)
{
    (void)state;
    struct xv_exp_otlp_cfg *cfg = cfg_for("http/protobuf");
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 24);
    b.nspans = 0;
    cJSON *call = call_record(0), *step = step_record(CALL_UUID);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 0, call, &b), 0);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 0, step, &b), 0);
    cJSON *res = cJSON_Parse("{\"trace_id\":\"22222222-2222-4222-8222-222222222222\","
                             "\"parent_trace_id\":\"0af76519-16cd-43dd-8448-eb211c80319c\","
                             "\"step_type\":\"tool_result\",\"tool_name\":\"f\","
                             "\"tool_result\":\"SECRET6\",\"latency_ms\":12}");
    size_t before = b.frags.len;
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_PROTOBUF, 1, res, &b), 1);
    assert_int_equal(b.frags.len, before);
    assert_int_equal(b.nspans, 2);
    char *body;
    size_t len;
    assert_int_equal(xv_exp_otlp_encode_request(cfg, &b, &body, &len), 0);
    assert_null(memmem(body, len, "SECRET", 6));
    assert_null(memmem(body, len, "Oslo", 4));
    assert_null(memmem(body, len, "be brief", 8));
    struct request q;
    decode_request(body, len, &q);
    const char *content_keys[] = { "gen_ai.input.messages", "gen_ai.output.messages",
                                   "gen_ai.system_instructions", "gen_ai.tool.definitions",
                                   "gen_ai.tool.call.arguments", "xenovia.messages",
                                   "xenovia.tools", "xenovia.tool_calls",
                                   "xenovia.response_content", "xenovia.tool_args", NULL };
    for (int k = 0; k < q.nspans; k++)
        for (int i = 0; content_keys[i]; i++)
            assert_null(find(q.spans[k].attrs, q.spans[k].nattrs, content_keys[i]));
    /* the rest is there: the call's trace id is the UUID's bytes */
    uint8_t tid[16];
    hex16(CALL_TID, tid);
    assert_memory_equal(q.spans[0].tid, tid, 16);
    assert_memory_equal(q.spans[1].tid, tid, 16);
    assert_memory_equal(q.spans[1].psid, q.spans[0].sid, 8);
    assert_non_null(find(q.spans[0].attrs, q.spans[0].nattrs, "gen_ai.request.temperature"));
    free(body);
    cJSON_Delete(call);
    cJSON_Delete(step);
    cJSON_Delete(res);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
}

/* The responses API's `instructions` are system instructions apart from
 * the history; embeddings carry no message content. */
static void test_responses_and_embeddings(void **state)
{
    (void)state;
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 20);
    b.nspans = 0;
    cJSON *r = cJSON_Parse("{\"trace_id\":\"0af76519-16cd-43dd-8448-eb211c80319c\","
                           "\"request_type\":\"responses\",\"model\":\"o3\",\"messages\":["
                           "{\"role\":\"system\",\"content\":\"obey\"},{\"role\":\"user\","
                           "\"content\":\"q\"}],\"response_content\":\"a\","
                           "\"finish_reasons\":[\"completed\"]}");
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 1, r, &b), 0);
    cJSON *s = cJSON_Parse(b.frags.data);
    const cJSON *attrs = cJSON_GetObjectItem(s, "attributes");
    assert_string_equal(cJSON_GetObjectItem(jattr(attrs, "gen_ai.system_instructions"),
                                            "stringValue")->valuestring,
                        "[{\"type\":\"text\",\"content\":\"obey\"}]");
    assert_string_equal(cJSON_GetObjectItem(jattr(attrs, "gen_ai.input.messages"),
                                            "stringValue")->valuestring,
                        "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"q\"}]}]");
    assert_string_equal(cJSON_GetObjectItem(jattr(attrs, "gen_ai.output.messages"),
                                            "stringValue")->valuestring,
                        "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"a\"}],"
                        "\"finish_reason\":\"stop\"}]");
    assert_null(jattr(attrs, "gen_ai.request.stream"));   /* only when streaming */
    cJSON_Delete(s);
    cJSON_Delete(r);
    xv_buf_reset(&b.frags);
    b.nspans = 0;
    r = cJSON_Parse("{\"trace_id\":\"0af76519-16cd-43dd-8448-eb211c80319c\","
                    "\"request_type\":\"embeddings\",\"model\":\"e\",\"messages\":["
                    "{\"role\":\"user\",\"content\":\"SECRET\"}],"
                    "\"request_params\":{\"encoding_format\":\"float\"}}");
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 1, r, &b), 0);
    assert_null(strstr(b.frags.data, "SECRET"));
    s = cJSON_Parse(b.frags.data);
    attrs = cJSON_GetObjectItem(s, "attributes");
    assert_string_equal(cJSON_GetObjectItem(s, "name")->valuestring, "embeddings e");
    const cJSON *ef = cJSON_GetObjectItem(cJSON_GetObjectItem(jattr(attrs,
                                          "gen_ai.request.encoding_formats"), "arrayValue"), "values");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ef, 0), "stringValue")->valuestring,
                        "float");
    cJSON_Delete(s);
    cJSON_Delete(r);
    xv_buf_free(&b.frags);
}

/* An app's traceparent: the call span joins the app's trace under the
 * app's span, with its tracestate; its tool span follows; an invalid
 * traceparent leaves the call's own trace. */
static void test_traceparent(void **state)
{
    (void)state;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    struct xv_exp_otlp_batch b;
    xv_buf_init(&b.frags, 1 << 20);
    b.nspans = 0;
    cJSON *call = call_record(0), *step = step_record(CALL_UUID);
    cJSON_AddStringToObject(call, "traceparent", tp);
    cJSON_AddStringToObject(call, "tracestate", "vendor=x");
    cJSON_AddStringToObject(step, "traceparent", tp);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 0, call, &b), 0);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 0, step, &b), 0);
    char *txt = malloc(b.frags.len + 3);
    snprintf(txt, b.frags.len + 3, "[%.*s]", (int)b.frags.len, b.frags.data);
    cJSON *arr = cJSON_Parse(txt);
    const cJSON *s = cJSON_GetArrayItem(arr, 0), *t = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(cJSON_GetObjectItem(s, "traceId")->valuestring,
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(s, "parentSpanId")->valuestring, "00f067aa0ba902b7");
    assert_string_equal(cJSON_GetObjectItem(s, "traceState")->valuestring, "vendor=x");
    assert_string_equal(cJSON_GetObjectItem(t, "traceId")->valuestring,
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(t, "parentSpanId")->valuestring,
                        cJSON_GetObjectItem(s, "spanId")->valuestring);
    assert_null(jattr(cJSON_GetObjectItem(s, "attributes"), "xenovia.traceparent"));
    cJSON_Delete(arr);
    free(txt);
    cJSON_Delete(call);
    cJSON_Delete(step);
    const char *bad[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* v00 too long */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       /* zero span id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       /* upper case */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", NULL,
    };
    uint8_t tid[16], psid[8];
    for (int i = 0; bad[i]; i++)
        assert_int_equal(xv_exp_otlp_parse_traceparent(bad[i], tid, psid), -1);
    assert_int_equal(xv_exp_otlp_parse_traceparent(
                         "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", tid,
                         psid), 0);                          /* a later version may add fields */
    assert_int_equal(xv_exp_otlp_parse_trace_id(CALL_UUID, tid), 0);
    assert_int_equal(xv_exp_otlp_parse_trace_id(CALL_TID, tid), 0);
    assert_int_equal(xv_exp_otlp_parse_trace_id("0af76519-16cd-43dd-8448_eb211c80319c", tid), -1);
    assert_int_equal(xv_exp_otlp_parse_trace_id("00000000-0000-0000-0000-000000000000", tid), -1);
    xv_buf_reset(&b.frags);
    b.nspans = 0;
    call = call_record(0);
    cJSON_AddStringToObject(call, "traceparent", bad[0]);
    assert_int_equal(xv_exp_otlp_encode_span(XV_OTLP_JSON, 0, call, &b), 0);
    cJSON *o = cJSON_Parse(b.frags.data);
    assert_string_equal(cJSON_GetObjectItem(o, "traceId")->valuestring, CALL_TID);
    assert_null(cJSON_GetObjectItem(o, "parentSpanId"));
    cJSON_Delete(o);
    cJSON_Delete(call);
    xv_buf_free(&b.frags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protobuf_request),
        cmocka_unit_test(test_step_unknown_parent),
        cmocka_unit_test(test_json_request),
        cmocka_unit_test(test_operation_names),
        cmocka_unit_test(test_odd_record),
        cmocka_unit_test(test_content_opt_in),
        cmocka_unit_test(test_responses_and_embeddings),
        cmocka_unit_test(test_traceparent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
