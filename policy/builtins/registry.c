/*
 * builtins/registry.c — the builtin side of builtins/registry.h: the error
 * helpers every builtin reports through (OPA's texts, strict or not), the
 * per-call context accessors, and the name index over every family
 * (xv_bi_core first, then builtins/table.c's list).
 *
 * Invariant: the name index is built once (pthread_once) and read-only
 * after; the first definition of a name wins.
 * Thread safety: all functions are reentrant.
 */
#include "builtins/context.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- error helpers ---- */

static int bi_verror(struct xv_bctx *ctx, enum xv_bi_errcode code, const char *fmt, va_list ap)
{
    ctx->errcode = code;
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    return XV_BI_ERROR;
}

int xv_bi_error(struct xv_bctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bi_verror(ctx, XV_ERR_BUILTIN, fmt, ap);
    va_end(ap);
    return XV_BI_ERROR;
}

int xv_bi_error_code(struct xv_bctx *ctx, enum xv_bi_errcode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bi_verror(ctx, code, fmt, ap);
    va_end(ap);
    return XV_BI_ERROR;
}

int xv_bi_type_error(struct xv_bctx *ctx, int pos, const char *want, const struct xv_value *got)
{
    return xv_bi_error_code(ctx, XV_ERR_TYPE, "operand %d must be %s but got %s", pos, want,
                            xv_val_type_name(got));
}

/* xv_bi_want's error path (registry.h). */
int xv_bi_want_fail(struct xv_bctx *ctx, struct xv_value *const *args, int pos, enum xv_type t)
{
    static const char *const names[] = {"null", "boolean", "number", "string",
                                        "array", "object", "set"};
    if (args[pos - 1]->type == t)
        return 0;
    return xv_bi_type_error(ctx, pos, names[t], args[pos - 1]);
}

int xv_bi_ctx_strict(const struct xv_bctx *ctx) { return ctx->strict; }
int64_t xv_bi_ctx_now_ns(struct xv_bctx *ctx)
{
    /* read the clock once per evaluation, on first use */
    if (*ctx->now_ns == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ctx->now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    return *ctx->now_ns;
}
const char *xv_bi_ctx_builtin_name(const struct xv_bctx *ctx) { return ctx->name; }

struct xv_value *xv_bi_ctx_memo_get(struct xv_bctx *ctx, const struct xv_value *key)
{
    if (!ctx->memo || !*ctx->memo)
        return NULL;
    long i = xv_val_object_find(*ctx->memo, key);
    return i < 0 ? NULL : xv_val_incref(XV_OBJ_VAL(*ctx->memo, i));
}

int xv_bi_ctx_memo_put(struct xv_bctx *ctx, struct xv_value *key, struct xv_value *val)
{
    if (!ctx->memo)
        return XV_E_STATE;
    if (!*ctx->memo && !(*ctx->memo = xv_val_object_new(4)))
        return XV_E_NOMEM;
    return xv_val_object_set(*ctx->memo, key, val);
}

/* ---- name index: open addressing over every table ---- */

#define IDX_SIZE 2048 /* power of two, well above the number of builtins */
static struct {
    const struct xv_builtin_def *slot[IDX_SIZE]; /* written once under pthread_once */
    pthread_once_t once;
} g_idx = {.once = PTHREAD_ONCE_INIT};

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void idx_add(const struct xv_builtin_def *d)
{
    size_t n = strlen(d->name);
    uint32_t h = name_hash(d->name, n) & (IDX_SIZE - 1);
    while (g_idx.slot[h]) {
        if (!strcmp(g_idx.slot[h]->name, d->name))
            return; /* first definition wins (core before families) */
        h = (h + 1) & (IDX_SIZE - 1);
    }
    g_idx.slot[h] = d;
}

static void idx_build(void)
{
    for (const struct xv_builtin_def *d = xv_bi_core; d->name; d++)
        idx_add(d);
    for (size_t f = 0; xv_bi_families[f]; f++)
        for (const struct xv_builtin_def *d = xv_bi_families[f]; d->name; d++)
            idx_add(d);
}

const struct xv_builtin_def *xv_bi_lookup(const char *name, size_t len)
{
    pthread_once(&g_idx.once, idx_build);
    uint32_t h = name_hash(name, len) & (IDX_SIZE - 1);
    while (g_idx.slot[h]) {
        const struct xv_builtin_def *d = g_idx.slot[h];
        if (strlen(d->name) == len && !memcmp(d->name, name, len))
            return d;
        h = (h + 1) & (IDX_SIZE - 1);
    }
    return NULL;
}
