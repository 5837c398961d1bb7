/*
 * exporter — gets trace records out of the host process without losing any.
 *
 * Application threads only enqueue (xv_exp_push never blocks on I/O and
 * never waits for the exporter thread); one exporter thread, started lazily
 * on the first push, batches records and appends them as JSON Lines to the
 * trace file (SPEC §7: mode 0600, O_APPEND + flock so many processes can
 * append at once, each line written whole). When the queue is full the
 * pushing thread appends its record to the file itself rather than drop it.
 * At exit the queue is flushed within the export timeout.
 * After fork() the child starts with an empty queue and its own thread:
 * the parent's pending records are the parent's to write, never written twice.
 *
 * The exporter thread runs with xv_guard_enter() active so the preload's
 * hooks never inspect its own I/O.
 *
 * Thread safety: every function may be called from any thread after
 * xv_exp_init. None may be called from a signal handler.
 */
#ifndef XV_EXPORTER_H
#define XV_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct xv_exp_config {
    const char *trace_file;  /* JSON Lines path; copied. NULL: $XENOVIA_TRACE_FILE or
                                $XDG_STATE_HOME/xenovia/traces.jsonl or
                                ~/.local/state/xenovia/traces.jsonl (dirs made 0700) */
    uint64_t timeout_ms;     /* longest xv_exp_shutdown may block (default 2000) */
    size_t queue_max;        /* records queued before pushers write directly (default 4096) */
};

/* Configure. May be called again only after xv_exp_shutdown. Returns 0 or
 * a negative code; never starts a thread (that happens on first push). */
int xv_exp_init(const struct xv_exp_config *cfg);

/* Enqueue one record; takes ownership of `record` (freed with cJSON_Delete
 * once written). Never blocks on I/O. Returns 0, or a negative code when the
 * record could not be written at all (it is freed anyway). */
int xv_exp_push(cJSON *record);

/* Enqueue one record already written as a line of JSON (one object, valid
 * UTF-8, no newline: common/xv_jsonw.h writes such text); takes ownership
 * of `line` (freed with free() once written). The file gets it as is, with
 * no tree built or printed; the OTLP sink, when configured, parses it on
 * the exporter thread. Otherwise as xv_exp_push. */
int xv_exp_push_line(char *line, size_t len);

/* The same for a line the caller keeps (borrowed: copied into the
 * exporter's own byte FIFO before this returns, or written directly): the
 * agent's records, so that no allocation is made per record. */
int xv_exp_push_text(const char *line, size_t len);

/* Block until every record pushed so far is written, or timeout_ms passes.
 * Returns 0 when all were written, XV_E_IO on timeout. */
int xv_exp_flush(uint64_t timeout_ms);

/* Flush within the configured timeout, stop the thread. Idempotent. */
void xv_exp_shutdown(void);

/* pthread_atfork handlers, registered by the preload. */
void xv_exp_atfork_prepare(void);
void xv_exp_atfork_parent(void);
void xv_exp_atfork_child(void);

/* Counters since init (for tests and `xenovia doctor`). */
struct xv_exp_stats {
    uint64_t pushed;      /* records accepted by xv_exp_push */
    uint64_t written;     /* records appended to the file */
    uint64_t direct;      /* written by the pushing thread because the queue was full */
    uint64_t helped;      /* queued, then appended in a batch by a pushing thread because
                             the exporter thread lagged (also counted in `written`) */
    uint64_t failed;      /* records that could not be written */
    /* OTLP output (spans; zero when OTLP is off). Added with exporter/otlp*.c. */
    uint64_t otlp_sent;      /* delivered to the collector */
    uint64_t otlp_spooled;   /* written to the spool (not yet delivered) */
    uint64_t otlp_replayed;  /* delivered from the spool (this or an earlier process's) */
    uint64_t otlp_dropped;   /* lost: refused by the collector (4xx), spool full/unwritable */
};
void xv_exp_get_stats(struct xv_exp_stats *out);

/* The path records go to (borrowed; valid until the next init). */
const char *xv_exp_trace_path(void);

/* The trace file path by the rule of struct xv_exp_config.trace_file,
 * without configuring anything (for `xenovia traces`): `explicit_path`
 * when non-empty, else $XENOVIA_TRACE_FILE, $XDG_STATE_HOME/xenovia/
 * traces.jsonl (absolute XDG_STATE_HOME only), ~/.local/state/xenovia/
 * traces.jsonl. Caller owns the result; free with free(). NULL when no
 * home directory is known or on allocation failure. Added for tools/. */
char *xv_exp_default_path(const char *explicit_path);

#endif
