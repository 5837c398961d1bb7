/*
 * conn — the per-connection HTTP state machine that sits between a hook and
 * the real transport. One struct xv_conn follows one byte stream (a TCP
 * socket or one SSL object) in both directions:
 *
 *   TX (app -> network): bytes the transport accepted are fed to a request
 *   parser; each request head opens a struct xv_call (queued FIFO, so
 *   keep-alive and pipelining line up with responses), API calls get an
 *   openai/ interpreter.
 *
 *   RX (network -> app): xv_conn_rx() performs the real read through a
 *   callback and decides what the app gets. For a response to an inspected
 *   call the header block is held until complete, then handed over with
 *   `X-Xenovia-Trace-Id` added before its blank line; everything else is
 *   handed over zero-copy, exactly as read. When the stamped head no longer
 *   fits the app's buffer, the rest waits in an output queue that the next
 *   read (and SSL_pending) serves first.
 *
 * The first bytes a connection sends decide its fate: an HTTP/1.x request
 * line keeps it under watch; anything else (TLS records, HTTP/2 preface,
 * other protocols) makes it passthrough for good, and a passthrough
 * connection costs the hooks one flag test.
 *
 * Invariants: the app never receives a byte the upstream did not send other
 * than the stamped header line; on any internal failure the bytes pass
 * through unchanged and the call's record carries `error`.
 *
 * Thread safety: a connection has its own mutex, taken by every entry point
 * except the fast passthrough test; it is never held across a real I/O call.
 * Connections are reference counted (the fd table and SSL table each hold a
 * reference; a hook holds one while it runs).
 */
#ifndef XV_CONN_H
#define XV_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum xv_conn_kind { XV_CONN_PLAIN = 0, XV_CONN_TLS = 1 };

enum xv_conn_mode {
    XV_CONN_UNDECIDED = 0, /* no byte sent yet */
    XV_CONN_HTTP = 1,      /* HTTP/1.x: parsed in both directions */
    XV_CONN_PASS = 2,      /* not ours: every byte passes untouched */
    XV_CONN_TLSWIRE = 3,   /* plain fd carrying TLS records (its SSL is watched instead) */
};

/* Agent-wide settings the state machine needs; set once by the preload
 * before any connection exists (xv_conn_configure copies nothing: the
 * strings must stay valid for the life of the process). */
struct xv_session_store;
struct xv_session_props;
struct xv_policy;
struct xv_cassette;

struct xv_conn_config {
    const char *hosts;        /* XENOVIA_HOSTS (comma list, *.wildcards, :port) or NULL */
    size_t body_max;          /* bytes of a body kept for parsing */
    size_t capture_max;       /* bytes per captured text field */
    int capture_content;      /* 0 drops message/response text from records */
    size_t head_max;          /* largest header block parsed */
    const char *process;      /* argv[0] */
    const char *agent_id;     /* XENOVIA_AGENT_ID or NULL */
    const char *org_id;       /* XENOVIA_ORG_ID or NULL */
    int disabled_stamp;       /* 1: never add response headers (XENOVIA_STAMP=off) */
    size_t hold_max;          /* request bytes held before sending (head+body) */
    int write_timeout_ms;     /* longest a held request may wait for a writable transport */
    /* Header lines injected into every inspected request unless the app sent
     * a header of the same name: "Name: value\r\n" each, NULL-terminated
     * array (built and validated by the preload from XENOVIA_* variables). */
    const char *const *inject_lines;
    const char *session_env;  /* XENOVIA_SESSION_ID (validated) or NULL */
    int inject_session;       /* 1: inject X-Xenovia-Session-Id (sessions on) */
    struct xv_session_store *sessions; /* shared store (SPEC §4) given by the caller, or
                                  NULL: made on first use when session_max > 0 (so a
                                  process that makes no API call never builds it) */
    size_t session_max;       /* sessions of the lazily made store; 0: no store */
    const struct xv_session_props *props; /* XENOVIA_PROPERTIES (validated) or NULL */
    const char *session_path; /* XENOVIA_SESSION_PATH or NULL (for records) */
    const char *flow_id;      /* XENOVIA_FLOW_ID or NULL (for records) */
    const char *parent_trace_id; /* XENOVIA_PARENT_TRACE_ID or NULL (for records) */
    const struct xv_policy *policy; /* compiled XENOVIA_POLICY (shared), or NULL */
    int policy_broken;        /* XENOVIA_POLICY set but did not compile: fail mode applies */
    int policy_monitor;       /* XENOVIA_POLICY_MODE=monitor: record, never apply */
    int policy_fail_open;     /* XENOVIA_FAIL_MODE=open */
    uint64_t policy_timeout_ms; /* XENOVIA_POLICY_TIMEOUT_MS */
    int stream_buffer;        /* XENOVIA_STREAM_POLICY=buffer: hold streams for the response stage */
    struct xv_cassette *cassette; /* XENOVIA_CASSETTE (SPEC §8.1), or NULL */
    const char *capture;      /* how the bytes were seen, on records as `capture` (observe/:
                                 "uprobe"), or NULL (the preload: field left out) */
    int pid;                  /* records' `pid` when not this process (observe/), or 0 */
};
void xv_conn_configure(const struct xv_conn_config *cfg);
const struct xv_conn_config *xv_conn_get_config(void);

/* Where a connection goes. host: SNI, Host header or getaddrinfo name (may be
 * empty); addr: numeric peer address; port: peer port (0 when unknown). */
struct xv_conn_peer {
    char host[256];
    char addr[64];
    int port;
    /* Rerouted (SPEC §8): the rule's URL and the gateway the call really
     * goes to (static configuration strings, valid for the process), else
     * NULL/0. host/port above stay what the program asked for. */
    const char *route_url;
    const char *via_host;
    int via_port;
    int replay_local;         /* a replay-only cassette answers this connection at the wire
                                 (the relay's local mode, SPEC §8.1): its calls are replays */
};

struct xv_conn;

/* New connection with one reference. Caller owns it; drop with xv_conn_unref.
 * NULL on allocation failure (the hook then passes everything through). */
struct xv_conn *xv_conn_new(int kind, const struct xv_conn_peer *peer);
void xv_conn_ref(struct xv_conn *c);
void xv_conn_unref(struct xv_conn *c);

/* The stream ended (close, SSL_free, process exit): every call still open
 * is finished with `why` as its error and recorded. Idempotent. */
void xv_conn_end(struct xv_conn *c, const char *why);

/* Lock-free, for the hot path: 1 when every byte passes untouched. */
int xv_conn_is_pass(const struct xv_conn *c);
int xv_conn_mode(const struct xv_conn *c);

/* Fill in what was learned later (SNI, socket of an SSL, Host header). */
void xv_conn_set_host(struct xv_conn *c, const char *host);
void xv_conn_set_peer(struct xv_conn *c, const struct xv_conn_peer *peer);
void xv_conn_get_peer(struct xv_conn *c, struct xv_conn_peer *out);
/* Lock-free: 1 once the peer's port is known (nothing more to learn). */
int xv_conn_peer_known(const struct xv_conn *c);

/*
 * TX. The app hands (buf, len) to the transport. `wr` performs one real
 * write and returns > 0 bytes written, -1 when the transport would block,
 * or another value <= 0 for an error (it saves errno/SSL state in ctx).
 * `wait` blocks until the transport is writable again (0) or gives up (< 0).
 *
 * Request heads are held until complete; an inspected call's body is held
 * too (up to hold_max) so the call can be decided before a byte leaves:
 * then the request goes out (with injected headers) through `wr` (what the
 * transport does not take is queued, see below), or is answered by the
 * agent itself. Everything
 * else is one zero-copy `wr` whose result is returned as is.
 * Returns the number of the app's bytes accepted (> 0), or the last `wr`
 * result (<= 0) when none were, or XV_E_STATE when the agent already
 * answered this stream itself (the hook reports EPIPE).
 */
typedef long (*xv_conn_write_fn)(void *ctx, const char *buf, size_t len);
/* Writing a released request never waits: what a non-blocking transport
 * would not take is kept in the connection's send queue, and the next
 * write on the stream returns would-block until the queue drained. The
 * write that queued is reported short by as many of its own bytes as are
 * still queued (TLS: reported would-block until all went out), so the app
 * retries them and keeps waiting for writability, and its read timeout
 * starts when its request really left, as without the agent; the retry's
 * bytes are compared with the ones taken and reported written as the queue
 * drains (bytes that differ are a new write, after the queue).
 * The queue is flushed first by every write, by reads, by the readiness
 * hooks (xv_conn_tx_flush_all) and, bounded, at close. On TLS the queue's
 * bytes are what the real SSL write was given: every retry passes them
 * again, from the queue's start (the SSL hooks set
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, since the first attempt was made
 * from another buffer), and no other byte is written before they went out.
 * `wait` is used only when the queue cannot take the bytes (its bound). */
typedef int (*xv_conn_wait_fn)(void *ctx, int timeout_ms);
long xv_conn_tx_write(struct xv_conn *c, const char *buf, size_t len,
                      xv_conn_write_fn wr, xv_conn_wait_fn wait, void *ctx);

/* Send queue (plain sockets): 1 when any connection has queued bytes
 * (lock-free); flush every such connection with wr_fd (non-blocking, e.g.
 * send(MSG_DONTWAIT)); whether socket fd has queued bytes; flush one
 * connection (0 when empty afterwards, -1 would block, other < 0 error). */
int xv_conn_tx_pending_any(void);
/* Plain sockets are flushed with wr_fd; any other stream (TLS) is handed to
 * flush_stream(c, ud) with the ud given to xv_conn_set_notify (the SSL),
 * which decides whether it may write now (returns 1 when it tried, 0 when
 * it may not). Either may be NULL (those streams are skipped). Returns how
 * many of the streams it tried still have bytes queued. */
int xv_conn_tx_flush_all(long (*wr_fd)(int fd, const char *buf, size_t len),
                         int (*flush_stream)(struct xv_conn *c, void *ud));
/* Streams whose transport the agent may drive from outside the app's own
 * calls (TLS: an SSL written from a readiness hook). io_begin/io_end bracket
 * every app call on the stream (lock-free counter; `thread` names the
 * calling thread, which becomes the stream's owner); io_idle_for is 1 when
 * no such call runs now and `thread` made the last one. */
void xv_conn_io_begin(struct xv_conn *c, uintptr_t thread);
void xv_conn_io_end(struct xv_conn *c);
int xv_conn_io_idle_for(struct xv_conn *c, uintptr_t thread);
int xv_conn_fd_tx_pending(int fd);
/* 1 when a stream other than a plain socket (TLS) carried by socket fd has
 * queued bytes (readiness hooks: its app must be prompted to make a call). */
int xv_conn_fd_tx_stream(int fd);
/* Lock-free: 1 when this stream's send queue holds bytes, or when the app
 * still has to write again bytes the agent already took (conn/tx.c: a
 * write that queued is reported short): its writes must reach the agent. */
int xv_conn_tx_queued(struct xv_conn *c);

/* Response body bytes this connection handed to the app without parsing
 * them (the read fast path, docs/architecture.md). */
uint64_t xv_conn_rx_skipped(struct xv_conn *c);
long xv_conn_tx_flush(struct xv_conn *c, xv_conn_write_fn wr, void *ctx);
/* The program ends its side of the stream (shutdown(SHUT_WR), close) with
 * request bytes still held: they go to the send queue unchanged (the
 * connection turns passthrough, open calls are recorded with `error`), as
 * the kernel would have sent them. Returns 1 when bytes are queued. */
int xv_conn_tx_cut(struct xv_conn *c);

/* How the hooks make a transport readable when the agent queued an answer
 * the app must read (plain socket: shutdown(SHUT_RD); see hooks/). */
void xv_conn_set_notify(struct xv_conn *c, void (*fn)(void *ud, int wire_fd), void *ud);
/* The socket fd that carries this stream (learned by the hooks), -1 unknown. */
void xv_conn_set_wire_fd(struct xv_conn *c, int fd);
int xv_conn_wire_fd(struct xv_conn *c);
/* The socket a stream most likely uses when no SSL call showed it (custom
 * or memory BIO): used for readiness only, never for shutdown. */
void xv_conn_set_hint_fd(struct xv_conn *c, int fd);
/* The socket the stream uses: its wire fd, else its hint fd, else -1. */
int xv_conn_io_fd(struct xv_conn *c);

/* A TLS-carrying socket whose memory-BIO SSL got a synthetic answer: the
 * event loop (asyncio) only calls SSL_read after the socket produced bytes,
 * so its next read gets one dummy byte (set), which the hook takes. */
void xv_conn_set_wake_byte(struct xv_conn *c);
int xv_conn_take_wake_byte(struct xv_conn *c);

/* 1 when the stream's end the app now reads was made by the agent (after a
 * synthetic answer): SSL_get_error must then say SSL_ERROR_ZERO_RETURN. */
int xv_conn_synthetic_eof(struct xv_conn *c);

/*
 * RX. `rd` performs one real read into (buf, len) and returns > 0 bytes,
 * 0 at end of stream, or < 0 for would-block/error; it must save whatever
 * the caller needs to reproduce that result (errno, SSL error) in `ctx`.
 * Returns > 0 bytes placed in buf, or the last value `rd` returned (<= 0),
 * in which case the caller returns the real call's result unchanged.
 * May call `rd` several times while a header block is incomplete
 * (blocking transports block in rd as they would have anyway).
 */
typedef long (*xv_conn_read_fn)(void *ctx, char *buf, size_t len);
/* Extra results of a plain socket's `rd`: a real error (errno set; not
 * would-block), and "the app's own read deadline (SO_RCVTIMEO) passed before
 * more bytes came" — then a held head is handed over unstamped rather than
 * making the app wait longer than it asked. xv_conn_rx returns
 * XV_CONN_RX_DEFERRED when it reports an error it kept behind released bytes
 * (errno is set; the hook returns -1). */
#define XV_CONN_RD_ERROR (-2)
#define XV_CONN_RD_DEADLINE (-3)
#define XV_CONN_RX_DEFERRED (-4)
long xv_conn_rx(struct xv_conn *c, char *buf, size_t len, xv_conn_read_fn rd, void *ctx);

/* Lean reads (issue 9, bulk): while a response body nothing is taken from
 * passes (xv_conn_rx's fast path: no hold, nothing queued for the app, its
 * request not inspected, framed by Content-Length), xv_conn_rx opens a
 * credit of the body's bytes left. A read of len bytes with
 * xv_conn_lean_ok(c, len) true cannot reach the body's end: the hook may
 * make the real read itself and report what it got with
 * xv_conn_lean_done, without c's lock, without the state machine. The
 * bytes are counted off the parser at the next locked entry (xv_conn_rx,
 * peek, end). Anything that queues bytes for the app closes the credit.
 * The caller must have started its I/O call (xv_conn_io_begin) and found
 * no send queue (xv_conn_tx_queued) first. Lock-free; two reads of one
 * stream at once are the app's error, as OpenSSL's. */
int xv_conn_lean_ok(struct xv_conn *c, size_t len);
void xv_conn_lean_done(struct xv_conn *c, size_t n);

/* Like xv_conn_rx, but leaves the bytes for the next read (SSL_peek,
 * MSG_PEEK). Returns 0 bytes-ready hint via < 0 when nothing is queued and
 * the caller should use the real peek instead (no head is being held). */
long xv_conn_rx_peek(struct xv_conn *c, char *buf, size_t len, xv_conn_read_fn rd, void *ctx);

/* Readiness (for the poll/select/epoll hooks): 1 when any connection holds
 * bytes for the app (lock-free; normally 0, so the hooks stay a load); and
 * whether the stream carried by socket fd does. */
int xv_conn_held_any(void);
int xv_conn_fd_held(int fd);

/* Bytes waiting in the output queue (served before any real read). */
size_t xv_conn_rx_pending(struct xv_conn *c);

/* XENOVIA_HOSTS matching (comma list, "*." wildcards, optional ":port"):
 * 1 when host:port is listed, or when the list is NULL/empty. */
int xv_conn_host_allowed(const char *list, const char *host, int port);

/* Counters for tests and the doctor. */
struct xv_conn_stats {
    uint64_t calls;      /* inspected calls opened */
    uint64_t records;    /* records handed to the exporter */
    uint64_t stamped;    /* response heads stamped */
    uint64_t pass;       /* connections decided passthrough */
};
void xv_conn_get_stats(struct xv_conn_stats *out);

/* Process is exiting: end every live connection's open calls. */
void xv_conn_end_all(const char *why);

/* Replay at the wire (the relay's local connections; see conn/cassette.c). */
struct xv_cassette_req;
struct xv_buf;
int xv_conn_cassette_wire(const struct xv_cassette_req *rq, struct xv_buf *answer,
                          struct xv_buf *timing);

/* The process's session store (made on first use), or NULL. */
struct xv_session_store *xv_conn_sessions(void);

/* fork() handlers (registered by the preload): the child resets every lock
 * and drops the parent's open calls. */
void xv_conn_atfork_prepare(void);
void xv_conn_atfork_parent(void);
void xv_conn_atfork_child(void);

#endif
