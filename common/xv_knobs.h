/*
 * xv_knobs.h — the one table of settings (xv_knobs.def) and the one way to
 * read and check them, shared by the agent (preload/config.c), the OTLP
 * exporter (exporter/otlp_config.c), `xenovia observe` and the CLI
 * (`xenovia run` flags, `--help`, the README table).
 *
 * Invariant: a value is accepted by the agent exactly when xv_knob_check
 * accepts it, so `xenovia run` refuses what the agent would have reported
 * and replaced by its default.
 *
 * Thread safety: the table is constant; every function here is safe from
 * any thread. xv_knob_get_* read the environment (secure_getenv) and may
 * log one line (xv_log); they do not allocate.
 */
#ifndef XV_KNOBS_H
#define XV_KNOBS_H

#include <stddef.h>
#include <stdint.h>

/* What a knob's value must look like. */
enum xv_knob_kind {
    XV_KNOB_TEXT,     /* anything (the module that uses it checks it, if at all) */
    XV_KNOB_UINT,     /* decimal whole number in [min, max] */
    XV_KNOB_BOOL,     /* on|off (also 1/0, true/false, yes/no), any case */
    XV_KNOB_CHOICE,   /* one of `choices`, any case */
    XV_KNOB_LINE,     /* header value: at most `max` bytes, no control character but tab */
};

/* One setting: an environment variable and the `xenovia run` flag that sets
 * it. Its text fields are positions in one block of text (read them with
 * the accessors below; 0 = none), not pointers: a table of pointers is
 * relocated by the loader at every process start, in pages written for
 * that alone (issue 9). */
struct xv_knob {
    uint32_t env_at;         /* variable name */
    uint32_t flag_at;        /* `xenovia run` long option without "--" */
    uint32_t arg_at;         /* metavariable for --help ("N", "PATH"; choices for CHOICE) */
    enum xv_knob_kind kind;  /* how values are checked */
    uint32_t choices_at;     /* CHOICE: "a|b|c" (index = value); else none */
    uint64_t min, max;       /* UINT: inclusive range; LINE: max bytes */
    uint64_t def;            /* default: UINT number, BOOL 0/1, CHOICE index; TEXT 0 */
    uint32_t def_text_at;    /* TEXT, LINE: the default in words (Markdown); else none */
    uint32_t help_at;        /* one line for --help */
    uint32_t doc_at;         /* the README table's "meaning" cell (Markdown) */
};

/* The text fields; NULL where a field is none (choices, def_text). */
const char *xv_knob_env(const struct xv_knob *k);
const char *xv_knob_flag(const struct xv_knob *k);
const char *xv_knob_arg(const struct xv_knob *k);
const char *xv_knob_choices(const struct xv_knob *k);
const char *xv_knob_def_text(const struct xv_knob *k);
const char *xv_knob_help(const struct xv_knob *k);
const char *xv_knob_doc(const struct xv_knob *k);

/* XV_KNOB_<ID> for every row of xv_knobs.def, then XV_KNOB_COUNT. */
enum xv_knob_id {
#define XV_KNOB_T(id, env, flag, arg, deft, help, doc) XV_KNOB_##id,
#define XV_KNOB_L(id, env, flag, arg, max, deft, help, doc) XV_KNOB_##id,
#define XV_KNOB_U(id, env, flag, arg, min, max, def, help, doc) XV_KNOB_##id,
#define XV_KNOB_B(id, env, flag, def, help, doc) XV_KNOB_##id,
#define XV_KNOB_C(id, env, flag, choices, def, help, doc) XV_KNOB_##id,
#include "xv_knobs.def"
#undef XV_KNOB_T
#undef XV_KNOB_L
#undef XV_KNOB_U
#undef XV_KNOB_B
#undef XV_KNOB_C
    XV_KNOB_COUNT
};

/* The table, indexed by enum xv_knob_id. Static storage. */
extern const struct xv_knob xv_knobs[XV_KNOB_COUNT];

/* Lookups; NULL when no knob has that name. `len`: bytes of `flag` to match. */
const struct xv_knob *xv_knob_by_env(const char *env);
const struct xv_knob *xv_knob_by_flag(const char *flag, size_t len);

/* Is `value` acceptable? 0 with *out the value (UINT number, BOOL 0/1,
 * CHOICE index; TEXT 0), or -1 with *out the default. `out` may be NULL. */
int xv_knob_check(const struct xv_knob *k, const char *value, uint64_t *out);

/* What an acceptable value looks like, for messages and --help ("a whole
 * number from 1 to 60000", "on or off", "one of enforce, monitor"). */
void xv_knob_expect(const struct xv_knob *k, char *buf, size_t n);
/* The default as text ("200", "on", "enforce", the TEXT default). */
void xv_knob_default(const struct xv_knob *k, char *buf, size_t n);

/*
 * Reading the environment (empty counts as unset). Each returns 1 when the
 * variable was set to an acceptable value, 0 when unset, -1 when set to a
 * bad one: then one line "xenovia: VAR=value: expected …; using <default>"
 * is logged (the value is echoed only for UINT/BOOL/CHOICE, cut at 64
 * bytes). *out always holds the value in effect (the default unless 1).
 */
/* secure_getenv(name) without glibc's: the same answer (the first
 * "name=" entry of environ; NULL in a secure-execution process), read by the
 * agent's start-up for every knob; glibc's sits on a page of libc's code
 * that a process of its own would not touch, one more fault at every start
 * (issue 9). Not thread-safe against setenv, like getenv. */
const char *xv_secure_getenv(const char *name);
/* While the agent's start reads its settings: one pass over the environment
 * gathers its XENOVIA_* and OTEL_* entries, and lookups of such names read
 * those few entries instead of the whole environment (~40 lookups, each a
 * scan of every variable: ~17k instructions of every start, issue 9).
 * The index holds positions in environ: meant for a stretch in which nothing
 * changes the environment (the agent's start; a new environ array is
 * scanned). More than 32 such entries: no index, every lookup scans. */
void xv_env_index_begin(void);
void xv_env_index_end(void);
int xv_knob_get_num(enum xv_knob_id id, uint64_t *out);
/* TEXT, LINE: the value (borrowed from the environment; valid until it
 * changes) or NULL when unset or empty. No check: a LINE's user checks it
 * with xv_knob_check and says what it does with a bad one. */
const char *xv_knob_get_text(enum xv_knob_id id);

#endif
