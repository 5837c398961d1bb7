/*
 * hooks — the hook families (net.c: sockets, dns.c: getaddrinfo, tls.c:
 * OpenSSL, x509.c: certificate verification of rerouted calls, poll.c:
 * readiness, proc.c: _exit) and their shared state. Built as the static
 * library xv_hooks (linked whole into libxenovia.so; its unit test,
 * tests/unit/test_hooks.c, links it into a plain program).
 *
 * One way down: a hook reaches the real function only through common/'s
 * table (xv_real.h: `XV_REAL(write)(...)`, `xv_real_ssl(XV_SSL_write)`),
 * generated with the export map from common/hooked.def, the one list of
 * hooked names. No module below hooks/ ever calls a hooked name (ctest
 * hooks_nm_u checks every module library with `nm -u`), so the agent's own
 * I/O never passes through its hooks. hooks/ never calls up into preload/:
 * what preload/ must do at a hook (the exit flush) it registers here.
 *
 * Dependencies: hooks -> {conn, route, patch} -> ... -> common.
 * Thread safety: see each family; the registered callbacks are set once
 * before the hooks turn on and read lock-free.
 */
#ifndef XV_HOOKS_H
#define XV_HOOKS_H

#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "xv_conn.h"
#include "xv_real.h"

#define XV_HOOK __attribute__((visibility("default")))

/* OpenSSL types stay opaque: the library never includes OpenSSL headers
 * and never links libssl (a process without TLS must not load it). */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

/* The real functions (xv_real, xv_real_ssl, enum xv_ssl_fn) are common/'s
 * table, xv_real.h: hooks/ and every module below reach libc through it. */

/* Is the agent active on this thread right now? 0 before init finished,
 * while the agent does its own I/O (xv_guard), in inert processes. */
int xv_hooks_active(void);

/* preload/ calls this once init is done (active=1) or decided inert (0). */
void xv_hooks_set_ready(int active);

/* proc.c: what _exit/_Exit run before the real exit (preload/ registers
 * its bounded exporter flush; the callback checks for a vfork child and
 * keeps errno). NULL, the default, runs nothing. Set before the hooks turn
 * on; may be called from a signal handler's _exit, so the callback must
 * touch no lock when nothing is pending. */
void xv_hooks_on_exit(void (*fn)(void));

/* net.c: run fn once, in the first hook that goes on into the agent's own
 * work (the first xv_hooks_active() that answers 1), before that hook takes
 * any of the agent's locks: preload/ registers its fork handlers there, so
 * a process that never reaches the agent pays nothing for them (issue 9).
 * Other threads arriving meanwhile wait for fn to finish; the thread running
 * it (a signal handler on it) does not. fn keeps errno. */
void xv_hooks_on_first_use(void (*fn)(void));

/* net.c: run fn once, in the first application connect() to an IPv4/IPv6
 * address after this call (preload/ defers its costly coverage check there:
 * a program that never connects never pays it). fn keeps errno and runs
 * with the guard held; NULL cancels. */
void xv_hooks_on_first_connect(void (*fn)(void));

/* net.c: the connection of a socket fd (a new reference) or NULL. */
struct xv_conn *xv_net_conn_get(int fd);
/* Lock-free: 1 when any socket fd is in the table (watched or a TLS carrier). */
int xv_net_any_watched(void);
/* Peer of a socket fd if we saw its connect (0), else -1. */
int xv_net_peer(int fd, struct xv_conn_peer *out);
/* Drop every fd entry (after fork in the child nothing is dropped: fds are
 * inherited); used by tests. */

/* net.c: make a socket readable because the agent queued an answer for it
 * (shutdown(SHUT_RD)); with wake_byte, its next read yields one dummy byte
 * (memory-BIO TLS event loops need bytes before they call SSL_read). */
void xv_net_notify_fd(int fd, int wake_byte);

/* net.c: wait until fd reports `events` (poll), restarting on EINTR.
 * 0 when ready, -1 on timeout or error. */
int xv_net_wait(int fd, short events, int timeout_ms);

/* poll.c: forget the epoll registrations of a closed fd; fork child reset. */
/* 1 when a blocking read on fd (recv flags) must not wait any longer: the
 * socket's SO_RCVTIMEO, counted from start_ns, or the deadline of the
 * program's readiness wait that preceded the read (poll_deadline_ns, 0
 * none), ran out before it became readable (waits up to the earlier of
 * them); 0 otherwise (also with neither). */
int xv_net_read_deadline(int fd, int flags, uint64_t start_ns, uint64_t poll_deadline_ns);
/* Flush every send queue that can be flushed now without blocking
 * (readiness hooks): plain sockets, and SSLs this thread uses (tls.c). */
void xv_net_tx_flush_all(void);
int xv_tls_flush_all(void); /* streams it tried that still have bytes queued */
/* poll.c: the readiness wait a blocking read follows. After a wait with a
 * finite timeout reported fds readable, the calling thread remembers its
 * deadline (monotonic ns) for them: a read that completes a held head on
 * such a blocking socket waits no longer than that (the program read
 * because its poll said it would not block). xv_poll_recorded is a
 * thread-local test; take returns the deadline for fd (0 none) and forgets
 * it, so only the read that followed the wait uses it. */
int xv_poll_recorded(void);
/* The agent's own waits use the real poll(), xv_real.poll (never the
 * hook: those waits must not flush, slice or overwrite the app's record). */
uint64_t xv_poll_take_deadline(int fd);
/* At exit: keep flushing queued request bytes (reported written to the app)
 * for at most timeout_ms (returns at once when the peer takes them), as the
 * kernel would have sent them after exit. */
void xv_net_tx_drain_all(int timeout_ms);
void xv_poll_forget_fd(int fd);
void xv_poll_atfork_child(void);

/* dns.c: the name a numeric address was resolved from, if we saw it. */
int xv_dns_lookup(const char *addr, char *host, size_t cap);

/* tls.c: set while the current thread is inside an SSL_* call, so the
 * socket hooks pass the record layer's own I/O straight through and tell
 * the SSL which fd it uses (curl's own BIO hides it from SSL_get_fd). */
struct xv_tls_current {
    int active;     /* inside an SSL call */
    int fd;         /* socket the record layer used, -1 unknown */
    int in_read;    /* the innermost SSL call is a read hook's real read */
};
extern __thread struct xv_tls_current xv_tls_cur __attribute__((tls_model("initial-exec")));

/* The socket fd carrying TLS records that this thread touched last. For an
 * SSL on memory BIOs (asyncio, anyio) no socket I/O happens inside the SSL
 * call; the event loop moved the ciphertext on the same thread just before
 * (reads) or just after (writes), so this is the best hint of its peer. */
extern __thread int xv_tls_last_wire_fd __attribute__((tls_model("initial-exec")));

void xv_tls_atfork_child(void);

/* alpn.c: ALPN offers kept until SNI time and narrowed there (tls.c). */
void xv_alpn_remember(const void *key, const unsigned char *protos, unsigned len, int is_ssl);
unsigned xv_alpn_take(const void *key, unsigned char *out, int drop);
void xv_alpn_forget_ssl(const SSL *s);
int xv_alpn_narrow_host(const char *host);
unsigned xv_alpn_filter(const unsigned char *in, unsigned len, unsigned char *out, unsigned cap);
void xv_alpn_narrow_ssl(SSL *s, const unsigned char *protos, unsigned len);
void xv_alpn_atfork_child(void);

/* tls.c: the addresses of our own SSL hooks, indexed by enum xv_ssl_fn
 * (NULL for names we only look up); patch/ points patched entries here. */
void xv_tls_hook_table(void *out[XV_SSL_FN_COUNT]);
/* x509.c: the address of our own X509_verify_cert hook (hidden alias). */
void *xv_x509_hook_addr(void);
void xv_net_atfork_child(void);
void xv_dns_atfork_child(void);

#endif
