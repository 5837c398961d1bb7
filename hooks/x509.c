/*
 * x509.c — X509_verify_cert hook, for rerouting (route/, SPEC §8).
 *
 * A rerouted program's TLS is terminated by the agent's relay with a
 * certificate minted in-process for the host the program asked for. When
 * the program's libssl verifies the peer's chain it calls libcrypto's
 * X509_verify_cert across libraries (FACTS.md), so this hook sees it: the
 * relay vouches for exactly the certificates it minted (full DER
 * comparison) and the context is marked verified; every other certificate
 * — all of them when no route is configured — goes to the real function.
 *
 * Thread safety: the real function is resolved once (common/real.c).
 */
#include "xv_hooks.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <stdatomic.h>

#include "xv_patch.h"
#include "xv_route.h"

typedef struct x509_store_ctx_st X509_STORE_CTX;
typedef int (*verify_fn)(X509_STORE_CTX *);

XV_HOOK int X509_verify_cert(X509_STORE_CTX *ctx);

/* dl_iterate_phdr callback: the path of a loaded object named libcrypto.so*. */
static int find_crypto(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    char *out = ud;
    const char *name = info->dlpi_name;
    if (name && strstr(name, "/libcrypto.so") && strlen(name) < 512) {
        memcpy(out, name, strlen(name) + 1);
        return 1;
    }
    return 0;
}

/* The real function: common/'s lookup (patch/'s trampoline, RTLD_NEXT, the
 * loaded libssl/libcrypto, a program's own exported OpenSSL), never ours. */
static verify_fn real_verify(void)
{
    return (verify_fn)xv_real_ssl(XV_X509_verify_cert);
}

/* A libcrypto name in the OpenSSL that owns the contexts this hook sees:
 * the program's compiled-in one when it was patched (Node exports it), else
 * the loaded libcrypto (found as real_verify found it). */
static void *owner_sym(const char *name)
{
    static void *_Atomic handle; /* the loaded libcrypto, or RTLD_DEFAULT */
    void *h = atomic_load_explicit(&handle, memory_order_acquire);
    if (!h) {
        if (xv_patch_real(XV_SSL_X509_verify_cert)) {
            h = RTLD_DEFAULT;
        } else {
            char path[512] = "";
            void *d = dl_iterate_phdr(find_crypto, path) ? dlopen(path, RTLD_NOLOAD | RTLD_LAZY)
                                                         : NULL;
            if (!d)
                d = dlopen("libcrypto.so.3", RTLD_NOLOAD | RTLD_LAZY);
            /* kept: NOLOAD took a reference on a library that stays loaded */
            h = d ? d : RTLD_DEFAULT;
        }
        atomic_store_explicit(&handle, h, memory_order_release);
    }
    return dlsym(h, name);
}

XV_HOOK int X509_verify_cert(X509_STORE_CTX *ctx)
{
    if (ctx && xv_route_config() && xv_route_vouch(ctx, owner_sym))
        return 1;
    verify_fn f = real_verify();
    /* unreachable in practice: whoever calls this name has loaded it */
    return f ? f(ctx) : -1;
}

/* Hidden alias for patch/: `&X509_verify_cert` would resolve to the
 * program's own (patched) function where the program exports one. */
extern __typeof__(X509_verify_cert) xv_x509_self_verify
    __attribute__((alias("X509_verify_cert"), visibility("hidden")));

XV_START_FN void *xv_x509_hook_addr(void)
{
    return (void *)xv_x509_self_verify;
}
