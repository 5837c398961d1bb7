/*
 * policy_shim.c — inside libxenovia.so, the functions of policy_api.h as
 * forwarders into libxenovia-policy.so, the private object holding the Rego
 * engine, which is dlopen'ed at the first of them (xv_policy_load, called
 * by once-init only when XENOVIA_POLICY is set).
 *
 * The object is looked for next to libxenovia.so itself (the directory of
 * the path it was loaded from: `xenovia run` finds libxenovia.so through
 * XENOVIA_LIB or its build/install layout, and the object sits beside it).
 * When it cannot be loaded, xv_policy_load fails with the reason in err, so
 * once-init logs one line and the policy is "broken": inspected calls are
 * answered 403 (policy_error), or pass with XENOVIA_FAIL_MODE=open. The
 * other forwarders are only reachable with a loaded policy; without the
 * object they return their "failed" value (policy_api.h) and do nothing.
 *
 * Thread safety: loading runs once (pthread_once); the table pointer is
 * written before pthread_once returns and only read afterwards.
 */
#include "policy_api.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "xv_common.h"

/* The loaded object; written once by load(). */
static struct {
    pthread_once_t once;
    const struct xv_policy_plugin *t; /* NULL: not loaded (yet, or failed) */
    char why[PATH_MAX + 256];         /* why loading failed */
} g = { .once = PTHREAD_ONCE_INIT };

static void load(void)
{
    Dl_info di;
    char path[PATH_MAX];
    if (!dladdr((void *)&load, &di) || !di.dli_fname || !di.dli_fname[0]) {
        snprintf(g.why, sizeof g.why, "cannot find libxenovia.so's own path");
        return;
    }
    const char *slash = strrchr(di.dli_fname, '/');
    int dirlen = slash ? (int)(slash - di.dli_fname) : 1;
    const char *dir = slash ? di.dli_fname : ".";
    if (snprintf(path, sizeof path, "%.*s/%s", dirlen, dir, XV_POLICY_PLUGIN_FILE) >=
        (int)sizeof path) {
        snprintf(g.why, sizeof g.why, "path of %s too long", XV_POLICY_PLUGIN_FILE);
        return;
    }
    /* The loader's own I/O (open/read/mmap of the object and its
     * libraries) is never inspected. */
    xv_guard_enter();
    /* Not RTLD_DEEPBIND: the engine frees strings libcjson allocated, and
     * with deep binding its free() would be libc's while libcjson's malloc
     * is the host's (a program that replaces malloc would crash). Its own
     * libraries (pcre2, gmp) are not ones programs export. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const struct xv_policy_plugin *t = NULL;
    if (!h) {
        const char *e = dlerror();
        snprintf(g.why, sizeof g.why, "cannot load the policy engine: %s", e ? e : path);
    } else {
        t = dlsym(h, XV_POLICY_PLUGIN_SYMBOL);
        if (!t || t->version != XV_POLICY_API_VERSION || t->size != sizeof *t) {
            snprintf(g.why, sizeof g.why, "%s is not the engine of this libxenovia.so", path);
            dlclose(h);
            t = NULL;
        }
    }
    xv_guard_leave();
    g.t = t;
}

static const struct xv_policy_plugin *table(void)
{
    pthread_once(&g.once, load);
    return g.t;
}

int xv_policy_load(const char *path, const char *data_path, int version, struct xv_policy **out,
                   char *err, size_t errlen)
{
    const struct xv_policy_plugin *t = table();
    if (t)
        return t->xv_policy_load(path, data_path, version, out, err, errlen);
    if (out)
        *out = NULL;
    if (err && errlen)
        snprintf(err, errlen, "%s", g.why);
    return XV_E_STATE;
}

#define XV_PAPI_R(type, name, params, args, fail)                                           \
    type name params                                                                        \
    {                                                                                       \
        const struct xv_policy_plugin *t = table();                                         \
        return t ? t->name args : (fail);                                                   \
    }
#define XV_PAPI_V(name, params, args)                                                       \
    void name params                                                                        \
    {                                                                                       \
        const struct xv_policy_plugin *t = table();                                         \
        if (t)                                                                              \
            t->name args;                                                                   \
    }
XV_POLICY_API(XV_PAPI_R, XV_PAPI_V)
#undef XV_PAPI_R
#undef XV_PAPI_V
