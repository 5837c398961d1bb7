/*
 * policy_api.h — the functions of the Rego engine (policy/) and of pattern
 * redaction (conn/redact.c) that libxenovia.so reaches only through its
 * private policy object, libxenovia-policy.so.
 *
 * Why: the engine and its libraries (pcre2, gmp, libm, ...) are most of the
 * agent's code and mapping them cost every process started under the agent
 * (even `/bin/true`, with no policy) ~0.3 ms of CPU. They are now loaded
 * with dlopen only when XENOVIA_POLICY is set (issue 9).
 *
 * The list below is the whole contract: policy_plugin.c fills a table of
 * these functions inside libxenovia-policy.so, and policy_shim.c defines
 * each name inside libxenovia.so as a forwarder through that table, so the
 * call sites (conn/policy.c, conn/tx.c, preload/init.c) are unchanged. A
 * function conn/ or preload/ starts to call from policy/ or redact.c must be
 * added here, or the link pulls the engine back into libxenovia.so (the
 * preload_ldd test then fails).
 *
 * XV_POLICY_API(R, V) (xv_policy_load, the entry point, is a member of its
 * own, see struct xv_policy_plugin):
 *   R(type, name, (parameters), (arguments), value returned when the object
 *     could not be loaded)
 *   V(name, (parameters), (arguments))          — functions returning void
 * Thread safety: the table is immutable once loaded.
 */
#ifndef XV_POLICY_API_H
#define XV_POLICY_API_H

#include <cjson/cJSON.h>

#include "xv_policy.h"
#include "xv_redact.h"
#include "xv_value.h"

#define XV_POLICY_API(R, V)                                                                   \
    R(int, xv_policy_decide,                                                                  \
      (const struct xv_policy *p, struct xv_value *input, const struct xv_policy_opts *opts,  \
       struct xv_decision *out, char *err, size_t errlen),                                    \
      (p, input, opts, out, err, errlen), XV_E_STATE)                                         \
    V(xv_policy_decision_free, (struct xv_decision * d), (d))                                 \
    R(const char *, xv_policy_outcome_name, (enum xv_outcome o), (o), "allow")                \
    V(xv_val_free_, (struct xv_value * v), (v))                                             \
    R(struct xv_value *, xv_val_null, (void), (), NULL)                                           \
    R(struct xv_value *, xv_val_bool, (int b), (b), NULL)                                         \
    R(struct xv_value *, xv_val_int, (int64_t i), (i), NULL)                                      \
    R(struct xv_value *, xv_val_number_from_double, (double d), (d), NULL)                        \
    R(struct xv_value *, xv_val_cstring, (const char *s), (s), NULL)                              \
    R(struct xv_value *, xv_val_string, (const char *s, size_t len), (s, len), NULL)              \
    R(struct xv_value *, xv_val_array_new, (size_t cap_hint), (cap_hint), NULL)                   \
    R(int, xv_val_array_push, (struct xv_value * arr, struct xv_value * item), (arr, item),       \
      XV_E_NOMEM)                                                                             \
    R(struct xv_value *, xv_val_object_new, (size_t cap_hint), (cap_hint), NULL)                  \
    R(struct xv_value *, xv_val_copy, (const struct xv_value *v), (v), NULL)                      \
    R(int, xv_val_object_set_str, (struct xv_value * obj, const char *key, struct xv_value *val), \
      (obj, key, val), XV_E_NOMEM)                                                            \
    R(int, xv_val_object_set, (struct xv_value * obj, struct xv_value * key, struct xv_value * val), \
      (obj, key, val), XV_E_NOMEM)                                                            \
    R(struct xv_value *, xv_val_key, (const char *key), (key), NULL)                          \
    R(long, xv_val_object_find_str, (const struct xv_value *obj, const char *key, size_t len),    \
      (obj, key, len), -1)                                                                    \
    R(int, xv_val_json_parse,                                                                     \
      (const char *s, size_t len, struct xv_value **out, char *err, size_t errlen),           \
      (s, len, out, err, errlen), XV_E_STATE)                                                 \
    R(unsigned, xv_redact_labels_from, (char *const *names, size_t n), (names, n), 0)        \
    R(int, xv_redact_text,                                                                    \
      (unsigned labels, const char *text, size_t n, struct xv_buf *out, int *changed),        \
      (labels, text, n, out, changed), XV_E_STATE)                                            \
    V(xv_redact_json_text, (cJSON * item, unsigned labels, int *changed),                     \
      (item, labels, changed))                                                                \
    V(xv_redact_json_content, (cJSON * content, unsigned labels, int *changed),               \
      (content, labels, changed))                                                             \
    R(int, xv_policy_reads_input, (const struct xv_policy *p, const char *key), (p, key), 1)    \
    R(int, xv_policy_nondeterministic, (const struct xv_policy *p), (p), 1)                    \
    R(uint64_t, xv_policy_input_bits, (const struct xv_policy *p, const char *const *keys, int n), \
      (p, keys, n), ~(uint64_t)0)

/* The table libxenovia-policy.so exports (its only dynamic symbol). */
#define XV_POLICY_API_VERSION 7
struct xv_policy_plugin {
    int version;     /* XV_POLICY_API_VERSION: a stale object is refused */
    size_t size;     /* sizeof(struct xv_policy_plugin) of the object's build */
    /* xv_policy_load: outside the list, its shim explains a failed load in err */
    int (*xv_policy_load)(const char *path, const char *data_path, int version,
                          struct xv_policy **out, char *err, size_t errlen);
#define XV_PAPI_R(type, name, params, args, fail) type(*name) params;
#define XV_PAPI_V(name, params, args) void(*name) params;
    XV_POLICY_API(XV_PAPI_R, XV_PAPI_V)
#undef XV_PAPI_R
#undef XV_PAPI_V
};
#define XV_POLICY_PLUGIN_SYMBOL "xv_policy_plugin_table"
#define XV_POLICY_PLUGIN_FILE "libxenovia-policy.so"

#endif
