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
 * Thread safety: the real function is resolved once (atomic publish).
 */
#include "xv_hooks.h"

#include <dlfcn.h>
#include <stdatomic.h>

#include "xv_route.h"

typedef struct x509_store_ctx_st X509_STORE_CTX;
typedef int (*verify_fn)(X509_STORE_CTX *);

XV_HOOK int X509_verify_cert(X509_STORE_CTX *ctx);

static verify_fn real_verify(void)
{
    static _Atomic(verify_fn) real;
    verify_fn f = atomic_load_explicit(&real, memory_order_acquire);
    if (f)
        return f;
    f = (verify_fn)dlsym(RTLD_NEXT, "X509_verify_cert");
    if (!f || f == X509_verify_cert) {
        /* libcrypto arrived by dlopen after us (CPython's _ssl) */
        f = NULL;
        void *h = dlopen("libcrypto.so.3", RTLD_NOLOAD | RTLD_LAZY);
        if (h) {
            f = (verify_fn)dlsym(h, "X509_verify_cert");
            if (f == X509_verify_cert)
                f = NULL;
            dlclose(h);
        }
    }
    if (f)
        atomic_store_explicit(&real, f, memory_order_release);
    return f;
}

XV_HOOK int X509_verify_cert(X509_STORE_CTX *ctx)
{
    if (ctx && xv_route_config() && xv_route_vouch(ctx))
        return 1;
    verify_fn f = real_verify();
    return f ? f(ctx) : -1;
}
