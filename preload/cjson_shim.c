/*
 * cjson_shim.c — inside libxenovia.so, the cJSON functions the agent uses
 * as forwarders into the system's libcjson.so.1, which is dlopen'ed at the
 * first of them that needs the library: a body the agent's own reader
 * (common/jsonr.c) hands over, a tree built or printed for OTLP, a
 * cassette or policy file. Ordinary calls need none (the accessors below
 * read cJSON's public struct; session/store.c builds its reply tree in one
 * block).
 *
 * Why: a process that never makes an API call never needs cJSON, and
 * mapping libcjson at start cost every process started under the agent
 * ~0.1-0.2 ms of CPU on the 2-CPU VM (issue 9: loading, relocating and
 * faulting in a second library). With it gone `libxenovia.so` links only
 * libc (ctest perf_ldd). It is loaded from the system, not linked in, so
 * that it gets the distribution's updates and is the same object a host
 * (or the policy engine, which links it) may already have loaded.
 *
 * Not RTLD_DEEPBIND (unlike libz): the agent frees with free() strings
 * libcjson printed, and libcjson allocates with the malloc in the global
 * scope; with deep binding its malloc would be libc's while the agent's
 * free is the host's (a program that replaces malloc would crash).
 *
 * These definitions carry cJSON's own names so the modules stay unchanged
 * and still link the real libcjson in their unit tests; they are local to
 * libxenovia.so (exports.map exports none of them), so the host's
 * namespace never sees them and a host that uses cJSON keeps its own.
 *
 * Failure: when libcjson.so.1 cannot be loaded (one line says so), every
 * constructor and parser returns NULL, predicates and adders false, sizes
 * 0, cJSON_Delete and cJSON_free do nothing: callers already treat NULL as
 * out of memory. The agent's own reader and writer (common/jsonr.c,
 * jsonw.c) need none of it, so what fails is only what goes through
 * cJSON itself (JSON the arena reader hands over, records built as trees,
 * cassette and OTLP files).
 *
 * Thread safety: loading runs once (pthread_once); the pointers are written
 * before it returns and only read afterwards.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "xv_common.h"
#include "xv_shim.h"

/* X(return type, name, (parameters), (arguments), value on failure):
 * the functions of libcjson the base library calls that allocate, free,
 * parse or print (the accessors are answered below without the library;
 * the policy engine in libxenovia-policy.so links libcjson itself). */
#define XV_CJSON_API(X)                                                                     \
    X(cJSON *, cJSON_AddArrayToObject, (cJSON *const o, const char *const n), (o, n), NULL)  \
    X(cJSON *, cJSON_AddBoolToObject, (cJSON *const o, const char *const n, const cJSON_bool b), \
      (o, n, b), NULL)                                                                      \
    X(cJSON_bool, cJSON_AddItemToArray, (cJSON * a, cJSON *i), (a, i), 0)                     \
    X(cJSON_bool, cJSON_AddItemToObject, (cJSON * o, const char *s, cJSON *i), (o, s, i), 0)  \
    X(cJSON *, cJSON_AddNullToObject, (cJSON *const o, const char *const n), (o, n), NULL)   \
    X(cJSON *, cJSON_AddNumberToObject, (cJSON *const o, const char *const n, const double d), \
      (o, n, d), NULL)                                                                      \
    X(cJSON *, cJSON_AddObjectToObject, (cJSON *const o, const char *const n), (o, n), NULL) \
    X(cJSON *, cJSON_AddStringToObject,                                                     \
      (cJSON *const o, const char *const n, const char *const s), (o, n, s), NULL)          \
    X(cJSON *, cJSON_CreateArray, (void), (), NULL)                                         \
    X(cJSON *, cJSON_CreateBool, (cJSON_bool b), (b), NULL)                                 \
    X(cJSON *, cJSON_CreateNumber, (double d), (d), NULL)                                   \
    X(cJSON *, cJSON_CreateObject, (void), (), NULL)                                        \
    X(cJSON *, cJSON_CreateString, (const char *s), (s), NULL)                              \
    X(cJSON *, cJSON_DetachItemFromObjectCaseSensitive, (cJSON * o, const char *s), (o, s), \
      NULL)                                                                                 \
    X(cJSON *, cJSON_DetachItemViaPointer, (cJSON * p, cJSON *const i), (p, i), NULL)        \
    X(cJSON *, cJSON_Duplicate, (const cJSON *i, cJSON_bool r), (i, r), NULL)               \
    X(cJSON *, cJSON_Parse, (const char *v), (v), NULL)                                     \
    X(cJSON *, cJSON_ParseWithLength, (const char *v, size_t n), (v, n), NULL)              \
    X(cJSON *, cJSON_ParseWithLengthOpts,                                                   \
      (const char *v, size_t n, const char **end, cJSON_bool z), (v, n, end, z), NULL)      \
    X(char *, cJSON_Print, (const cJSON *i), (i), NULL)                                     \
    X(char *, cJSON_PrintUnformatted, (const cJSON *i), (i), NULL)                          \
    X(double, cJSON_SetNumberHelper, (cJSON * o, double d), (o, d), d)

/* The ones that return nothing (their forwarders are written out below). */
#define XV_CJSON_VOID_API(X)                                                                \
    X(void, cJSON_Delete, (cJSON * i), (i), 0)                                               \
    X(void, cJSON_DeleteItemFromObjectCaseSensitive, (cJSON * o, const char *s), (o, s), 0)  \
    X(void, cJSON_free, (void *p), (p), 0)

/* The real functions; written once by load(). */
static struct {
    pthread_once_t once;
    int ok; /* every function below was found */
    XV_CJSON_API(XV_SHIM_PTR)
    XV_CJSON_VOID_API(XV_SHIM_PTR)
} g = { .once = PTHREAD_ONCE_INIT };

static void load(void)
{
    int saved = errno;
    xv_guard_enter(); /* the loader's own file I/O is never inspected */
    void *h = dlopen("libcjson.so.1", RTLD_NOW | RTLD_LOCAL);
    int ok = h != NULL;
    XV_CJSON_API(XV_SHIM_SYM)
    XV_CJSON_VOID_API(XV_SHIM_SYM)
    xv_guard_leave();
    g.ok = ok;
    if (!ok)
        xv_log(XV_LOG_ERROR, "libcjson.so.1 not loadable: JSON that needs cJSON is treated as "
               "unreadable and records built with it fail");
    errno = saved;
}

XV_CJSON_API(XV_SHIM_FWD)

/* Deleting or freeing nothing is cJSON's no-op: done here without loading
 * the library (the exporter releases every record's empty tree slot).
 * `guard` is the condition under which the real function has work to do. */
#define XV_CJSON_FWD_IF(name, params, args, guard)                                          \
    void name params                                                                        \
    {                                                                                       \
        if (!(guard))                                                                       \
            return;                                                                         \
        pthread_once(&g.once, load);                                                        \
        if (g.ok)                                                                           \
            g.name args;                                                                    \
    }
XV_CJSON_FWD_IF(cJSON_Delete, (cJSON * i), (i), i)
XV_CJSON_FWD_IF(cJSON_DeleteItemFromObjectCaseSensitive, (cJSON * o, const char *s), (o, s),
                o && s)
XV_CJSON_FWD_IF(cJSON_free, (void *p), (p), p)
#undef XV_CJSON_FWD_IF

/* The accessors the hot path calls on every body (the arena reader builds
 * cJSON's own tree types, common/jsonr.c) only read the public struct of
 * cJSON.h: they are answered here without loading the library, so its
 * dlopen stays out of the first API call (it cost that call ~0.25 ms),
 * with cJSON's own semantics (a type's low byte, the child list, a
 * case-sensitive name compare that stops at a child without a name). */
static int type_is(const cJSON *const i, int type)
{
    return i && (i->type & 0xFF) == type;
}

cJSON_bool cJSON_IsInvalid(const cJSON *const i) { return type_is(i, cJSON_Invalid); }
cJSON_bool cJSON_IsFalse(const cJSON *const i) { return type_is(i, cJSON_False); }
cJSON_bool cJSON_IsTrue(const cJSON *const i) { return type_is(i, cJSON_True); }
cJSON_bool cJSON_IsNull(const cJSON *const i) { return type_is(i, cJSON_NULL); }
cJSON_bool cJSON_IsNumber(const cJSON *const i) { return type_is(i, cJSON_Number); }
cJSON_bool cJSON_IsString(const cJSON *const i) { return type_is(i, cJSON_String); }
cJSON_bool cJSON_IsArray(const cJSON *const i) { return type_is(i, cJSON_Array); }
cJSON_bool cJSON_IsObject(const cJSON *const i) { return type_is(i, cJSON_Object); }
cJSON_bool cJSON_IsRaw(const cJSON *const i) { return type_is(i, cJSON_Raw); }

cJSON_bool cJSON_IsBool(const cJSON *const i)
{
    return i && (i->type & (cJSON_True | cJSON_False)) != 0;
}

int cJSON_GetArraySize(const cJSON *a)
{
    size_t n = 0;
    for (const cJSON *c = a ? a->child : NULL; c; c = c->next)
        n++;
    return (int)n; /* cJSON's own narrowing */
}

cJSON *cJSON_GetArrayItem(const cJSON *a, int k)
{
    if (!a || k < 0)
        return NULL;
    cJSON *c = a->child;
    for (; c && k > 0; k--)
        c = c->next;
    return c;
}

cJSON *cJSON_GetObjectItemCaseSensitive(const cJSON *const o, const char *const s)
{
    if (!o || !s)
        return NULL;
    cJSON *c = o->child;
    while (c && c->string && strcmp(s, c->string) != 0)
        c = c->next;
    return c && c->string ? c : NULL;
}
