/*
 * exp_internal.h — what the exporter's own files share (not public).
 *
 * exp_file.c owns the trace file: where it lives and how a batch of records
 * is appended to it (flock'd, whole lines, truncated back on a failed
 * write). exporter.c owns the queue, the thread and the counters.
 *
 * Thread safety: xv_exp_file_append may run on several threads at once
 * (the exporter thread and pushers on the direct path); each call opens
 * its own descriptor and the flock serialises them, in-process and
 * across processes alike.
 */
#ifndef XV_EXP_INTERNAL_H
#define XV_EXP_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* The writer thread waits up to XV_EXP_LINGER_MS for XV_EXP_LINGER_MIN
 * records before writing a batch (flush and shutdown do not wait). */
#define XV_EXP_LINGER_MS 20
#define XV_EXP_LINGER_MIN 64

/* The trace file's path by the documented rule: `explicit_path` when not
 * NULL/empty, else $XENOVIA_TRACE_FILE, else $XDG_STATE_HOME/xenovia/
 * traces.jsonl (XDG_STATE_HOME must be absolute), else
 * $HOME/.local/state/xenovia/traces.jsonl (HOME from the passwd entry
 * when unset). Caller owns the result; free with free(). NULL when no
 * home directory can be found or on allocation failure. */
char *xv_exp_file_default_path(const char *explicit_path);

/* The same, written to buf when it fits in cap bytes (cap > 0): returns
 * buf, a new allocation, or NULL. The agent's start keeps the path in its
 * own state, so a process that records nothing allocates nothing (issue 9). */
char *xv_exp_file_default_path_in(const char *explicit_path, char *buf, size_t cap);

/* Create the missing directories of `path`'s parent, each mode 0700.
 * Returns 0 or -errno. errno is not preserved (callers do that). */
int xv_exp_file_mkdirs(const char *path);

/* item as one line of JSON, exactly as cJSON_PrintUnformatted prints it
 * (exp_json.c), faster. Caller frees with free(); NULL on OOM or an item
 * cJSON could not print either. */
char *xv_exp_json_print(const cJSON *item);

/* Append lines[0..n) (lens[i] bytes each, no newline; a NULL line is a
 * record that could not be serialised) to `path`, one line each,
 * holding flock(LOCK_EX) for the whole batch. Lines are borrowed (not
 * freed). *written gets the number of records now in the file; the rest
 * failed (serialisation, open or write error). Returns 0 when all were
 * written, else a negative code. The first failure of each kind (open,
 * lock, write) is logged once per process. With try_only, nothing is
 * written or logged and -EAGAIN returned unless the path opens as a
 * regular file whose lock is free at once (the caller must not wait). */
int xv_exp_file_append(const char *path, const char *const *lines, const size_t *lens, size_t n,
                       size_t *written, int try_only);

#endif
