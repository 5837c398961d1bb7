/*
 * xv_shim.h — the three pieces of an on-demand library shim inside
 * libxenovia.so (zlib_shim.c, cjson_shim.c): a list macro
 * X(type, name, (params), (args), value on failure) names the functions;
 * these expand it into the pointer table, the dlsym loop and the
 * forwarders. A shim defines `static struct { pthread_once_t once; int ok;
 * XV_SHIM_PTR... } g` and `static void load(void)` that dlopens the library
 * into `h`, sets `ok` with XV_SHIM_SYM and stores it in g.ok.
 */
#ifndef XV_SHIM_H
#define XV_SHIM_H

#include <dlfcn.h>
#include <pthread.h>

/* A member of the table: the real function. */
#define XV_SHIM_PTR(type, name, params, args, fail) type(*name) params;

/* In load(): look `name` up in handle h; ok becomes 0 when one is missing. */
#define XV_SHIM_SYM(type, name, params, args, fail)                                         \
    if (ok && !(*(void **)&g.name = dlsym(h, #name)))                                       \
        ok = 0;

/* The forwarder with the library's own name: loads on first use, returns
 * `fail` when the library could not be loaded. */
#define XV_SHIM_FWD(type, name, params, args, fail)                                         \
    type name params                                                                        \
    {                                                                                       \
        pthread_once(&g.once, load);                                                        \
        return g.ok ? g.name args : (fail);                                                 \
    }

#endif
