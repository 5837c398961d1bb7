/*
 * xv_tools.h — the `xenovia` CLI: one entry point per command plus the few
 * helpers the commands share (the knob table, locating libxenovia.so).
 *
 * Every command is `int xv_tool_<cmd>(int argc, char **argv)` where argv[0]
 * is the command's own name ("run", "traces", …); it returns the process
 * exit status. Conventions: 0 success, 1 the operation failed, 2 usage
 * error (bad flag or value, one clear line on stderr naming the fix);
 * `run` also uses 126/127 as shells do. The CLI is single-threaded.
 */
#ifndef XV_TOOLS_H
#define XV_TOOLS_H

#include <stddef.h>

/* What a knob's value must look like. */
enum xv_tool_knob_kind {
    XV_KNOB_TEXT,     /* anything (checked by the agent, if at all) */
    XV_KNOB_UINT,     /* whole number in [min, max] (max 0: no upper bound) */
    XV_KNOB_BOOL,     /* on|off (also 1/0, true/false, yes/no, any case) */
    XV_KNOB_CHOICE,   /* one of `choices`, any case */
};

/* A configuration knob of the agent: an environment variable and the
 * `xenovia run` flag that sets it (SPEC §9: every knob is both). */
struct xv_tool_knob {
    const char *flag;               /* long option without the leading "--" */
    const char *env;                /* variable the flag sets */
    const char *arg;                /* metavariable shown in --help */
    enum xv_tool_knob_kind kind;    /* how values are checked */
    const char *choices;            /* XV_KNOB_CHOICE: "a|b|c"; else NULL */
    unsigned long long min, max;    /* XV_KNOB_UINT range, inclusive */
    const char *help;               /* one line for --help */
};

/* The table, terminated by an entry with flag == NULL. Static storage. */
extern const struct xv_tool_knob xv_tool_knobs[];

/* Check `value` against the knob's choices/numeric rule. Returns 0, or -1
 * after printing one line ("xenovia <cmd>: …") naming the flag, the
 * variable and the fix. */
int xv_tool_knob_check(const struct xv_tool_knob *k, const char *value, const char *cmd);

/* Directory holding the running xenovia binary (from /proc/self/exe).
 * Caller owns the result; free with free(). NULL if unknown. */
char *xv_tool_self_dir(void);

/* Absolute path of libxenovia.so: `override` (flag) or $XENOVIA_LIB when
 * set, else <self>/../preload/libxenovia.so (build tree), else
 * <self>/../lib/libxenovia.so (installed). Caller owns the result; free
 * with free(). NULL when none exists; then *why (static storage) says
 * what was tried. */
char *xv_tool_find_lib(const char *override, const char **why);

/* Print a usage error ("xenovia <cmd>: <message>") and return 2. */
int xv_tool_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For `xenovia run`: the verdict `xenovia doctor` would give from the
 * program file alone (no library walk): 3 not covered at all, 1 HTTPS
 * not covered, 0 nothing certain is wrong (or the file is unreadable);
 * `why` gets one line. cmd is resolved on PATH; #! is followed. */
int xv_tool_doctor_quick(const char *cmd, char *why, size_t n);

/* Commands. */
int xv_tool_run(int argc, char **argv);
int xv_tool_traces(int argc, char **argv);
int xv_tool_doctor(int argc, char **argv);
int xv_tool_cassette(int argc, char **argv);
/* `xenovia observe` (cmd_observe.c; only when observe/ is built: XV_HAVE_OBSERVE). */
int xv_tool_observe(int argc, char **argv);
/* Provided by tools/cmd_policy.c (policy helper) when built with
 * XV_HAVE_POLICY: `xenovia policy check|eval|test`. */
int xv_tool_policy(int argc, char **argv);

#endif
