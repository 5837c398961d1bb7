/*
 * real.c — resolution of the real functions behind the hooks (see
 * xv_hooks.h). Invariant: no entry ever points into this library.
 * Thread safety: entries are published with atomic stores; a race between
 * two threads resolving the same entry writes the same value twice.
 */
#include "xv_hooks.h"

#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "xv_common.h"
#include "xv_patch.h"

_Static_assert(XV_PATCH_NAMES == XV_SSL_FN_COUNT, "patch/ and hooks/ name the same functions");

struct xv_real_table xv_real;

/* The address range of this library's loaded segments, to recognise our
 * own hooks. Found once with dl_iterate_phdr (dladdr per lookup was a
 * visible share of a short process's start-up). */
static struct {
    uintptr_t lo, hi; /* [lo, hi) covers every PT_LOAD of this object */
    int known;
} g_self;

static int self_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    uintptr_t me = (uintptr_t)ud, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (me >= lo && me < hi) {
        g_self.lo = lo;
        g_self.hi = hi;
        return 1;
    }
    return 0;
}

static int is_self(void *p)
{
    if (!p)
        return 0;
    if (!g_self.known) {
        dl_iterate_phdr(self_cb, (void *)(uintptr_t)&self_cb);
        g_self.known = 1;
    }
    return (uintptr_t)p >= g_self.lo && (uintptr_t)p < g_self.hi;
}

static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    return is_self(p) ? NULL : p;
}

void xv_real_init(void)
{
    /* Written once; later calls are cheap no-ops. */
    static atomic_int done;
    if (atomic_load_explicit(&done, memory_order_acquire))
        return;
#define R(name) __atomic_store_n((void **)&xv_real.name, next_sym(#name), __ATOMIC_RELEASE)
    R(connect);
    R(getaddrinfo);
    R(write);
    R(writev);
    R(send);
    R(sendto);
    R(sendmsg);
    R(read);
    R(readv);
    R(recv);
    R(recvfrom);
    R(recvmsg);
    R(close);
    R(dup);
    R(dup2);
    R(dup3);
    R(close_range);
    R(fcntl);
    R(fcntl64);
#undef R
    atomic_store_explicit(&done, 1, memory_order_release);
}

static const char *const g_ssl_names[XV_SSL_FN_COUNT] = {
    "SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_peek",
    "SSL_peek_ex", "SSL_pending", "SSL_has_pending", "SSL_get_error",
    "SSL_shutdown", "SSL_free", "SSL_ctrl", "SSL_set_alpn_protos",
    "SSL_CTX_set_alpn_protos", "SSL_get_fd", "SSL_get_SSL_CTX", "SSL_get_shutdown",
    "SSL_is_init_finished", "SSL_do_handshake", "X509_verify_cert",
};

/* Resolved OpenSSL entries; NULL until found. */
static void *_Atomic g_ssl[XV_SSL_FN_COUNT];

/* dl_iterate_phdr callback: find a loaded object whose name has "libssl". */
struct find_ssl {
    char path[512];
};

static int find_ssl_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    struct find_ssl *f = ud;
    const char *name = info->dlpi_name;
    if (name && strstr(name, "/libssl.so")) {
        size_t n = strlen(name);
        if (n < sizeof f->path) {
            memcpy(f->path, name, n + 1);
            return 1;
        }
    }
    return 0;
}

void *xv_real_ssl(int idx)
{
    void *p = atomic_load_explicit(&g_ssl[idx], memory_order_acquire);
    if (p)
        return p;
    const char *name = g_ssl_names[idx];
    /* OpenSSL compiled into the program: its trampolines (patch/) */
    p = xv_patch_real(idx);
    if (p) {
        atomic_store_explicit(&g_ssl[idx], p, memory_order_release);
        return p;
    }
    p = next_sym(name);
    if (!p) {
        /* libssl arrived by dlopen after us: RTLD_NEXT may not see it. */
        struct find_ssl f = { { 0 } };
        const char *cands[] = { NULL, "libssl.so.3", "libssl.so" };
        if (dl_iterate_phdr(find_ssl_cb, &f))
            cands[0] = f.path;
        for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !p; i++) {
            if (!cands[i])
                continue;
            void *h = dlopen(cands[i], RTLD_NOLOAD | RTLD_LAZY);
            if (!h)
                continue;
            p = dlsym(h, name);
            if (is_self(p))
                p = NULL;
            dlclose(h); /* NOLOAD took a reference; the library stays loaded */
        }
    }
    if (p)
        atomic_store_explicit(&g_ssl[idx], p, memory_order_release);
    return p;
}
