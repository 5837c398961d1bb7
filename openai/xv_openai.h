/*
 * openai — what an OpenAI-compatible call means: which paths are API calls,
 * what the request asks for (type, model, stream, messages, tools, tool
 * calls in the history), and what the response says (id, model, content,
 * finish reasons, usage, tool calls with streamed argument deltas
 * reassembled per index, time to first token).
 *
 * A struct xv_openai_call follows one call: the request body once it is
 * complete, then the response head, then response body bytes as they
 * arrive (already de-chunked and inflated by http/), then the end. SSE
 * bodies are parsed internally with http/'s xv_sse parser. Malformed JSON
 * never fails a call: it is noted and shows up as the record's `error`.
 *
 * Thread safety: a call is used by one thread at a time (its connection's).
 * Memory: every accumulation is bounded by the limits in xv_openai_limits.
 */
#ifndef XV_OPENAI_H
#define XV_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum xv_openai_type {
    XV_OPENAI_NONE = 0,
    XV_OPENAI_CHAT = 1,        /* .../chat/completions */
    XV_OPENAI_RESPONSES = 2,   /* .../responses */
    XV_OPENAI_EMBEDDINGS = 3,  /* .../embeddings */
    XV_OPENAI_COMPLETIONS = 4, /* .../completions (legacy) */
};

/* Classify a request: POST to a path (query string ignored) ending in one
 * of the four API suffixes, under any prefix. Returns XV_OPENAI_NONE for
 * anything else. No allocation; safe on the hot path. */
int xv_openai_classify(const char *method, size_t method_len,
                       const char *target, size_t target_len);

/* "chat_completions" | "responses" | "embeddings" | "completions" | "unknown". Static. */
const char *xv_openai_type_name(int type);

struct xv_openai_limits {
    size_t body_max;    /* bytes of request/response body kept for parsing; past it the
                           body is not parsed and `error` says so (default 32 MiB) */
    size_t capture_max; /* bytes per captured text field in the record (default 16384) */
    int capture_content;/* 0: drop messages/response_content/tool args from records */
};

struct xv_openai_call;

/* Caller owns the result; free with xv_openai_call_free. NULL on OOM. */
struct xv_openai_call *xv_openai_call_new(int type, const struct xv_openai_limits *lim);
void xv_openai_call_free(struct xv_openai_call *c);

/* Request body bytes (decoded), any split; then request_end once. */
void xv_openai_call_request_body(struct xv_openai_call *c, const char *p, size_t n);
/* The request body's length, when its head gives it: the body buffer is
 * sized for it once (at most the body bound) instead of grown by doubling. */
void xv_openai_call_expect_body(struct xv_openai_call *c, size_t n);
void xv_openai_call_request_end(struct xv_openai_call *c);

/* Parsed request (valid after request_end; borrowed, owned by the call;
 * NULL when the body was not JSON or over the limit). */
const cJSON *xv_openai_call_request_json(const struct xv_openai_call *c);

/* Response head: status, and the Content-Type value (may be NULL). */
void xv_openai_call_response_head(struct xv_openai_call *c, int status,
                                  const char *content_type, size_t ct_len,
                                  uint64_t now_mono_ns);
/* Decoded response body bytes as they arrive; now_mono_ns is when they were read. */
void xv_openai_call_response_body(struct xv_openai_call *c, const char *p, size_t n,
                                  uint64_t now_mono_ns);
/* Response complete (or connection ended: error != NULL, e.g.
 * "connection closed mid-stream"). */
void xv_openai_call_response_end(struct xv_openai_call *c, const char *error,
                                 uint64_t now_mono_ns);

/* Note an error seen by the transport (malformed HTTP, body over limit...). First one wins. */
void xv_openai_call_set_error(struct xv_openai_call *c, const char *error);

/*
 * Add what the call knows to a trace record (SPEC §6):
 *   request_type, model, stream, messages, tools, response_model,
 *   response_id, response_content, tool_calls [{id,name,arguments}],
 *   finish_reasons, tokens_in, tokens_out (only when the upstream sent usage),
 *   tokens_cached, tokens_reasoning (when its usage details carry them),
 *   request_params (sampling/output parameters the request sent), status_code, ttft_ms (streams; from request_start_mono_ns to the first
 *   content or tool-call delta), error (when any), truncated (names of the
 *   captured fields that were cut to capture_max). Existing keys of the same
 *   names are replaced. Every string added is valid UTF-8.
 * request_start_mono_ns is when the request's first byte was written.
 * Returns 0 or XV_E_NOMEM.
 */
int xv_openai_call_fill_record(const struct xv_openai_call *c, cJSON *record,
                               uint64_t request_start_mono_ns);

/* The same fields written as members of the JSON object `w` is writing
 * (common/xv_jsonw.h), in the same order, with no tree: the agent's hot
 * path. flags: XV_OPENAI_REC_NO_STATUS leaves status_code out (the caller
 * writes what the app read), XV_OPENAI_REC_NO_ERROR leaves error out (the
 * caller decides which error the record carries; xv_openai_call_error).
 * Returns 0 or XV_E_NOMEM (the writer's text is then unusable). */
#define XV_OPENAI_REC_NO_STATUS 1u
#define XV_OPENAI_REC_NO_ERROR 2u
struct xv_jw;
int xv_openai_call_write_record(const struct xv_openai_call *c, struct xv_jw *w,
                                uint64_t request_start_mono_ns, unsigned flags);

/* A redaction applied to every captured text (message content, tool-call
 * arguments, response content) before fill_record captures and cuts it:
 * appends the redacted text[0..n) to out, sets *changed when it replaced
 * anything; returns 0 or negative (the text is then replaced by a
 * "redaction failed" marker, never captured as is). SPEC §6: records carry
 * the call's redaction. */
struct xv_buf;
typedef int (*xv_openai_redact_fn)(void *ctx, const char *text, size_t n, struct xv_buf *out,
                                   int *changed);
/* Set (fn NULL: clear) the call's record redactor; ctx is borrowed and must
 * stay valid until the last fill_record. */
void xv_openai_call_set_redactor(struct xv_openai_call *c, xv_openai_redact_fn fn, void *ctx);

/*
 * Views for the session and policy layers. All valid after request_end
 * (request side) or response_end (response side) until xv_openai_call_free;
 * pointers are borrowed from the call. Strings are NUL-terminated.
 */

/* A tool call: in the request history (an assistant message) or in the
 * response. Borrowed; valid until the call is freed. */
struct xv_openai_tool_call {
    const char *id;          /* tool_call id / call_id; "" when not sent */
    const char *name;        /* function name; "" when not sent */
    const char *arguments;   /* arguments text as sent (normally JSON); "" when none */
    size_t arguments_len;
};

/* One message of the request, normalised over the four APIs: chat
 * messages; responses `instructions` (as role "system") and `input`
 * (string, messages, function_call and function_call_output items);
 * completions `prompt` and embeddings `input` strings (role "user").
 * Borrowed; valid until the call is freed. */
struct xv_openai_message {
    const char *role;        /* "system", "developer", "user", "assistant", "tool", ...; never NULL */
    const char *content;     /* text; array parts joined with "\n", non-text parts as
                                "[image]", "[audio]", "[file]", "[<type>]"; NULL when none */
    size_t content_len;
    const char *name;        /* participant / legacy function name; NULL when none */
    const char *tool_call_id;/* role "tool": the call this result answers; NULL otherwise */
    const struct xv_openai_tool_call *tool_calls; /* calls an assistant message made */
    size_t ntool_calls;
};

/* Request model, NULL when not sent. */
const char *xv_openai_call_model(const struct xv_openai_call *c);
/* Request `stream` flag (0 when absent or not a boolean). */
int xv_openai_call_stream(const struct xv_openai_call *c);
/* The normalised request history. */
size_t xv_openai_call_message_count(const struct xv_openai_call *c);
const struct xv_openai_message *xv_openai_call_message(const struct xv_openai_call *c, size_t i);
/* Names of the tools the request offers: function names, or the tool type
 * for built-in tools ("web_search", ...); legacy `functions` included. */
size_t xv_openai_call_tool_count(const struct xv_openai_call *c);
const char *xv_openai_call_tool_name(const struct xv_openai_call *c, size_t i);

/* Response status (0 before the head). */
int xv_openai_call_status(const struct xv_openai_call *c);
/* Assembled response text (chat: choice 0; responses: all output_text;
 * completions: choice 0 text). NULL when none; *len gets its length. */
const char *xv_openai_call_response_content(const struct xv_openai_call *c, size_t *len);
/* Tool calls of the response, in choice then index order. Returns 0 and
 * fills *out, or XV_E_LIMIT when i is out of range. */
size_t xv_openai_call_response_tool_call_count(const struct xv_openai_call *c);
int xv_openai_call_response_tool_call(const struct xv_openai_call *c, size_t i,
                                      struct xv_openai_tool_call *out);
/* Usage the upstream reported: bit 0 set when *in was filled (input /
 * prompt tokens), bit 1 when *out was (output / completion tokens). */
int xv_openai_call_usage(const struct xv_openai_call *c, int64_t *in, int64_t *out);
/* The call's enum xv_openai_type. */
int xv_openai_call_type(const struct xv_openai_call *c);
/* Response id (chat `id`, Responses `id`), NULL when none. */
const char *xv_openai_call_response_id(const struct xv_openai_call *c);
/* The first error noted on the call, or NULL. */
const char *xv_openai_call_error(const struct xv_openai_call *c);

/* Model to report when the request body names none (Azure: the deployment
 * in the path). Copied; call after xv_openai_call_new, any time before the
 * record. NULL clears it. */
void xv_openai_call_set_model_hint(struct xv_openai_call *c, const char *model);

/* ---- providers (provider.c) ---- */

/* Who a call goes to (SPEC §5 `provider`, §7 `gen_ai.provider.name`).
 * All strings static. */
struct xv_openai_provider {
    const char *id;        /* Xenovia provider id: "openai", "azure", "anthropic", "gemini",
                              "groq", "bedrock", "mistral", …; "openai_compatible" for an
                              unknown host */
    const char *otel_name; /* the matching OTel gen_ai.provider.name ("openai",
                              "azure.ai.openai", "gcp.gemini", "aws.bedrock", …; else id) */
    const char *gateway;   /* "xenovia" for a Xenovia runtime host (provider then from the
                              path /a/<proxy>/<provider>/…, else openai_compatible); NULL */
};
/* Provider of a call to `host` (NUL-terminated, no port) with request path
 * path[0..path_len) (may be NULL). No allocation; safe on any thread. */
void xv_openai_provider_for(const char *host, const char *path, size_t path_len,
                            struct xv_openai_provider *out);
/* The OTel gen_ai.provider.name for a Xenovia provider id (a record's
 * `provider`): the well-known value when there is one, else the id itself.
 * Never NULL; static or `id`. */
const char *xv_openai_provider_otel_name(const char *id);
/* Azure-style "/openai/deployments/NAME/…" in a request target: copies
 * NAME (plain ASCII, not decoded) to out and returns its length; 0 (out
 * "") when there is none or it does not fit cap. */
size_t xv_openai_azure_deployment(const char *target, size_t len, char *out, size_t cap);

#endif
