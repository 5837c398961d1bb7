/*
 * zlib_shim.c — inside libxenovia.so, the nine zlib functions the agent
 * uses (gzip/deflate response bodies in http/inflate.c, OTLP request
 * compression in exporter/otlp_http.c) as forwarders into the system's
 * libz.so.1, which is dlopen'ed at the first of them.
 *
 * Why: most processes under the agent never see a compressed body, and
 * mapping libz at start cost each of them ~0.03 ms of CPU (issue 9); it is
 * loaded from the system (not linked in statically) because it parses
 * untrusted bodies and must get the distribution's security updates.
 *
 * These definitions carry zlib's own names (not xv_…) so http/ and
 * exporter/ stay unchanged and still link the real zlib in their unit
 * tests; they are local to libxenovia.so (exports.map exports none of
 * them), so the host's namespace never sees them, and a host that uses
 * zlib itself keeps calling its own.
 *
 * Failure: when libz.so.1 cannot be loaded every function reports an error
 * (Z_VERSION_ERROR from the init functions, Z_STREAM_ERROR otherwise, a
 * zero bound): the body is then recorded as not decodable, OTLP sends
 * uncompressed or fails as it would on any deflate error.
 *
 * Thread safety: loading runs once (pthread_once); the pointers are written
 * before it returns and only read afterwards.
 */
#include <zlib.h>

#include "xv_common.h"
#include "xv_shim.h"

/* X(return type, name, (parameters), (arguments), value on failure) */
#define XV_ZLIB_API(X)                                                                      \
    X(int, inflateInit2_, (z_streamp s, int w, const char *v, int n), (s, w, v, n),           \
      Z_VERSION_ERROR)                                                                      \
    X(int, inflate, (z_streamp s, int f), (s, f), Z_STREAM_ERROR)                            \
    X(int, inflateEnd, (z_streamp s), (s), Z_STREAM_ERROR)                                    \
    X(int, inflateReset, (z_streamp s), (s), Z_STREAM_ERROR)                                  \
    X(int, inflateReset2, (z_streamp s, int w), (s, w), Z_STREAM_ERROR)                       \
    X(int, deflateInit2_,                                                                   \
      (z_streamp s, int l, int m, int w, int ml, int st, const char *v, int n),               \
      (s, l, m, w, ml, st, v, n), Z_VERSION_ERROR)                                          \
    X(int, deflate, (z_streamp s, int f), (s, f), Z_STREAM_ERROR)                            \
    X(int, deflateEnd, (z_streamp s), (s), Z_STREAM_ERROR)                                    \
    X(uLong, deflateBound, (z_streamp s, uLong n), (s, n), 0)

/* The real functions; written once by load(). */
static struct {
    pthread_once_t once;
    int ok; /* every function below was found */
    XV_ZLIB_API(XV_SHIM_PTR)
} g = { .once = PTHREAD_ONCE_INIT };

static void load(void)
{
    xv_guard_enter(); /* the loader's own file I/O is never inspected */
    /* RTLD_DEEPBIND: libz's calls to its own functions must stay inside it.
     * Node's official builds export their own (Chromium) zlib from the
     * executable, which comes first in the global scope: without it, libz's
     * inflateInit2_ called node's inflateReset2 on a differently laid out
     * state and corrupted node's heap (a crash at exit, 1 run in 6 of the
     * node gzip case). */
    void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL | XV_RTLD_DEEPBIND);
    int ok = h != NULL;
    XV_ZLIB_API(XV_SHIM_SYM)
    xv_guard_leave();
    g.ok = ok;
    if (!ok)
        xv_log(XV_LOG_WARN, "libz.so.1 not loadable: compressed bodies are not decoded");
}

XV_ZLIB_API(XV_SHIM_FWD)
