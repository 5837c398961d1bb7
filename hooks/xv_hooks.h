/*
 * hooks — the real-function table and the shared state of the hook
 * families (net.c: sockets, dns.c: getaddrinfo, tls.c: OpenSSL).
 *
 * Inside the library a hooked function is only ever called through
 * xv_real (SQLite's syscall table). libc entries are resolved at the first
 * hook call or in the constructor, whichever comes first; OpenSSL entries
 * lazily, because libssl may be dlopen()ed long after start (CPython's
 * _ssl), and there dlsym(RTLD_NEXT, ...) can return NULL although our
 * wrappers are the ones being called (FACTS.md): then the real function is
 * found through dlopen(<loaded libssl>, RTLD_NOLOAD). A lookup never
 * returns one of our own hooks.
 *
 * Thread safety: table entries are written once (atomically) and read
 * lock-free.
 */
#ifndef XV_HOOKS_H
#define XV_HOOKS_H

#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "xv_conn.h"

#define XV_HOOK __attribute__((visibility("default")))

/* OpenSSL types stay opaque: the library never includes OpenSSL headers
 * and never links libssl (a process without TLS must not load it). */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

struct xv_real_table {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*close_range)(unsigned, unsigned, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
};

/* libc part, resolved by xv_real_init (idempotent, safe before init). */
extern struct xv_real_table xv_real;
void xv_real_init(void);

/* OpenSSL functions, looked up lazily by name; NULL when libssl is not
 * (yet) loaded. `self` is our own hook of that name (never returned). */
void *xv_real_ssl(int idx);
enum xv_ssl_fn {
    XV_SSL_write, XV_SSL_write_ex, XV_SSL_read, XV_SSL_read_ex, XV_SSL_peek,
    XV_SSL_peek_ex, XV_SSL_pending, XV_SSL_has_pending, XV_SSL_get_error,
    XV_SSL_shutdown, XV_SSL_free, XV_SSL_ctrl, XV_SSL_set_alpn_protos,
    XV_SSL_CTX_set_alpn_protos, XV_SSL_get_fd, XV_SSL_get_SSL_CTX, XV_SSL_get_shutdown,
    XV_SSL_is_init_finished, XV_SSL_do_handshake,
    XV_SSL_X509_verify_cert, /* libcrypto's; patched in programs with OpenSSL compiled in (x509.c) */
    XV_SSL_FN_COUNT
};

/* Is the agent active on this thread right now? 0 before init finished,
 * while the agent does its own I/O (xv_guard), in inert processes. */
int xv_hooks_active(void);

/* preload/ calls this once init is done (active=1) or decided inert (0). */
void xv_hooks_set_ready(int active);

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
/* The real poll(), for the agent's own waits (never the hook: those waits
 * must not flush, slice or overwrite the app's record). */
struct pollfd;
int xv_poll_real(struct pollfd *fds, unsigned long n, int timeout);
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

/* tls.c: the addresses of our own SSL hooks, indexed by enum xv_ssl_fn
 * (NULL for names we only look up); patch/ points patched entries here. */
void xv_tls_hook_table(void *out[XV_SSL_FN_COUNT]);
/* x509.c: the address of our own X509_verify_cert hook (hidden alias). */
void *xv_x509_hook_addr(void);
void xv_net_atfork_child(void);
void xv_dns_atfork_child(void);

#endif
