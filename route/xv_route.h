/*
 * route — rerouting (SPEC §8, issue 12): inspected calls to a host go to a
 * gateway URL instead (a Xenovia runtime, Azure, a corporate proxy), while
 * the program still believes it talks to the host it asked for.
 *
 * How (docs/reroute.md has the whole design): getaddrinfo answers a routed
 * name with a sentinel loopback address (127.88.0.<rule>, no DNS needed);
 * connect() to a sentinel, or to an address:port a rule names, is sent to
 * the agent's in-process relay on 127.0.0.1 instead. The relay terminates
 * the program's TLS with a certificate minted in-process for the original
 * name (which the X509_verify_cert hook vouches for, that certificate
 * only), opens its own TLS to the gateway (verified against the system CAs
 * or XENOVIA_CA_FILE, never unverified), rewrites each request head (Host,
 * path prefix, and the credential when XENOVIA_API_KEY is set) and copies
 * responses back untouched. The program's own SSL object is inspected by
 * the ordinary hooks, so sessions, policies, stamping and records work on
 * rerouted calls as on any other.
 *
 * This header has two parts: the configuration and request-head rewriting
 * (plain C, in the agent: xv_route static library), and the relay, which
 * lives in a private shared object (libxenovia-route.so, linked with
 * libssl) loaded only when a route is configured.
 *
 * Thread safety: the configuration is written once at start, read-only
 * after; the relay has its own locks.
 */
#ifndef XV_ROUTE_H
#define XV_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "xv_common.h"
#include "xv_http.h"
#include "xv_real.h"

#define XV_ROUTE_MAX 16

/* One rule: calls for match_host[:match_port] go to url. */
struct xv_route_rule {
    char match_host[256]; /* lower case; "*.example.com" wildcard allowed */
    int match_port;       /* 0: any port */
    int tls;              /* gateway scheme is https */
    char host[256];       /* gateway host (name or address, no brackets) */
    int port;             /* gateway port (default 443/80 filled in) */
    char prefix[512];     /* gateway path prefix without trailing '/' ("" none) */
    char url[1024];       /* the URL as configured (for records and logs) */
    int local;            /* replay without network (SPEC §8.1): the relay terminates the
                             program's TLS and connects nowhere; the agent answers every
                             call from the cassette (host/port/prefix unused) */
};

struct xv_route_config {
    struct xv_route_rule rule[XV_ROUTE_MAX];
    int n;
    char api_key[1024];   /* XENOVIA_API_KEY ("" unset): replaces the app's credential */
    char ca_file[1024];   /* XENOVIA_CA_FILE ("" unset: system CAs) */
};

/* Build the configuration from the variables' values (NULL when unset):
 * XENOVIA_ROUTE, XENOVIA_PROXY_ID, XENOVIA_RUNTIME_URL, XENOVIA_API_KEY,
 * XENOVIA_CA_FILE. XENOVIA_PROXY_ID without XENOVIA_ROUTE routes
 * api.openai.com to <runtime>/a/<id>/openai (runtime default
 * https://runtime.xenovia.io). Returns 0, or XV_E_CONFIG with one line in
 * err naming the variable (out then has no rule: the program runs
 * unrouted). */
int xv_route_parse(const char *route, const char *proxy_id, const char *runtime_url,
                   const char *api_key, const char *ca_file, struct xv_route_config *out,
                   char *err, size_t errlen);

/* Add a local (replay-only) rule for host:port (port 0: any); `what` names
 * it in logs (e.g. "cassette DIR"). Returns 0 or XV_E_LIMIT (table full). */
int xv_route_add_local(struct xv_route_config *cfg, const char *host, int port, const char *what);

/* The rule for host:port (port 0 matches any rule port), or NULL. */
const struct xv_route_rule *xv_route_match(const struct xv_route_config *cfg, const char *host,
                                           int port);

/* 1 when rule r's host pattern covers host (any port). */
int xv_route_rule_covers(const struct xv_route_rule *r, const char *host);

/* The process's configuration (set once by the preload; NULL or n == 0:
 * nothing is routed). */
void xv_route_configure(const struct xv_route_config *cfg);
const struct xv_route_config *xv_route_config(void);

/* Rewrite one request head for the gateway into out: the request-target
 * gets the rule's prefix (an absolute-form target loses its scheme and
 * authority), Host becomes the gateway's, and with an api_key the
 * Authorization header (and an `api-key` header, Azure-style) carry it —
 * an Authorization header is added when the app sent none. Every other
 * line is kept byte for byte. Returns 0 or XV_E_LIMIT/XV_E_NOMEM. */
int xv_route_rewrite_head(const struct xv_route_rule *r, const char *api_key,
                          const struct xv_http_head *h, struct xv_buf *out);

/*
 * A request stream rewriter: feed the program's plaintext as it comes;
 * what goes to the gateway is appended to `out` (heads rewritten, bodies as
 * they are). A malformed request returns XV_E_PARSE and nothing of it is
 * forwarded (the relay then ends the connection: passing it unchanged
 * would hand the app's credential to the gateway).
 */
struct xv_route_rewriter;
struct xv_route_rewriter *xv_route_rewriter_new(const struct xv_route_rule *r,
                                                const char *api_key);
void xv_route_rewriter_free(struct xv_route_rewriter *w);
int xv_route_rewriter_feed(struct xv_route_rewriter *w, const char *p, size_t n,
                           struct xv_buf *out);
/* The bytes consumed but not forwarded yet (an incomplete request head,
 * with any stray line ends before it): *p is borrowed until the next feed. */
size_t xv_route_rewriter_held(const struct xv_route_rewriter *w, const char **p);

/* 1 once the request stream was found malformed. */
int xv_route_rewriter_passthrough(const struct xv_route_rewriter *w);

/* ------------------------------------------------------------------ relay */

/* The sentinel loopback address getaddrinfo gives a routed name: rule i ->
 * 127.88.0.(i+1). xv_route_sentinel_rule: the rule of an address, or -1. */
void xv_route_sentinel(int rule, char out[16]);
int xv_route_sentinel_rule(const struct sockaddr *sa, socklen_t len);

/* Send a connecting socket to the relay instead of `sa` for rule r (the
 * program asked for orig_host:orig_port). Starts the relay on first use.
 * Returns what the real connect returned (0, or -1 with errno: EINPROGRESS
 * on a non-blocking socket), like connect(2). When the relay cannot be
 * started, fails with ECONNREFUSED and logs once: a routed call never goes
 * to the original host. */
typedef int (*xv_route_connect_fn)(int, const struct sockaddr *, socklen_t);
int xv_route_connect(int fd, const struct xv_route_rule *r, const char *orig_host,
                     int orig_port, xv_route_connect_fn real_connect);

/* The X509_verify_cert hook's question: is the leaf certificate of ctx
 * (an X509_STORE_CTX * of the program's OpenSSL) one the relay minted for a
 * program's TLS? `fn` resolves a libcrypto name in the OpenSSL that owns
 * ctx (a dynamic libcrypto, or the one compiled into the program): the
 * certificate is read and the context marked verified with that OpenSSL's
 * own functions, never with the relay's. Returns 1 (context marked
 * verified) or 0. Never loads anything. */
int xv_route_vouch(void *ctx, void *(*fn)(const char *name));

/* After fork, in the child: the relay's threads are gone; it starts again
 * on the next routed connect. */
void xv_route_atfork_child(void);

/* What libxenovia hands the relay object (it shares no globals with it). */
struct xv_cassette_req;
/* Replay at the wire (local rules): the complete response for a request the
 * program sent on a replay-only connection — the recording as it came
 * (keep-alive kept), or the cassette's no-match answer. 0 or < 0. */
typedef int (*xv_route_replay_fn)(const struct xv_cassette_req *rq, struct xv_buf *answer,
                                  struct xv_buf *timing);

struct xv_route_host_api {
    void (*guard_enter)(void);       /* the agent's per-thread re-entrancy guard */
    void (*guard_leave)(void);
    const struct xv_route_config *cfg;
    int log_level;
    xv_route_replay_fn replay;       /* NULL: local connections answer nothing */
    /* Frees a buffer `replay` filled. The relay is loaded with RTLD_DEEPBIND,
     * so its malloc is libc's while the agent's is the host's (which a
     * program may replace): memory crosses between them only as copies. */
    void (*buf_free)(struct xv_buf *b);
    int replay_recorded_timing;      /* XENOVIA_REPLAY_TIMING=recorded: stream events are
                                        handed over with their recorded delays */
    /* The agent's real libc functions (common/xv_real.h): the relay's only
     * way to the system calls the agent hooks. */
    const struct xv_real_table *real;
};

/* Set by the preload (before any connect) when a cassette replays. */
void xv_route_set_replay(xv_route_replay_fn fn, int recorded_timing);

/* The relay object's entry points (libxenovia-route.so exports only
 * xv_route_module, which returns this table). */
struct xv_route_module {
    int abi;                         /* XV_ROUTE_ABI */
    /* Start the listener and its thread; fills the loopback address and
     * port programs are sent to. 0 or < 0. */
    int (*start)(const struct xv_route_host_api *api, int *port);
    /* The next connection from local port `local_port` is for rule `rule`. */
    void (*expect)(int local_port, int rule, const char *orig_host, int orig_port);
    /* 1 when der[0..len) is the DER of a certificate the relay minted. */
    int (*minted_der)(const unsigned char *der, size_t len);
    void (*atfork_child)(void);
};
#define XV_ROUTE_ABI 6
const struct xv_route_module *xv_route_module(void);

#endif
