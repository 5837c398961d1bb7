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
#include <stdio.h>

#include "xv_knobs.h"

/* Knobs: the table in common/xv_knobs.def (struct xv_knob, xv_knobs[],
 * XV_KNOB_COUNT), shared with the agent. */

/* Check `value` against the knob's row (xv_knob_check). Returns 0, or -1
 * after printing one line ("xenovia <cmd>: …") naming the flag, the
 * variable and what it wants. */
int xv_tool_knob_check(const struct xv_knob *k, const char *value, const char *cmd);

/* Every knob for --help: flag and metavariable, variable, help line,
 * range and default. */
void xv_tool_print_knobs(FILE *out);

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
