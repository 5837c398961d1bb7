/*
 * record.c — what a call adds to its trace record (SPEC §6).
 *
 * Invariants: every captured text field (messages, response_content,
 * tool_calls arguments, tools) stays within lim.capture_max bytes of text,
 * cut at a UTF-8 boundary and listed in the record's `truncated` array when
 * cut; with capture_content = 0 no message text, response text or tool
 * arguments reach the record at all. tokens_in / tokens_out appear only
 * when the upstream sent them. The call never sees HTTP headers, so no
 * credential can reach a record from here; upstream error texts are
 * additionally masked (text.c).
 *
 * Thread safety: reads the call (const) and writes the caller's record;
 * one thread at a time per call.
 */
#include <stdlib.h>
#include <string.h>

#include "openai_int.h"
#include "xv_jsonw.h"

/* Where the record's `truncated` list goes and what it holds: it sits
 * right after the first field that was cut (where cJSON's put placed it
 * when this was a tree) and is spliced in at the end. */
struct trunc {
    size_t at;              /* byte offset after the first cut field; 0: none yet */
    const char *names[4];   /* cut fields, in order, no duplicates */
    int n;
};

static void note_truncated(struct xv_jw *w, struct trunc *t, const char *field)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], field))
            return;
    if (t->n == 0)
        t->at = w->len;
    if (t->n < 4)
        t->names[t->n++] = field;
}

static void splice_truncated(struct xv_jw *w, const struct trunc *t)
{
    if (t->n == 0)
        return;
    char buf[128];
    size_t n = 0;
    memcpy(buf, ",\"truncated\":[", 14);
    n = 14;
    for (int i = 0; i < t->n; i++) {
        size_t k = strlen(t->names[i]);
        if (i)
            buf[n++] = ',';
        buf[n++] = '"';
        memcpy(buf + n, t->names[i], k); /* field names: plain ASCII */
        n += k;
        buf[n++] = '"';
    }
    buf[n++] = ']';
    xv_jw_insert(w, t->at, buf, n);
}

/* s[0..len) cut to max bytes (xv_jw_strn_max); *cut set when cut. */
static void capture_value(struct xv_jw *w, const char *s, size_t len, size_t max, int *cut)
{
    xv_jw_strn_max(w, s, len, max, cut);
}

/* An identifier-like string (model, ids, names, roles), capped at
 * XV_OAI_IDENT_MAX bytes: a hostile upstream cannot bloat every record. */
static void ident(struct xv_jw *w, const char *s)
{
    int cut = 0;
    capture_value(w, s, strlen(s), XV_OAI_IDENT_MAX, &cut);
}

static void put_ident_l(struct xv_jw *w, const char *key, size_t klen, const char *s)
{
    if (!s)
        return;
    xv_jw_key_l(w, key, klen);
    ident(w, s);
}
/* (key's length passed when it is a literal: common/xv_jsonw.h) */
#define put_ident(w, k, s) put_ident_l((w), (k), XV_JW_KLEN(k), (s))

/* A captured text: s[0..len) with the call's redaction applied first (so a
 * match is never cut in half by the capture limit), then cut to `budget`
 * bytes; sets *cut when cut. */
static void capture(const struct xv_openai_call *c, struct xv_jw *w, const char *s, size_t len,
                    size_t budget, int *cut)
{
    if (c->redact_fn && s && len) {
        struct xv_buf b;
        xv_buf_init(&b, len * 4 + 4096); /* labels are longer than some matches */
        int changed = 0;
        int rc = c->redact_fn(c->redact_ctx, s, len, &b, &changed);
        if (rc != 0) {
            /* never capture what the policy wanted redacted */
            xv_buf_free(&b);
            static const char failed[] = "[REDACTED: redaction failed]";
            capture_value(w, failed, sizeof failed - 1, sizeof failed, cut);
            return;
        }
        if (changed) {
            if (budget >= len)
                budget = b.len; /* the whole text fitted before: it still does */
            capture_value(w, b.data, b.len, budget, cut);
            xv_buf_free(&b);
            return;
        }
        xv_buf_free(&b);
    }
    capture_value(w, s, len, budget, cut);
}

static void put_text_l(const struct xv_openai_call *c, struct xv_jw *w, const char *key,
                       size_t klen, const char *s, size_t len, size_t budget, int *cut)
{
    xv_jw_key_l(w, key, klen);
    capture(c, w, s, len, budget, cut);
}
#define put_text(c, w, k, s, len, budget, cut) \
    put_text_l((c), (w), (k), XV_JW_KLEN(k), (s), (len), (budget), (cut))

/* Take up to `len` bytes from the budget. */
static size_t take(size_t *remain, size_t len)
{
    size_t n = len < *remain ? len : *remain;
    *remain -= n;
    return n;
}

/* Bytes a message costs beyond its text: role, ids, names and JSON
 * punctuation. Charged to a second budget of capture_max, so a history of
 * thousands of short messages is bounded too, while the text budget stays
 * exactly capture_max. */
static size_t msg_overhead(const struct xv_openai_message *m)
{
    size_t n = 32 + strlen(m->role);
    if (m->name)
        n += strlen(m->name) + 10;
    if (m->tool_call_id)
        n += strlen(m->tool_call_id) + 18;
    for (size_t k = 0; k < m->ntool_calls; k++)
        n += strlen(m->tool_calls[k].id) + strlen(m->tool_calls[k].name) + 40;
    return n;
}

/* Budgets of a few messages live on the stack; longer histories allocate. */
#define XV_OAI_BUD_STACK 32

/*
 * messages: the normalised history, chronological. The text budget
 * (capture_max bytes of content and tool arguments together) goes to the
 * newest messages first — the last user turn and tool results are what
 * explain a call — so a long system prompt is what gets cut; the oldest
 * messages are left out once their roles and ids no longer fit the
 * structure budget.
 */
static int write_messages(const struct xv_openai_call *c, struct xv_jw *w, int *cut)
{
    size_t n = c->nmsgs, remain = c->lim.capture_max, remain_struct = c->lim.capture_max;
    size_t stack_bud[2 * XV_OAI_BUD_STACK];
    size_t *bud = n <= XV_OAI_BUD_STACK ? stack_bud : calloc(n * 2, sizeof *bud);
    if (!bud)
        return XV_E_NOMEM;
    size_t first = n; /* oldest message kept */
    for (size_t i = n; i-- > 0;) {
        const struct xv_openai_message *m = &c->msgs[i];
        size_t oh = msg_overhead(m);
        if (oh > remain_struct && first < n) {
            *cut = 1; /* this one and everything older is left out */
            break;
        }
        take(&remain_struct, oh);
        first = i;
        bud[2 * i] = take(&remain, m->content_len);
        size_t args = 0;
        for (size_t k = 0; k < m->ntool_calls; k++)
            args += m->tool_calls[k].arguments_len;
        bud[2 * i + 1] = take(&remain, args);
    }
    xv_jw_key(w, "messages");
    xv_jw_arr_begin(w);
    for (size_t i = first; i < n && !w->oom; i++) {
        const struct xv_openai_message *m = &c->msgs[i];
        xv_jw_obj_begin(w);
        put_ident(w, "role", m->role);
        put_ident(w, "name", m->name);
        if (m->content)
            put_text(c, w, "content", m->content, m->content_len, bud[2 * i], cut);
        put_ident(w, "tool_call_id", m->tool_call_id);
        if (m->ntool_calls) {
            xv_jw_key(w, "tool_calls");
            xv_jw_arr_begin(w);
            size_t ab = bud[2 * i + 1];
            for (size_t k = 0; k < m->ntool_calls; k++) {
                const struct xv_openai_tool_call *t = &m->tool_calls[k];
                xv_jw_obj_begin(w);
                put_ident(w, "id", t->id);
                put_ident(w, "name", t->name);
                put_text(c, w, "arguments", t->arguments, t->arguments_len,
                         take(&ab, t->arguments_len), cut);
                xv_jw_obj_end(w);
            }
            xv_jw_arr_end(w);
        }
        xv_jw_obj_end(w);
    }
    xv_jw_arr_end(w);
    if (bud != stack_bud)
        free(bud);
    return 0;
}

/* tools as sent; when their text is over the budget, only {type, name}
 * of as many as fit. */
static void write_tools(const struct xv_openai_call *c, struct xv_jw *w, int *cut)
{
    const cJSON *tools = xv_json_get(c->req, "tools");
    if (!cJSON_IsArray(tools))
        tools = xv_json_get(c->req, "functions");
    if (!cJSON_IsArray(tools))
        return;
    xv_jw_key(w, "tools");
    /* Measured as sent (unrepaired), as the budget always was. */
    struct xv_jw_mark m = xv_jw_mark(w);
    if (xv_jw_cjson(w, tools, 0) != 0)
        return;
    size_t len = w->len - m.len;
    xv_jw_rewind(w, m);
    if (len <= c->lim.capture_max) {
        xv_jw_cjson(w, tools, 1);
        return;
    }
    *cut = 1;
    xv_jw_arr_begin(w);
    size_t remain = c->lim.capture_max;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const char *type = xv_oai_get_str(t, "type");
        const char *name = xv_oai_get_str(xv_json_get(t, "function"), "name");
        if (!name)
            name = xv_oai_get_str(t, "name");
        size_t need = 32 + (type ? strlen(type) : 0) + (name ? strlen(name) : 0);
        if (need > remain)
            break;
        remain -= need;
        xv_jw_obj_begin(w);
        put_ident(w, "type", type);
        put_ident(w, "name", name);
        xv_jw_obj_end(w);
    }
    xv_jw_arr_end(w);
}

/* tool_calls of the response: [{id, name, arguments}], arguments sharing
 * one capture budget (and absent when content capture is off). */
static void write_tool_calls(const struct xv_openai_call *c, struct xv_jw *w, int *cut)
{
    xv_jw_key(w, "tool_calls");
    xv_jw_arr_begin(w);
    size_t remain = c->lim.capture_max;
    for (size_t i = 0; i < c->ntools; i++) {
        const struct xv_oai_tool *t = &c->tools[i];
        xv_jw_obj_begin(w);
        put_ident(w, "id", t->id ? t->id : "");
        put_ident(w, "name", t->name ? t->name : "");
        if (c->lim.capture_content)
            put_text(c, w, "arguments", t->args.data, t->args.len, take(&remain, t->args.len),
                     cut);
        xv_jw_obj_end(w);
    }
    xv_jw_arr_end(w);
}

static void write_finish_reasons(const struct xv_openai_call *c, struct xv_jw *w)
{
    int any = 0;
    if (c->type == XV_OPENAI_RESPONSES) {
        any = c->resp_status != NULL;
    } else {
        for (size_t i = 0; i < c->nchoices && !any; i++)
            any = c->choices[i].finish != NULL;
    }
    if (!any)
        return;
    xv_jw_key(w, "finish_reasons");
    xv_jw_arr_begin(w);
    if (c->type == XV_OPENAI_RESPONSES) {
        ident(w, c->resp_status);
    } else {
        for (size_t i = 0; i < c->nchoices; i++)
            if (c->choices[i].finish)
                ident(w, c->choices[i].finish);
    }
    xv_jw_arr_end(w);
}

/* v when it is a number. */
static const cJSON *num_or_null(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v : NULL;
}

/* params[as] = v when v is a number other than NaN; *n counts members. */
static void param_num(struct xv_jw *w, const char *as, const cJSON *v, int *n)
{
    if (!v || v->valuedouble != v->valuedouble)
        return;
    xv_jw_knum(w, as, v->valuedouble);
    (*n)++;
}

/* The output type a request asks for (OTel gen_ai.output.type): chat
 * response_format.type, responses text.format.type; json_object and
 * json_schema are "json". NULL when the request names none. */
static const char *output_type(const cJSON *response_format, const cJSON *text)
{
    const cJSON *f = response_format;
    if (!cJSON_IsObject(f))
        f = xv_json_get(text, "format");
    const char *t = xv_oai_get_str(f, "type");
    if (!t)
        return NULL;
    if (!strcmp(t, "json_object") || !strcmp(t, "json_schema"))
        return "json";
    return !strcmp(t, "text") ? "text" : NULL;
}

/*
 * request_params: the sampling and output parameters the request sent
 * (OTel gen_ai.request.*): temperature, top_p, max_tokens
 * (max_completion_tokens, max_tokens or the responses API's
 * max_output_tokens), frequency_penalty, presence_penalty, stop (always an
 * array of strings), seed, n, output_type, encoding_format (embeddings).
 * Absent when the request sent none of them. No message text goes here.
 */
/* The request members write_request_params reads, in xv_json_pick's order. */
enum { RP_TEMPERATURE, RP_TOP_P, RP_MAX_COMPLETION_TOKENS, RP_MAX_TOKENS, RP_MAX_OUTPUT_TOKENS,
       RP_FREQUENCY_PENALTY, RP_PRESENCE_PENALTY, RP_SEED, RP_N, RP_STOP, RP_RESPONSE_FORMAT,
       RP_TEXT, RP_ENCODING_FORMAT, RP_COUNT };
static const char *const rp_names[RP_COUNT] = {
    "temperature", "top_p", "max_completion_tokens", "max_tokens", "max_output_tokens",
    "frequency_penalty", "presence_penalty", "seed", "n", "stop", "response_format", "text",
    "encoding_format",
};

static void write_request_params(const struct xv_openai_call *c, struct xv_jw *w)
{
    const cJSON *v[RP_COUNT];
    xv_json_pick(c->req, rp_names, RP_COUNT, v); /* one pass over the request's members */
    struct xv_jw_mark m = xv_jw_mark(w);
    int n = 0;
    xv_jw_key(w, "request_params");
    xv_jw_obj_begin(w);
    param_num(w, "temperature", num_or_null(v[RP_TEMPERATURE]), &n);
    param_num(w, "top_p", num_or_null(v[RP_TOP_P]), &n);
    const cJSON *mt = num_or_null(v[RP_MAX_COMPLETION_TOKENS]);
    if (!mt)
        mt = num_or_null(v[RP_MAX_TOKENS]);
    if (!mt)
        mt = num_or_null(v[RP_MAX_OUTPUT_TOKENS]);
    param_num(w, "max_tokens", mt, &n);
    param_num(w, "frequency_penalty", num_or_null(v[RP_FREQUENCY_PENALTY]), &n);
    param_num(w, "presence_penalty", num_or_null(v[RP_PRESENCE_PENALTY]), &n);
    param_num(w, "seed", num_or_null(v[RP_SEED]), &n);
    param_num(w, "n", num_or_null(v[RP_N]), &n);
    const cJSON *stop = v[RP_STOP];
    if (cJSON_IsString(stop) || cJSON_IsArray(stop)) {
        xv_jw_key(w, "stop");
        xv_jw_arr_begin(w);
        n++;
        if (cJSON_IsString(stop)) {
            ident(w, stop->valuestring);
        } else {
            int k = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, stop) {
                if (cJSON_IsString(e) && k < 16) {
                    ident(w, e->valuestring);
                    k++;
                }
            }
        }
        xv_jw_arr_end(w);
    }
    const char *ot = output_type(v[RP_RESPONSE_FORMAT], v[RP_TEXT]);
    if (ot) {
        put_ident(w, "output_type", ot);
        n++;
    }
    const char *ef = xv_json_str(v[RP_ENCODING_FORMAT]);
    if (c->type == XV_OPENAI_EMBEDDINGS) {
        put_ident(w, "encoding_format", ef ? ef : "float"); /* the API's default */
        n++;
    }
    if (n == 0) {
        xv_jw_rewind(w, m);
        return;
    }
    xv_jw_obj_end(w);
}

int xv_openai_call_write_record(const struct xv_openai_call *c, struct xv_jw *w,
                                uint64_t request_start_mono_ns, unsigned flags)
{
    if (!c || !w)
        return 0;
    struct trunc tr = { 0, { 0 }, 0 };
    put_ident(w, "request_type", xv_openai_type_name(c->type));
    put_ident(w, "model", xv_openai_call_model(c));
    xv_jw_kbool(w, "stream", xv_openai_call_stream(c));

    int cut = 0;
    if (c->req && c->lim.capture_content) {
        if (write_messages(c, w, &cut) != 0)
            return XV_E_NOMEM;
        if (cut)
            note_truncated(w, &tr, "messages");
    }
    if (c->req)
        write_request_params(c, w);
    cut = 0;
    if (c->req) {
        write_tools(c, w, &cut);
        if (cut)
            note_truncated(w, &tr, "tools");
    }

    put_ident(w, "response_id", c->resp_id);
    put_ident(w, "response_model", c->resp_model);
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(c, &clen);
    if (content && c->lim.capture_content) {
        cut = 0;
        put_text(c, w, "response_content", content, clen, c->lim.capture_max, &cut);
        if (cut || c->asm_over)
            note_truncated(w, &tr, "response_content");
    }
    if (c->ntools) {
        cut = 0;
        write_tool_calls(c, w, &cut);
        if (cut || (c->asm_over && c->lim.capture_content))
            note_truncated(w, &tr, "tool_calls");
    }
    write_finish_reasons(c, w);
    if (c->has_tokens_in)
        xv_jw_knum(w, "tokens_in", (double)c->tokens_in);
    if (c->has_tokens_out)
        xv_jw_knum(w, "tokens_out", (double)c->tokens_out);
    if (c->has_tokens_cached)
        xv_jw_knum(w, "tokens_cached", (double)c->tokens_cached);
    if (c->has_tokens_reasoning)
        xv_jw_knum(w, "tokens_reasoning", (double)c->tokens_reasoning);
    if (c->status && !(flags & XV_OPENAI_REC_NO_STATUS))
        xv_jw_knum(w, "status_code", c->status);
    if (c->sse && c->first_token_ns && c->first_token_ns >= request_start_mono_ns) {
        /* Milliseconds with microsecond precision. */
        uint64_t us = (c->first_token_ns - request_start_mono_ns + 500) / 1000;
        xv_jw_kscaled(w, "ttft_ms", us, 3);
    }
    if (!(flags & XV_OPENAI_REC_NO_ERROR))
        put_ident(w, "error", c->error);
    splice_truncated(w, &tr);
    return w->oom ? XV_E_NOMEM : 0;
}

/* The tree form, for tests and tools: the same text parsed back, each
 * member replacing one of the same name in `record`. */
int xv_openai_call_fill_record(const struct xv_openai_call *c, cJSON *record,
                               uint64_t request_start_mono_ns)
{
    if (!c || !record)
        return 0;
    struct xv_jw w;
    xv_jw_init(&w, 1024);
    xv_jw_obj_begin(&w);
    int rc = xv_openai_call_write_record(c, &w, request_start_mono_ns, 0);
    xv_jw_obj_end(&w);
    cJSON *o = rc == 0 && !w.oom ? cJSON_ParseWithLength(w.p, w.len) : NULL;
    xv_jw_free(&w);
    if (!o)
        return XV_E_NOMEM;
    while (o->child) {
        cJSON *it = cJSON_DetachItemViaPointer(o, o->child);
        cJSON_DeleteItemFromObjectCaseSensitive(record, it->string);
        cJSON_AddItemToObject(record, it->string, it);
    }
    cJSON_Delete(o);
    return 0;
}

void xv_openai_call_set_redactor(struct xv_openai_call *c, xv_openai_redact_fn fn, void *ctx)
{
    if (!c)
        return;
    c->redact_fn = fn;
    c->redact_ctx = ctx;
}

const char *xv_openai_call_response_id(const struct xv_openai_call *c)
{
    return c ? c->resp_id : NULL;
}

int xv_openai_call_type(const struct xv_openai_call *c)
{
    return c ? c->type : XV_OPENAI_NONE;
}

int xv_openai_call_usage(const struct xv_openai_call *c, int64_t *in, int64_t *out)
{
    int have = 0;
    if (!c)
        return 0;
    if (c->has_tokens_in) {
        *in = c->tokens_in;
        have |= 1;
    }
    if (c->has_tokens_out) {
        *out = c->tokens_out;
        have |= 2;
    }
    return have;
}
