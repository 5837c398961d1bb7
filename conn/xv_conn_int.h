/*
 * Internal to conn/: the call queue entry, the connection struct and the
 * helpers the files of this module share. Not for use outside conn/.
 */
#ifndef XV_CONN_INT_H
#define XV_CONN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "xv_common.h"
#include "xv_conn.h"
#include "xv_http.h"
#include "xv_openai.h"
#include "xv_policy.h"
#include "xv_session.h"
#include "xv_value.h"

#define XV_TRACE_ID_LEN XV_UUID_LEN /* trace ids are v4 UUIDs, hyphenated lower case (SPEC §6) */

/* One request/response exchange on a connection. */
struct xv_conn_cas;

/* The string members of struct xv_call's tail, in their order. */
#define XV_CALL_TEXT(X)                                                                    \
    X(host) X(session_path) X(flow_id) X(parent_trace_id) X(traceparent) X(tracestate)     \
    X(upstream_session_id) X(policy_name) X(policy_rule_id) X(policy_reason) X(policy_error) \
    X(resp_policy_name) X(resp_policy_rule_id) X(resp_policy_reason)

struct xv_call {
    struct xv_call *next;          /* FIFO order on the connection */
    int replayed;                  /* answered from the cassette (SPEC §8.1) */
    struct xv_conn_cas *cas;       /* being recorded into the cassette, or NULL */
    struct xv_openai_call *api;    /* NULL: not an API call (only framed) */
    char trace_id[XV_TRACE_ID_LEN + 1];
    char upstream_trace_id[XV_TRACE_ID_LEN * 2 + 1]; /* set when the upstream stamped one */
    uint64_t start_mono_ns;        /* request head seen */
    uint64_t start_wall_ns;
    int request_done;              /* request fully written */
    int response_started;          /* final (non-1xx) response head seen */
    int stamped;                   /* our trace header was added */
    struct xv_openai_provider prov;/* provider/gateway of an API call (from host and path) */
    char session_id[37];           /* session the call belongs to ("" until decided) */
    int has_session_digest;        /* session_digest: the store's digest of session_id */
    uint8_t session_digest[32];    /* (xv_session_resolved.id_digest) */
    int session_turn;              /* turn within the session (1-based) */
    const char *session_strategy;  /* how it was resolved (static string) */
    int synthetic;                 /* answered by the agent; never sent upstream */
    int expect_continue;           /* request asked for 100-continue */
    int continue_local;            /* ... and the agent answered it (policy in force):
                                      body held, Expect dropped from what is sent */
    const char *tx_error;          /* request-side problem noted for the record */
    const struct xv_session_props *props; /* custom properties of this call (config + app),
                                      or NULL: props_own, or the configured set itself when
                                      the app sent none (shared, never copied per call) */
    struct xv_session_props *props_own; /* owned set when the app sent properties, or NULL */
    struct xv_value *headers_v;    /* request headers for the policy input (redacted), or NULL */
    struct xv_value *policy_in_v;  /* the request stage's input document, kept for the
                                      response stage (issue 9: built once), or NULL */
    struct xv_policy_memo policy_memo; /* the request stage's stable deny/redact rules'
                                      results, for the response stage (xv_policy.h) */
    const char *policy_outcome;    /* request stage's decision name (static or policy_name),
                                      NULL when no policy ran */
    int policy_decided;            /* the request stage decided (no error): policy_code set */
    int policy_code;               /* its enum xv_outcome; policy_name holds an action's name
                                      when policy_outcome == policy_name */
    int policy_blocked;            /* the request stage answered 403 (block, unknown action) */
    const char *policy_mode;       /* "enforce" | "monitor" */
    unsigned redact_labels;        /* labels to redact (request stage) */
    int redacted;                  /* the body sent was redacted */
    int resp_policy_applied;       /* the response was held and its decision applied */
    int resp_redacted;             /* the app got a redacted response */
    const char *resp_policy_outcome; /* response stage, evaluated at the end (static or
                                      resp_policy_name) */
    int resp_block;                /* the response-stage decision blocks (block_response,
                                      deny, an unknown action) */
    int app_status;                /* status the app read when the agent replaced the
                                      response (403 for block_response), else 0 */
    unsigned record_labels;        /* labels redacted in every captured text of the record
                                      and its tool steps (request | response stage) */
    struct xv_session_tool_step *steps; /* tool results this request carries, recorded
                                      with the call (after its policy decision) */
    size_t nsteps;
    int has_scope;                 /* cred_scope is set */
    uint8_t cred_scope[32];        /* keyed digest of the request's credential (session
                                      scope of strategies user/fingerprint); never the
                                      credential itself */
    unsigned resp_redact_labels;   /* redact_response labels */
    char *answer;                  /* synthetic answer waiting for the responses to
                                      earlier pipelined calls (malloc'd), or NULL */
    size_t answer_len;
    /* ---- The tail: xv_conn_call_alloc zeroes every member above, and of
     * these only what says they are empty (convo.valid, the first byte of
     * each string; XV_CALL_TEXT lists the strings, and a string added here
     * must be added there): a reused call struct wrote these 2.5 KiB at every
     * call, most of it text a call never sets (issue 9). Each string is
     * NUL-terminated and never read past its NUL. */
    struct xv_session_convo convo; /* the request's conversation hash state, resolve to
                                      record (xv_session_store_resolve fills it) */
    char host[256];                /* Host header (without port) */
    char session_path[256];        /* X-Xenovia-Session-Path in effect ("" none) */
    char flow_id[128];             /* X-Xenovia-Trace-Flow-Id in effect */
    char parent_trace_id[128];     /* X-Xenovia-Parent-Trace-Id in effect */
    char traceparent[128];         /* the app's W3C traceparent header ("" none; checked by
                                      the OTLP encoder, which makes it the span's parent) */
    char tracestate[512];          /* the app's W3C tracestate header ("" none) */
    char upstream_session_id[64];  /* X-Xenovia-Session-Id the upstream stamped */
    char policy_name[48];          /* an unknown action's own name ("escalate") */
    char policy_rule_id[128];
    char policy_reason[256];
    char policy_error[300];        /* evaluation failure, "" none */
    char resp_policy_name[48];     /* an unknown action's own name at that stage */
    char resp_policy_rule_id[128];
    char resp_policy_reason[256];
};
/* The tail of struct xv_call is convo and the strings of XV_CALL_TEXT, in
 * that order, and nothing else (the sizes add up to the end of the struct). */
#define XV_CALL_TEXT_SIZE(m) +sizeof(((struct xv_call *)0)->m)
_Static_assert(sizeof(struct xv_call) - offsetof(struct xv_call, convo) -
                       sizeof(struct xv_session_convo) - (0 XV_CALL_TEXT(XV_CALL_TEXT_SIZE)) <
                   _Alignof(struct xv_call),
               "struct xv_call's tail is convo and XV_CALL_TEXT");
_Static_assert(offsetof(struct xv_call, host) ==
                   offsetof(struct xv_call, convo) + sizeof(struct xv_session_convo),
               "the strings follow convo");


/* Per-request injection state, kept on the connection between the request
 * head and the release of the held request. */
struct xv_inject_state {
    unsigned skip;             /* bit i: the app sent inject_lines[i]'s header */
    int app_session;           /* the app sent X-Xenovia-Session-Id */
    char app_session_id[64];   /* ... with this value (truncated) */
    int app_session_bad;       /* ... which is not a UUID */
};

struct xv_conn {
    pthread_mutex_t mu;            /* guards everything below except mode/refs */
    atomic_int refs;               /* references: tables + running hooks */
    atomic_int mode;               /* enum xv_conn_mode; read lock-free */
    int kind;                      /* enum xv_conn_kind */
    int ended;                     /* xv_conn_end ran */
    const char *end_reason;        /* while ending: the error open calls get */
    struct xv_conn_peer peer;      /* where the stream goes */
    struct xv_http_parser *req;    /* TX parser (NULL until mode HTTP) */
    struct xv_http_parser *resp;   /* RX parser */
    struct xv_call *calls;         /* open calls, oldest first */
    struct xv_call *tx_call;       /* call whose request is being written */
    struct xv_buf out;             /* RX bytes ready for the app (from out_off on) */
    size_t out_off;                /* bytes of out already served; out_off < out.len, or
                                      both 0 (compacted in halves: small reads of a large
                                      queue stay linear) */
    struct xv_buf hold;            /* RX head bytes held until the head is complete */
    int rx_in_head;                /* the current RX feed segment is a held head */
    int rx_head_done;              /* on_head paused the parser at a held head's end */
    int rx_head_status;            /* status of that head */
    int rx_head_has_trace;         /* that head already carries X-Xenovia-Trace-Id */
    int rx_stamp;                  /* that head gets our trace line */
    char rx_stamp_id[XV_TRACE_ID_LEN + 1]; /* ... with this id ("" when the upstream sent
                                      its own; the call may already be recorded when
                                      the message has no body) */
    char rx_stamp_session[37];     /* session id line to add ("" none) */
    struct xv_buf resp_hold;       /* a whole response held for the response stage */
    struct xv_buf resp_body;       /* ... its decoded body (for redaction) */
    int resp_holding;              /* the current response goes to resp_hold */
    int resp_end_pending;          /* it ended during the current feed */
    char pre[16];                  /* first TX bytes while the mode is undecided */
    size_t pre_len;
    struct xv_buf tx_hold;         /* accepted request bytes not yet sent (head, or head+body) */
    size_t tx_head_len;            /* bytes of tx_hold that are the request head */
    int tx_in_head;                /* the current TX feed starts a request head */
    int tx_head_done;              /* on_head paused the request parser */
    int tx_holding;                /* the current request's body is held too */
    int tx_req_done;               /* on_end of the request ran during this feed */
    int tx_upgrade;                /* the request being written asks for an Upgrade */
    struct xv_inject_state inject; /* for the request being held */
    struct xv_buf tx_out;          /* plain sockets: accepted request bytes the transport
                                      would not take yet (flushed first by every write,
                                      by reads and by the readiness hooks) */
    const char *tx_feed_p;         /* bytes being fed to the request parser (for a head */
    size_t tx_feed_n;              /* ... that fails to parse), n = 0 outside a feed */
    int tx_busy;                   /* a writer has c->mu released around a real write */
    atomic_int tx_counted;         /* tx_out is non-empty and counted in g_tx_pending */
    atomic_int io_calls;           /* app calls running on the stream (TLS hooks) */
    _Atomic uintptr_t io_owner;    /* thread that made the last such call */
    struct xv_buf tx_owed;         /* the app's last bytes of a write that queued: taken
                                      but not yet reported written (see tx_owe) */
    atomic_int tx_owing;           /* tx_owed is non-empty (read lock-free by the hooks) */
    size_t tx_ahead;               /* bytes the request parser saw that were not written
                                      yet (a short write of an unheld body): the app's
                                      next write starts with them */
    int answer_ready;              /* front call has a deferred synthetic answer */
    int rx_nostamp;                /* the head being read is handed over unheld (the app's
                                      read deadline came first) */
    int rx_err_pending;            /* a read error waits behind released bytes */
    int rx_err_errno;              /* ... its errno */
    uint64_t rx_skipped;           /* body bytes handed over unparsed (conn.c body_pass) */
    _Atomic uint64_t lean_left;    /* body bytes a lean read may count off without mu
                                      (xv_conn_lean_*, conn.c); 0: closed */
    _Atomic uint64_t lean_used;    /* bytes lean reads took, not yet off the parser */
    int dead;                      /* answered synthetically: no more traffic */
    int synth_eof;                 /* after the queued synthetic bytes: end of stream */
    int wake_byte;                 /* TLS carrier: hand one dummy byte to the next read */
    int wire_fd;                   /* socket carrying this stream, -1 unknown */
    int hint_fd;                   /* socket the stream most likely uses (memory BIO,
                                      custom BIO: the thread's last TLS socket), -1 */
    atomic_int peer_known;         /* peer port learned: hooks stop looking (lock-free read) */
    atomic_int out_counted;        /* out is non-empty and counted in the held total */
    void (*notify)(void *ud, int wire_fd); /* make the transport readable (answer queued) */
    void *notify_ud;
    struct xv_conn *reg_prev, *reg_next; /* registry of live connections */
};

/* Shared inside conn/ (conn.c owns them). */
extern struct xv_conn_config xv_conn_cfg;
extern const struct xv_http_callbacks xv_conn_resp_cb;
struct xv_call *xv_conn_front_call(struct xv_conn *c);
/* A zeroed call (reuses the last freed one); NULL on OOM. Free with
 * xv_conn_call_free. */
struct xv_call *xv_conn_call_alloc(void);
/* getpid(), cached (reset by xv_conn_atfork_child). */
int xv_conn_pid(void);
void xv_conn_call_free(struct xv_call *call);
void xv_conn_pop_call(struct xv_conn *c, const char *error);
void xv_conn_to_pass(struct xv_conn *c, const char *why);
/* Keep a process-wide count of connections with a flag set in step with
 * that flag (caller holds the connection's lock). */
void xv_conn_count_flag(atomic_int *flag, atomic_int *total, int now);
/* The registry of live connections (conn.c): walk it from head between
 * lock and unlock. */
void xv_conn_reg_lock(void);
void xv_conn_reg_unlock(void);
struct xv_conn *xv_conn_reg_head(void);
/* stream.c: connections whose send queue holds bytes (reset in a fork child). */
extern atomic_int xv_conn_tx_pending_n;
/* Keep the process-wide count of connections holding bytes for the app in
 * step with c->out (caller holds c->mu). */
void xv_conn_out_track(struct xv_conn *c);
/* Same for tx_out (the process-wide count of connections with queued writes). */
void xv_conn_tx_track(struct xv_conn *c);
/* Hand a deferred synthetic answer to the app once the calls before it are
 * answered (caller holds c->mu; the bytes go to c->out). */
void xv_conn_answer_deliver(struct xv_conn *c);

/* Append the header lines in h[0..n) to dst, except those whose name is in
 * `drop` (NULL-terminated list of lower-case "name:" prefixes). */
int xv_conn_head_copy_except(struct xv_buf *dst, const char *h, size_t n,
                             const char *const *drop);

/* The app's write (or SSL_write) call and its readiness wait, as tx.c and
 * txq.c drive them. */
struct xv_conn_io {
    xv_conn_write_fn wr;
    xv_conn_wait_fn wait;
    void *ctx;
};
/* txq.c: write all of p[0..n), waiting (bounded by write_timeout_ms).
 * 0, or the failing wr result. */
long xv_conn_txq_write_all(struct xv_conn *c, const struct xv_conn_io *io, const char *p, size_t n);
/* txq.c: send p[0..n) after whatever is queued, never waiting; what the
 * transport does not take is queued. 0, or the failing wr result. */
long xv_conn_txq_send(struct xv_conn *c, const struct xv_conn_io *io, const char *p, size_t n);
/* txq.c: write queued bytes; 0 when drained, -1 would block, or the error. */
long xv_conn_txq_drain(struct xv_conn *c, const struct xv_conn_io *io);
/* txq.c: a write that took `accepted` bytes of buf left bytes queued:
 * the count to report to the app (short by its own queued bytes). */
long xv_conn_txq_owe(struct xv_conn *c, const char *buf, long accepted);
/* txq.c: a write while the app owes a retry. *handled = 1 and the count to
 * report when buf retries the owed bytes; *handled = 0 when it is new. */
long xv_conn_txq_owed_write(struct xv_conn *c, const struct xv_conn_io *io, const char *buf,
                            size_t len, int *handled);

/* tx.c: request callbacks, mode decision. */
extern const struct xv_http_callbacks xv_conn_req_cb;
int xv_conn_decide_mode(struct xv_conn *c, const unsigned char *p, size_t n);
/* Queue a complete synthetic response for the app (fed through the
 * response parser so the call is recorded like any other). */
void xv_conn_answer(struct xv_conn *c, const char *resp, size_t n);

/* policy.c: SPEC §5 request stage. */
enum { XV_CONN_POLICY_SEND = 0, XV_CONN_POLICY_BLOCK = 1, XV_CONN_POLICY_REDACT = 2,
       XV_CONN_POLICY_ERROR = 3 };
int xv_conn_policy_request_eval(struct xv_conn *c, struct xv_call *call);
/* Without a configured policy the stages are not called at all (their code
 * stays off an API call's pages, preload/hot_functions.txt). */
static inline int xv_conn_policy_request(struct xv_conn *c, struct xv_call *call)
{
    return xv_conn_cfg.policy ? xv_conn_policy_request_eval(c, call) : XV_CONN_POLICY_SEND;
}
/* What the configured policy allows the stages to share (xv_conn_configure). */
void xv_conn_policy_configure(void);
void xv_conn_policy_note_headers(struct xv_call *call, const struct xv_http_head *h);
/* Response stage, evaluated when the response is complete; the would-be
 * decision is recorded (not applied yet: see docs/architecture.md). */
void xv_conn_policy_response_eval(struct xv_conn *c, struct xv_call *call);
static inline void xv_conn_policy_response(struct xv_conn *c, struct xv_call *call)
{
    if (xv_conn_cfg.policy)
        xv_conn_policy_response_eval(c, call);
}
/* Response stage applied to a held response: appends what the app gets
 * (the response as held, a redacted rebuild, or the 403) to c->out. */
void xv_conn_policy_release(struct xv_conn *c, struct xv_call *call);
/* What the stages keep with the call (its input document, the memo), freed. */
void xv_conn_policy_call_free(struct xv_call *call);

/* record.c: build and export the trace record of a finished call. */
void xv_conn_record_emit(struct xv_conn *c, struct xv_call *call, const char *error);
/* Tool-step child records (SPEC §6). */
void xv_conn_record_tool_results(struct xv_conn *c, struct xv_call *call,
                                 const struct xv_session_tool_step *steps, size_t n);
void xv_conn_new_trace_id(char out[XV_TRACE_ID_LEN + 1]);

/* Xenovia provider id for a host without a path (openai/provider.c's table). */
const char *xv_conn_provider(const char *host);

void xv_conn_stat_add(int which);
enum { XV_STAT_CALLS, XV_STAT_RECORDS, XV_STAT_STAMPED, XV_STAT_PASS };

/* cassette.c: record and replay (SPEC §8.1). At release: 1 when the call
 * was answered from the cassette (or with its no-match 404), 0 to send it
 * (recorded when the cassette records). Then the response's head, body and
 * end for a recorded call; free with the call. */
int xv_conn_cassette_release(struct xv_conn *c, struct xv_call *call);
void xv_conn_cassette_head(struct xv_call *call, const struct xv_http_head *h);
void xv_conn_cassette_body(struct xv_call *call, const char *p, size_t n);
void xv_conn_cassette_raw(struct xv_call *call, const char *p, size_t n);
void xv_conn_cassette_end(struct xv_call *call, const char *error);
void xv_conn_cassette_free(struct xv_conn_cas *k);

/* Under c->mu: close the lean-read credit and count the lean reads' bytes
 * off the response parser (stream.c; before anything reads or feeds it). */
void xv_conn_lean_settle_slow(struct xv_conn *c);
static inline void xv_conn_lean_settle(struct xv_conn *c)
{
    if (atomic_load_explicit(&c->lean_left, memory_order_relaxed) ||
        atomic_load_explicit(&c->lean_used, memory_order_relaxed))
        xv_conn_lean_settle_slow(c);
}

#endif
