/*
 * session — Xenovia session semantics in-process (SPEC §3, §4, §6):
 *
 *   - a session store: bounded LRU of sessions with a sliding expiry, shared
 *     by every connection of the process;
 *   - resolution at the request stage (one call): header → env → Responses
 *     `previous_response_id` → Chat `user` (hashed) → fingerprint of
 *     messages[:-1] → a new random UUID; plus the turn counter;
 *   - learning after the response (a second call): response id → session and
 *     the fingerprint the next turn will present → session; outstanding tool
 *     calls for tool-step records;
 *   - tool-step matching at the next request (tool_call → tool_result, latency);
 *   - XENOVIA_PROPERTIES / X-Xenovia-Property-* parsing and limits, and
 *     XENOVIA_SESSION_ID / X-Xenovia-Session-Id validation.
 *
 * What is stored: no message text. Conversation fingerprints, response ids and
 * `user` values are kept only as SHA-256 digests (their first 16 bytes);
 * session ids in clear. The one
 * exception is an outstanding tool call (name and arguments, truncated to
 * XV_SESSION_TOOL_ARGS_MAX; arguments only when the store was created with
 * keep_tool_args), kept until its result arrives, the session ends or the
 * tool pool evicts it.
 *
 * Memory bound (fixed at creation; the store never allocates afterwards
 * except the result arrays of xv_session_store_match_tools):
 *   xv_session_store_bytes_bound(max_sessions, tool_max) bytes, i.e.
 *   max_sessions × (session slot + its 2 + XV_SESSION_LINKS key nodes + its
 *   share of the hash buckets) + tool_max × (one tool slot) + a constant.
 *   On x86-64: 312 bytes per session slot (+ at most 16 bytes of buckets)
 *   and 1,152 bytes per tool slot; the defaults (10,000 sessions, 1,024 tool
 *   calls) come to 4,430,976 bytes (4.23 MiB), whatever the traffic.
 *
 * Thread safety: a store is protected by one mutex; every xv_session_store_*
 * function may be called from any thread. Hashing and canonicalisation run
 * outside the lock. Nothing here may be called from a signal handler.
 * The property and UUID helpers hold no state and are thread-safe.
 */
#ifndef XV_SESSION_H
#define XV_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sha256.h"
#include "xv_common.h"

/* ---------------------------------------------------------------- limits */

#define XV_SESSION_ID_LEN 36                /* canonical UUID text, 8-4-4-4-12 */
#define XV_SESSION_DEFAULT_MAX 10000        /* sessions kept (LRU beyond) */
#define XV_SESSION_DEFAULT_TTL_NS (30ull * 60 * 1000000000ull) /* sliding expiry */
#define XV_SESSION_DEFAULT_TOOL_MAX 1024    /* outstanding tool calls, whole store */
#define XV_SESSION_TOOLS_PER_SESSION 64     /* outstanding tool calls per session */
#define XV_SESSION_TOOL_NAME_MAX 64         /* bytes of a tool name kept */
#define XV_SESSION_TOOL_ARGS_MAX 1024       /* bytes of tool arguments kept */
#define XV_SESSION_LINKS 8                  /* fingerprint/response-id keys per session
                                               (the last 4 turns: branching, retries) */

/* Error code of xv_session_store_resolve for an app-sent X-Xenovia-Session-Id
 * that is not a UUID: the caller answers the app itself with a synthetic
 * response of status XV_SESSION_BAD_ID_STATUS and body XV_SESSION_BAD_ID_BODY
 * (Content-Type: application/json), and never sends the call upstream.
 * (Outside common's table because common/ is not this module's to edit.) */
#define XV_SESSION_E_BAD_ID (-1400)
#define XV_SESSION_BAD_ID_STATUS 400
#define XV_SESSION_BAD_ID_BODY                                                  \
    "{\"error\":{\"message\":\"X-Xenovia-Session-Id must be a UUID\","          \
    "\"type\":\"invalid_request_error\",\"param\":\"X-Xenovia-Session-Id\","    \
    "\"code\":\"invalid_session_id\"}}"

/* Request types; numerically equal to enum xv_openai_type (openai/), so the
 * caller may pass that value as is. */
enum xv_session_req_type {
    XV_SESSION_REQ_OTHER = 0,
    XV_SESSION_REQ_CHAT = 1,        /* /chat/completions: messages, user */
    XV_SESSION_REQ_RESPONSES = 2,   /* /responses: input, previous_response_id */
    XV_SESSION_REQ_EMBEDDINGS = 3,  /* header/env or new only */
    XV_SESSION_REQ_COMPLETIONS = 4, /* header/env or new only */
};

/* How a session was resolved (SPEC §4 order). */
enum xv_session_strategy {
    XV_SESSION_BY_HEADER = 1,               /* "header" */
    XV_SESSION_BY_ENV = 2,                  /* "env" */
    XV_SESSION_BY_PREVIOUS_RESPONSE = 3,    /* "previous_response_id" */
    XV_SESSION_BY_USER = 4,                 /* "user" */
    XV_SESSION_BY_FINGERPRINT = 5,          /* "fingerprint" */
    XV_SESSION_BY_NEW = 6,                  /* "new" */
};
/* The record spelling above; "unknown" otherwise. Static storage. */
const char *xv_session_strategy_name(int strategy);

/* ----------------------------------------------------------------- store */

struct xv_session_store;

struct xv_session_config {
    size_t max_sessions;        /* sessions kept; 0 → XV_SESSION_DEFAULT_MAX */
    uint64_t ttl_ns;            /* idle time after which a session is forgotten;
                                   every hit refreshes it; 0 → 30 minutes */
    size_t tool_max;            /* outstanding tool calls in the whole store;
                                   0 → XV_SESSION_DEFAULT_TOOL_MAX */
    int keep_tool_args;         /* 1: keep tool arguments (truncated) for tool_result
                                   records; 0 (XENOVIA_CAPTURE_CONTENT=off): names only */
    uint64_t (*clock)(void *arg); /* monotonic ns; NULL → xv_now_mono_ns (tests inject) */
    void *clock_arg;            /* passed to clock */
};

/* Create a store. cfg NULL → all defaults. Allocates its whole bound up
 * front (calloc: pages are touched only as sessions are used).
 * Caller owns the result; free with xv_session_store_free. NULL on OOM or
 * max_sessions/tool_max past 1<<24. */
struct xv_session_store *xv_session_store_new(const struct xv_session_config *cfg);
void xv_session_store_free(struct xv_session_store *s);   /* NULL ok */

/* The byte bound of a store with these sizes (0 → defaults), computed from
 * the structure sizes; equals what xv_session_store_new allocates. */
size_t xv_session_store_bytes_bound(size_t max_sessions, size_t tool_max);

/* pthread_atfork handlers (registered by the preload for its one store):
 * prepare takes the lock so no other thread is mid-update at the fork,
 * parent releases it, child re-initialises the mutex. The child keeps the
 * parent's sessions (a worker continues its parent's conversations). */
void xv_session_store_atfork_prepare(struct xv_session_store *s);
void xv_session_store_atfork_parent(struct xv_session_store *s);
void xv_session_store_atfork_child(struct xv_session_store *s);

struct xv_session_stats {
    size_t sessions;            /* live sessions now (≤ max_sessions) */
    size_t keys;                /* index entries now */
    size_t tools;               /* outstanding tool calls now (≤ tool_max) */
    uint64_t created;           /* sessions created */
    uint64_t evicted;           /* sessions dropped by the LRU bound */
    uint64_t expired;           /* sessions dropped by the sliding expiry */
    uint64_t tools_evicted;     /* outstanding tool calls dropped unanswered (bounds) */
};
void xv_session_store_get_stats(struct xv_session_store *s, struct xv_session_stats *out);

/* --------------------------------------------------- resolution (request) */

/* The conversation's hash state after its last request message (SHA-256
 * over the canonical message array so far, see canon.c), carried by the
 * caller from xv_session_store_resolve to xv_session_store_record_response:
 * the next turn's key is then the reply hashed on top of it, not the whole
 * history walked and hashed a second time (issue 9). Caller-owned storage,
 * filled by resolve when it fingerprints the request (valid set), read by
 * record_response only when valid and only for the same request body. */
struct xv_session_convo {
    int valid;
    size_t n;                   /* messages hashed */
    struct sha256_ctx ctx;
};

struct xv_session_request {
    const char *header_id;      /* X-Xenovia-Session-Id value the app sent (need not be
                                   NUL-terminated; spaces/tabs around it ignored);
                                   NULL when the header is absent */
    size_t header_id_len;
    const char *env_id;         /* XENOVIA_SESSION_ID, already validated with
                                   xv_session_env_id_check; NULL when unset/invalid */
    int type;                   /* enum xv_session_req_type */
    const cJSON *body;          /* parsed request body; NULL when none or not JSON */
    const uint8_t *scope;       /* XV_SESSION_DIGEST_LEN bytes (xv_session_scope_digest of
                                   the request's credential) or NULL: the `user`, response-id
                                   and fingerprint keys are looked up within this scope only,
                                   so two API keys never share those sessions */
    struct xv_session_convo *convo; /* out, or NULL: see struct xv_session_convo (reset
                                   at every resolve; valid when the request was
                                   fingerprinted) */
};

/* SHA-256 digest size. */
#define XV_SESSION_DIGEST_LEN 32

struct xv_session_resolved {
    char id[XV_SESSION_ID_LEN + 1]; /* session id, NUL-terminated; for header/env the
                                       value as given, else lower-case libuuid text */
    uint64_t turn;              /* 1 for a new session, else previous turn + 1; every
                                   resolved request counts, blocked ones too */
    int strategy;               /* enum xv_session_strategy */
    int has_id_digest;          /* id_digest holds the store's digest of id (a given or
                                   new id; not one found by another key) */
    uint8_t id_digest[XV_SESSION_DIGEST_LEN];
};

/*
 * Resolve the session of one request (SPEC §4) and count its turn. Call once
 * per inspected request, before policy evaluation (so blocked calls count).
 * When `user` is sent (chat), its digest is bound to the resolved session.
 * Returns 0 and fills *out; XV_SESSION_E_BAD_ID when the app's header is not
 * a UUID (out->id is "" — answer with the synthetic 400 above, count nothing).
 * Allocates only to sort the members of a JSON object of more than 16 members
 * met inside message content (its failure just skips the fingerprint).
 * s may be NULL (store creation failed): then every call is stateless — the
 * header/env id or a new one, turn 1 — and record/match do nothing.
 */
int xv_session_store_resolve(struct xv_session_store *s, const struct xv_session_request *req,
                             struct xv_session_resolved *out);

/* ------------------------------------------------ learning (after response) */

/* The assistant reply is a cJSON object shaped like a Chat Completions
 * `choices[0].message`:
 *   {"role":"assistant", "content": "<text>" | null,
 *    "tool_calls": [{"id": "...", "type": "function",
 *                    "function": {"name": "...", "arguments": "<json text>"}}]}
 * A non-stream chat response's choices[0].message can be passed as is; for
 * streams and the Responses API build it with xv_session_reply_new. For the
 * Responses API it stands for the output items: one assistant message with
 * the text (when any), then one function_call item per tool call. */
struct xv_session_tool_call {
    const char *id;             /* tool_call id / call_id */
    const char *name;           /* function name */
    const char *arguments;      /* arguments text; need not be NUL-terminated */
    size_t arguments_len;
};
/* Caller owns the result: one block (nodes and texts), freed with
 * xv_session_reply_free, never cJSON_Delete; read it, do not change it.
 * content may be NULL (content_len ignored then); texts end at a NUL byte.
 * NULL on OOM. */
cJSON *xv_session_reply_new(const char *content, size_t content_len,
                            const struct xv_session_tool_call *calls, size_t ncalls);
void xv_session_reply_free(cJSON *reply);

struct xv_session_response {
    const char *session_id;     /* xv_session_resolved.id of this call */
    uint64_t turn;              /* xv_session_resolved.turn (recreates the session with
                                   it if the LRU dropped it meanwhile) */
    int type;                   /* enum xv_session_req_type */
    const cJSON *request;       /* the parsed request body given to resolve; may be NULL */
    const char *response_id;    /* chat `id` / Responses `id`; NULL when none (bound only
                                   for XV_SESSION_REQ_RESPONSES: nothing names a chat id) */
    const cJSON *reply;         /* the assistant reply (above); NULL when none */
    const uint8_t *scope;       /* the request's scope (xv_session_request.scope) or NULL */
    const struct xv_session_convo *convo; /* what resolve left in xv_session_request.convo
                                   for this request, or NULL */
    const uint8_t *id_digest;   /* xv_session_resolved.id_digest when has_id_digest (it
                                   vouches for session_id: not checked or digested again),
                                   else NULL */
};

/*
 * After a successful (2xx) response: bind a Responses response_id → session, bind the
 * fingerprint of (request messages + reply) → session so the conversation's
 * next request lands here, refresh the expiry, and record the reply's tool
 * calls as outstanding (issued now, by the store clock). Borrowed inputs.
 * Returns 0, XV_E_PARSE when session_id is not a UUID, XV_E_LIMIT when the
 * canonical form is too deep (the fingerprint is then skipped; the rest done).
 */
int xv_session_store_record_response(struct xv_session_store *s,
                                     const struct xv_session_response *resp);

/* ------------------------------------------------------------ tool steps */

struct xv_session_tool_step {
    char *call_id;              /* owned, NUL-terminated */
    char *tool_name;            /* owned; from the request history when present,
                                   else as recorded */
    char *tool_args;            /* owned; from the request history (full) when present,
                                   else as recorded (≤ XV_SESSION_TOOL_ARGS_MAX); "" when
                                   not kept */
    size_t tool_args_len;
    char *tool_result;          /* owned; the tool message's content (array content:
                                   text parts joined with "\n"), ≤ result_max bytes */
    size_t tool_result_len;
    int result_truncated;       /* 1 when tool_result was cut at result_max */
    uint64_t latency_ns;        /* issuing response recorded → this request resolved */
};

/*
 * At a request of session `session_id`: match its `tool` messages (chat:
 * role "tool" + tool_call_id; Responses: function_call_output + call_id)
 * against the session's outstanding tool calls. Each match is removed (a
 * result is reported once even though later requests repeat the history).
 * On 0, *out is a caller-owned array of *nout steps (NULL when none) freed with
 * xv_session_tool_steps_free; result_max 0 keeps no result text. Returns 0
 * (also when the session is unknown or expired: no steps), or XV_E_NOMEM
 * (then *out NULL, *nout 0, and the matched calls are forgotten).
 */
int xv_session_store_match_tools(struct xv_session_store *s, const char *session_id, int type,
                                 const cJSON *request, size_t result_max,
                                 struct xv_session_tool_step **out, size_t *nout);
/* The same, with the id's digest from xv_session_store_resolve (it vouches for
 * the id, which is then neither checked nor digested again); NULL: as above. */
int xv_session_store_match_tools_d(struct xv_session_store *s, const char *session_id,
                                   const uint8_t *id_digest, int type, const cJSON *request,
                                   size_t result_max, struct xv_session_tool_step **out,
                                   size_t *nout);
void xv_session_tool_steps_free(struct xv_session_tool_step *steps, size_t n);

/* ------------------------------------------------- canonical JSON, digests */


/* The scope of a request's derived session keys: HMAC-SHA256 of its
 * credential (bearer token / api-key value) under a per-process random key
 * (drawn once; a fork child keeps it). The credential itself is never kept;
 * the digest is useless outside the process. Any thread. */
void xv_session_scope_digest(const char *cred, size_t n, uint8_t out[XV_SESSION_DIGEST_LEN]);

/* Canonical JSON of any value (defined in docs/session.md and canon.c),
 * appended to `out` (bounded by its max). Returns 0, XV_E_LIMIT (out's max
 * reached or nesting past 64; out then holds a prefix). For tests/fuzzing. */
int xv_session_canonical_json(const cJSON *v, struct xv_buf *out);

/* The canonical conversation of a request body: its messages normalised
 * (chat `messages`; Responses `input`) as a canonical JSON array, appended
 * to `out`; `drop_last` omits the last message (the resolution key).
 * Returns 0, XV_E_LIMIT (out's max or nesting), XV_E_NOMEM. */
int xv_session_canonical_messages(int type, const cJSON *body, int drop_last,
                                  struct xv_buf *out);

/* Fingerprint of messages[:-1] of a request body (strategy 4's key).
 * Returns 0 and fills digest; XV_E_PARSE when the body has no messages to
 * key on (fewer than 2, or not chat/responses); XV_E_LIMIT when too deep. */
int xv_session_fingerprint(int type, const cJSON *body,
                           uint8_t digest[XV_SESSION_DIGEST_LEN]);

/* ------------------------------------------------ ids, properties (config) */

/* 1 when s[0..len) is a UUID in canonical 8-4-4-4-12 form (hex digits of
 * either case, any version/variant), else 0. */
int xv_session_uuid_valid(const char *s, size_t len);

/* Check a XENOVIA_SESSION_ID value (NULL = unset → 0). Returns 0 when
 * usable (any UUID spelling xv_uuid_parse accepts; callers pass the value
 * through xv_uuid_normalize before using it as an id), XV_E_CONFIG otherwise with one line in err (NUL-terminated, no
 * newline, naming the variable and the fix) for the caller to log once. */
int xv_session_env_id_check(const char *value, char *err, size_t errlen);

#define XV_SESSION_PROP_MAX 20          /* properties per request */
#define XV_SESSION_PROP_KEY_MAX 64      /* characters of a key */
#define XV_SESSION_PROP_VALUE_MAX 512   /* characters (UTF-8 code points) of a value */
#define XV_SESSION_PROP_HEADER_PREFIX "X-Xenovia-Property-"

/*
 * A set of properties. Keys: 1–64 characters of [A-Za-z0-9_-], not starting
 * with "policy_" (any case; reserved), unique ignoring case (they become
 * header names). Values: valid UTF-8, at most 512 code points, no control
 * characters other than tab (safe to place in a header as is).
 * Initialise with xv_session_props_init (or = {0}); free with xv_session_props_free.
 */
struct xv_session_prop {
    char key[XV_SESSION_PROP_KEY_MAX + 1]; /* NUL-terminated, as given */
    char *value;                           /* owned, NUL-terminated, decoded */
    size_t value_len;                      /* bytes */
};
struct xv_session_props {
    size_t n;                              /* entries used in p */
    uint64_t dropped;                      /* app-sent properties dropped (limits) */
    struct xv_session_prop p[XV_SESSION_PROP_MAX];
};
void xv_session_props_init(struct xv_session_props *p);
void xv_session_props_free(struct xv_session_props *p); /* frees values; n = 0 */

/*
 * Parse XENOVIA_PROPERTIES (`key=value,key2=value2`, OTEL_RESOURCE_ATTRIBUTES
 * syntax: spaces/tabs around keys and values trimmed, empty entries skipped,
 * values percent-decoded) into `out` (initialised by the call). text NULL
 * or empty → 0 properties. Returns 0, XV_E_CONFIG with the first violation
 * described in err (one line naming XENOVIA_PROPERTIES and the fix; out is
 * then empty), or XV_E_NOMEM.
 */
int xv_session_props_parse(const char *text, struct xv_session_props *out,
                           char *err, size_t errlen);

/* Deep copy (e.g. the config set as the base of a request's set). dst is
 * initialised by the call. Returns 0 or XV_E_NOMEM (dst then empty). */
int xv_session_props_copy(struct xv_session_props *dst, const struct xv_session_props *src);

/*
 * An app-sent header: name (full header name) and raw value (not decoded).
 * Returns 0 when added (or replacing the same key: the app's value wins),
 * XV_E_PARSE when the name is not X-Xenovia-Property-<key> (ignored, not
 * counted), XV_E_LIMIT when over a limit — dropped from the trace and
 * counted in p->dropped (the wire is never changed) — or XV_E_NOMEM.
 */
int xv_session_props_add_header(struct xv_session_props *p, const char *name, size_t name_len,
                                const char *value, size_t value_len);

/* Add the set to a record as an object {key: value} named `field`
 * (e.g. "custom_properties"); nothing when empty. Returns 0 or XV_E_NOMEM. */
int xv_session_props_to_json(const struct xv_session_props *p, cJSON *record,
                             const char *field);

#endif
