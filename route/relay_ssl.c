/*
 * relay_ssl.c — the relay's own OpenSSL functions whose names the agent
 * hooks (SSL_write_ex, SSL_read_ex, SSL_get_error, SSL_shutdown, SSL_free,
 * SSL_ctrl; common/hooked.def), reached through pointers.
 *
 * The relay's TLS (to the gateway, and the program-side TLS it terminates)
 * runs on the libssl this object was linked with, bound first by
 * RTLD_DEEPBIND — never the program's OpenSSL (Node's compiled-in one) and
 * never the agent's hooks. Calling these names directly would work for the
 * same reason, but the one-way-down rule is that no module library names a
 * hooked function (ctest hooks_nm_u), so they are looked up by name in that
 * very libssl (the object that defines SSL_new for us, found with dladdr).
 * The relay's libc calls go through the agent's real-function table
 * (xv_route_host_api.real).
 *
 * Thread safety: filled once by start() before any relay thread exists;
 * read-only after.
 */
#include <dlfcn.h>

#include "route_int.h"

struct xv_route_ssl_fns xv_route_ssl;

int xv_route_ssl_init(void)
{
    if (xv_route_ssl.free)
        return 0;
    Dl_info di;
    if (!dladdr((void *)&SSL_new, &di) || !di.dli_fname)
        return -1;
    void *h = dlopen(di.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (!h)
        return -1;
    struct xv_route_ssl_fns f;
    *(void **)&f.write_ex = dlsym(h, "SSL_write_ex");
    *(void **)&f.read_ex = dlsym(h, "SSL_read_ex");
    *(void **)&f.get_error = dlsym(h, "SSL_get_error");
    *(void **)&f.shutdown = dlsym(h, "SSL_shutdown");
    *(void **)&f.ctrl = dlsym(h, "SSL_ctrl");
    *(void **)&f.free = dlsym(h, "SSL_free");
    dlclose(h); /* NOLOAD took a reference; libssl stays loaded (we link it) */
    if (!f.write_ex || !f.read_ex || !f.get_error || !f.shutdown || !f.ctrl || !f.free)
        return -1;
    xv_route_ssl = f;
    return 0;
}
