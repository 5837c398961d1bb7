/*
 * call.c — lifecycle of a struct xv_openai_call and its request side: the
 * body is accumulated (bounded by lim.body_max), parsed once at
 * request_end, and normalised into a message list and a tool-name list
 * that look the same for all four APIs.
 *
 * Invariants: the request JSON, messages and tool names are either all
 * built or all absent (NULL/0); an over-limit body is dropped as soon as it
 * passes the limit, so a huge upload never costs more than body_max.
 * Errors never fail the call: the first one is kept as text for the record.
 *
 * From its second call on, a thread keeps the last call it freed, with its
 * body buffers when they are small, and its next call takes them (issue 9:
 * no allocation of the struct, and no growth of the bodies by realloc, a
 * call in steady state).
 *
 * Thread safety: a call belongs to one thread at a time; the kept call is
 * the thread's own, given back when the thread exits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai_int.h"
#include "xv_tkey.h"

/* Body storage kept between calls: at most this much a body (two a thread). */
#define XV_OAI_KEEP_BODY ((size_t)64 << 10)

static __thread struct xv_openai_call *t_spare __attribute__((tls_model("initial-exec")));
static __thread unsigned char t_spare_reg __attribute__((tls_model("initial-exec")));
static __thread unsigned char t_freed __attribute__((tls_model("initial-exec")));
static struct xv_tkey g_spare_key;

/* The struct and the body storage a freed call still holds. */
static void call_release(struct xv_openai_call *c)
{
    free(c->req_body.data);
    free(c->resp_body.data);
    free(c);
}

static void spare_free(void *self)
{
    struct xv_openai_call **slot = self;
    struct xv_openai_call *c = *slot;
    *slot = NULL;
    if (c)
        call_release(c);
}

void xv_oai_body_done(struct xv_buf *b)
{
    if (b->cap > XV_OAI_KEEP_BODY)
        xv_buf_free(b);
    else
        xv_buf_reset(b); /* the storage stays for this call's or the thread's next call */
}

/* The thread's kept call emptied: zeroed but for the kept body storage.
 * Out of line, as spare_keep: a process's first call runs neither (its
 * code stays off the first call's pages, preload/hot_functions.txt). */
static __attribute__((noinline)) struct xv_openai_call *spare_take(void)
{
    struct xv_openai_call *c = t_spare;
    t_spare = NULL;
    struct xv_buf rq = c->req_body, rs = c->resp_body;
    memset(c, 0, sizeof *c);
    c->req_body.data = rq.data;
    c->req_body.cap = rq.cap;
    c->resp_body.data = rs.data;
    c->resp_body.cap = rs.cap;
    return c;
}

/* Keep c for the thread's next call when the slot is free and the thread
 * can give it back at its exit (after its destructor ran: no). 1 kept. */
static __attribute__((noinline)) int spare_keep(struct xv_openai_call *c)
{
    if (t_spare || !xv_tkey_join(&g_spare_key, spare_free, &t_spare, &t_spare_reg))
        return 0;
    t_spare = c;
    return 1;
}

struct xv_openai_call *xv_openai_call_new(int type, const struct xv_openai_limits *lim)
{
    struct xv_openai_call *c = t_spare ? spare_take() : calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->type = type;
    if (lim)
        c->lim = *lim;
    else
        c->lim.capture_content = 1;
    /* 0 means "default": a zero body limit would make every call useless. */
    if (c->lim.body_max == 0)
        c->lim.body_max = XV_OAI_DEFAULT_BODY_MAX;
    if (c->lim.capture_max == 0)
        c->lim.capture_max = XV_OAI_DEFAULT_CAPTURE_MAX;
    c->req_body.max = c->lim.body_max;  /* kept storage (spare_take) or none */
    c->resp_body.max = c->lim.body_max;
    return c;
}

static void free_request(struct xv_openai_call *c)
{
    for (size_t i = 0; i < c->nmsgs; i++)
        free((struct xv_openai_tool_call *)c->msgs[i].tool_calls);
    free(c->msgs);
    c->msgs = NULL;
    c->nmsgs = 0;
    for (size_t i = 0; i < c->nmsg_own; i++)
        free(c->msg_own[i]);
    free(c->msg_own);
    c->msg_own = NULL;
    c->nmsg_own = c->cap_msg_own = 0;
    free(c->tool_names);
    c->tool_names = NULL;
    c->ntool_names = 0;
    xv_jr_free(&c->req_tree);
    c->req = NULL;
}

void xv_openai_call_free(struct xv_openai_call *c)
{
    if (!c)
        return;
    free_request(c);
    xv_oai_resp_free(c); /* resp_body too */
    free(c->error);
    free(c->model_hint);
    c->error = c->model_hint = NULL;
    xv_oai_body_done(&c->req_body);
    /* From the thread's second call on (a process that makes one call
     * never keeps one), kept for its next call. */
    if (t_freed && spare_keep(c))
        return;
    t_freed = 1;
    call_release(c);
}

void xv_oai_errorf(struct xv_openai_call *c, const char *fmt, ...)
{
    if (c->error)
        return;
    char tmp[XV_OAI_ERROR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    c->error = xv_oai_scrub(tmp, XV_OAI_ERROR_MAX + 63);
}

void xv_openai_call_set_error(struct xv_openai_call *c, const char *error)
{
    if (c && error && *error)
        xv_oai_errorf(c, "%s", error);
}

/* ---- request body ---- */

void xv_openai_call_expect_body(struct xv_openai_call *c, size_t n)
{
    if (c && !c->req_ended && !c->req_over && n)
        xv_buf_reserve(&c->req_body, n); /* a failure leaves the appends to grow it */
}

void xv_openai_call_request_body(struct xv_openai_call *c, const char *p, size_t n)
{
    if (!c || c->req_ended || n == 0)
        return;
    c->req_seen += n;
    if (c->req_over)
        return;
    int rc = xv_buf_append(&c->req_body, p, n);
    if (rc == XV_E_LIMIT) {
        c->req_over = 1;
        xv_buf_free(&c->req_body); /* nothing of it will be parsed */
    } else if (rc) {
        c->req_over = 1;
        xv_buf_free(&c->req_body);
        xv_oai_errorf(c, "request body not inspected: %s", xv_strerror(rc));
    }
}

/* ---- normalisation ---- */

/* A growable string for joining content parts; bounded by the request body
 * it comes from, so no extra limit is needed. */
struct join {
    struct xv_buf b;
    int n;   /* pieces so far */
    int oom; /* an append failed */
};

static void join_add(struct join *j, const char *s, size_t len)
{
    if (j->n++ > 0 && xv_buf_append(&j->b, "\n", 1) != 0)
        j->oom = 1;
    if (xv_buf_append(&j->b, s, len) != 0)
        j->oom = 1;
}

/* Text of one content part, or a placeholder naming what it was. */
static void join_part(struct join *j, const cJSON *part)
{
    if (cJSON_IsString(part)) {
        join_add(j, part->valuestring, strlen(part->valuestring));
        return;
    }
    if (!cJSON_IsObject(part))
        return;
    const char *type = xv_oai_get_str(part, "type");
    const char *text = xv_oai_get_str(part, "text");
    if (!text)
        text = xv_oai_get_str(part, "refusal");
    if (text && (!type || strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0 ||
                 strcmp(type, "output_text") == 0 || strcmp(type, "refusal") == 0)) {
        join_add(j, text, strlen(text));
        return;
    }
    /* Images and files are often inline base64: never captured, only named. */
    char ph[80];
    if (!type)
        type = "part";
    if (strstr(type, "image"))
        snprintf(ph, sizeof ph, "[image]");
    else if (strstr(type, "audio"))
        snprintf(ph, sizeof ph, "[audio]");
    else if (strstr(type, "file"))
        snprintf(ph, sizeof ph, "[file]");
    else
        snprintf(ph, sizeof ph, "[%.64s]", type);
    join_add(j, ph, strlen(ph));
}

/* Keep `p` (malloc'd text a message points into) until the request is
 * freed; on failure it is freed here. Returns 0 or XV_E_NOMEM. */
static int own(struct xv_openai_call *c, char *p)
{
    if (!p)
        return XV_E_NOMEM;
    if (c->nmsg_own == c->cap_msg_own) {
        size_t ncap = c->cap_msg_own ? c->cap_msg_own * 2 : 4;
        char **v = realloc(c->msg_own, ncap * sizeof *v);
        if (!v) {
            free(p);
            return XV_E_NOMEM;
        }
        c->msg_own = v;
        c->cap_msg_own = ncap;
    }
    c->msg_own[c->nmsg_own++] = p;
    return 0;
}

/* Normalise a `content` value (string, array of parts, null) into text: a
 * string is the tree's own (borrowed), joined parts are kept in msg_own;
 * *out NULL when there is none. Returns 0 or XV_E_NOMEM. */
static int content_text(struct xv_openai_call *c, const cJSON *content, const char **out,
                        size_t *len)
{
    *out = NULL;
    *len = 0;
    if (cJSON_IsString(content)) {
        *out = content->valuestring;
        *len = strlen(*out);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return 0;
    struct join j = {.n = 0, .oom = 0};
    xv_buf_init(&j.b, (size_t)-1);
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
        join_part(&j, part);
    if (j.oom) {
        xv_buf_free(&j.b);
        return XV_E_NOMEM;
    }
    if (j.n == 0)
        return 0;
    if (!j.b.data && xv_buf_append(&j.b, "", 0) != 0)
        return XV_E_NOMEM;
    char *text = xv_buf_steal(&j.b, len);
    if (own(c, text) != 0)
        return XV_E_NOMEM;
    *out = text;
    return 0;
}

/* Append one message slot (zeroed) to c->msgs. NULL on OOM. */
static struct xv_openai_message *msg_push(struct xv_openai_call *c, size_t *cap, const char *role)
{
    if (c->nmsgs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct xv_openai_message *m = realloc(c->msgs, ncap * sizeof *m);
        if (!m)
            return NULL;
        c->msgs = m;
        *cap = ncap;
    }
    struct xv_openai_message *m = &c->msgs[c->nmsgs];
    memset(m, 0, sizeof *m);
    m->role = role ? role : "user"; /* the tree's text or a literal */
    c->nmsgs++;
    return m;
}

/* Fill one tool call from id/name/arguments (any may be NULL): the tree's
 * strings, "" when absent (the public view has no NULLs), an object's
 * printed text kept in msg_own. */
static int tool_call_set(struct xv_openai_call *c, struct xv_openai_tool_call *t,
                         const char *id, const char *name, const cJSON *args)
{
    t->id = id ? id : "";
    t->name = name ? name : "";
    if (cJSON_IsString(args)) {
        t->arguments = args->valuestring;
    } else if (args && !cJSON_IsNull(args)) {
        char *printed = cJSON_PrintUnformatted(args); /* some servers send an object */
        if (own(c, printed) != 0)
            return XV_E_NOMEM;
        t->arguments = printed;
    } else {
        t->arguments = "";
    }
    t->arguments_len = strlen(t->arguments);
    return 0;
}

/* Chat: message.tool_calls[] and the legacy message.function_call. */
static int chat_tool_calls(struct xv_openai_call *c, struct xv_openai_message *m,
                           const cJSON *tcs, const cJSON *fc)
{
    size_t n = cJSON_IsArray(tcs) ? (size_t)cJSON_GetArraySize(tcs) : 0;
    if (cJSON_IsObject(fc))
        n++;
    if (n == 0)
        return 0;
    struct xv_openai_tool_call *tc = calloc(n, sizeof *tc);
    if (!tc)
        return XV_E_NOMEM;
    m->tool_calls = tc;
    size_t k = 0;
    const cJSON *t;
    if (cJSON_IsArray(tcs)) {
        cJSON_ArrayForEach(t, tcs) {
            const cJSON *f = xv_json_get(t, "function");
            m->ntool_calls = k + 1;
            if (tool_call_set(c, &tc[k++], xv_oai_get_str(t, "id"), xv_oai_get_str(f, "name"),
                              xv_json_get(f, "arguments")) != 0)
                return XV_E_NOMEM;
        }
    }
    if (cJSON_IsObject(fc)) {
        m->ntool_calls = k + 1;
        if (tool_call_set(c, &tc[k++], NULL, xv_oai_get_str(fc, "name"),
                          xv_json_get(fc, "arguments")) != 0)
            return XV_E_NOMEM;
    }
    return 0;
}

/* A message-shaped object: chat messages and responses `message` items. */
/* A message's members add_message reads, in xv_json_pick's order. */
enum { AM_ROLE, AM_CONTENT, AM_NAME, AM_TOOL_CALL_ID, AM_TOOL_CALLS, AM_FUNCTION_CALL, AM_COUNT };
static const char *const am_names[AM_COUNT] = { "role", "content", "name", "tool_call_id",
                                                "tool_calls", "function_call" };

static int add_message(struct xv_openai_call *c, size_t *cap, const cJSON *msg)
{
    const cJSON *v[AM_COUNT];
    xv_json_pick(msg, am_names, AM_COUNT, v); /* one pass over its members */
    const char *role = xv_json_str(v[AM_ROLE]);
    struct xv_openai_message *m = msg_push(c, cap, role ? role : "unknown");
    if (!m)
        return XV_E_NOMEM;
    if (content_text(c, v[AM_CONTENT], &m->content, &m->content_len) != 0)
        return XV_E_NOMEM;
    m->name = xv_json_str(v[AM_NAME]);
    m->tool_call_id = xv_json_str(v[AM_TOOL_CALL_ID]);
    return chat_tool_calls(c, m, v[AM_TOOL_CALLS], v[AM_FUNCTION_CALL]);
}

/* A plain string as one message of `role`. */
static int add_text(struct xv_openai_call *c, size_t *cap, const char *role, const char *s)
{
    struct xv_openai_message *m = msg_push(c, cap, role);
    if (!m)
        return XV_E_NOMEM;
    m->content = s;
    m->content_len = strlen(s);
    return 0;
}

/* Responses API `input` items. */
static int add_item(struct xv_openai_call *c, size_t *cap, const cJSON *it)
{
    if (cJSON_IsString(it))
        return add_text(c, cap, "user", it->valuestring);
    if (!cJSON_IsObject(it))
        return 0;
    const char *type = xv_oai_get_str(it, "type");
    if (!type || strcmp(type, "message") == 0)
        return xv_oai_get_str(it, "role") ? add_message(c, cap, it) : 0;
    if (strcmp(type, "function_call") == 0 || strcmp(type, "custom_tool_call") == 0) {
        struct xv_openai_message *m = msg_push(c, cap, "assistant");
        if (!m)
            return XV_E_NOMEM;
        struct xv_openai_tool_call *tc = calloc(1, sizeof *tc);
        if (!tc)
            return XV_E_NOMEM;
        m->tool_calls = tc;
        m->ntool_calls = 1;
        const cJSON *args = xv_json_get(it, "arguments");
        if (!args)
            args = xv_json_get(it, "input");
        return tool_call_set(c, tc, xv_oai_get_str(it, "call_id"), xv_oai_get_str(it, "name"),
                             args);
    }
    if (strcmp(type, "function_call_output") == 0 || strcmp(type, "custom_tool_call_output") == 0) {
        struct xv_openai_message *m = msg_push(c, cap, "tool");
        if (!m)
            return XV_E_NOMEM;
        m->tool_call_id = xv_oai_get_str(it, "call_id");
        return content_text(c, xv_json_get(it, "output"), &m->content, &m->content_len);
    }
    /* reasoning, item_reference, built-in tool calls: nothing readable. */
    return 0;
}

/* `prompt` / `input` of completions and embeddings: string or strings. */
static int add_strings(struct xv_openai_call *c, size_t *cap, const cJSON *v)
{
    if (cJSON_IsString(v))
        return add_text(c, cap, "user", v->valuestring);
    const cJSON *s;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(s, v) {
            /* Token-id arrays are not text; skip them. */
            if (cJSON_IsString(s) && add_text(c, cap, "user", s->valuestring) != 0)
                return XV_E_NOMEM;
        }
    }
    return 0;
}

static int build_messages(struct xv_openai_call *c)
{
    size_t cap = 0;
    const cJSON *r = c->req, *v;
    switch (c->type) {
    case XV_OPENAI_RESPONSES: {
        const char *ins = xv_oai_get_str(r, "instructions");
        if (ins && add_text(c, &cap, "system", ins) != 0)
            return XV_E_NOMEM;
        const cJSON *in = xv_json_get(r, "input");
        if (cJSON_IsString(in))
            return add_text(c, &cap, "user", in->valuestring);
        cJSON_ArrayForEach(v, xv_oai_array(in)) {
            if (add_item(c, &cap, v) != 0)
                return XV_E_NOMEM;
        }
        return 0;
    }
    case XV_OPENAI_COMPLETIONS:
        return add_strings(c, &cap, xv_json_get(r, "prompt"));
    case XV_OPENAI_EMBEDDINGS:
        return add_strings(c, &cap, xv_json_get(r, "input"));
    default: {
        const cJSON *msgs = xv_json_get(r, "messages");
        cJSON_ArrayForEach(v, xv_oai_array(msgs)) {
            if (cJSON_IsObject(v) && add_message(c, &cap, v) != 0)
                return XV_E_NOMEM;
        }
        return 0;
    }
    }
}

/* Tool names: chat {type, function:{name}}, responses {type, name},
 * built-ins by type, legacy functions[{name}]. */
static int build_tool_names(struct xv_openai_call *c)
{
    const cJSON *tools = xv_json_get(c->req, "tools");
    const cJSON *fns = xv_json_get(c->req, "functions");
    size_t n = (cJSON_IsArray(tools) ? (size_t)cJSON_GetArraySize(tools) : 0) +
               (cJSON_IsArray(fns) ? (size_t)cJSON_GetArraySize(fns) : 0);
    if (n == 0)
        return 0;
    c->tool_names = calloc(n, sizeof *c->tool_names);
    if (!c->tool_names)
        return XV_E_NOMEM;
    const cJSON *t;
    cJSON_ArrayForEach(t, xv_oai_array(tools)) {
        const char *name = xv_oai_get_str(xv_json_get(t, "function"), "name");
        if (!name)
            name = xv_oai_get_str(t, "name");
        if (!name)
            name = xv_oai_get_str(t, "type");
        if (!name)
            continue;
        c->tool_names[c->ntool_names++] = name;
    }
    cJSON_ArrayForEach(t, xv_oai_array(fns)) {
        const char *name = xv_oai_get_str(t, "name");
        if (!name)
            continue;
        c->tool_names[c->ntool_names++] = name;
    }
    return 0;
}

void xv_openai_call_request_end(struct xv_openai_call *c)
{
    if (!c || c->req_ended)
        return;
    c->req_ended = 1;
    if (c->req_over) {
        xv_oai_errorf(c, "request body over limit (%zu bytes); not inspected", c->lim.body_max);
        return;
    }
    const char *end = NULL;
    const char *body = c->req_body.data ? c->req_body.data : "";
    /* Arena nodes (xv_jsonr.h): one or two allocations, not one per node. */
    cJSON *j = xv_jr_parse(&c->req_tree, body, c->req_body.len, &end);
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        if (c->req_body.len == 0)
            xv_oai_errorf(c, "request body is empty; not inspected");
        else
            xv_oai_errorf(c, "malformed JSON in request body at byte %zu; not inspected", at);
    } else if (!cJSON_IsObject(j)) {
        xv_oai_errorf(c, "request body is not a JSON object; not inspected");
        xv_jr_free(&c->req_tree);
        j = NULL;
    }
    /* The text is no longer needed: the parse holds everything. */
    xv_oai_body_done(&c->req_body);
    if (!j)
        return;
    c->req = j;
    if (build_messages(c) != 0 || build_tool_names(c) != 0) {
        free_request(c);
        xv_oai_errorf(c, "request not inspected: %s", xv_strerror(XV_E_NOMEM));
    }
}

/* ---- accessors ---- */

const cJSON *xv_openai_call_request_json(const struct xv_openai_call *c)
{
    return c ? c->req : NULL;
}

const char *xv_openai_call_model(const struct xv_openai_call *c)
{
    if (!c)
        return NULL;
    const char *m = xv_oai_get_str(c->req, "model");
    return m ? m : c->model_hint;
}

void xv_openai_call_set_model_hint(struct xv_openai_call *c, const char *model)
{
    if (!c)
        return;
    free(c->model_hint);
    c->model_hint = model && *model ? xv_oai_strdup(model) : NULL;
}

int xv_openai_call_stream(const struct xv_openai_call *c)
{
    return c && cJSON_IsTrue(xv_json_get(c->req, "stream"));
}

size_t xv_openai_call_message_count(const struct xv_openai_call *c)
{
    return c ? c->nmsgs : 0;
}

const struct xv_openai_message *xv_openai_call_message(const struct xv_openai_call *c, size_t i)
{
    return c && i < c->nmsgs ? &c->msgs[i] : NULL;
}

size_t xv_openai_call_tool_count(const struct xv_openai_call *c)
{
    return c ? c->ntool_names : 0;
}

const char *xv_openai_call_tool_name(const struct xv_openai_call *c, size_t i)
{
    return c && i < c->ntool_names ? c->tool_names[i] : NULL;
}

int xv_openai_call_status(const struct xv_openai_call *c)
{
    return c ? c->status : 0;
}

const char *xv_openai_call_error(const struct xv_openai_call *c)
{
    return c ? c->error : NULL;
}
