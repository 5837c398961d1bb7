/*
 * fault.c — fault injection for the test-only libxenovia-fault.so (CMake
 * XV_FAULT=ON; never part of libxenovia.so).
 *
 * That library is linked from the very same objects as libxenovia.so. The
 * agent's own system calls reach libc two ways, and faults are injected on
 * both:
 *   - names the agent hooks (read, write, connect, send, recv, poll) only
 *     through the real-function table (common/xv_real.h): common/real.c
 *     hands the resolved table to xv_real_fault_install below, which swaps
 *     those entries for wrappers that fail only while the calling thread
 *     holds the agent's re-entrancy guard (xv_guard_active: the exporter,
 *     init, the policy and zlib loaders — the agent's own I/O). The hooks'
 *     pass-through of the application's calls runs without the guard and is
 *     never touched;
 *   - everything else (allocations, open, pread, fstat, flock, ftruncate)
 *     with -Wl,--wrap, which rewrites only references made by the agent's
 *     objects, so the application's own malloc/open are never touched.
 *
 *   XV_FAULT=KIND:N[:ERRNO]   make the Nth call of KIND in this process fail
 *     KIND: alloc (malloc, calloc, realloc, strdup, strndup: NULL, ENOMEM),
 *           open, read, write, pread, fstat, flock, ftruncate, connect,
 *           send (send, sendmsg), recv, poll (-1 with ERRNO; default EIO,
 *           EINTR for flock)
 *     ERRNO: EIO, EINTR, EAGAIN, ENOMEM, ENOSPC, EACCES
 *   XV_FAULT_HIT=PATH         created (with "KIND:N") when the fault fires,
 *                             so a driver knows when N passed the last call
 *
 * Invariants: exactly one call fails per process (the Nth of KIND,
 * counted over all threads); nothing here allocates or calls a wrapped
 * function. Thread safety: counters are atomics; the configuration is
 * parsed once (idempotent, so a race parses it twice to the same values).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_real.h"

enum { K_ALLOC, K_OPEN, K_READ, K_WRITE, K_PREAD, K_FSTAT, K_FLOCK, K_FTRUNCATE, K_CONNECT,
       K_SEND, K_RECV, K_POLL, K_MAX };
static const char *const g_kinds[K_MAX] = { "alloc", "open", "read", "write", "pread", "fstat",
                                            "flock", "ftruncate", "connect", "send", "recv",
                                            "poll" };

static struct {
    atomic_int parsed;          /* configuration read from XV_FAULT */
    int kind;                   /* which kind fails (-1: none) */
    long n;                     /* ... at its Nth call */
    int err;                    /* errno it fails with */
    atomic_long count[K_MAX];   /* calls seen per kind */
} g;

static void parse(void)
{
    g.kind = -1;
    const char *v = getenv("XV_FAULT");
    if (!v)
        return;
    for (int k = 0; k < K_MAX; k++) {
        size_t l = strlen(g_kinds[k]);
        if (strncmp(v, g_kinds[k], l) == 0 && v[l] == ':') {
            char *end;
            long n = strtol(v + l + 1, &end, 10);
            if (n <= 0)
                return;
            g.kind = k;
            g.n = n;
            g.err = k == K_ALLOC ? ENOMEM : k == K_FLOCK ? EINTR : EIO;
            if (*end == ':') {
                static const struct { const char *name; int e; } errs[] = {
                    { "EIO", EIO }, { "EINTR", EINTR }, { "EAGAIN", EAGAIN },
                    { "ENOMEM", ENOMEM }, { "ENOSPC", ENOSPC }, { "EACCES", EACCES },
                };
                for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
                    if (!strcmp(end + 1, errs[i].name))
                        g.err = errs[i].e;
            }
            return;
        }
    }
}

/* Does this call of `kind` fail? Sets errno when it does. */
static int fire(int kind)
{
    if (!atomic_load_explicit(&g.parsed, memory_order_acquire)) {
        parse();
        atomic_store_explicit(&g.parsed, 1, memory_order_release);
    }
    long nth = atomic_fetch_add_explicit(&g.count[kind], 1, memory_order_relaxed) + 1;
    if (kind != g.kind || nth != g.n)
        return 0;
    const char *hit = getenv("XV_FAULT_HIT");
    if (hit) {
        /* raw syscalls: nothing wrapped, nothing hooked */
        long fd = syscall(SYS_openat, AT_FDCWD, hit, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            syscall(SYS_write, fd, g_kinds[kind], strlen(g_kinds[kind]));
            syscall(SYS_close, fd);
        }
    }
    errno = g.err;
    return 1;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_open(const char *path, int flags, ...);
ssize_t __real_read(int fd, void *p, size_t n);
ssize_t __real_write(int fd, const void *p, size_t n);
ssize_t __real_pread(int fd, void *p, size_t n, off_t off);
int __real_fstat(int fd, struct stat *st);
int __real_flock(int fd, int op);
int __real_ftruncate(int fd, off_t len);
int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
ssize_t __real_send(int fd, const void *p, size_t n, int flags);
ssize_t __real_recv(int fd, void *p, size_t n, int flags);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);

void *__wrap_malloc(size_t n) { return fire(K_ALLOC) ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { return fire(K_ALLOC) ? NULL : __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { return fire(K_ALLOC) ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fire(K_ALLOC) ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fire(K_ALLOC) ? NULL : __real_strndup(s, n); }

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return fire(K_OPEN) ? -1 : __real_open(path, flags, mode);
}

ssize_t __wrap_read(int fd, void *p, size_t n) { return fire(K_READ) ? -1 : __real_read(fd, p, n); }
ssize_t __wrap_write(int fd, const void *p, size_t n)
{
    return fire(K_WRITE) ? -1 : __real_write(fd, p, n);
}
ssize_t __wrap_pread(int fd, void *p, size_t n, off_t off)
{
    return fire(K_PREAD) ? -1 : __real_pread(fd, p, n, off);
}
int __wrap_fstat(int fd, struct stat *st) { return fire(K_FSTAT) ? -1 : __real_fstat(fd, st); }
int __wrap_flock(int fd, int op) { return fire(K_FLOCK) ? -1 : __real_flock(fd, op); }
int __wrap_ftruncate(int fd, off_t len) { return fire(K_FTRUNCATE) ? -1 : __real_ftruncate(fd, len); }
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return fire(K_CONNECT) ? -1 : __real_connect(fd, sa, len);
}
ssize_t __wrap_send(int fd, const void *p, size_t n, int flags)
{
    return fire(K_SEND) ? -1 : __real_send(fd, p, n, flags);
}
ssize_t __wrap_recv(int fd, void *p, size_t n, int flags)
{
    return fire(K_RECV) ? -1 : __real_recv(fd, p, n, flags);
}
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return fire(K_POLL) ? -1 : __real_poll(fds, n, timeout);
}

/* ---- hooked names: through the real-function table -------------------- */

/* The table's real entries, saved when common/real.c installs us. */
static struct xv_real_table g_sys;

/* Only the agent's own calls (guard held) count and fail. */
static int own_fire(int kind)
{
    return xv_guard_active() && fire(kind);
}

static ssize_t t_read(int fd, void *p, size_t n)
{
    return own_fire(K_READ) ? -1 : g_sys.read(fd, p, n);
}
static ssize_t t_write(int fd, const void *p, size_t n)
{
    return own_fire(K_WRITE) ? -1 : g_sys.write(fd, p, n);
}
static int t_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return own_fire(K_CONNECT) ? -1 : g_sys.connect(fd, sa, len);
}
static ssize_t t_send(int fd, const void *p, size_t n, int flags)
{
    return own_fire(K_SEND) ? -1 : g_sys.send(fd, p, n, flags);
}
static ssize_t t_sendmsg(int fd, const struct msghdr *m, int flags)
{
    return own_fire(K_SEND) ? -1 : g_sys.sendmsg(fd, m, flags);
}
static ssize_t t_recv(int fd, void *p, size_t n, int flags)
{
    return own_fire(K_RECV) ? -1 : g_sys.recv(fd, p, n, flags);
}
static int t_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return own_fire(K_POLL) ? -1 : g_sys.poll(fds, n, timeout);
}

/* Called once by xv_real_init (common/real.c) after resolution. */
void xv_real_fault_install(struct xv_real_table *t)
{
    g_sys = *t;
    t->read = t_read;
    t->write = t_write;
    t->connect = t_connect;
    t->send = t_send;
    t->sendmsg = t_sendmsg;
    t->recv = t_recv;
    t->poll = t_poll;
}

/* XV_FAULT_COUNTS=PATH: at exit, "kind count" per line — how many calls of
 * each kind this process made (the driver sizes its N ranges from it). */
__attribute__((destructor)) static void dump_counts(void)
{
    const char *path = getenv("XV_FAULT_COUNTS");
    if (!path)
        return;
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    for (int k = 0; k < K_MAX; k++) {
        char line[64], num[24];
        long c = atomic_load(&g.count[k]);
        int i = 0;
        do
            num[i++] = (char)('0' + c % 10);
        while ((c /= 10) > 0 && i < 20);
        size_t o = strlen(g_kinds[k]);
        memcpy(line, g_kinds[k], o);
        line[o++] = ' ';
        while (i > 0)
            line[o++] = num[--i];
        line[o++] = '\n';
        syscall(SYS_write, fd, line, o);
    }
    syscall(SYS_close, fd);
}
