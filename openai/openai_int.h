/*
 * openai_int.h — what the openai module's own files share (not public).
 *
 * call.c owns the lifecycle and the request side (body accumulation, the
 * parse at request_end, the normalised message/tool lists); response.c owns
 * the response side (non-stream body, SSE events, the per-choice and
 * per-tool-call assembly); skim.c parses only chosen top-level members of
 * large bodies (embeddings); record.c turns both into trace-record fields;
 * text.c holds the bounded, UTF-8-aware string helpers they all use.
 *
 * Invariants: every byte the call keeps is bounded — request and response
 * bodies by lim.body_max each, all streamed assembly (content + tool
 * arguments of every choice) by lim.body_max together (`asm_bytes`), the
 * number of choices and tool calls by XV_OAI_MAX_CHOICES / _MAX_TOOL_CALLS.
 * Indexes sent by the upstream are never used as array offsets.
 *
 * Thread safety: a call belongs to one thread at a time; no global state.
 */
#ifndef XV_OPENAI_INT_H
#define XV_OPENAI_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "xv_common.h"
#include "xv_http.h"
#include "xv_jsonr.h"
#include "xv_openai.h"

#define XV_OAI_DEFAULT_BODY_MAX ((size_t)32 << 20)
#define XV_OAI_DEFAULT_CAPTURE_MAX ((size_t)16384)
/* OpenAI allows n <= 128 choices; a hostile upstream gets no more slots. */
#define XV_OAI_MAX_CHOICES 128
/* Parallel tool calls per response, over all choices. */
#define XV_OAI_MAX_TOOL_CALLS 256
/* Identifiers (model, ids, names, roles) are kept to this many bytes. */
#define XV_OAI_IDENT_MAX 512
/* Upstream error messages are kept to this many bytes. */
#define XV_OAI_ERROR_MAX 1024

/* One choice of a chat/completions response (responses API: choice 0). */
struct xv_oai_choice {
    int index;            /* the upstream's choice index */
    struct xv_buf content;/* assembled text (max = lim.body_max; see asm_bytes) */
    char *finish;         /* finish_reason, owned; NULL until sent */
};

/* One tool call of the response, assembled from deltas or read whole. */
struct xv_oai_tool {
    int choice;           /* choice index it belongs to */
    int index;            /* tool-call index (chat) or output_index (responses) */
    char *id;             /* tool call id / call_id, owned; set once */
    char *name;           /* function name, owned; set once */
    char *item_id;        /* responses API output item id (fc_...), owned */
    struct xv_buf args;   /* arguments text, fragments concatenated */
};

struct xv_openai_call {
    int type;                        /* enum xv_openai_type */
    char *model_hint;                /* model when the body names none (Azure deployment), owned */
    xv_openai_redact_fn redact_fn;   /* applied to captured text in records, or NULL */
    void *redact_ctx;                /* its argument (borrowed) */
    struct xv_openai_limits lim;     /* defaults applied */
    char *error;                     /* first error noted, owned */

    /* request */
    struct xv_buf req_body;          /* accumulated request body */
    size_t req_seen;                 /* request body bytes seen (even past the limit) */
    int req_over;                    /* body passed body_max: not parsed */
    int req_ended;                   /* request_end was called */
    cJSON *req;                      /* parsed request (req_tree's root); NULL if none */
    struct xv_jr_tree req_tree;      /* owns req: arena nodes, read-only (xv_jsonr.h) */
    /* The normalised history and tool names point into req's tree (valid
     * while it is); only texts made here (joined content parts, arguments
     * sent as objects) are allocated, kept in msg_own. */
    struct xv_openai_message *msgs;  /* owned array (and each tool_calls array) */
    size_t nmsgs;
    char **msg_own;                  /* texts the messages point into, owned */
    size_t nmsg_own, cap_msg_own;
    const char **tool_names;         /* names of the tools offered (array owned) */
    size_t ntool_names;

    /* response head */
    int status;                      /* 0 until response_head */
    int sse;                         /* body is an event stream (Content-Type, or sniffed) */
    int sniff;                       /* stream requested, Content-Type not saying: decide
                                        from the first body bytes */
    char sniff_buf[16];              /* body bytes held while undecided (< 16 by then) */
    size_t sniff_len;
    int resp_ended;                  /* response_end was called */

    /* response body */
    struct xv_buf resp_body;         /* non-stream body */
    size_t resp_seen;                /* non-stream body bytes seen */
    int resp_over;                   /* non-stream body passed body_max */
    struct xv_sse_parser *ssep;      /* SSE parser, owned; NULL when not SSE */
    uint64_t now_ns;                 /* now_mono_ns of the body slice being fed */
    unsigned long nevents;           /* SSE events seen */
    struct xv_jr_tree ev_tree;       /* the SSE event being read; its block kept for the next */
    int done;                        /* `data: [DONE]` seen */

    /* extracted response */
    char *resp_id;                   /* owned */
    char *resp_model;                /* owned */
    char *resp_status;               /* responses API status, owned */
    struct xv_oai_choice *choices;   /* owned, nchoices used */
    size_t nchoices;
    struct xv_oai_tool *tools;       /* owned, ntools used */
    size_t ntools;
    size_t asm_bytes;                /* bytes held by all choices' content + tool args */
    int asm_over;                    /* assembly hit the budget: content cut */
    int has_tokens_in, has_tokens_out;
    int64_t tokens_in, tokens_out;
    int has_tokens_cached, has_tokens_reasoning;
    int64_t tokens_cached;           /* input tokens served from the provider's cache */
    int64_t tokens_reasoning;        /* output tokens spent on reasoning */
    uint64_t first_token_ns;         /* 0 until the first content/tool-call delta */
    int saw_text_delta;              /* responses stream: output_text deltas seen */
    int saw_tool_item;               /* responses stream: function_call items seen */
};

/* The array itself, or NULL when v is not an array: for cJSON_ArrayForEach,
 * which must not walk the children of an object or string by mistake. */
static inline const cJSON *xv_oai_array(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

/* ---- call.c ---- */
/* A body buffer the call is done with: emptied, its storage kept for the
 * thread's next call when small, else freed. */
void xv_oai_body_done(struct xv_buf *b);
/* Note an error (printf-style); first one wins. Silently ignores OOM. */
void xv_oai_errorf(struct xv_openai_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- response.c ---- */
void xv_oai_resp_free(struct xv_openai_call *c);

/* ---- skim.c ---- */
/* An object holding only the top-level members of the JSON object in
 * text[0..len) whose names are in `keys` (NULL-terminated), parsed; other
 * values are stepped over unparsed. NULL when the text is not an object by
 * the skimmer's rules, a wanted value is malformed, or on OOM: parse it
 * whole instead. Caller owns the result; free with cJSON_Delete. */
cJSON *xv_oai_json_skim(const char *text, size_t len, const char *const *keys);

/* ---- text.c ---- */
/* strdup of a NUL-terminated string; NULL in, NULL out. */
char *xv_oai_strdup(const char *s);
/* The string value of obj[key], or NULL when absent or not a string. */
const char *xv_oai_get_str(const cJSON *obj, const char *key);
/* Length of the longest prefix of s[0..len) that is at most max bytes and
 * does not end inside a UTF-8 sequence. */
size_t xv_oai_utf8_cut(const char *s, size_t len, size_t max);
/* Copy of s[0..len) cut to max bytes at a UTF-8 boundary, invalid UTF-8
 * replaced by U+FFFD (counted in the budget); *cut set to 1 when bytes were
 * dropped (left alone otherwise). Caller owns the result; free(). NULL on OOM. */
char *xv_oai_utf8_fix(const char *s, size_t len, size_t max, int *cut);
int xv_oai_utf8_valid(const char *s, size_t len);
/* Copy with credential-looking tokens (sk-..., Bearer ...) masked. Caller
 * owns the result; free(). NULL on OOM. */
char *xv_oai_scrub(const char *s, size_t max);
/* Case-insensitive: does the media type in a Content-Type value equal `type`? */
int xv_oai_media_type_is(const char *ct, size_t ct_len, const char *type);

#endif
