/*
 * knobs.c — the settings table built from xv_knobs.def, and the one checker
 * and environment reader every module uses (see xv_knobs.h).
 *
 * Invariant: xv_knob_check is the only place a knob's value is judged; the
 * readers and the CLI both go through it, so they cannot disagree.
 * Thread safety: constant data and pure functions; the readers call
 * xv_secure_getenv and xv_log, both safe from any thread. No allocation.
 */
#include "xv_knobs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "xv_common.h"

/* All the table's text in one constant block, one member per string. The
 * variable names come first, together: start-up reads every one of them,
 * and they then share one or two pages of the file instead of lying among
 * the help texts. A row's fields hold offsets into the block (0: none). */
static const struct knob_text {
    char none; /* offset 0 */
#define XV_KNOB_T(id, e, f, a, deft, h, d) char id##_env[sizeof e];
#define XV_KNOB_L(id, e, f, a, mx, deft, h, d) char id##_env[sizeof e];
#define XV_KNOB_U(id, e, f, a, lo, hi, def, h, d) char id##_env[sizeof e];
#define XV_KNOB_B(id, e, f, def, h, d) char id##_env[sizeof e];
#define XV_KNOB_C(id, e, f, ch, def, h, d) char id##_env[sizeof e];
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
    char on_off[sizeof "on|off"];
#define XV_KNOB_T(id, e, f, a, deft, h, d) \
    char id##_flag[sizeof f], id##_arg[sizeof a], id##_deft[sizeof deft], id##_help[sizeof h], \
        id##_doc[sizeof d];
#define XV_KNOB_L(id, e, f, a, mx, deft, h, d) \
    char id##_flag[sizeof f], id##_arg[sizeof a], id##_deft[sizeof deft], id##_help[sizeof h], \
        id##_doc[sizeof d];
#define XV_KNOB_U(id, e, f, a, lo, hi, def, h, d) \
    char id##_flag[sizeof f], id##_arg[sizeof a], id##_help[sizeof h], id##_doc[sizeof d];
#define XV_KNOB_B(id, e, f, def, h, d) char id##_flag[sizeof f], id##_help[sizeof h], id##_doc[sizeof d];
#define XV_KNOB_C(id, e, f, ch, def, h, d) \
    char id##_flag[sizeof f], id##_ch[sizeof ch], id##_help[sizeof h], id##_doc[sizeof d];
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
} g_text = {
    0,
#define XV_KNOB_T(id, e, f, a, deft, h, d) e,
#define XV_KNOB_L(id, e, f, a, mx, deft, h, d) e,
#define XV_KNOB_U(id, e, f, a, lo, hi, def, h, d) e,
#define XV_KNOB_B(id, e, f, def, h, d) e,
#define XV_KNOB_C(id, e, f, ch, def, h, d) e,
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
    "on|off",
#define XV_KNOB_T(id, e, f, a, deft, h, d) f, a, deft, h, d,
#define XV_KNOB_L(id, e, f, a, mx, deft, h, d) f, a, deft, h, d,
#define XV_KNOB_U(id, e, f, a, lo, hi, def, h, d) f, a, h, d,
#define XV_KNOB_B(id, e, f, def, h, d) f, h, d,
#define XV_KNOB_C(id, e, f, ch, def, h, d) f, ch, h, d,
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
};

#define AT(m) ((uint32_t)offsetof(struct knob_text, m))
const struct xv_knob xv_knobs[XV_KNOB_COUNT] = {
#define XV_KNOB_T(id, e, f, a, deft, h, d)                                                   \
    [XV_KNOB_##id] = { AT(id##_env), AT(id##_flag), AT(id##_arg), XV_KNOB_TEXT, 0, 0, 0, 0, \
                       AT(id##_deft), AT(id##_help), AT(id##_doc) },
#define XV_KNOB_L(id, e, f, a, mx, deft, h, d)                                               \
    [XV_KNOB_##id] = { AT(id##_env), AT(id##_flag), AT(id##_arg), XV_KNOB_LINE, 0, 0, mx, 0, \
                       AT(id##_deft), AT(id##_help), AT(id##_doc) },
#define XV_KNOB_U(id, e, f, a, lo, hi, def, h, d)                                             \
    [XV_KNOB_##id] = { AT(id##_env), AT(id##_flag), AT(id##_arg), XV_KNOB_UINT, 0, lo, hi, def, \
                       0, AT(id##_help), AT(id##_doc) },
#define XV_KNOB_B(id, e, f, def, h, d)                                                       \
    [XV_KNOB_##id] = { AT(id##_env), AT(id##_flag), AT(on_off), XV_KNOB_BOOL, 0, 0, 1, def, \
                       0, AT(id##_help), AT(id##_doc) },
#define XV_KNOB_C(id, e, f, ch, def, h, d)                                                   \
    [XV_KNOB_##id] = { AT(id##_env), AT(id##_flag), AT(id##_ch), XV_KNOB_CHOICE, AT(id##_ch), \
                       0, 0, def, 0, AT(id##_help), AT(id##_doc) },
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
};
#undef AT

static const char *text_at(uint32_t at)
{
    return at ? (const char *)&g_text + at : NULL;
}

#define ACCESSOR(field) \
    const char *xv_knob_##field(const struct xv_knob *k) { return text_at(k->field##_at); }
XV_START_FN ACCESSOR(env)
ACCESSOR(flag)
ACCESSOR(arg)
XV_START_FN ACCESSOR(choices)
ACCESSOR(def_text)
ACCESSOR(help)
ACCESSOR(doc)
#undef ACCESSOR

const struct xv_knob *xv_knob_by_env(const char *env)
{
    for (size_t i = 0; env && i < XV_KNOB_COUNT; i++)
        if (strcmp(xv_knob_env(&xv_knobs[i]), env) == 0)
            return &xv_knobs[i];
    return NULL;
}

const struct xv_knob *xv_knob_by_flag(const char *flag, size_t len)
{
    for (size_t i = 0; flag && i < XV_KNOB_COUNT; i++)
        if (strlen(xv_knob_flag(&xv_knobs[i])) == len && strncmp(xv_knob_flag(&xv_knobs[i]), flag, len) == 0)
            return &xv_knobs[i];
    return NULL;
}

/* Index of `value` among the '|'-separated words (any case), or -1. */
static int word_index(const char *words, const char *value)
{
    size_t vl = strlen(value);
    int i = 0;
    for (const char *p = words; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && strncasecmp(p, value, n) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

int xv_knob_check(const struct xv_knob *k, const char *value, uint64_t *out)
{
    uint64_t v = 0;
    int ok = 0;
    switch (k->kind) {
    case XV_KNOB_UINT: {
        /* strtoull would take "-1", " 5" and "+5": digits only */
        ok = value[0] != '\0' && strspn(value, "0123456789") == strlen(value);
        if (ok) {
            int saved = errno;
            errno = 0;
            unsigned long long n = strtoull(value, NULL, 10);
            ok = errno == 0 && n >= k->min && n <= k->max;
            errno = saved;
            v = n;
        }
        break;
    }
    case XV_KNOB_BOOL: {
        int i = word_index("off|on|0|1|false|true|no|yes", value);
        ok = i >= 0;
        v = (uint64_t)(i & 1);
        break;
    }
    case XV_KNOB_CHOICE: {
        int i = word_index(xv_knob_choices(k), value);
        ok = i >= 0;
        v = (uint64_t)i;
        break;
    }
    case XV_KNOB_LINE: {
        /* it goes on the wire as is: no CR/LF or other control byte */
        size_t n = strlen(value);
        ok = n <= k->max;
        for (size_t i = 0; ok && i < n; i++)
            if ((unsigned char)value[i] < 0x20 && value[i] != '\t')
                ok = 0;
        break;
    }
    case XV_KNOB_TEXT:
        ok = 1;
        break;
    }
    if (out)
        *out = ok ? v : k->def;
    return ok ? 0 : -1;
}

/* "a|b|c" as "a, b or c" (or "a or b"). */
static void list_words(const char *words, char *buf, size_t n)
{
    size_t off = 0;
    int count = 1;
    for (const char *p = words; *p; p++)
        count += *p == '|';
    int i = 0;
    for (const char *p = words; *p && off + 1 < n; i++) {
        const char *bar = strchr(p, '|');
        size_t w = bar ? (size_t)(bar - p) : strlen(p);
        const char *sep = i == 0 ? "" : i == count - 1 ? " or " : ", ";
        int m = snprintf(buf + off, n - off, "%s%.*s", sep, (int)w, p);
        if (m < 0)
            break;
        off += (size_t)m < n - off ? (size_t)m : n - off - 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    if (n)
        buf[off < n ? off : n - 1] = '\0';
}

void xv_knob_expect(const struct xv_knob *k, char *buf, size_t n)
{
    switch (k->kind) {
    case XV_KNOB_UINT:
        snprintf(buf, n, "a whole number from %llu to %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
        return;
    case XV_KNOB_BOOL:
        snprintf(buf, n, "on or off");
        return;
    case XV_KNOB_CHOICE:
        list_words(xv_knob_choices(k), buf, n);
        return;
    case XV_KNOB_LINE:
        snprintf(buf, n, "at most %llu bytes without control characters",
                 (unsigned long long)k->max);
        return;
    case XV_KNOB_TEXT:
        snprintf(buf, n, "any text");
        return;
    }
}

void xv_knob_default(const struct xv_knob *k, char *buf, size_t n)
{
    switch (k->kind) {
    case XV_KNOB_UINT:
        snprintf(buf, n, "%llu", (unsigned long long)k->def);
        return;
    case XV_KNOB_BOOL:
        snprintf(buf, n, "%s", k->def ? "on" : "off");
        return;
    case XV_KNOB_CHOICE: {
        const char *p = xv_knob_choices(k);
        for (uint64_t i = 0; i < k->def && p; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        size_t w = p ? strcspn(p, "|") : 0;
        snprintf(buf, n, "%.*s", (int)w, p ? p : "");
        return;
    }
    case XV_KNOB_TEXT:
    case XV_KNOB_LINE:
        snprintf(buf, n, "%s", xv_knob_def_text(k) ? xv_knob_def_text(k) : "");
        return;
    }
}

#define XV_ENV_INDEX_MAX 32
/* Positions in environ (small: start-up's written data stays on its pages). */
static struct {
    atomic_int on;
    int n;
    char **env;                       /* environ when gathered */
    uint16_t pos[XV_ENV_INDEX_MAX];
} g_envix XV_START_DATA;

/* "XENOVIA_…" or "OTEL_…": the names the index holds. */
XV_START_FN static int indexed_name(const char *s)
{
    const char *p = s[0] == 'X' ? "XENOVIA_" : s[0] == 'O' ? "OTEL_" : NULL;
    if (!p)
        return 0;
    while (*p && *s == *p)
        s++, p++;
    return !*p;
}

XV_START_FN void xv_env_index_begin(void)
{
    int n = 0;
    char **env = environ;
    for (size_t i = 0; env && env[i]; i++) {
        if (!indexed_name(env[i]))
            continue;
        if (n == XV_ENV_INDEX_MAX || i > UINT16_MAX)
            return; /* too many: every lookup scans */
        g_envix.pos[n++] = (uint16_t)i;
    }
    g_envix.n = n;
    g_envix.env = env;
    atomic_store_explicit(&g_envix.on, 1, memory_order_release);
}

XV_START_FN void xv_env_index_end(void)
{
    atomic_store_explicit(&g_envix.on, 0, memory_order_release);
}

/* The value of `name` in entry e ("name=value"), or NULL. */
XV_START_FN static const char *entry_value(const char *e, const char *name)
{
    while (*name && *e == *name)
        e++, name++;
    return !*name && *e == '=' ? e + 1 : NULL;
}

XV_START_FN const char *xv_secure_getenv(const char *name)
{
    /* AT_SECURE cannot change: read once (-1: not yet; a race writes the
     * same value twice) */
    static int secure XV_START_DATA = -1;
    int sec = __atomic_load_n(&secure, __ATOMIC_RELAXED);
    if (sec < 0) {
        sec = getauxval(AT_SECURE) != 0;
        __atomic_store_n(&secure, sec, __ATOMIC_RELAXED);
    }
    if (!name || sec)
        return NULL;
    const char *v;
    /* (environ replaced since: scan it) */
    if (atomic_load_explicit(&g_envix.on, memory_order_acquire) && g_envix.env == environ &&
        indexed_name(name)) {
        for (int i = 0; i < g_envix.n; i++)
            if ((v = entry_value(g_envix.env[g_envix.pos[i]], name)) != NULL)
                return v;
        return NULL;
    }
    for (char **e = environ; e && *e; e++)
        if ((v = entry_value(*e, name)) != NULL)
            return v;
    return NULL;
}

/* The variable's value, NULL when unset or empty. Secure: in a
 * secure-execution process the environment is not the user's to trust
 * (the agent stays inert there anyway; the exporter relied on it). */
XV_START_FN static const char *env_value(const struct xv_knob *k)
{
    const char *v = xv_secure_getenv(xv_knob_env(k));
    return v && *v ? v : NULL;
}

XV_START_FN int xv_knob_get_num(enum xv_knob_id id, uint64_t *out)
{
    const struct xv_knob *k = &xv_knobs[id];
    const char *v = env_value(k);
    *out = k->def;
    if (!v || k->kind == XV_KNOB_TEXT || k->kind == XV_KNOB_LINE)
        return 0;
    if (xv_knob_check(k, v, out) == 0)
        return 1;
    char want[160], def[96];
    xv_knob_expect(k, want, sizeof want);
    xv_knob_default(k, def, sizeof def);
    xv_log(XV_LOG_ERROR, "%s=%.64s: expected %s; using %s", xv_knob_env(k), v, want, def);
    return -1;
}

XV_START_FN const char *xv_knob_get_text(enum xv_knob_id id)
{
    return env_value(&xv_knobs[id]);
}
