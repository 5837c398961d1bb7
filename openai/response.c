/*
 * response.c — the response side of a call: a JSON body read whole, or an
 * SSE stream read event by event (http/'s xv_sse parser), both reduced to
 * the same model: id, model, per-choice content and finish reason, tool
 * calls keyed by (choice, index) with argument fragments concatenated in
 * arrival order, usage, the first-token time, and errors.
 *
 * Invariants: nothing the upstream sends is used as an array offset (choices
 * and tool calls are found by linear search in small bounded lists); all
 * assembled text together stays within lim.body_max (`asm_bytes`); a
 * malformed event or body is noted, never fatal, and later events are still
 * read. Streams and whole bodies go through the same per-choice code, so a
 * stream and its non-stream twin yield the same record.
 *
 * Thread safety: a call belongs to one thread at a time; no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai_int.h"

void xv_oai_resp_free(struct xv_openai_call *c)
{
    xv_oai_body_done(&c->resp_body);
    xv_sse_parser_free(c->ssep);
    c->ssep = NULL;
    xv_jr_free(&c->ev_tree);
    for (size_t i = 0; i < c->nchoices; i++) {
        xv_buf_free(&c->choices[i].content);
        free(c->choices[i].finish);
    }
    free(c->choices);
    c->choices = NULL;
    c->nchoices = 0;
    for (size_t i = 0; i < c->ntools; i++) {
        free(c->tools[i].id);
        free(c->tools[i].name);
        free(c->tools[i].item_id);
        xv_buf_free(&c->tools[i].args);
    }
    free(c->tools);
    c->tools = NULL;
    c->ntools = 0;
    free(c->resp_id);
    free(c->resp_model);
    free(c->resp_status);
    c->resp_id = c->resp_model = c->resp_status = NULL;
}

/* ---- small model helpers ---- */

/* Keep the first non-empty value: later chunks repeat it (or, on Azure,
 * the first chunk carries an empty model). */
static void set_once(char **dst, const char *s)
{
    if (!*dst && s && *s)
        *dst = xv_oai_strdup(s);
}

static void set_replace(char **dst, const char *s)
{
    if (!s)
        return;
    char *d = xv_oai_strdup(s);
    if (d) {
        free(*dst);
        *dst = d;
    }
}

/* Integer value of a JSON number member; -1 when absent or not a
 * non-negative integer-sized number. */
static int json_index(const cJSON *obj, const char *key)
{
    const cJSON *v = xv_json_get(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return -1;
    return (int)v->valuedouble;
}

/* Append to an assembled buffer within the call's shared budget; past it
 * the text is cut at a UTF-8 boundary and the call remembers it. */
static void asm_append(struct xv_openai_call *c, struct xv_buf *b, const char *s, size_t n)
{
    size_t room = c->lim.body_max - c->asm_bytes;
    if (n > room) {
        n = xv_oai_utf8_cut(s, n, room);
        c->asm_over = 1;
    }
    if (n == 0)
        return;
    if (xv_buf_append(b, s, n) != 0) {
        c->asm_over = 1; /* OOM: the record shows the text as cut */
        return;
    }
    c->asm_bytes += n;
}

static void asm_reset(struct xv_openai_call *c, struct xv_buf *b)
{
    c->asm_bytes -= b->len;
    xv_buf_reset(b);
}

static struct xv_oai_choice *choice_get(struct xv_openai_call *c, int index)
{
    for (size_t i = 0; i < c->nchoices; i++)
        if (c->choices[i].index == index)
            return &c->choices[i];
    if (c->nchoices >= XV_OAI_MAX_CHOICES)
        return NULL;
    struct xv_oai_choice *ch = realloc(c->choices, (c->nchoices + 1) * sizeof *ch);
    if (!ch)
        return NULL;
    c->choices = ch;
    /* Kept sorted by index, so records list choices in order. Pointers
     * into the list are only held within one event. */
    size_t pos = c->nchoices;
    while (pos > 0 && c->choices[pos - 1].index > index)
        pos--;
    memmove(&c->choices[pos + 1], &c->choices[pos], (c->nchoices - pos) * sizeof *ch);
    c->nchoices++;
    ch = &c->choices[pos];
    memset(ch, 0, sizeof *ch);
    ch->index = index;
    xv_buf_init(&ch->content, (size_t)-1); /* bounded by asm_bytes instead */
    return ch;
}

/* Find a tool call by item id (responses API) or by (choice, index);
 * create it when new. NULL past the bound or on OOM. */
static struct xv_oai_tool *tool_get(struct xv_openai_call *c, int choice, int index,
                                    const char *item_id)
{
    if (item_id && !*item_id)
        item_id = NULL;
    for (size_t i = 0; i < c->ntools; i++) {
        struct xv_oai_tool *t = &c->tools[i];
        if (item_id && t->item_id && strcmp(t->item_id, item_id) == 0)
            return t;
    }
    for (size_t i = 0; i < c->ntools; i++) {
        struct xv_oai_tool *t = &c->tools[i];
        if (t->choice == choice && t->index == index && index >= 0) {
            set_once(&t->item_id, item_id);
            return t;
        }
    }
    if (c->ntools >= XV_OAI_MAX_TOOL_CALLS)
        return NULL;
    struct xv_oai_tool *t = realloc(c->tools, (c->ntools + 1) * sizeof *t);
    if (!t)
        return NULL;
    c->tools = t;
    /* Kept sorted by (choice, index), the order records list them in. */
    size_t pos = c->ntools;
    while (pos > 0 && (c->tools[pos - 1].choice > choice ||
                       (c->tools[pos - 1].choice == choice && c->tools[pos - 1].index > index)))
        pos--;
    memmove(&c->tools[pos + 1], &c->tools[pos], (c->ntools - pos) * sizeof *t);
    c->ntools++;
    t = &c->tools[pos];
    memset(t, 0, sizeof *t);
    t->choice = choice;
    t->index = index;
    set_once(&t->item_id, item_id);
    xv_buf_init(&t->args, (size_t)-1); /* bounded by asm_bytes instead */
    return t;
}

/* Arguments as a string member, or an object some servers send instead. */
static void tool_args_append(struct xv_openai_call *c, struct xv_oai_tool *t, const cJSON *args)
{
    if (cJSON_IsString(args)) {
        asm_append(c, &t->args, args->valuestring, strlen(args->valuestring));
    } else if (cJSON_IsObject(args) || cJSON_IsArray(args)) {
        char *s = cJSON_PrintUnformatted(args);
        if (s) {
            asm_append(c, &t->args, s, strlen(s));
            free(s);
        }
    }
}

static void first_token(struct xv_openai_call *c)
{
    if (c->sse && c->first_token_ns == 0)
        c->first_token_ns = c->now_ns ? c->now_ns : 1;
}

static void take_usage(struct xv_openai_call *c, const cJSON *u)
{
    if (!cJSON_IsObject(u))
        return;
    /* Chat/completions/embeddings use prompt/completion; responses uses
     * input/output. Compatible servers mix them up, so accept both. */
    static const char *const names[] = { "prompt_tokens", "input_tokens", "completion_tokens",
                                         "output_tokens", "prompt_tokens_details",
                                         "input_tokens_details", "completion_tokens_details",
                                         "output_tokens_details" };
    const cJSON *f[8];
    xv_json_pick(u, names, 8, f); /* one pass over its members */
    const cJSON *in = f[0];
    if (!cJSON_IsNumber(in))
        in = f[1];
    const cJSON *out = f[2];
    if (!cJSON_IsNumber(out))
        out = f[3];
    if (cJSON_IsNumber(in) && in->valuedouble >= 0 && in->valuedouble < 9e15) {
        c->has_tokens_in = 1;
        c->tokens_in = (int64_t)in->valuedouble;
    }
    if (cJSON_IsNumber(out) && out->valuedouble >= 0 && out->valuedouble < 9e15) {
        c->has_tokens_out = 1;
        c->tokens_out = (int64_t)out->valuedouble;
    }
    /* Details (OTel gen_ai.usage.cache_read.input_tokens / reasoning.output_tokens):
     * chat/completions prompt_tokens_details.cached_tokens and
     * completion_tokens_details.reasoning_tokens; the responses API's
     * input_tokens_details / output_tokens_details. */
    const cJSON *d = f[4];
    if (!cJSON_IsObject(d))
        d = f[5];
    const cJSON *v = xv_json_get(d, "cached_tokens");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15) {
        c->has_tokens_cached = 1;
        c->tokens_cached = (int64_t)v->valuedouble;
    }
    d = f[6];
    if (!cJSON_IsObject(d))
        d = f[7];
    v = xv_json_get(d, "reasoning_tokens");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15) {
        c->has_tokens_reasoning = 1;
        c->tokens_reasoning = (int64_t)v->valuedouble;
    }
}

/* An upstream error: {"error": {"message", "type", "code"}} (or the same
 * fields at top level, as the responses API's `error` event sends them). */
static void take_error(struct xv_openai_call *c, const cJSON *e, int skip_type)
{
    if (cJSON_IsString(e)) {
        xv_oai_errorf(c, "upstream error: %.*s", XV_OAI_ERROR_MAX, e->valuestring);
        return;
    }
    if (!cJSON_IsObject(e))
        return;
    const char *msg = xv_oai_get_str(e, "message");
    const char *type = skip_type ? NULL : xv_oai_get_str(e, "type");
    const char *code = xv_oai_get_str(e, "code");
    char num[32] = "";
    const cJSON *cn = xv_json_get(e, "code");
    if (!code && cJSON_IsNumber(cn)) {
        snprintf(num, sizeof num, "%.0f", cn->valuedouble);
        code = num;
    }
    if (type && code)
        xv_oai_errorf(c, "upstream error: %.*s (%.64s, %.64s)", XV_OAI_ERROR_MAX,
                      msg ? msg : "no message", type, code);
    else if (type || code)
        xv_oai_errorf(c, "upstream error: %.*s (%.64s)", XV_OAI_ERROR_MAX,
                      msg ? msg : "no message", type ? type : code);
    else
        xv_oai_errorf(c, "upstream error: %.*s", XV_OAI_ERROR_MAX, msg ? msg : "no message");
}

/* ---- chat / completions ---- */

/* Text of a content value: a string, or (some compatible servers) an array
 * of {type:"text", text} parts. */
static void append_content(struct xv_openai_call *c, struct xv_oai_choice *ch, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n) {
            asm_append(c, &ch->content, v->valuestring, n);
            first_token(c);
        }
        return;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, xv_oai_array(v)) {
        const char *t = xv_oai_get_str(p, "text");
        if (t && *t) {
            asm_append(c, &ch->content, t, strlen(t));
            first_token(c);
        }
    }
}

/* The legacy function_call's slot: after every indexed tool call. */
#define LEGACY_FC_INDEX 1000000000

/*
 * A streamed tool-call delta without `index` (OpenAI always sends one; some
 * compatible servers do not, and send each call whole in its own chunk):
 * a known id continues its call, a new id starts the next index, and no id
 * continues the latest call of the choice (or takes its array position).
 */
static int implied_tool_index(const struct xv_openai_call *c, int choice, const char *id, int k)
{
    int last = -1;
    for (size_t i = 0; i < c->ntools; i++) {
        const struct xv_oai_tool *t = &c->tools[i];
        if (t->choice != choice || t->index >= LEGACY_FC_INDEX)
            continue;
        if (id && *id && t->id && strcmp(t->id, id) == 0)
            return t->index;
        if (t->index > last)
            last = t->index;
    }
    if (id && *id)
        return last + 1;
    return last >= 0 ? last : k;
}

/* One element of choices[]: a whole message (stream = 0) or a delta. */
static void chat_choice(struct xv_openai_call *c, const cJSON *cj, int pos, int stream)
{
    int idx = json_index(cj, "index");
    if (idx < 0)
        idx = pos;
    struct xv_oai_choice *ch = choice_get(c, idx);
    if (!ch)
        return;
    const cJSON *text = xv_json_get(cj, "text");
    if (text) /* legacy completions */
        append_content(c, ch, text);
    const cJSON *m = xv_json_get(cj, stream ? "delta" : "message");
    if (!cJSON_IsObject(m)) /* servers that send `message` in chunks, or the reverse */
        m = xv_json_get(cj, stream ? "message" : "delta");
    if (cJSON_IsObject(m)) {
        const cJSON *content = xv_json_get(m, "content");
        append_content(c, ch, content);
        /* A refusal replaces the content; keep it readable in the record. */
        append_content(c, ch, xv_json_get(m, "refusal"));
        const cJSON *tcs = xv_json_get(m, "tool_calls");
        int k = 0;
        const cJSON *tc;
        cJSON_ArrayForEach(tc, xv_oai_array(tcs)) {
            int ti = json_index(tc, "index");
            if (ti < 0)
                ti = stream ? implied_tool_index(c, idx, xv_oai_get_str(tc, "id"), k) : k;
            struct xv_oai_tool *t = tool_get(c, idx, ti, NULL);
            k++;
            if (!t)
                continue;
            const cJSON *f = xv_json_get(tc, "function");
            set_once(&t->id, xv_oai_get_str(tc, "id"));
            set_once(&t->name, xv_oai_get_str(f, "name"));
            tool_args_append(c, t, xv_json_get(f, "arguments"));
            first_token(c);
        }
        /* Legacy `function_call` (functions API): one call, no id. */
        const cJSON *fc = xv_json_get(m, "function_call");
        if (cJSON_IsObject(fc)) {
            struct xv_oai_tool *t = tool_get(c, idx, LEGACY_FC_INDEX, NULL);
            if (t) {
                set_once(&t->name, xv_oai_get_str(fc, "name"));
                tool_args_append(c, t, xv_json_get(fc, "arguments"));
                first_token(c);
            }
        }
    }
    const char *fr = xv_oai_get_str(cj, "finish_reason");
    if (fr)
        set_replace(&ch->finish, fr);
}

/* A chat/completions/embeddings object: a whole body or one stream chunk. */
static void chat_object(struct xv_openai_call *c, const cJSON *o, int stream)
{
    static const char *const names[] = { "error", "id", "model", "choices", "usage" };
    const cJSON *v[5];
    xv_json_pick(o, names, 5, v); /* one pass over its members */
    const cJSON *err = v[0];
    if (err && !cJSON_IsNull(err))
        take_error(c, err, 0);
    set_once(&c->resp_id, xv_json_str(v[1]));
    set_once(&c->resp_model, xv_json_str(v[2]));
    const cJSON *choices = v[3];
    int pos = 0;
    const cJSON *cj;
    cJSON_ArrayForEach(cj, xv_oai_array(choices)) {
        if (cJSON_IsObject(cj))
            chat_choice(c, cj, pos, stream);
        pos++;
    }
    /* With include_usage the last chunk carries it; earlier ones send
     * null. Some servers send running totals in every chunk: last wins. */
    take_usage(c, v[4]);
}

/* ---- responses API ---- */

/* Text parts of an output message item. */
static void responses_message_text(struct xv_openai_call *c, const cJSON *item)
{
    struct xv_oai_choice *ch = choice_get(c, 0);
    if (!ch)
        return;
    const cJSON *parts = xv_json_get(item, "content"), *p;
    cJSON_ArrayForEach(p, xv_oai_array(parts)) {
        const char *type = xv_oai_get_str(p, "type");
        const char *t = NULL;
        if (type && strcmp(type, "output_text") == 0)
            t = xv_oai_get_str(p, "text");
        else if (type && strcmp(type, "refusal") == 0)
            t = xv_oai_get_str(p, "refusal");
        if (t)
            asm_append(c, &ch->content, t, strlen(t));
    }
}

static int is_tool_item(const char *type)
{
    return type && (strcmp(type, "function_call") == 0 || strcmp(type, "custom_tool_call") == 0);
}

/* A function_call output item; `whole` when its arguments are final. */
static void responses_tool_item(struct xv_openai_call *c, const cJSON *item, int output_index,
                                int whole)
{
    struct xv_oai_tool *t = tool_get(c, 0, output_index, xv_oai_get_str(item, "id"));
    if (!t)
        return;
    set_once(&t->id, xv_oai_get_str(item, "call_id"));
    set_once(&t->name, xv_oai_get_str(item, "name"));
    const cJSON *args = xv_json_get(item, "arguments");
    if (!args)
        args = xv_json_get(item, "input"); /* custom tools */
    if (whole && args) {
        asm_reset(c, &t->args);
        tool_args_append(c, t, args);
    } else if (t->args.len == 0) {
        tool_args_append(c, t, args);
    }
}

/* A response object: a whole body, or the `response` of a lifecycle event
 * (`final` for completed/incomplete/failed: the output is complete). */
static void responses_object(struct xv_openai_call *c, const cJSON *r, int final)
{
    if (!cJSON_IsObject(r))
        return;
    const cJSON *err = xv_json_get(r, "error");
    if (err && !cJSON_IsNull(err))
        take_error(c, err, 0);
    set_once(&c->resp_id, xv_oai_get_str(r, "id"));
    set_once(&c->resp_model, xv_oai_get_str(r, "model"));
    set_replace(&c->resp_status, xv_oai_get_str(r, "status"));
    take_usage(c, xv_json_get(r, "usage"));
    if (!final)
        return;
    /* Deltas already built what a stream showed; the final object only
     * fills in what no delta carried (e.g. a stream that skipped them). */
    const cJSON *out = xv_json_get(r, "output"), *item;
    int pos = 0;
    cJSON_ArrayForEach(item, xv_oai_array(out)) {
        const char *type = xv_oai_get_str(item, "type");
        if (type && strcmp(type, "message") == 0 && !c->saw_text_delta)
            responses_message_text(c, item);
        else if (is_tool_item(type) && !c->saw_tool_item)
            responses_tool_item(c, item, pos, 1);
        pos++;
    }
}

/* One event of a responses API stream. */
static void responses_event(struct xv_openai_call *c, const cJSON *o, const char *evname)
{
    const char *type = xv_oai_get_str(o, "type");
    if (!type)
        type = evname;
    if (strncmp(type, "response.", 9) != 0) {
        if (strcmp(type, "error") == 0) {
            /* Fields at top level, where `type` is the event's ("error"). */
            const cJSON *e = xv_json_get(o, "error");
            take_error(c, cJSON_IsObject(e) ? e : o, cJSON_IsObject(e) ? 0 : 1);
        }
        return;
    }
    const char *t = type + 9;
    if (strcmp(t, "output_text.delta") == 0 || strcmp(t, "refusal.delta") == 0) {
        const cJSON *d = xv_json_get(o, "delta");
        struct xv_oai_choice *ch = choice_get(c, 0);
        c->saw_text_delta = 1;
        if (ch && cJSON_IsString(d) && *d->valuestring) {
            asm_append(c, &ch->content, d->valuestring, strlen(d->valuestring));
            first_token(c);
        }
    } else if (strcmp(t, "function_call_arguments.delta") == 0 ||
               strcmp(t, "custom_tool_call_input.delta") == 0) {
        struct xv_oai_tool *tl =
            tool_get(c, 0, json_index(o, "output_index"), xv_oai_get_str(o, "item_id"));
        const cJSON *d = xv_json_get(o, "delta");
        c->saw_tool_item = 1;
        if (tl && cJSON_IsString(d))
            asm_append(c, &tl->args, d->valuestring, strlen(d->valuestring));
        first_token(c);
    } else if (strcmp(t, "function_call_arguments.done") == 0 ||
               strcmp(t, "custom_tool_call_input.done") == 0) {
        struct xv_oai_tool *tl =
            tool_get(c, 0, json_index(o, "output_index"), xv_oai_get_str(o, "item_id"));
        const cJSON *a = xv_json_get(o, "arguments");
        if (!a)
            a = xv_json_get(o, "input");
        c->saw_tool_item = 1;
        if (tl) {
            set_once(&tl->name, xv_oai_get_str(o, "name"));
            if (a) { /* the whole text: authoritative over the deltas */
                asm_reset(c, &tl->args);
                tool_args_append(c, tl, a);
            }
        }
    } else if (strcmp(t, "output_item.added") == 0 || strcmp(t, "output_item.done") == 0) {
        const cJSON *item = xv_json_get(o, "item");
        if (is_tool_item(xv_oai_get_str(item, "type"))) {
            c->saw_tool_item = 1;
            responses_tool_item(c, item, json_index(o, "output_index"), t[12] == 'd');
            first_token(c);
        }
    } else if (strcmp(t, "completed") == 0 || strcmp(t, "incomplete") == 0 ||
               strcmp(t, "failed") == 0) {
        responses_object(c, xv_json_get(o, "response"), 1);
    } else if (strcmp(t, "created") == 0 || strcmp(t, "in_progress") == 0 ||
               strcmp(t, "queued") == 0) {
        responses_object(c, xv_json_get(o, "response"), 0);
    }
}

/* ---- SSE ---- */

static void on_sse_event(void *ud, const struct xv_sse_event *ev)
{
    struct xv_openai_call *c = ud;
    c->nevents++;
    if (c->done)
        return; /* nothing is meaningful after [DONE] */
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        c->done = 1;
        return;
    }
    if (ev->data_len == 0)
        return; /* keep-alive or an event with no data */
    if (ev->truncated) {
        xv_oai_errorf(c, "SSE event over limit (%zu bytes); not inspected", c->lim.body_max);
        return;
    }
    const char *end = NULL;
    cJSON *o = xv_jr_parse(&c->ev_tree, ev->data, ev->data_len, &end);
    if (!o) {
        size_t at = end && end >= ev->data ? (size_t)(end - ev->data) : 0;
        xv_oai_errorf(c, "malformed JSON in SSE event %lu at byte %zu", c->nevents, at);
        return;
    }
    if (cJSON_IsObject(o)) {
        char evname[64];
        size_t n = ev->event_len < sizeof evname - 1 ? ev->event_len : sizeof evname - 1;
        memcpy(evname, ev->event, n);
        evname[n] = '\0';
        if (c->type == XV_OPENAI_RESPONSES)
            responses_event(c, o, evname);
        else
            chat_object(c, o, 1);
    } else {
        xv_oai_errorf(c, "SSE event %lu is not a JSON object", c->nevents);
    }
    /* Emptied by the next event's parse; the block stays for it. */
}

/* ---- public response entry points ---- */

static void start_sse(struct xv_openai_call *c)
{
    c->sse = 1;
    c->ssep = xv_sse_parser_new(c->lim.body_max, on_sse_event, c);
    if (!c->ssep)
        xv_oai_errorf(c, "response not inspected: %s", xv_strerror(XV_E_NOMEM));
}

void xv_openai_call_response_head(struct xv_openai_call *c, int status,
                                  const char *content_type, size_t ct_len,
                                  uint64_t now_mono_ns)
{
    if (!c || c->resp_ended || status < 200 || c->status)
        return; /* 1xx heads are interim; the final one follows */
    c->status = status;
    if (xv_oai_media_type_is(content_type, ct_len, "text/event-stream"))
        start_sse(c);
    else if (xv_openai_call_stream(c) && !xv_oai_media_type_is(content_type, ct_len,
                                                               "application/json"))
        c->sniff = 1; /* some servers stream with no or a generic Content-Type */
}

/* Does the body start like an event stream? 1 yes, 0 no, -1 not yet known.
 * JSON starts with '{' (after whitespace); an event stream with a field
 * name or a comment. */
static int sniff_sse(const char *p, size_t len)
{
    static const char *const starts[] = {"data:", "event:", "id:", "retry:", ":"};
    size_t i = 0;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* BOM: allowed before an event stream */
    if (i == 0 && len < 3 && memcmp(p, "\xEF\xBB\xBF", len) == 0)
        return -1;
    if (i == len)
        return -1;
    int maybe = 0;
    for (size_t k = 0; k < sizeof starts / sizeof starts[0]; k++) {
        size_t sl = strlen(starts[k]), n = len - i < sl ? len - i : sl;
        if (memcmp(p + i, starts[k], n) == 0) {
            if (n == sl)
                return 1;
            maybe = 1;
        }
    }
    return maybe ? -1 : 0;
}

/* Non-stream bytes: keep them (bounded) for the parse at the end. */
static void body_append(struct xv_openai_call *c, const char *p, size_t n)
{
    c->resp_seen += n;
    if (c->resp_over)
        return;
    int rc = xv_buf_append(&c->resp_body, p, n);
    if (rc) {
        c->resp_over = 1;
        xv_buf_free(&c->resp_body);
        if (rc != XV_E_LIMIT)
            xv_oai_errorf(c, "response not inspected: %s", xv_strerror(rc));
    }
}

void xv_openai_call_response_body(struct xv_openai_call *c, const char *p, size_t n,
                                  uint64_t now_mono_ns)
{
    if (!c || c->resp_ended || n == 0)
        return;
    if (c->sniff) {
        /* Decide on at most sizeof sniff_buf bytes, held outside the body
         * buffer, so the outcome never depends on how the bytes were split
         * (nor on body_max). */
        char pre[sizeof c->sniff_buf];
        size_t held = c->sniff_len, take = n < sizeof pre - held ? n : sizeof pre - held;
        memcpy(pre, c->sniff_buf, held);
        memcpy(pre + held, p, take);
        int d = sniff_sse(pre, held + take);
        if (d < 0) { /* only while all of p fits: the longest undecided prefix is 9 bytes */
            memcpy(c->sniff_buf + held, p, take);
            c->sniff_len += take;
            return;
        }
        c->sniff = 0;
        c->sniff_len = 0;
        if (d == 1)
            start_sse(c);
        if (c->sse) {
            c->now_ns = now_mono_ns;
            if (c->ssep)
                xv_sse_parser_feed(c->ssep, c->sniff_buf, held);
        } else if (held) {
            body_append(c, c->sniff_buf, held);
        }
    }
    if (c->sse) {
        c->now_ns = now_mono_ns;
        if (c->ssep)
            xv_sse_parser_feed(c->ssep, p, n);
        return;
    }
    body_append(c, p, n);
}

/* The whole non-stream body is here: parse it. */
static void parse_body(struct xv_openai_call *c)
{
    if (c->resp_over) {
        xv_oai_errorf(c, "response body over limit (%zu bytes); not inspected", c->lim.body_max);
        return;
    }
    if (c->resp_body.len == 0) {
        if (c->status >= 200 && c->status < 300)
            xv_oai_errorf(c, "response body is empty");
        return;
    }
    const char *end = NULL;
    struct xv_jr_tree t = XV_JR_TREE_INIT;
    cJSON *o = NULL;
    if (c->type == XV_OPENAI_EMBEDDINGS) {
        /* `data` is nearly all of it and never recorded: step over it. */
        static const char *const keys[] = {"id", "model", "usage", "error", NULL};
        o = xv_oai_json_skim(c->resp_body.data, c->resp_body.len, keys);
        t.root = o;
        t.by_cjson = o != NULL;
    }
    if (!o) /* arena nodes (xv_jsonr.h): one or two allocations, not one per node */
        o = xv_jr_parse(&t, c->resp_body.data, c->resp_body.len, &end);
    if (!o) {
        size_t at = end && end >= c->resp_body.data ? (size_t)(end - c->resp_body.data) : 0;
        if (c->status >= 400) /* an HTML page from a proxy, typically */
            xv_oai_errorf(c, "upstream HTTP %d (body is not JSON)", c->status);
        else
            xv_oai_errorf(c, "malformed JSON in response body at byte %zu", at);
    } else if (!cJSON_IsObject(o)) {
        xv_oai_errorf(c, "response body is not a JSON object");
    } else if (c->type == XV_OPENAI_RESPONSES) {
        responses_object(c, o, 1); /* also reads a plain {"error": ...} body */
    } else {
        chat_object(c, o, 0);
    }
    xv_jr_free(&t);
    xv_oai_body_done(&c->resp_body);
}

void xv_openai_call_response_end(struct xv_openai_call *c, const char *error,
                                 uint64_t now_mono_ns)
{
    if (!c || c->resp_ended)
        return;
    c->resp_ended = 1;
    if (c->sniff) { /* too short to tell: it was not an event stream */
        c->sniff = 0;
        if (c->sniff_len)
            body_append(c, c->sniff_buf, c->sniff_len);
        c->sniff_len = 0;
    }
    if (c->sse) {
        c->now_ns = now_mono_ns;
        if (c->ssep)
            xv_sse_parser_finish(c->ssep);
        if (error && *error)
            xv_oai_errorf(c, "%s", error);
    } else if (error && *error) {
        /* A cut body would only add a misleading "malformed JSON". */
        xv_oai_errorf(c, "%s", error);
    } else if (c->status) {
        parse_body(c);
    }
    if (c->status >= 400)
        xv_oai_errorf(c, "upstream HTTP %d", c->status);
    xv_sse_parser_free(c->ssep);
    c->ssep = NULL;
    xv_oai_body_done(&c->resp_body);
}

/* ---- accessors ---- */

const char *xv_openai_call_response_content(const struct xv_openai_call *c, size_t *len)
{
    if (len)
        *len = 0;
    if (!c || c->nchoices == 0)
        return NULL;
    /* The lowest choice index (normally 0): the list is sorted. */
    const struct xv_oai_choice *best = &c->choices[0];
    if (!best->content.data)
        return NULL;
    if (len)
        *len = best->content.len;
    return best->content.data;
}

size_t xv_openai_call_response_tool_call_count(const struct xv_openai_call *c)
{
    return c ? c->ntools : 0;
}

int xv_openai_call_response_tool_call(const struct xv_openai_call *c, size_t i,
                                      struct xv_openai_tool_call *out)
{
    memset(out, 0, sizeof *out);
    if (!c || i >= c->ntools)
        return XV_E_LIMIT;
    const struct xv_oai_tool *t = &c->tools[i];
    out->id = t->id ? t->id : "";
    out->name = t->name ? t->name : "";
    out->arguments = t->args.data ? t->args.data : "";
    out->arguments_len = t->args.len;
    return 0;
}
