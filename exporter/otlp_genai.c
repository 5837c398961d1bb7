/*
 * otlp_genai.c — a trace record's fields as span attributes, per the
 * OpenTelemetry GenAI semantic conventions (semantic-conventions v1.41.0,
 * the last release that carried them; schema_url XV_OTLP_SCHEMA_URL).
 *
 * A call record gets the standard request (gen_ai.request.*), response
 * (gen_ai.response.*), usage (gen_ai.usage.*) and connection (server.*)
 * attributes; a tool step gets gen_ai.tool.*. Every other record field
 * becomes xenovia.<field> — except the captured text (messages,
 * response_content, tool_calls, tools, tool_args, tool_result), which leaves
 * the process only in the conventions' structured attributes
 * (gen_ai.input.messages, gen_ai.output.messages, gen_ai.system_instructions,
 * gen_ai.tool.definitions, gen_ai.tool.call.arguments) and only when content
 * capture is opted in (cfg->capture_content; see otlp_config.c). Those
 * values are JSON text following the conventions' JSON schemas (the
 * conventions allow a JSON string where structured attributes are not used).
 *
 * Invariant: no captured text reaches an attribute unless `content` is set;
 * the record is only read.
 * Thread safety: pure functions of their arguments.
 */
#include "otlp_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *num(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsNumber(v) ? v : NULL;
}

static int in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(k, *list))
            return 1;
    return 0;
}

/* Captured text: never a xenovia.* attribute; only the structured
 * gen_ai.* content attributes below, and only when opted in. */
static const char *const content_fields[] = {
    "messages", "response_content", "tool_calls", "tools", "tool_args", "tool_result", NULL,
};
/* Fields a call span carries as span data or gen_ai.* / server.*. */
static const char *const call_mapped[] = {
    "trace_id", "model", "response_model", "response_id", "finish_reasons", "tokens_in",
    "tokens_out", "tokens_cached", "tokens_reasoning", "request_params", "stream", "ttft_ms",
    "session_id", "server_address", "server_port", "provider", "start_time", "end_time",
    "error", "traceparent", "tracestate", NULL,
};
/* The same for a tool step (its own trace_id stays as xenovia.trace_id:
 * the span lives in its call's trace). */
static const char *const step_mapped[] = {
    "parent_call_trace_id", "parent_trace_id", "tool_name", "call_id", "session_id",
    "start_time", "end_time", "error", "traceparent", "tracestate", NULL,
};

const char *xv_exp_otlp_operation(const char *request_type)
{
    if (!request_type)
        return "chat";
    if (!strcmp(request_type, "chat_completions") || !strcmp(request_type, "responses"))
        return "chat";
    if (!strcmp(request_type, "embeddings"))
        return "embeddings";
    if (!strcmp(request_type, "completions"))
        return "text_completion";
    return request_type;
}

/* Xenovia's provider ids → the conventions' gen_ai.provider.name values
 * (well-known where one applies; another id is passed on as is, as the
 * conventions allow custom values). */
static const char *provider_name(const char *id)
{
    /* The same values as openai/provider.c gives (the exporter links no openai/). */
    static const char *const map[][2] = {
        { "openai", "openai" },         { "azure", "azure.ai.openai" },
        { "microsoft-foundry", "azure.ai.inference" },
        { "anthropic", "anthropic" },   { "gemini", "gcp.gemini" },
        { "vertex", "gcp.vertex_ai" },  { "groq", "groq" },
        { "bedrock", "aws.bedrock" },   { "mistral", "mistral_ai" },
        { "deepseek", "deepseek" },     { "cohere", "cohere" },
        { "xai", "x_ai" },              { "perplexity", "perplexity" },
    };
    if (!id)
        return NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(id, map[i][0]))
            return map[i][1];
    return id;
}

/* ---- content: the conventions' message JSON ---- */

/* {"type":"text","content":s} appended to parts. */
static void add_text_part(cJSON *parts, const char *s)
{
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddItemToArray(parts, p)) {
        cJSON_Delete(p);
        return;
    }
    cJSON_AddStringToObject(p, "type", "text");
    cJSON_AddStringToObject(p, "content", s);
}

/* Tool-call arguments: the parsed JSON when they parse, else the text. */
static cJSON *args_value(const char *a)
{
    cJSON *v = a ? cJSON_Parse(a) : NULL;
    return v ? v : cJSON_CreateString(a ? a : "");
}

/* {"type":"tool_call","id","name","arguments"} for each of the record's
 * [{id, name, arguments}]. */
static void add_tool_call_parts(cJSON *parts, const cJSON *tcs)
{
    const cJSON *t;
    if (!cJSON_IsArray(tcs))
        return;
    cJSON_ArrayForEach(t, tcs) {
        cJSON *p = cJSON_CreateObject();
        if (!p || !cJSON_AddItemToArray(parts, p)) {
            cJSON_Delete(p);
            return;
        }
        cJSON_AddStringToObject(p, "type", "tool_call");
        if (str(t, "id"))
            cJSON_AddStringToObject(p, "id", str(t, "id"));
        cJSON_AddStringToObject(p, "name", str(t, "name") ? str(t, "name") : "");
        if (str(t, "arguments"))
            cJSON_AddItemToObject(p, "arguments", args_value(str(t, "arguments")));
    }
}

/* A record message {role, name?, content?, tool_call_id?, tool_calls?} as
 * a ChatMessage {role, parts, name?}. */
static cJSON *chat_message(const cJSON *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *parts = cJSON_CreateArray();
    if (!o || !parts) {
        cJSON_Delete(o);
        cJSON_Delete(parts);
        return NULL;
    }
    const char *role = str(m, "role") ? str(m, "role") : "user";
    cJSON_AddStringToObject(o, "role", role);
    const char *content = str(m, "content");
    if (!strcmp(role, "tool") || str(m, "tool_call_id")) {
        cJSON *p = cJSON_CreateObject();
        if (p && cJSON_AddItemToArray(parts, p)) {
            cJSON_AddStringToObject(p, "type", "tool_call_response");
            if (str(m, "tool_call_id"))
                cJSON_AddStringToObject(p, "id", str(m, "tool_call_id"));
            cJSON_AddStringToObject(p, "response", content ? content : "");
        } else {
            cJSON_Delete(p);
        }
    } else if (content) {
        add_text_part(parts, content);
    }
    add_tool_call_parts(parts, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
    cJSON_AddItemToObject(o, "parts", parts);
    if (str(m, "name"))
        cJSON_AddStringToObject(o, "name", str(m, "name"));
    return o;
}

/* Emit `v` (taken over) as JSON text under `k`. */
static void emit_json(struct xv_exp_otlp_emit *e, const char *k, cJSON *v)
{
    if (!v)
        return;
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!s) {
        e->rc = XV_E_NOMEM;
        return;
    }
    xv_exp_otlp_attr_str(e, k, s);
    free(s);
}

/* gen_ai.system_instructions and gen_ai.input.messages. The responses
 * API's `instructions` (the leading "system" entries the openai module
 * puts first) are instructions given apart from the history; in chat
 * requests system messages are part of the history and stay there, as
 * the conventions ask. */
static void emit_input(struct xv_exp_otlp_emit *e, const cJSON *r)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(r, "messages");
    if (!cJSON_IsArray(msgs))
        return;
    const char *rt = str(r, "request_type");
    int responses = rt && !strcmp(rt, "responses");
    cJSON *sys = cJSON_CreateArray(), *in = cJSON_CreateArray();
    const cJSON *m;
    int leading = 1;
    cJSON_ArrayForEach(m, msgs) {
        const char *role = str(m, "role");
        if (responses && leading && role && !strcmp(role, "system") && str(m, "content")) {
            if (sys)
                add_text_part(sys, str(m, "content"));
            continue;
        }
        leading = 0;
        cJSON *cm = chat_message(m);
        if (cm && (!in || !cJSON_AddItemToArray(in, cm)))
            cJSON_Delete(cm);
    }
    if (sys && cJSON_GetArraySize(sys))
        emit_json(e, "gen_ai.system_instructions", sys);
    else
        cJSON_Delete(sys);
    if (in && cJSON_GetArraySize(in))
        emit_json(e, "gen_ai.input.messages", in);
    else
        cJSON_Delete(in);
}

/* The conventions' finish reasons (stop, length, content_filter,
 * tool_call, error) for what OpenAI-style APIs send. */
static const char *finish_reason(const char *f)
{
    if (!f)
        return NULL;
    if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
        return "tool_call";
    if (!strcmp(f, "completed"))   /* responses API status */
        return "stop";
    if (!strcmp(f, "incomplete"))
        return "length";
    if (!strcmp(f, "failed"))
        return "error";
    return f;
}

/* gen_ai.output.messages: the record keeps choice 0 (text and tool
 * calls) — one assistant message. */
static void emit_output(struct xv_exp_otlp_emit *e, const cJSON *r)
{
    const char *text = str(r, "response_content");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(r, "tool_calls");
    if (!text && !cJSON_GetArraySize(tcs))
        return;
    cJSON *arr = cJSON_CreateArray(), *o = cJSON_CreateObject(), *parts = cJSON_CreateArray();
    if (!arr || !o || !parts || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(arr);
        cJSON_Delete(o);
        cJSON_Delete(parts);
        return;
    }
    cJSON_AddStringToObject(o, "role", "assistant");
    if (text)
        add_text_part(parts, text);
    add_tool_call_parts(parts, tcs);
    cJSON_AddItemToObject(o, "parts", parts);
    const cJSON *fr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "finish_reasons"), 0);
    const char *f = cJSON_IsString(fr) ? finish_reason(fr->valuestring) : NULL;
    /* The responses API says "completed" also when it stopped to call tools. */
    if (cJSON_IsString(fr) && !strcmp(fr->valuestring, "completed") && cJSON_GetArraySize(tcs))
        f = "tool_call";
    cJSON_AddStringToObject(o, "finish_reason", f ? f : "stop");
    emit_json(e, "gen_ai.output.messages", arr);
}

/* gen_ai.tool.definitions: {type, name, description?, parameters?} from
 * the tools as sent (chat's nested "function" object or the responses
 * API's flat shape; built-in tools by their type). */
static void emit_tool_defs(struct xv_exp_otlp_emit *e, const cJSON *r)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(r, "tools");
    if (!cJSON_GetArraySize(tools))
        return;
    if (!cJSON_IsArray(tools))
        return;
    cJSON *arr = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *src = cJSON_IsObject(fn) ? fn : t;
        const char *type = str(t, "type") ? str(t, "type") : "function";
        const char *name = str(src, "name") ? str(src, "name") : type;
        cJSON *d = cJSON_CreateObject();
        if (!arr || !d || !cJSON_AddItemToArray(arr, d)) {
            cJSON_Delete(d);
            break;
        }
        cJSON_AddStringToObject(d, "type", type);
        cJSON_AddStringToObject(d, "name", name);
        if (str(src, "description"))
            cJSON_AddStringToObject(d, "description", str(src, "description"));
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(src, "parameters");
        if (params)
            cJSON_AddItemToObject(d, "parameters", cJSON_Duplicate(params, 1));
    }
    emit_json(e, "gen_ai.tool.definitions", arr);
}

/* ---- the attribute set ---- */

static void emit_int_of(struct xv_exp_otlp_emit *e, const char *k, const cJSON *v)
{
    if (v && v->valuedouble >= -9e15 && v->valuedouble <= 9e15)
        xv_exp_otlp_attr_int(e, k, (int64_t)v->valuedouble);
}

static void emit_double_of(struct xv_exp_otlp_emit *e, const char *k, const cJSON *v)
{
    if (v)
        xv_exp_otlp_attr_double(e, k, v->valuedouble);
}

/* gen_ai.request.* from the record's request_params. */
static void emit_request_params(struct xv_exp_otlp_emit *e, const cJSON *r)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "request_params");
    if (!cJSON_IsObject(p))
        return;
    emit_double_of(e, "gen_ai.request.temperature", num(p, "temperature"));
    emit_double_of(e, "gen_ai.request.top_p", num(p, "top_p"));
    emit_int_of(e, "gen_ai.request.max_tokens", num(p, "max_tokens"));
    emit_double_of(e, "gen_ai.request.frequency_penalty", num(p, "frequency_penalty"));
    emit_double_of(e, "gen_ai.request.presence_penalty", num(p, "presence_penalty"));
    emit_int_of(e, "gen_ai.request.seed", num(p, "seed"));
    const cJSON *n = num(p, "n");
    if (n && n->valuedouble != 1)   /* conditionally required when != 1 */
        emit_int_of(e, "gen_ai.request.choice.count", n);
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(p, "stop");
    if (cJSON_IsArray(stop))
        xv_exp_otlp_attr_strarr(e, "gen_ai.request.stop_sequences", stop);
    xv_exp_otlp_attr_str(e, "gen_ai.output.type", str(p, "output_type"));
    const char *ef = str(p, "encoding_format");
    if (ef) {
        cJSON *arr = cJSON_CreateArray();
        cJSON *s = cJSON_CreateString(ef);
        if (arr && s && cJSON_AddItemToArray(arr, s))
            xv_exp_otlp_attr_strarr(e, "gen_ai.request.encoding_formats", arr);
        else
            cJSON_Delete(s);
        cJSON_Delete(arr);
    }
}

static void call_attrs(struct xv_exp_otlp_emit *e, const cJSON *r, int content)
{
    const cJSON *v;
    xv_exp_otlp_attr_str(e, "gen_ai.operation.name", xv_exp_otlp_operation(str(r, "request_type")));
    xv_exp_otlp_attr_str(e, "gen_ai.provider.name", provider_name(str(r, "provider")));
    xv_exp_otlp_attr_str(e, "gen_ai.request.model", str(r, "model"));
    /* Conditionally required: only when the request streams. */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "stream")))
        xv_exp_otlp_attr_bool(e, "gen_ai.request.stream", 1);
    emit_request_params(e, r);
    xv_exp_otlp_attr_str(e, "gen_ai.response.model", str(r, "response_model"));
    xv_exp_otlp_attr_str(e, "gen_ai.response.id", str(r, "response_id"));
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(r, "finish_reasons");
    if (cJSON_IsArray(fr))
        xv_exp_otlp_attr_strarr(e, "gen_ai.response.finish_reasons", fr);
    if ((v = num(r, "ttft_ms")) && v->valuedouble >= 0)  /* seconds, as the conventions say */
        xv_exp_otlp_attr_double(e, "gen_ai.response.time_to_first_chunk", v->valuedouble / 1000.0);
    emit_int_of(e, "gen_ai.usage.input_tokens", num(r, "tokens_in"));
    emit_int_of(e, "gen_ai.usage.output_tokens", num(r, "tokens_out"));
    emit_int_of(e, "gen_ai.usage.cache_read.input_tokens", num(r, "tokens_cached"));
    emit_int_of(e, "gen_ai.usage.reasoning.output_tokens", num(r, "tokens_reasoning"));
    xv_exp_otlp_attr_str(e, "gen_ai.conversation.id", str(r, "session_id"));
    xv_exp_otlp_attr_str(e, "server.address", str(r, "server_address"));
    emit_int_of(e, "server.port", num(r, "server_port"));
    if (content) {
        const char *rt = str(r, "request_type");
        if (!rt || strcmp(rt, "embeddings")) {  /* embeddings: inputs are not chat history */
            emit_input(e, r);
            emit_output(e, r);
        }
        emit_tool_defs(e, r);
    }
}

static void step_attrs(struct xv_exp_otlp_emit *e, const cJSON *r, int content)
{
    xv_exp_otlp_attr_str(e, "gen_ai.operation.name", "execute_tool");
    xv_exp_otlp_attr_str(e, "gen_ai.tool.name", str(r, "tool_name"));
    xv_exp_otlp_attr_str(e, "gen_ai.tool.call.id", str(r, "call_id"));
    xv_exp_otlp_attr_str(e, "gen_ai.tool.type", "function");
    xv_exp_otlp_attr_str(e, "gen_ai.conversation.id", str(r, "session_id"));
    /* JSON text as the model sent it (the conventions' "any"). The result
     * is not known yet when the tool call is recorded: it reaches OTLP in
     * the next call's gen_ai.input.messages. */
    if (content)
        xv_exp_otlp_attr_str(e, "gen_ai.tool.call.arguments", str(r, "tool_args"));
}

/* Any record value as `xenovia.<field>`. */
static void emit_extra(struct xv_exp_otlp_emit *e, const cJSON *it)
{
    char key[256];
    xv_utf8_snprintf(key, sizeof key, "xenovia.%s", it->string); /* a long key: cut between characters */
    if (cJSON_IsString(it)) {
        xv_exp_otlp_attr_str(e, key, it->valuestring);
    } else if (cJSON_IsBool(it)) {
        xv_exp_otlp_attr_bool(e, key, cJSON_IsTrue(it));
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            xv_exp_otlp_attr_int(e, key, (int64_t)d);
        else
            xv_exp_otlp_attr_double(e, key, d);
    } else if (cJSON_IsArray(it) || cJSON_IsObject(it)) {
        char *s = cJSON_PrintUnformatted(it);
        if (!s) {
            e->rc = XV_E_NOMEM;
            return;
        }
        xv_exp_otlp_attr_str(e, key, s);
        free(s);
    }
}

void xv_exp_otlp_attrs_from_record(struct xv_exp_otlp_emit *e, const cJSON *r, int step,
                                   int content)
{
    if (step)
        step_attrs(e, r, content);
    else
        call_attrs(e, r, content);
    if (str(r, "error")) {
        /* error.type is low-cardinality: the HTTP status for an error
         * answer, else the conventions' fallback; the text is the span
         * status message. */
        const cJSON *sc = num(r, "status_code");
        char t[16];
        if (sc && sc->valuedouble >= 400 && sc->valuedouble < 600) {
            snprintf(t, sizeof t, "%d", (int)sc->valuedouble);
            xv_exp_otlp_attr_str(e, "error.type", t);
        } else {
            xv_exp_otlp_attr_str(e, "error.type", "_OTHER");
        }
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, r)
        if (it->string && !in_list(it->string, content_fields) &&
            !in_list(it->string, step ? step_mapped : call_mapped))
            emit_extra(e, it);
}
