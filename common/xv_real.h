/*
 * xv_real.h — the one way down to the system: the table of the real libc
 * functions behind the agent's hooks, and the lazy lookup of the real
 * OpenSSL functions. Generated from hooked.def (one member per hooked libc
 * name, one index per OpenSSL name).
 *
 * The rule: inside the library a hooked name is only ever called through
 * this table. Every module below hooks/ (exporter, conn, session, cassette,
 * route's agent side, preload) calls `XV_REAL(write)(...)`, never `write`
 * (which inside libxenovia.so binds to the agent's own hook). ctest's
 * hooks_nm_u check fails when a module library's `nm -u` lists a hooked name.
 *
 * Invariant: no entry ever points at our own hooks, and no entry is ever
 * NULL: until its first call an entry is a stub of this object's that
 * resolves it (from the loader's tables, xv_nextsym.h: a process pays the
 * lookups of the names it uses, not all 29 at every start) and forwards; a
 * name libc lacks is a stub failing with ENOSYS (the exit functions fall
 * back to exit_group). So the table is safe to call at any time, before
 * init, from any thread.
 *
 * Thread safety: entries are _Atomic, published with release stores; a race
 * between two threads resolving writes the same value twice. The load-time
 * constructor (common/real.c) takes the loader snapshot before any thread
 * exists; after it, resolving an entry takes no lock and allocates nothing,
 * so a hook first reached from a signal handler is safe. Where the snapshot
 * cannot answer (this object dlopen()ed), the constructor resolves every
 * entry with dlsym at once, as before.
 *
 * Fault injection (CMake XV_FAULT, tests/fault/): after resolution the
 * table is handed to xv_real_fault_install when the test library defines it,
 * which swaps entries for wrappers that fail the agent's own calls.
 */
#ifndef XV_REAL_H
#define XV_REAL_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct xv_real_table {
#define XV_LIBC(name, ret, params, args) ret (*_Atomic name) params;
#define XV_LIBC_VA(name) int (*_Atomic name)(int, int, ...);
#define XV_EXIT(name) void (*_Atomic name)(int) __attribute__((noreturn));
#include "hooked.def"
};

/* The table (resolved on first use or by xv_real_init). */
extern struct xv_real_table xv_real;

/* An entry, loaded atomically, to call: XV_REAL(write)(fd, p, n). GCC
 * reads an _Atomic function pointer that is a call's callee with a plain
 * load, which a thread resolving the entry meanwhile (its release store)
 * races with in the C model: TSan reported it when 16 threads made their
 * first connect at once. */
#define XV_REAL(name) (atomic_load_explicit(&xv_real.name, memory_order_acquire))

/* Resolve every libc entry now (idempotent, cheap after the first call;
 * the constructor calls it so no hook ever waits on dlsym). */
void xv_real_init(void);

/* Resolve every entry now (xv_real_init does when its snapshot cannot
 * answer, and before fault injection; tests). */
void xv_real_resolve_all(void);

/* OpenSSL functions, by index (the XV_SSL lines of hooked.def, in order). */
enum xv_ssl_fn {
#define XV_SSL(name, hooked, essential) XV_##name,
#include "hooked.def"
    XV_SSL_FN_COUNT,
    XV_SSL_X509_verify_cert = XV_X509_verify_cert, /* older spelling */
};

/* The real OpenSSL function of index idx, looked up lazily by name (libssl
 * may be dlopen()ed long after start, CPython's _ssl, where
 * dlsym(RTLD_NEXT, ...) returns NULL: then through the loaded libssl).
 * NULL when no OpenSSL providing it is loaded (yet). Never our own hook. */
void *xv_real_ssl(int idx);
/* Its name ("SSL_write"); NULL past the end. */
const char *xv_real_ssl_name(int idx);

/* Where OpenSSL compiled into the program has its real entry points
 * (patch/'s trampolines): consulted first by xv_real_ssl. Set by preload/
 * before hooks turn on; NULL (the default) when nothing is patched. */
void xv_real_ssl_source(void *(*fn)(int idx));

/* Is p inside the object that holds this table (our own hooks)? */
int xv_real_is_self(const void *p);

#ifdef XV_FAULT
/* Defined only by the fault-injection test library (weak reference). */
void xv_real_fault_install(struct xv_real_table *t) __attribute__((weak));
#endif

#endif
