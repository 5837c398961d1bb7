/*
 * real.c — the real-function table (see xv_real.h), generated from
 * hooked.def. Invariant: no entry ever points at our own hooks (when this
 * file is linked into libxenovia.so or a test program that defines them):
 * an entry is this file's stub until its first call, then the real
 * function; no entry is ever NULL.
 * Thread safety: a load-time constructor, before any thread exists, takes
 * the loader snapshot the stubs resolve from (xv_nextsym.h), or resolves
 * every entry with dlsym where the snapshot cannot answer. Entries, libc's
 * and OpenSSL's, are published with atomic stores, and a race between two
 * threads resolving the same one writes the same value twice.
 */
#include "xv_real.h"
#include "xv_nextsym.h"
#include "xv_place.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- our own address range ------------------------------------------- */

/* Is p in this object (our own hooks)? Its range comes from
 * xv_real_init's snapshot (xv_nextsym.h), one dl_iterate_phdr at start
 * (dladdr per lookup was a visible share of a short process's start-up). */
XV_START_FN int xv_real_is_self(const void *p)
{
    unsigned long lo, hi;
    if (!p)
        return 0;
    xv_real_init();
    return xv_nextsym_self_range(&lo, &hi) && (uintptr_t)p >= lo && (uintptr_t)p < hi;
}

XV_START_FN static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    return xv_real_is_self(p) ? NULL : p;
}

/* ---- libc: stubs before resolution, ENOSYS when libc lacks a name ----- */

/* One entry of the table, published with a release store: from the
 * loader's tables when the snapshot answers (no lock, no allocation: safe
 * in a signal handler), else from dlsym. The caller's errno is kept: the
 * first call of a hook is often one that succeeds without touching it. */
XV_START_FN static __attribute__((noinline)) void resolve_one(const char *name, void **slot,
                                                              void *fallback)
{
    int saved = errno;
    void *p = NULL;
    if (xv_nextsym(name, &p) != XV_NEXTSYM_FOUND) /* never us: only objects after us */
        p = next_sym(name);
    __atomic_store_n(slot, p ? p : fallback, __ATOMIC_RELEASE);
    errno = saved;
}

/* nosys_<name>: the entry when libc has no such function.
 * lazy_<name>: the entry before its first call — resolve it, then forward. */
#define XV_LIBC(name, ret, params, args)                                        \
    static ret nosys_##name params                                              \
    {                                                                           \
        errno = ENOSYS;                                                         \
        return -1;                                                              \
    }                                                                           \
    static ret lazy_##name params                                               \
    {                                                                           \
        xv_real_init();                                                         \
        if (xv_real.name == lazy_##name)                                        \
            resolve_one(#name, (void **)&xv_real.name, (void *)nosys_##name);   \
        return XV_REAL(name) args;                                               \
    }
/* fcntl's third argument is an int or a pointer; glibc's own fcntl reads
 * it as a pointer-sized value too. */
#define XV_LIBC_VA(name)                                                        \
    static int nosys_##name(int fd, int cmd, ...)                               \
    {                                                                           \
        errno = ENOSYS;                                                         \
        return -1;                                                              \
    }                                                                           \
    static int lazy_##name(int fd, int cmd, ...)                                \
    {                                                                           \
        va_list ap;                                                             \
        va_start(ap, cmd);                                                      \
        void *arg = va_arg(ap, void *);                                         \
        va_end(ap);                                                             \
        xv_real_init();                                                         \
        if (xv_real.name == lazy_##name)                                        \
            resolve_one(#name, (void **)&xv_real.name, (void *)nosys_##name);   \
        return XV_REAL(name)(fd, cmd, arg);                                      \
    }
#define XV_EXIT(name)                                                           \
    __attribute__((noreturn)) static void nosys_##name(int status)              \
    {                                                                           \
        syscall(SYS_exit_group, status);                                        \
        __builtin_unreachable();                                                \
    }                                                                           \
    __attribute__((noreturn)) static void lazy_##name(int status)               \
    {                                                                           \
        xv_real_init();                                                         \
        if (xv_real.name == lazy_##name)                                        \
            resolve_one(#name, (void **)&xv_real.name, (void *)nosys_##name);   \
        XV_REAL(name)(status);                                                   \
    }
#include "hooked.def"

struct xv_real_table xv_real = {
#define XV_LIBC(name, ret, params, args) .name = lazy_##name,
#define XV_LIBC_VA(name) .name = lazy_##name,
#define XV_EXIT(name) .name = lazy_##name,
#include "hooked.def"
};

/* Every entry now: when the snapshot cannot answer (this
 * object was dlopen()ed, or an object after it has no GNU hash table), so
 * that no entry is left for a signal handler to resolve; and for fault
 * injection, whose wrappers replace resolved entries. */
XV_START_FN void xv_real_resolve_all(void)
{
#define R(name)                                                                 \
    if (xv_real.name == lazy_##name)                                            \
        resolve_one(#name, (void **)&xv_real.name, (void *)nosys_##name);
#define XV_LIBC(name, ret, params, args) R(name)
#define XV_LIBC_VA(name) R(name)
#define XV_EXIT(name) R(name)
#include "hooked.def"
#undef R
}

XV_START_FN void xv_real_init(void)
{
    /* Written once; later calls are cheap no-ops. */
    static atomic_int done XV_START_DATA;
    if (atomic_load_explicit(&done, memory_order_acquire))
        return;
    xv_nextsym_init((const void *)&xv_real_init);
    atomic_store_explicit(&done, 1, memory_order_release);
    if (!xv_nextsym_usable())
        xv_real_resolve_all();
#ifdef XV_FAULT
    if (xv_real_fault_install) {
        xv_real_resolve_all();
        xv_real_fault_install(&xv_real);
    }
#endif
}

/* The snapshot at load, before main and before the host (or a test) can
 * start a thread (the preload's constructor calls xv_real_init again, a
 * no-op). */
__attribute__((constructor(101))) static void real_ctor(void)
{
    xv_real_init();
}

/* ---- OpenSSL: lazy, by name -------------------------------------------- */

static const char *const g_ssl_names[XV_SSL_FN_COUNT] = {
#define XV_SSL(name, hooked, essential) #name,
#include "hooked.def"
};

/* Resolved OpenSSL entries; NULL until found. */
static void *_Atomic g_ssl[XV_SSL_FN_COUNT] XV_CALL_DATA;
/* patch/'s trampolines (OpenSSL compiled into the program), or NULL. */
static void *(*_Atomic g_ssl_source)(int idx) XV_START_DATA;

const char *xv_real_ssl_name(int idx)
{
    return idx >= 0 && idx < XV_SSL_FN_COUNT ? g_ssl_names[idx] : NULL;
}

XV_START_FN void xv_real_ssl_source(void *(*fn)(int idx))
{
    atomic_store_explicit(&g_ssl_source, fn, memory_order_release);
}

/* dl_iterate_phdr callback: find a loaded object whose path has `needle`. */
struct find_lib {
    const char *needle; /* "/libssl.so" */
    char path[512];
};

static int find_lib_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    struct find_lib *f = ud;
    const char *name = info->dlpi_name;
    if (name && strstr(name, f->needle)) {
        size_t n = strlen(name);
        if (n < sizeof f->path) {
            memcpy(f->path, name, n + 1);
            return 1;
        }
    }
    return 0;
}

/* `name` in a loaded library whose path has needle ("/libssl.so"), else in
 * the library called soname. libssl may arrive by dlopen after us, where
 * RTLD_NEXT does not see it (FACTS.md); dlopen(<it>, RTLD_NOLOAD) does. */
static void *loaded_sym(const char *needle, const char *soname, const char *name)
{
    struct find_lib f = { needle, { 0 } };
    const char *cands[] = { NULL, soname };
    void *p = NULL;
    if (dl_iterate_phdr(find_lib_cb, &f))
        cands[0] = f.path;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !p; i++) {
        if (!cands[i])
            continue;
        void *h = dlopen(cands[i], RTLD_NOLOAD | RTLD_LAZY);
        if (!h)
            continue;
        p = dlsym(h, name);
        if (xv_real_is_self(p))
            p = NULL;
        dlclose(h); /* NOLOAD took a reference; the library stays loaded */
    }
    return p;
}

void *xv_real_ssl(int idx)
{
    if (idx < 0 || idx >= XV_SSL_FN_COUNT)
        return NULL;
    void *p = atomic_load_explicit(&g_ssl[idx], memory_order_acquire);
    if (p)
        return p;
    void *(*src)(int) = atomic_load_explicit(&g_ssl_source, memory_order_acquire);
    p = src ? src(idx) : NULL;
    if (!p)
        p = next_sym(g_ssl_names[idx]);
    if (!p)
        p = loaded_sym("/libssl.so", "libssl.so.3", g_ssl_names[idx]);
    if (!p) /* X509_verify_cert where only libcrypto is loaded */
        p = loaded_sym("/libcrypto.so", "libcrypto.so.3", g_ssl_names[idx]);
    if (!p && idx == XV_X509_verify_cert) {
        /* a program with OpenSSL compiled in that exports it (Node) whose
         * entry was not patched: its own definition is the real one. Only
         * for this name, as x509.c always did: an SSL_* entry found so
         * before patching would later lead back into our hook. */
        p = dlsym(RTLD_DEFAULT, g_ssl_names[idx]);
        if (xv_real_is_self(p))
            p = NULL;
    }
    if (p)
        atomic_store_explicit(&g_ssl[idx], p, memory_order_release);
    return p;
}
