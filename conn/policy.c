/*
 * policy.c — the request stage of SPEC §5 inside a connection: the input
 * document a held call presents to the user's Rego policy, the decision,
 * and what the agent does with it (send, answer 403, or redact the body).
 *
 * The input is built from what openai/ extracted (normalised messages,
 * tool calls in the history, tool results) plus the raw request body, the
 * request headers (lower-cased, credentials replaced by "[REDACTED]"), the
 * session and the properties. Values follow policy/xv_value.h's single
 * ownership rule; everything built here is released before returning.
 *
 * Thread safety: runs on the calling thread with the connection's lock
 * held; the compiled policy is immutable and shared (xv_policy_decide is
 * thread-safe).
 */
#include "xv_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_policy.h"
#include "xv_jsonr.h"
#include "xv_redact.h"

#define FLAT_MAX 2048 /* request_flat entries */
#define DEPTH_MAX 64  /* nesting converted from JSON */

/* Does the policy read input.<key>? The members that cost a walk of the
 * whole body or of the headers are built only then (issue 9): a policy can
 * never see a member none of its rules reads (xv_policy_reads_input). The
 * answers are taken once, with g_stages_agree (xv_conn_policy_configure),
 * not looked up by name on every call. */
enum { R_SYSTEM_PROMPT = 1, R_TOOLS = 2, R_REQUEST = 4, R_REQUEST_FLAT = 8, R_HTTP_HEADERS = 16 };
static unsigned g_reads XV_START_DATA;

static int reads(unsigned member)
{
    return (g_reads & member) != 0;
}

/* cJSON -> Rego value. New reference or NULL. */
static struct xv_value *from_cjson(const cJSON *j, int depth)
{
    if (!j || depth > DEPTH_MAX)
        return xv_val_null();
    if (cJSON_IsString(j))
        return xv_val_cstring(j->valuestring);
    if (cJSON_IsNumber(j)) {
        struct xv_value *n = xv_val_number_from_double(j->valuedouble);
        return n ? n : xv_val_null();
    }
    if (cJSON_IsBool(j))
        return xv_val_bool(cJSON_IsTrue(j));
    if (cJSON_IsArray(j)) {
        struct xv_value *a = xv_val_array_new((size_t)cJSON_GetArraySize(j));
        for (const cJSON *e = j->child; a && e; e = e->next) {
            struct xv_value *v = from_cjson(e, depth + 1);
            xv_val_array_push(a, v);
            xv_val_decref(v);
        }
        return a ? a : xv_val_null();
    }
    if (cJSON_IsObject(j)) {
        struct xv_value *o = xv_val_object_new((size_t)cJSON_GetArraySize(j));
        for (const cJSON *e = j->child; o && e; e = e->next) {
            struct xv_value *v = from_cjson(e, depth + 1);
            xv_val_object_set_str(o, e->string ? e->string : "", v);
            xv_val_decref(v);
        }
        return o ? o : xv_val_null();
    }
    return xv_val_null();
}

/* A C string as a value, NULL as null. New reference. */
static struct xv_value *str_or_null(const char *s)
{
    return s ? xv_val_cstring(s) : xv_val_null();
}

/* o[k] = v, v's reference handed over. */
static void set_val(struct xv_value *o, const char *k, struct xv_value *v)
{
    xv_val_object_set_str(o, k, v);
    xv_val_decref(v);
}

/* The input document's member names, each the engine's shared frozen key
 * (xv_val_key), taken once when the policy is configured: setting a member
 * then hashes no name (issue 9). NULL (no policy, or no room in the
 * engine's table): set by name. Written at start only with a policy
 * configured, so a process without one never touches the page. */
#define INPUT_KEYS(X) \
    X(ID, "id") \
    X(TURN, "turn") \
    X(PATH, "path") \
    X(SESSION, "session") \
    X(PROPERTIES, "properties") \
    X(STAGE, "stage") \
    X(AGENT_ID, "agent_id") \
    X(ORG_ID, "org_id") \
    X(REQUEST_TYPE, "request_type") \
    X(PROVIDER, "provider") \
    X(MODEL, "model") \
    X(STREAM, "stream") \
    X(ROLE, "role") \
    X(CONTENT, "content") \
    X(TOOL_CALL_ID, "tool_call_id") \
    X(NAME, "name") \
    X(ARGUMENTS, "arguments") \
    X(TOOL_CALLS, "tool_calls") \
    X(MESSAGES, "messages") \
    X(TOOL_RESULTS, "tool_results") \
    X(SYSTEM_PROMPT, "system_prompt") \
    X(TOOL_NAMES, "tool_names") \
    X(TOOLS, "tools") \
    X(REQUEST, "request") \
    X(REQUEST_FLAT, "request_flat") \
    X(HTTP_HEADERS, "http_headers") \
    X(OUTPUT, "output") \
    X(INPUT_TOKENS, "input_tokens") \
    X(OUTPUT_TOKENS, "output_tokens") \
    X(TOTAL_TOKENS, "total_tokens") \
    X(USAGE, "usage") \
    X(STATUS, "status")

#define X(e, s) K_##e,
enum { INPUT_KEYS(X) NKEYS };
#undef X
#define X(e, s) s,
static const char *const g_key_name[NKEYS] = { INPUT_KEYS(X) };
#undef X
static struct xv_value *g_key[NKEYS];

/* o[member k] = v, v's reference handed over. */
static void kset(struct xv_value *o, int k, struct xv_value *v)
{
    if (!g_key[k]) {
        set_val(o, g_key_name[k], v);
        return;
    }
    xv_val_object_set(o, g_key[k], v);
    xv_val_decref(v);
}

/* Tool-call arguments: parsed when they are JSON, else the text. */
static struct xv_value *args_value(const char *p, size_t n)
{
    struct xv_value *v = NULL;
    char err[8];
    if (n && xv_val_json_parse(p, n, &v, err, sizeof err) == 0)
        return v;
    return xv_val_string(p ? p : "", n);
}

/* request_flat: {"messages.0.role": "user", ...} (leaves only, bounded). */
static void flatten(const cJSON *j, char *path, size_t plen, size_t cap, struct xv_value *out,
                    int depth)
{
    if (!j || depth > DEPTH_MAX || XV_OBJ_LEN(out) >= FLAT_MAX)
        return;
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        int i = 0;
        for (const cJSON *e = j->child; e; e = e->next, i++) {
            size_t n = plen;
            /* ".<index>" or ".<key>" appended by hand: snprintf per segment
             * was a sixth of this walk (issue 9) */
            char num[24];
            const char *seg = e->string ? e->string : "";
            if (cJSON_IsArray(j)) {
                char *q = num + sizeof num;
                unsigned u = (unsigned)i;
                *--q = '\0';
                do {
                    *--q = (char)('0' + u % 10);
                    u /= 10;
                } while (u);
                seg = q;
            }
            size_t sl = strlen(seg), w = (plen ? 1 : 0) + sl;
            if (w >= cap - plen)
                continue; /* path too long: skip that branch */
            if (plen)
                path[plen] = '.';
            memcpy(path + plen + (plen ? 1 : 0), seg, sl + 1);
            flatten(e, path, plen + w, cap, out, depth + 1);
            path[n] = '\0';
        }
        return;
    }
    set_val(out, path, from_cjson(j, depth));
}

/* name: n bytes, lower case already. Lengths first: most names match none. */
static int is_secret_header(const char *name, size_t n)
{
#define SECRET(s) { s, sizeof s - 1 }
    static const struct { const char *s; size_t n; } secret[] = {
        SECRET("authorization"), SECRET("proxy-authorization"), SECRET("api-key"),
        SECRET("x-api-key"), SECRET("x-xenovia-key"), SECRET("cookie"), SECRET("set-cookie"),
        SECRET("openai-api-key"),
    };
#undef SECRET
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (secret[i].n == n && !memcmp(name, secret[i].s, n))
            return 1;
    return 0;
}

void xv_conn_policy_note_headers(struct xv_call *call, const struct xv_http_head *h)
{
    if (!reads(R_HTTP_HEADERS))
        return; /* no rule can see them (see reads() below) */
    struct xv_value *o = xv_val_object_new(h->nheaders);
    if (!o)
        return;
    for (size_t i = 0; i < h->nheaders; i++) {
        char name[128];
        size_t n = h->headers[i].name_len < sizeof name - 1 ? h->headers[i].name_len
                                                             : sizeof name - 1;
        for (size_t k = 0; k < n; k++) {
            char ch = h->headers[i].name[k];
            name[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        name[n] = '\0';
        if (is_secret_header(name, strlen(name))) /* (the name as the object keys it) */
            set_val(o, name, xv_val_cstring("[REDACTED]"));
        else
            set_val(o, name, xv_val_string(h->headers[i].value, h->headers[i].value_len));
    }
    call->headers_v = o;
}

/* session and properties: what the call knows now. */
static void set_session(struct xv_value *in, struct xv_call *call)
{
    struct xv_value *sess = xv_val_object_new(3);
    kset(sess, K_ID, str_or_null(call->session_id));
    kset(sess, K_TURN, xv_val_int(call->session_turn));
    if (call->session_path[0])
        kset(sess, K_PATH, str_or_null(call->session_path));
    else
        kset(sess, K_PATH, xv_val_null());
    kset(in, K_SESSION, sess);
    struct xv_value *props = xv_val_object_new(4);
    for (size_t i = 0; call->props && i < call->props->n; i++)
        set_val(props, call->props->p[i].key,
                xv_val_string(call->props->p[i].value, call->props->p[i].value_len));
    kset(in, K_PROPERTIES, props);
}

/* The request-stage input document (SPEC §5). New reference. */
static struct xv_value *build_input(struct xv_conn *c, struct xv_call *call)
{
    const struct xv_openai_call *api = call->api;
    struct xv_value *in = xv_val_object_new(24);
    if (!in)
        return NULL;
    kset(in, K_STAGE, xv_val_cstring("request"));
    kset(in, K_AGENT_ID, str_or_null(xv_conn_cfg.agent_id));
    kset(in, K_ORG_ID, str_or_null(xv_conn_cfg.org_id));
    kset(in, K_REQUEST_TYPE, str_or_null(xv_openai_type_name(xv_openai_call_type(api))));
    kset(in, K_PROVIDER, str_or_null(call->prov.id ? call->prov.id : "openai_compatible"));
    kset(in, K_MODEL, str_or_null(xv_openai_call_model(api)));
    kset(in, K_STREAM, xv_val_bool(xv_openai_call_stream(api)));

    struct xv_value *msgs = xv_val_array_new(8), *calls = xv_val_array_new(4), *results = xv_val_array_new(4);
    struct xv_buf sys;
    xv_buf_init(&sys, xv_conn_cfg.body_max);
    size_t nm = xv_openai_call_message_count(api);
    for (size_t i = 0; i < nm; i++) {
        const struct xv_openai_message *m = xv_openai_call_message(api, i);
        struct xv_value *mo = xv_val_object_new(4);
        kset(mo, K_ROLE, str_or_null(m->role));
        if (m->content)
            kset(mo, K_CONTENT, xv_val_string(m->content, m->content_len));
        else
            kset(mo, K_CONTENT, xv_val_null());
        if (m->tool_call_id)
            kset(mo, K_TOOL_CALL_ID, str_or_null(m->tool_call_id));
        if (m->ntool_calls) {
            struct xv_value *tcs = xv_val_array_new(m->ntool_calls);
            for (size_t k = 0; k < m->ntool_calls; k++) {
                const struct xv_openai_tool_call *tc = &m->tool_calls[k];
                struct xv_value *t = xv_val_object_new(3);
                kset(t, K_ID, str_or_null(tc->id));
                kset(t, K_NAME, str_or_null(tc->name));
                kset(t, K_ARGUMENTS, args_value(tc->arguments, tc->arguments_len));
                xv_val_array_push(tcs, t);
                xv_val_array_push(calls, t);
                xv_val_decref(t);
            }
            kset(mo, K_TOOL_CALLS, tcs);
        }
        xv_val_array_push(msgs, mo);
        xv_val_decref(mo);
        if ((!strcmp(m->role, "system") || !strcmp(m->role, "developer")) && m->content) {
            if (sys.len)
                xv_buf_append(&sys, "\n", 1);
            xv_buf_append(&sys, m->content, m->content_len);
        }
    }
    /* tool results, named after the call they answer */
    for (size_t i = 0; i < nm; i++) {
        const struct xv_openai_message *m = xv_openai_call_message(api, i);
        if (!m->tool_call_id)
            continue;
        const char *name = NULL;
        for (size_t j = 0; j < XV_ARR_LEN(calls) && !name; j++) {
            struct xv_value *t = XV_ARR_ITEM(calls, j);
            long ki = xv_val_object_find_str(t, "id", 2);
            if (ki >= 0 && XV_IS(XV_OBJ_VAL(t, ki), XV_T_STRING) &&
                !strcmp(XV_STR(XV_OBJ_VAL(t, ki)), m->tool_call_id)) {
                long ni = xv_val_object_find_str(t, "name", 4);
                if (ni >= 0 && XV_IS(XV_OBJ_VAL(t, ni), XV_T_STRING))
                    name = XV_STR(XV_OBJ_VAL(t, ni));
            }
        }
        struct xv_value *r = xv_val_object_new(3);
        kset(r, K_TOOL_CALL_ID, str_or_null(m->tool_call_id));
        kset(r, K_NAME, str_or_null(name));
        if (m->content)
            kset(r, K_CONTENT, xv_val_string(m->content, m->content_len));
        else
            kset(r, K_CONTENT, xv_val_null());
        xv_val_array_push(results, r);
        xv_val_decref(r);
    }
    kset(in, K_MESSAGES, msgs);
    kset(in, K_TOOL_CALLS, calls);
    kset(in, K_TOOL_RESULTS, results);
    if (reads(R_SYSTEM_PROMPT))
        kset(in, K_SYSTEM_PROMPT, sys.len ? xv_val_string(sys.data, sys.len) : xv_val_null());
    xv_buf_free(&sys);

    struct xv_value *names = xv_val_array_new(4);
    for (size_t i = 0; i < xv_openai_call_tool_count(api); i++) {
        struct xv_value *n = xv_val_cstring(xv_openai_call_tool_name(api, i));
        xv_val_array_push(names, n);
        xv_val_decref(n);
    }
    kset(in, K_TOOL_NAMES, names);

    const cJSON *body = xv_openai_call_request_json(api);
    if (reads(R_TOOLS))
        kset(in, K_TOOLS,
                from_cjson(body ? xv_json_get(body, "tools") : NULL, 0));
    if (reads(R_REQUEST))
        kset(in, K_REQUEST, body ? from_cjson(body, 0) : xv_val_null());
    if (reads(R_REQUEST_FLAT)) {
        struct xv_value *flat = xv_val_object_new(32);
        char path[512] = "";
        if (body)
            flatten(body, path, 0, sizeof path, flat, 0);
        kset(in, K_REQUEST_FLAT, flat);
    }
    if (call->headers_v) {
        xv_val_incref(call->headers_v);
        kset(in, K_HTTP_HEADERS, call->headers_v);
    } else if (reads(R_HTTP_HEADERS)) {
        kset(in, K_HTTP_HEADERS, xv_val_object_new(0));
    }
    set_session(in, call);
    return in;
}

/* The response stage input: the request's document plus output, usage
 * and status (SPEC §5); the request's part is the request stage's own
 * document when it ran (the request side of the call does not change
 * after it: building it twice was half of a policy call's cost, issue 9).
 * New reference or NULL. */
static struct xv_value *build_response_input(struct xv_conn *c, struct xv_call *call)
{
    /* the request stage's document, shallow-copied (members are shared:
     * values are immutable once shared), "stage" replaced below. Its session
     * and properties stand: the request stage runs after the session is
     * resolved (tx.c release), the properties and session path come from
     * the request head, and nothing changes them later in the call. */
    struct xv_value *in = call->policy_in_v ? xv_val_copy(call->policy_in_v) : build_input(c, call);
    if (!in)
        return NULL;
    const struct xv_openai_call *api = call->api;
    kset(in, K_STAGE, xv_val_cstring("response"));
    struct xv_value *out = xv_val_object_new(2);
    size_t clen = 0;
    const char *content = xv_openai_call_response_content(api, &clen);
    if (content)
        kset(out, K_CONTENT, xv_val_string(content, clen));
    else
        kset(out, K_CONTENT, xv_val_null());
    struct xv_value *tcs = xv_val_array_new(2);
    size_t n = xv_openai_call_response_tool_call_count(api);
    for (size_t i = 0; i < n; i++) {
        struct xv_openai_tool_call tc;
        if (xv_openai_call_response_tool_call(api, i, &tc) != 0)
            continue;
        struct xv_value *t = xv_val_object_new(3);
        kset(t, K_ID, str_or_null(tc.id));
        kset(t, K_NAME, str_or_null(tc.name));
        kset(t, K_ARGUMENTS, args_value(tc.arguments, tc.arguments_len));
        xv_val_array_push(tcs, t);
        xv_val_decref(t);
    }
    kset(out, K_TOOL_CALLS, tcs);
    kset(in, K_OUTPUT, out);
    int64_t ti = 0, to = 0;
    int have = xv_openai_call_usage(api, &ti, &to);
    struct xv_value *usage = xv_val_object_new(3);
    kset(usage, K_INPUT_TOKENS, (have & 1) ? xv_val_int(ti) : xv_val_null());
    kset(usage, K_OUTPUT_TOKENS, (have & 2) ? xv_val_int(to) : xv_val_null());
    kset(usage, K_TOTAL_TOKENS, (have & 3) == 3 ? xv_val_int(ti + to) : xv_val_null());
    kset(in, K_USAGE, usage);
    kset(in, K_STATUS, xv_val_int(xv_openai_call_status(api)));
    return in;
}

/* The response stage's decision applied to the call: a deny/block there
 * means "block the response", a redaction "redact the response". */
static void response_decision(struct xv_call *call, enum xv_outcome o, const char *action,
                              const char *rule_id, const char *reason, unsigned labels)
{
    if (o == XV_OUTCOME_BLOCK)
        o = XV_OUTCOME_BLOCK_RESPONSE;
    else if (o == XV_OUTCOME_REDACT)
        o = XV_OUTCOME_REDACT_RESPONSE;
    call->resp_block = o == XV_OUTCOME_BLOCK_RESPONSE;
    if (action) {
        /* escalate & co.: blocks, recorded under its own name */
        xv_utf8_snprintf(call->resp_policy_name, sizeof call->resp_policy_name, "%s", action);
        call->resp_policy_outcome = call->resp_policy_name;
    } else {
        call->resp_policy_outcome = xv_policy_outcome_name(o);
    }
    if (rule_id)
        xv_utf8_snprintf(call->resp_policy_rule_id, sizeof call->resp_policy_rule_id, "%s", rule_id);
    if (reason)
        xv_utf8_snprintf(call->resp_policy_reason, sizeof call->resp_policy_reason, "%s", reason);
    if (o == XV_OUTCOME_REDACT_RESPONSE)
        call->resp_redact_labels = labels;
}

/* Can the response stage decide differently from the request stage? Its
 * input is the request stage's document with these members set anew; a
 * policy that reads none of them and calls no non-deterministic builtin
 * (time, rand, uuid, http) decides exactly as it did for the request, so
 * that decision is reused instead of evaluated twice (most policies look
 * only at the request: half their cost per call, issue 9). */
static const char *const g_anew[] = { "stage", "output", "usage", "status" };
#define NANEW ((int)(sizeof g_anew / sizeof g_anew[0]))

static int stages_may_differ(const struct xv_policy *pol)
{
    if (xv_policy_nondeterministic(pol))
        return 1;
    for (int i = 0; i < NANEW; i++)
        if (xv_policy_reads_input(pol, g_anew[i]))
            return 1;
    return 0;
}

/* The compiled policy never changes: asked once per configuration, not per
 * call (written before the hooks turn on, read only after). When the
 * stages may differ, g_changed names the members the response stage sets
 * anew: the deny and redact rules that read none of them are evaluated
 * once, at the request stage, and their result reused (struct
 * xv_policy_memo; most rules of most policies look only at the request). */
static int g_stages_agree XV_START_DATA;
static uint64_t g_changed XV_START_DATA;

XV_START_FN void xv_conn_policy_configure(void)
{
    static const struct { const char *key; unsigned bit; } members[] = {
        { "system_prompt", R_SYSTEM_PROMPT }, { "tools", R_TOOLS }, { "request", R_REQUEST },
        { "request_flat", R_REQUEST_FLAT }, { "http_headers", R_HTTP_HEADERS },
    };
    g_reads = 0;
    for (size_t i = 0; xv_conn_cfg.policy && i < sizeof members / sizeof members[0]; i++)
        if (xv_policy_reads_input(xv_conn_cfg.policy, members[i].key))
            g_reads |= members[i].bit;
    g_stages_agree = xv_conn_cfg.policy && !stages_may_differ(xv_conn_cfg.policy);
    g_changed = xv_conn_cfg.policy ? xv_policy_input_bits(xv_conn_cfg.policy, g_anew, NANEW) : 0;
    for (int k = 0; xv_conn_cfg.policy && k < NKEYS; k++)
        g_key[k] = xv_val_key(g_key_name[k]); /* immortal: valid for any later policy */
}

/* Plain decrefs, not the engine's xv_policy_memo_clear: freeing a call
 * that no policy saw must not load the engine. */
void xv_conn_policy_call_free(struct xv_call *call)
{
    xv_val_decref(call->policy_in_v);
    for (int j = 0; j < 2; j++)
        xv_val_decref(call->policy_memo.kept[j]);
}

void xv_conn_policy_response_eval(struct xv_conn *c, struct xv_call *call)
{
    const struct xv_policy *pol = xv_conn_cfg.policy; /* set: xv_conn_policy_response */
    if (!call->api || call->synthetic || !xv_openai_call_status(call->api) ||
        call->resp_policy_outcome)
        return;
    if (call->policy_decided && call->policy_code == XV_OUTCOME_ALLOW &&
        call->policy_outcome != call->policy_name && g_stages_agree) {
        /* allowed at the request stage (the common case; any other outcome
         * is evaluated again, its redaction labels are the stage's own) */
        response_decision(call, XV_OUTCOME_ALLOW, NULL, call->policy_rule_id,
                          call->policy_reason, 0);
        return;
    }
    struct xv_value *in = build_response_input(c, call);
    if (!in)
        return;
    struct xv_decision d;
    char err[256] = "";
    struct xv_policy_opts opts = { .timeout_ms = xv_conn_cfg.policy_timeout_ms };
    if (call->policy_in_v && call->policy_memo.valid) {
        /* the input is the request stage's with g_changed set anew */
        call->policy_memo.use = 1;
        opts.memo = &call->policy_memo;
    }
    int rc = xv_policy_decide(pol, in, &opts, &d, err, sizeof err);
    xv_val_decref(in);
    if (rc != 0) {
        call->resp_policy_outcome = "error"; /* the response stage fails open */
        xv_policy_decision_free(&d);
        return;
    }
    response_decision(call, d.outcome, d.action, d.rule_id, d.reason,
                      d.outcome == XV_OUTCOME_REDACT || d.outcome == XV_OUTCOME_REDACT_RESPONSE
                          ? xv_redact_labels_from(d.redact_fields, d.nredact) : 0);
    xv_policy_decision_free(&d);
}

/* Redact the text of a complete JSON response body (chat, completions,
 * Responses API). NULL when nothing changed or it is not JSON. */
static char *redact_response_body(const char *body, size_t n, unsigned labels)
{
    cJSON *j = cJSON_ParseWithLength(body, n);
    if (!j)
        return NULL;
    int changed = 0;
    cJSON *choices = xv_json_get(j, "choices");
    for (cJSON *ch = cJSON_IsArray(choices) ? choices->child : NULL; ch; ch = ch->next) {
        xv_redact_json_text(xv_json_get(ch, "text"), labels, &changed);
        cJSON *m = xv_json_get(ch, "message");
        xv_redact_json_content(xv_json_get(m, "content"), labels, &changed);
        cJSON *tcs = xv_json_get(m, "tool_calls");
        for (cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next)
            xv_redact_json_text(xv_json_get(
                                    xv_json_get(tc, "function"), "arguments"),
                                labels, &changed);
    }
    cJSON *output = xv_json_get(j, "output");
    for (cJSON *it = cJSON_IsArray(output) ? output->child : NULL; it; it = it->next) {
        xv_redact_json_content(xv_json_get(it, "content"), labels, &changed);
        xv_redact_json_text(xv_json_get(it, "arguments"), labels, &changed);
    }
    char *out = changed ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return out;
}

/* The held response's head (through its blank line) with the framing
 * headers dropped and a Content-Length for `body_len`. */
static int rebuild_head(struct xv_buf *dst, const char *h, size_t n, size_t body_len)
{
    const char *end = memmem(h, n, "\r\n\r\n", 4);
    size_t hl = end ? (size_t)(end - h) + 2 : 0;
    if (!hl)
        return XV_E_PARSE;
    static const char *const framing[] = { "content-length:", "transfer-encoding:",
                                           "content-encoding:", NULL };
    int rc = xv_conn_head_copy_except(dst, h, hl, framing);
    if (!rc)
        rc = xv_buf_appendf(dst, "Content-Length: %zu\r\n\r\n", body_len);
    return rc;
}

void xv_conn_policy_release(struct xv_conn *c, struct xv_call *call)
{
    xv_conn_policy_response(c, call);
    const char *o = call->resp_policy_outcome;
    call->resp_policy_applied = o != NULL;
    if (o && call->resp_block) {
        call->app_status = 403; /* what the app reads instead of the upstream's answer */
        static const char body[] =
            "{\"error\":{\"message\":\"response blocked by policy\",\"type\":\"policy_violation\","
            "\"code\":\"policy_block\"}}";
        /* The upstream's response was read whole, so the connection stays
         * in step: a keep-alive client may go on using it. */
        xv_buf_appendf(&c->out,
                       "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n%s%s%sX-Xenovia-Trace-Id: %s\r\n\r\n%s",
                       sizeof body - 1, call->session_id[0] ? "X-Xenovia-Session-Id: " : "",
                       call->session_id, call->session_id[0] ? "\r\n" : "", call->trace_id, body);
        return;
    }
    if (o && !strcmp(o, "redact_response") && call->resp_redact_labels && c->resp_body.len &&
        !xv_openai_call_stream(call->api)) {
        char *nb = redact_response_body(c->resp_body.data, c->resp_body.len, call->resp_redact_labels);
        if (nb) {
            size_t bl = strlen(nb);
            size_t before = c->out.len;
            if (rebuild_head(&c->out, c->resp_hold.data, c->resp_hold.len, bl) == 0 &&
                xv_buf_append(&c->out, nb, bl) == 0) {
                free(nb);
                call->resp_redacted = 1;
                return;
            }
            c->out.len = before; /* fall back to the response as it came */
            free(nb);
        }
    }
    xv_buf_append(&c->out, c->resp_hold.data, c->resp_hold.len);
}

int xv_conn_policy_request_eval(struct xv_conn *c, struct xv_call *call)
{
    const struct xv_policy *pol = xv_conn_cfg.policy; /* set: xv_conn_policy_request */
    if (!call->api)
        return XV_CONN_POLICY_SEND;
    call->policy_mode = xv_conn_cfg.policy_monitor ? "monitor" : "enforce";
    struct xv_value *in = build_input(c, call);
    struct xv_decision d;
    char err[256] = "";
    struct xv_policy_opts opts = { .timeout_ms = xv_conn_cfg.policy_timeout_ms };
    if (!g_stages_agree) {
        /* the response stage will evaluate: keep what it can reuse */
        call->policy_memo.changed = g_changed;
        call->policy_memo.use = 0;
        opts.memo = &call->policy_memo;
    }
    int rc = in ? xv_policy_decide(pol, in, &opts, &d, err, sizeof err) : XV_E_NOMEM;
    /* kept for the response stage (freed with the call) */
    if (call->policy_in_v)
        xv_val_decref(call->policy_in_v);
    call->policy_in_v = in;
    if (rc != 0) {
        /* SPEC §5: the request stage fails closed unless told otherwise. */
        xv_utf8_snprintf(call->policy_error, sizeof call->policy_error, "policy evaluation failed: %s",
                 err[0] ? err : xv_strerror(rc));
        call->policy_outcome = "error";
        if (in)
            xv_policy_decision_free(&d);
        if (xv_conn_cfg.policy_fail_open || xv_conn_cfg.policy_monitor)
            return XV_CONN_POLICY_SEND;
        return XV_CONN_POLICY_ERROR;
    }
    call->policy_decided = 1;
    call->policy_code = (int)d.outcome;
    if (d.action) {
        /* escalate, or an action the engine does not know: a 403 recorded
         * under the action's own name (never a silent allow) */
        xv_utf8_snprintf(call->policy_name, sizeof call->policy_name, "%s", d.action);
        call->policy_outcome = call->policy_name;
    } else {
        call->policy_outcome = xv_policy_outcome_name(d.outcome);
    }
    if (d.outcome == XV_OUTCOME_REDACT && d.nredact)
        call->redact_labels = xv_redact_labels_from(d.redact_fields, d.nredact);
    if (d.rule_id)
        xv_utf8_snprintf(call->policy_rule_id, sizeof call->policy_rule_id, "%s", d.rule_id);
    if (d.reason)
        xv_utf8_snprintf(call->policy_reason, sizeof call->policy_reason, "%s", d.reason);
    int action = XV_CONN_POLICY_SEND;
    if (!xv_conn_cfg.policy_monitor) {
        if (d.outcome == XV_OUTCOME_BLOCK)
            action = XV_CONN_POLICY_BLOCK;
        else if (d.outcome == XV_OUTCOME_REDACT && d.nredact) {
            action = XV_CONN_POLICY_REDACT;
        } else if (d.outcome == XV_OUTCOME_BLOCK_RESPONSE ||
                   d.outcome == XV_OUTCOME_REDACT_RESPONSE) {
            /* response-stage outcomes decided early are kept for that stage */
            action = XV_CONN_POLICY_SEND;
        }
    }
    xv_policy_decision_free(&d);
    return action;
}
