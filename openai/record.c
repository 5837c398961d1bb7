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

/* Replace record[key] with item (taken over). XV_E_NOMEM when item is
 * NULL or cannot be attached (item freed). */
static int put(cJSON *record, const char *key, cJSON *item)
{
    if (!item)
        return XV_E_NOMEM;
    /* Whatever the app or upstream sent, the record is valid UTF-8: JSON
     * Lines readers and OTLP (protobuf strings) both require it. */
    xv_oai_sanitize_tree(item);
    /* Replace an earlier value of key. The first byte is compared before
     * strcmp: cJSON's own lookup called strcmp on every field for every
     * put, quadratic in the record's ~40 fields (issue 9: 7 % of a call). */
    for (cJSON *it = record->child; it; it = it->next)
        if (it->string && it->string[0] == key[0] && strcmp(it->string, key) == 0) {
            cJSON_Delete(cJSON_DetachItemViaPointer(record, it));
            break;
        }
    if (!cJSON_AddItemToObject(record, key, item)) {
        cJSON_Delete(item);
        return XV_E_NOMEM;
    }
    return 0;
}

/* An identifier-like string (model, ids, names, roles), capped at
 * XV_OAI_IDENT_MAX bytes: a hostile upstream cannot bloat every record. */
static cJSON *ident(const char *s)
{
    int cut = 0;
    return xv_oai_capture_string(s, strlen(s), XV_OAI_IDENT_MAX, &cut);
}

static int put_str(cJSON *record, const char *key, const char *s)
{
    return s ? put(record, key, ident(s)) : 0;
}

/* obj[key] = ident(s); 0 or XV_E_NOMEM. */
static int add_ident(cJSON *obj, const char *key, const char *s)
{
    cJSON *v = ident(s);
    if (!v || !cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return XV_E_NOMEM;
    }
    return 0;
}

/* Add `field` to the record's `truncated` list (created when missing). */
static int note_truncated(cJSON *record, const char *field)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(record, "truncated");
    if (!cJSON_IsArray(t)) {
        t = cJSON_CreateArray();
        if (put(record, "truncated", t) != 0)
            return XV_E_NOMEM;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, t) {
        if (cJSON_IsString(e) && strcmp(e->valuestring, field) == 0)
            return 0;
    }
    cJSON *s = cJSON_CreateString(field);
    if (!s || !cJSON_AddItemToArray(t, s)) {
        cJSON_Delete(s);
        return XV_E_NOMEM;
    }
    return 0;
}

/* A captured text: s[0..len) with the call's redaction applied first (so a
 * match is never cut in half by the capture limit), then cut to `budget`
 * bytes; sets *cut when cut. NULL on OOM. */
static cJSON *capture(const struct xv_openai_call *c, const char *s, size_t len, size_t budget,
                      int *cut)
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
            return xv_oai_capture_string(failed, sizeof failed - 1, sizeof failed, cut);
        }
        if (changed) {
            if (budget >= len)
                budget = b.len; /* the whole text fitted before: it still does */
            cJSON *v = xv_oai_capture_string(b.data, b.len, budget, cut);
            xv_buf_free(&b);
            return v;
        }
        xv_buf_free(&b);
    }
    return xv_oai_capture_string(s, len, budget, cut);
}

/* Add key: s[0..len) redacted and cut to `budget` bytes; sets *cut when cut. */
static int add_text(const struct xv_openai_call *c, cJSON *obj, const char *key, const char *s,
                    size_t len, size_t budget, int *cut)
{
    cJSON *v = capture(c, s, len, budget, cut);
    if (!v || !cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return XV_E_NOMEM;
    }
    return 0;
}

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

/*
 * messages: the normalised history, chronological. The text budget
 * (capture_max bytes of content and tool arguments together) goes to the
 * newest messages first — the last user turn and tool results are what
 * explain a call — so a long system prompt is what gets cut; the oldest
 * messages are left out once their roles and ids no longer fit the
 * structure budget.
 */
static int fill_messages(const struct xv_openai_call *c, cJSON *record, int *cut)
{
    size_t n = c->nmsgs, remain = c->lim.capture_max, remain_struct = c->lim.capture_max;
    size_t *bud = calloc(n ? n * 2 : 1, sizeof *bud); /* content, args per message */
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
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? 0 : XV_E_NOMEM;
    for (size_t i = first; i < n && rc == 0; i++) {
        const struct xv_openai_message *m = &c->msgs[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            rc = XV_E_NOMEM;
            break;
        }
        rc = add_ident(o, "role", m->role);
        if (rc == 0 && m->name)
            rc = add_ident(o, "name", m->name);
        if (rc == 0 && m->content)
            rc = add_text(c, o, "content", m->content, m->content_len, bud[2 * i], cut);
        if (rc == 0 && m->tool_call_id)
            rc = add_ident(o, "tool_call_id", m->tool_call_id);
        if (rc == 0 && m->ntool_calls) {
            cJSON *tcs = cJSON_AddArrayToObject(o, "tool_calls");
            size_t ab = bud[2 * i + 1];
            for (size_t k = 0; tcs && k < m->ntool_calls && rc == 0; k++) {
                const struct xv_openai_tool_call *t = &m->tool_calls[k];
                cJSON *to = cJSON_CreateObject();
                if (!to || !cJSON_AddItemToArray(tcs, to)) {
                    cJSON_Delete(to);
                    rc = XV_E_NOMEM;
                    break;
                }
                rc = add_ident(to, "id", t->id);
                if (rc == 0)
                    rc = add_ident(to, "name", t->name);
                if (rc == 0)
                    rc = add_text(c, to, "arguments", t->arguments, t->arguments_len,
                                  take(&ab, t->arguments_len), cut);
            }
            if (!tcs)
                rc = XV_E_NOMEM;
        }
    }
    free(bud);
    if (rc != 0) {
        cJSON_Delete(arr);
        return rc;
    }
    return put(record, "messages", arr);
}

/* tools as sent; when their text is over the budget, only {type, name}
 * of as many as fit. */
static int fill_tools(const struct xv_openai_call *c, cJSON *record, int *cut)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c->req, "tools");
    if (!cJSON_IsArray(tools))
        tools = cJSON_GetObjectItemCaseSensitive(c->req, "functions");
    if (!cJSON_IsArray(tools))
        return 0;
    char *text = cJSON_PrintUnformatted(tools);
    if (!text)
        return XV_E_NOMEM;
    size_t len = strlen(text);
    free(text);
    if (len <= c->lim.capture_max)
        return put(record, "tools", cJSON_Duplicate(tools, 1));
    *cut = 1;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return XV_E_NOMEM;
    size_t remain = c->lim.capture_max;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const char *type = xv_oai_get_str(t, "type");
        const char *name = xv_oai_get_str(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (!name)
            name = xv_oai_get_str(t, "name");
        size_t need = 32 + (type ? strlen(type) : 0) + (name ? strlen(name) : 0);
        if (need > remain)
            break;
        remain -= need;
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return XV_E_NOMEM;
        }
        if ((type && add_ident(o, "type", type) != 0) ||
            (name && add_ident(o, "name", name) != 0)) {
            cJSON_Delete(arr); /* o goes with it */
            return XV_E_NOMEM;
        }
    }
    return put(record, "tools", arr);
}

/* tool_calls of the response: [{id, name, arguments}], arguments sharing
 * one capture budget (and absent when content capture is off). */
static int fill_tool_calls(const struct xv_openai_call *c, cJSON *record, int *cut)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return XV_E_NOMEM;
    size_t remain = c->lim.capture_max;
    int rc = 0;
    for (size_t i = 0; i < c->ntools && rc == 0; i++) {
        const struct xv_oai_tool *t = &c->tools[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            rc = XV_E_NOMEM;
            break;
        }
        rc = add_ident(o, "id", t->id ? t->id : "");
        if (rc == 0)
            rc = add_ident(o, "name", t->name ? t->name : "");
        if (rc == 0 && c->lim.capture_content)
            rc = add_text(c, o, "arguments", t->args.data, t->args.len, take(&remain, t->args.len),
                          cut);
    }
    if (rc != 0) {
        cJSON_Delete(arr);
        return rc;
    }
    return put(record, "tool_calls", arr);
}

static int fill_finish_reasons(const struct xv_openai_call *c, cJSON *record)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return XV_E_NOMEM;
    if (c->type == XV_OPENAI_RESPONSES) {
        if (c->resp_status && !cJSON_AddItemToArray(arr, ident(c->resp_status))) {
            cJSON_Delete(arr);
            return XV_E_NOMEM;
        }
    } else {
        for (size_t i = 0; i < c->nchoices; i++) {
            if (!c->choices[i].finish)
                continue;
            if (!cJSON_AddItemToArray(arr, ident(c->choices[i].finish))) {
                cJSON_Delete(arr);
                return XV_E_NOMEM;
            }
        }
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(arr);
        return 0;
    }
    return put(record, "finish_reasons", arr);
}

/* A number member of the request, when it is one. */
static const cJSON *req_num(const cJSON *req, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    return cJSON_IsNumber(v) ? v : NULL;
}

/* Copy req[key] into params[as] when it is a finite number. */
static int param_num(cJSON *params, const char *as, const cJSON *v)
{
    if (!v || v->valuedouble != v->valuedouble)
        return 0;
    cJSON *n = cJSON_CreateNumber(v->valuedouble);
    if (!n || !cJSON_AddItemToObject(params, as, n)) {
        cJSON_Delete(n);
        return XV_E_NOMEM;
    }
    return 0;
}

/* The output type a request asks for (OTel gen_ai.output.type): chat
 * response_format.type, responses text.format.type; json_object and
 * json_schema are "json". NULL when the request names none. */
static const char *output_type(const cJSON *req)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    if (!cJSON_IsObject(f))
        f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "text"),
                                             "format");
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
static int fill_request_params(const struct xv_openai_call *c, cJSON *record)
{
    const cJSON *req = c->req;
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return XV_E_NOMEM;
    int rc = param_num(p, "temperature", req_num(req, "temperature"));
    if (rc == 0)
        rc = param_num(p, "top_p", req_num(req, "top_p"));
    const cJSON *mt = req_num(req, "max_completion_tokens");
    if (!mt)
        mt = req_num(req, "max_tokens");
    if (!mt)
        mt = req_num(req, "max_output_tokens");
    if (rc == 0)
        rc = param_num(p, "max_tokens", mt);
    if (rc == 0)
        rc = param_num(p, "frequency_penalty", req_num(req, "frequency_penalty"));
    if (rc == 0)
        rc = param_num(p, "presence_penalty", req_num(req, "presence_penalty"));
    if (rc == 0)
        rc = param_num(p, "seed", req_num(req, "seed"));
    if (rc == 0)
        rc = param_num(p, "n", req_num(req, "n"));
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (rc == 0 && (cJSON_IsString(stop) || cJSON_IsArray(stop))) {
        cJSON *arr = cJSON_AddArrayToObject(p, "stop");
        const cJSON *e;
        if (!arr)
            rc = XV_E_NOMEM;
        else if (cJSON_IsString(stop))
            rc = cJSON_AddItemToArray(arr, ident(stop->valuestring)) ? 0 : XV_E_NOMEM;
        else
            cJSON_ArrayForEach(e, stop) {
                if (rc == 0 && cJSON_IsString(e) && cJSON_GetArraySize(arr) < 16)
                    rc = cJSON_AddItemToArray(arr, ident(e->valuestring)) ? 0 : XV_E_NOMEM;
            }
    }
    const char *ot = output_type(req);
    if (rc == 0 && ot)
        rc = add_ident(p, "output_type", ot);
    const char *ef = xv_oai_get_str(req, "encoding_format");
    if (rc == 0 && c->type == XV_OPENAI_EMBEDDINGS)
        rc = add_ident(p, "encoding_format", ef ? ef : "float"); /* the API's default */
    if (rc != 0 || cJSON_GetArraySize(p) == 0) {
        cJSON_Delete(p);
        return rc;
    }
    return put(record, "request_params", p);
}

int xv_openai_call_fill_record(const struct xv_openai_call *c, cJSON *record,
                               uint64_t request_start_mono_ns)
{
    if (!c || !record)
        return 0;
    int rc = put_str(record, "request_type", xv_openai_type_name(c->type));
    if (rc == 0)
        rc = put_str(record, "model", xv_openai_call_model(c));
    if (rc == 0)
        rc = put(record, "stream", cJSON_CreateBool(xv_openai_call_stream(c)));

    int cut = 0;
    if (rc == 0 && c->req && c->lim.capture_content) {
        rc = fill_messages(c, record, &cut);
        if (rc == 0 && cut)
            rc = note_truncated(record, "messages");
    }
    if (rc == 0 && c->req)
        rc = fill_request_params(c, record);
    cut = 0;
    if (rc == 0 && c->req) {
        rc = fill_tools(c, record, &cut);
        if (rc == 0 && cut)
            rc = note_truncated(record, "tools");
    }

    if (rc == 0)
        rc = put_str(record, "response_id", c->resp_id);
    if (rc == 0)
        rc = put_str(record, "response_model", c->resp_model);
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(c, &clen);
    if (rc == 0 && content && c->lim.capture_content) {
        cut = 0;
        cJSON *v = capture(c, content, clen, c->lim.capture_max, &cut);
        rc = put(record, "response_content", v);
        if (rc == 0 && (cut || c->asm_over))
            rc = note_truncated(record, "response_content");
    }
    if (rc == 0 && c->ntools) {
        cut = 0;
        rc = fill_tool_calls(c, record, &cut);
        if (rc == 0 && (cut || (c->asm_over && c->lim.capture_content)))
            rc = note_truncated(record, "tool_calls");
    }
    if (rc == 0)
        rc = fill_finish_reasons(c, record);
    if (rc == 0 && c->has_tokens_in)
        rc = put(record, "tokens_in", cJSON_CreateNumber((double)c->tokens_in));
    if (rc == 0 && c->has_tokens_out)
        rc = put(record, "tokens_out", cJSON_CreateNumber((double)c->tokens_out));
    if (rc == 0 && c->has_tokens_cached)
        rc = put(record, "tokens_cached", cJSON_CreateNumber((double)c->tokens_cached));
    if (rc == 0 && c->has_tokens_reasoning)
        rc = put(record, "tokens_reasoning", cJSON_CreateNumber((double)c->tokens_reasoning));
    if (rc == 0 && c->status)
        rc = put(record, "status_code", cJSON_CreateNumber(c->status));
    if (rc == 0 && c->sse && c->first_token_ns && c->first_token_ns >= request_start_mono_ns) {
        /* Milliseconds with microsecond precision. */
        uint64_t us = (c->first_token_ns - request_start_mono_ns + 500) / 1000;
        rc = put(record, "ttft_ms", cJSON_CreateNumber((double)us / 1000.0));
    }
    if (rc == 0 && c->error)
        rc = put_str(record, "error", c->error);
    return rc;
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
