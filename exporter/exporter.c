/*
 * exporter.c — the bounded queue, the exporter thread, flush/shutdown and
 * the fork handlers (see xv_exporter.h for the contract).
 *
 * Invariants:
 * - Nothing is dropped: a record is either in the ring, in the thread's
 *   current batch, being written directly by its pusher, or counted as
 *   written/failed in the stats.
 * - The queue lock is never held across I/O or a call into cJSON's printer,
 *   so a pusher, flush() or fork() never waits for the disk behind it
 *   (fork's prepare handler takes this lock).
 * - `done` counts queued records finished (written or failed) by the
 *   thread, or by a pusher appending a batch for a thread that lags
 *   (help_locked); one writer at a time (w.writing) takes the oldest
 *   batch, so records are finished in queue order and "done >= enqueued
 *   at time T" means everything queued before T is finished.
 * - A record written on the direct path is finished when xv_exp_push
 *   returns, so flush only has to wait for the queued ones.
 *
 * - The thread runs at idle priority (SCHED_IDLE; nice 19 where that is
 *   refused), so on a machine with few CPUs it never preempts the
 *   application thread that queued the record; flush and shutdown lift it
 *   to normal priority while they wait, and it drops back after.
 *
 * Thread safety: all state lives in `g`, guarded by g.lock except the
 * counters (atomics, read without the lock by xv_exp_get_stats).
 */
#include "xv_exporter.h"

#include "exp_internal.h"
#include "otlp_int.h"
#include "xv_common.h"
#include "xv_knobs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define XV_EXP_DEFAULT_TIMEOUT_MS 2000u
#define XV_EXP_DEFAULT_QUEUE_MAX 4096u
#define XV_EXP_QUEUE_CAP ((size_t)1 << 20)   /* hard cap on queue_max */
#define XV_EXP_BATCH_MAX 256u                 /* records per file append */
#define XV_EXP_STACK_BYTES ((size_t)1 << 20)  /* exporter thread stack */
#define XV_EXP_RETRY_NS 1000000000u           /* pthread_create retry interval */
/* Queued lines are copied into one byte FIFO of this size (a line above a
 * quarter of it, or one that finds it full, gets its own allocation).
 * Per-record allocations freed in batches by the exporter thread made
 * glibc trim the heap and the calling thread fault the pages in again on
 * every call (issue 9: 5 % of a call's CPU). */
#define XV_EXP_TEXT_BYTES ((size_t)1 << 20)
/* The FIFO goes back to its start once its end passed this offset and its
 * start is free: with the writer keeping up it stays within its first
 * pages instead of walking all 1 MiB of them (a page fault every few
 * records of a process's first thousands, issue 9). */
#define XV_EXP_TEXT_SOFT ((size_t)64 << 10)
/* The thread lags when it has not taken its batch by the time a second
 * one is queued (it was woken at XV_EXP_LINGER_MIN records): the pusher
 * that finds this many records, or this many bytes of them in g.text,
 * appends the oldest batch itself (see help_locked). */
#define XV_EXP_LAG_RECORDS (2u * XV_EXP_LINGER_MIN)
#define XV_EXP_LAG_BYTES (2u * XV_EXP_TEXT_SOFT)
/* The writer's batch: XV_EXP_BATCH_MAX slots after the ring's. */
#define BATCH (g.ring + g.queue_max)

/* Outputs (g.sinks): the JSON Lines file, the OTLP sink (exporter/otlp*.c). */
#define XV_EXP_SINK_FILE 1
#define XV_EXP_SINK_OTLP 2
/* Flush/shutdown timeouts from here on set no OTLP deadline (no overflow). */
#define XV_EXP_HURRY_MAX_MS ((uint64_t)1 << 32)

/* Thread lifecycle. */
enum exp_thread_state {
    EXP_T_NONE = 0,    /* not started (never, or not in this fork child yet) */
    EXP_T_RUNNING,     /* running; joinable */
    EXP_T_EXITED,      /* returned from its loop; join pending */
    EXP_T_ABANDONED,   /* stuck at shutdown and detached; becomes NONE if it ever
                          finishes (it then drains the ring first) */
};

/* The exporter thread's priority (g.idle). */
enum exp_prio {
    EXP_PRIO_NORMAL = 0,  /* SCHED_OTHER (before it lowered itself, or lifted by flush) */
    EXP_PRIO_IDLE,        /* SCHED_IDLE: runs only when a CPU has nothing else */
    EXP_PRIO_NICE,        /* SCHED_IDLE refused: nice 19 (cannot be lifted again) */
};

/* One queued record: a cJSON tree (xv_exp_push) or a line of JSON text
 * (xv_exp_push_line); exactly one of the two is set. */
enum exp_line_kind {
    EXP_LINE_OWNED = 0,  /* malloc'd, freed with the record */
    EXP_LINE_BORROWED,   /* the pusher's, only while xv_exp_push_text writes it directly */
    EXP_LINE_TEXT,       /* in g.text; `span` bytes given back after the write */
};
struct exp_rec {
    cJSON *tree;   /* owned, or NULL */
    char *line;    /* valid UTF-8, no newline; or NULL */
    size_t len;    /* bytes of line */
    int kind;      /* enum exp_line_kind */
    int nl;        /* line[len] is the line's '\n', in its own storage (own_line_locked) */
    size_t span;   /* EXP_LINE_TEXT: bytes of g.text held (the line + padding before it) */
};

static void rec_free(struct exp_rec *r)
{
    cJSON_Delete(r->tree);
    if (r->kind == EXP_LINE_OWNED)
        free(r->line);
    r->tree = NULL;
    r->line = NULL;
}

/* The exporter's state. Written by: init/shutdown (config fields, under
 * lock), pushers and the thread (queue fields, under lock), the fork
 * child handler (everything, single-threaded). */
static struct {
    pthread_mutex_t lock;          /* guards everything below but the stats */
    pthread_cond_t work;           /* thread waits: records queued or stop */
    pthread_cond_t progress;       /* flush/shutdown wait: done advanced, thread exited */
    int configured;                /* init ran (explicitly or lazily on first push) */
    int stopped;                   /* shutdown ran: pushers write directly */
    char *path;                    /* trace file path, owned (or path_buf); NULL if none
                                      resolvable */
    char path_buf[256];            /* the first configure's path when it fits: no heap
                                      set up by a start that records nothing (issue 9) */
    int sinks;                     /* XV_EXP_SINK_*: file unless OTLP is configured and no
                                      trace file was asked for explicitly; OTLP when set */
    uint64_t timeout_ms;           /* shutdown flush budget */
    size_t queue_max;              /* capacity of `ring` */
    struct exp_rec *ring;          /* queued records, owned; FIFO of `count` from `head`;
                                      NULL until the first push; followed by the batch
                                      being written (BATCH): by one writer at a time,
                                      never on an application thread's stack, and its
                                      pages touched only by batches that large */
    char *text;                    /* FIFO of the queued lines' bytes (xv_exp_push_text),
                                      XV_EXP_TEXT_BYTES, allocated at the first such push and
                                      kept: no allocation per record in steady state */
    size_t text_head;              /* offset of the oldest byte held */
    size_t text_used;              /* bytes held (lines + padding at the wrap) */
    size_t head;                   /* index of the oldest queued record */
    size_t count;                  /* records in the ring */
    uint64_t enqueued;             /* records ever put in the ring (this process) */
    uint64_t done;                 /* records the thread has finished (this process) */
    int stop;                      /* asks the thread to exit once the ring is empty */
    int flushing;                  /* callers in xv_exp_flush: write without lingering */
    enum exp_thread_state tstate;  /* see enum */
    pthread_t thread;              /* valid when tstate is RUNNING or EXITED */
    uint64_t start_failed_ns;      /* last failed pthread_create (mono), 0 if none */
    int start_fail_logged;         /* that failure was logged (once per process) */
    int idle;                      /* the thread's priority: EXP_PRIO_* */
    int first_seen;                /* a record was pushed since configure (or the fork) */
    /* Counters (struct xv_exp_stats), atomics so stats never take the lock. */
    atomic_uint_fast64_t pushed, written, direct, failed;
} g XV_START_DATA = { .lock = PTHREAD_MUTEX_INITIALIZER,
                      /* deadlines are CLOCK_MONOTONIC: every wait names its clock
                       * (pthread_cond_clockwait), so the condition variables need
                       * no run-time init (a pthread_once and a futex call at every
                       * start, issue 9) */
                      .work = PTHREAD_COND_INITIALIZER,
                      .progress = PTHREAD_COND_INITIALIZER };

/* Who writes the batch taken from the ring (help_locked), guarded by g.lock
 * (`helped` is read without it). Apart from g: the start-up data page has
 * no room to spare, and this is first touched by a call. */
static struct {
    int writing;                   /* a batch taken from the ring is being written, by
                                      the thread or a pusher: one writer at a time keeps
                                      the file in queue order */
    int thread_writing;            /* ... and that writer is the thread */
    size_t span;                   /* bytes of g.text that batch holds */
    size_t held;                   /* records a pusher took to write: their ring slots
                                      stay reserved, they may come back */
    uint64_t help_next;            /* no pusher tries again before g.enqueued reaches
                                      this (the last try found the file busy) */
    atomic_uint_fast64_t helped;   /* records a pusher appended (struct xv_exp_stats) */
    struct xv_ready text_ready;    /* g.text made resident ahead of its tail */
} w XV_CALL_DATA;


/* Condition variables wait on CLOCK_MONOTONIC so a wall-clock jump cannot
 * stretch a flush deadline. */

static void deadline_after(struct timespec *ts, uint64_t ms)
{
    uint64_t ns = xv_now_mono_ns() + ms * 1000000u;
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/* Apply a config; caller holds g.lock and has checked the state. */
XV_START_FN static int configure_locked(const struct xv_exp_config *cfg)
{
    /* getpwuid_r may talk to nscd/sssd over a socket: keep the preload's
     * hooks out of it (they must never re-enter us while g.lock is held). */
    xv_guard_enter();
    /* the first configure may use path_buf; a re-init allocates (a reader
     * of the old path may still hold it) */
    int first = !g.configured && !g.path;
    char *path = xv_exp_file_default_path_in(cfg ? cfg->trace_file : NULL,
                                             first ? g.path_buf : NULL,
                                             first ? sizeof g.path_buf : 0);
    /* OTLP when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is usable; the file
     * stays the default, and is also written when asked for explicitly.
     * (Inside the guard too: the spool path may need getpwuid_r.) */
    int otlp = xv_exp_otlp_configure();
    xv_guard_leave();
    const char *tf = xv_secure_getenv("XENOVIA_TRACE_FILE");
    int file_explicit = (cfg && cfg->trace_file && *cfg->trace_file) || (tf && *tf);
    int sinks = otlp ? XV_EXP_SINK_OTLP | (file_explicit ? XV_EXP_SINK_FILE : 0) : XV_EXP_SINK_FILE;
    size_t qmax = cfg && cfg->queue_max ? cfg->queue_max : XV_EXP_DEFAULT_QUEUE_MAX;
    if (qmax > XV_EXP_QUEUE_CAP)
        qmax = XV_EXP_QUEUE_CAP;
    /* The ring is allocated by the first push: a process that never
     * records anything never touches its pages (issue 9). */
    if (g.path != g.path_buf)
        free(g.path);
    free(g.ring);
    g.path = path;
    g.sinks = sinks;
    g.ring = NULL;
    g.queue_max = qmax;
    g.head = g.count = 0;
    g.text_head = g.text_used = 0;
    g.timeout_ms = cfg && cfg->timeout_ms ? cfg->timeout_ms : XV_EXP_DEFAULT_TIMEOUT_MS;
    /* a re-init: `w` is as static data left it at the first (not touched
     * at start-up, whose data page it is not on) */
    if (g.configured) {
        w.help_next = 0;
        atomic_store(&w.helped, 0);
    }
    g.configured = 1;
    g.first_seen = 0;
    g.stopped = 0;
    g.stop = 0;
    g.enqueued = g.done = 0;
    atomic_store(&g.pushed, 0);
    atomic_store(&g.written, 0);
    atomic_store(&g.direct, 0);
    atomic_store(&g.failed, 0);
    if (!path && (sinks & XV_EXP_SINK_FILE))
        xv_log(XV_LOG_ERROR, "no trace file: HOME is unknown; set XENOVIA_TRACE_FILE");
    return 0;
}

XV_START_FN int xv_exp_init(const struct xv_exp_config *cfg)
{
    int saved = errno;
    pthread_mutex_lock(&g.lock);
    int rc;
    /* Re-init is allowed only once no thread can touch the old state. */
    if (g.tstate == EXP_T_RUNNING || g.tstate == EXP_T_ABANDONED || (g.configured && !g.stopped))
        rc = XV_E_STATE;
    else
        rc = configure_locked(cfg);
    pthread_mutex_unlock(&g.lock);
    errno = saved;
    return rc;
}

/* Replace *p (owned by cJSON) with a valid copy when it is not UTF-8. */
static void utf8_fix_owned(char **p)
{
    size_t len = strlen(*p);
    if (xv_utf8_valid(*p, len))
        return;
    char *t = xv_utf8_fix(*p, len, 3 * len, NULL);
    if (!t)
        return; /* OOM: cJSON still escapes controls; the line stays one line */
    cJSON_free(*p);
    *p = t;
}

/* Issue 7 class 7, at the root: whatever a module put into a record (an
 * upstream's header bytes, the environment, argv[0], a cut in the middle of
 * a character), every key and string leaves the exporter as valid UTF-8,
 * invalid bytes replaced by U+FFFD. Runs where the record is serialised
 * (the exporter thread, or the direct path), not on the hot path of a call.
 * Depth is bounded by the records' own shape (cJSON parse depth ≤ 1000). */
static void utf8_sanitize(cJSON *v)
{
    for (; v; v = v->next) {
        if (v->string && !(v->type & cJSON_StringIsConst))
            utf8_fix_owned(&v->string);
        if (cJSON_IsString(v) && v->valuestring && !(v->type & cJSON_IsReference))
            utf8_fix_owned(&v->valuestring);
        if (v->child)
            utf8_sanitize(v->child);
    }
}

/* A record's line: its own text, or its tree printed (*printed: the
 * caller frees it; NULL line when printing ran out of memory). */
static void rec_line(struct exp_rec *r, const char **line, size_t *len, char **printed)
{
    *printed = NULL;
    if (r->line) {
        *line = r->line;
        *len = r->len + (size_t)r->nl; /* with its '\n': one iovec (xv_exp_file_append) */
        return;
    }
    *printed = xv_exp_json_print(r->tree);
    *line = *printed;
    *len = *printed ? strlen(*printed) : 0;
}

/* The file sink of write_now for one record (an application thread's
 * direct write) and for a batch (the exporter thread): the batch's arrays,
 * 6 KiB, stay out of the frame an application thread's first record
 * faults in (issue 9). */
static int file_sink_one(const char *path, struct exp_rec *rec, size_t *to_file, int try_only)
{
    const char *line;
    size_t len;
    char *printed;
    rec_line(rec, &line, &len, &printed);
    int rc = xv_exp_file_append(path, &line, &len, 1, to_file, try_only);
    free(printed);
    return rc;
}

__attribute__((noinline)) static int file_sink_batch(const char *path, struct exp_rec *recs,
                                                     size_t n, size_t *to_file, int try_only)
{
    const char *lines[XV_EXP_BATCH_MAX];
    size_t lens[XV_EXP_BATCH_MAX];
    char *printed[XV_EXP_BATCH_MAX];
    if (n == 0 || n > XV_EXP_BATCH_MAX) {
        *to_file = 0;
        return n ? XV_E_IO : 0;
    }
    for (size_t i = 0; i < n; i++)
        rec_line(&recs[i], &lines[i], &lens[i], &printed[i]);
    int rc = xv_exp_file_append(path, lines, lens, n, to_file, try_only);
    for (size_t i = 0; i < n; i++)
        free(printed[i]);
    return rc;
}

/* The OTLP sink of write_now: records as trees (an unparsable line never
 * reaches OTLP: failed); exported from the exporter thread, spooled from
 * an application thread. How many it took. */
__attribute__((noinline)) static size_t otlp_sink(struct exp_rec *recs, size_t n, int on_thread)
{
    cJSON *trees[XV_EXP_BATCH_MAX];
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!recs[i].tree && recs[i].line)
            recs[i].tree = cJSON_ParseWithLength(recs[i].line, recs[i].len);
        if (recs[i].tree)
            trees[nt++] = recs[i].tree;
    }
    return on_thread ? xv_exp_otlp_export(trees, nt) : xv_exp_otlp_spool_records(trees, nt);
}

/* Write records on the calling thread and account for them. The caller
 * does not hold g.lock. Records are freed. `sinks` is g.sinks as read
 * under the lock; `on_thread`: the exporter thread (OTLP may use the
 * network), else an application thread (OTLP only spools). A record
 * counts as written when every output took it. Trees are repaired to
 * UTF-8 and printed here; lines were written valid by their producer and
 * go to the file as they are (OTLP, which encodes from trees, parses them
 * back: only when an OTLP endpoint is configured). try_only (file sink
 * only): -EAGAIN, records kept, when the append would have to wait. */
static int write_now(const char *path, struct exp_rec *recs, size_t n, int sinks, int on_thread,
                     int try_only)
{
    size_t written = n, to_file = n, to_otlp = n;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (recs[i].tree)
            utf8_sanitize(recs[i].tree);
    /* The preload's hooks must pass our own file and socket I/O straight through. */
    xv_guard_enter();
    if (sinks & XV_EXP_SINK_OTLP)
        to_otlp = otlp_sink(recs, n, on_thread);
    if (sinks & XV_EXP_SINK_FILE)
        rc = n == 1 ? file_sink_one(path, recs, &to_file, try_only)
                    : file_sink_batch(path, recs, n, &to_file, try_only);
    xv_guard_leave();
    if (try_only && rc == -EAGAIN)
        return rc;                     /* not written, not counted: still the caller's */
    written = to_file < to_otlp ? to_file : to_otlp;
    atomic_fetch_add(&g.written, written);
    atomic_fetch_add(&g.failed, n - written);
    for (size_t i = 0; i < n; i++)
        rec_free(&recs[i]);
    return written == n ? 0 : (rc < 0 ? rc : XV_E_IO);
}

/*
 * The direct path runs on an application thread. If the trace file is a
 * FIFO whose reader went away, write(2) raises SIGPIPE, whose default
 * action would kill the host: block it for the write, and swallow one
 * that we caused (but not one that was already pending for the app).
 */
static int write_direct(const char *path, struct exp_rec *recs, size_t n, int sinks,
                        int try_only)
{
    /* try_only writes nothing but a regular file (exp_file.c): no SIGPIPE */
    if (try_only)
        return write_now(path, recs, n, sinks, 0, 1);
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int rc = write_now(path, recs, n, sinks, 0, try_only);
    if (!was_pending) {
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec zero = { 0, 0 };
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Put the calling (exporter) thread at idle priority; caller holds g.lock.
 * On 2 CPUs a normal-priority writer woken by a full batch took the CPU
 * the calling thread needed: that call stalled 0.3-1 ms (issue 9). */
static void sched_self_idle_locked(void)
{
    struct sched_param sp = { 0 };
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0) {
        g.idle = EXP_PRIO_IDLE;
    } else if (g.idle == EXP_PRIO_NORMAL &&
               setpriority(PRIO_PROCESS, (id_t)gettid(), 19) == 0) {
        g.idle = EXP_PRIO_NICE;
    }
}

/* Flush and shutdown wait for the thread: lift it to normal priority so a
 * busy machine cannot starve the wait (SCHED_IDLE back to SCHED_OTHER is
 * allowed unprivileged). Caller holds g.lock. */
static void sched_lift_locked(void)
{
    if (g.idle != EXP_PRIO_IDLE || g.tstate != EXP_T_RUNNING)
        return;
    struct sched_param sp = { 0 };
    if (pthread_setschedparam(g.thread, SCHED_OTHER, &sp) == 0)
        g.idle = EXP_PRIO_NORMAL;
}

/* Move the oldest records (at most XV_EXP_BATCH_MAX) from the ring into
 * BATCH; how many, and *span their bytes of g.text. Caller holds g.lock
 * and is the writer (w.writing). */
static size_t take_batch_locked(size_t *span)
{
    size_t n = 0;
    *span = 0;
    while (n < XV_EXP_BATCH_MAX && g.count) {
        *span += g.ring[g.head].span;
        BATCH[n++] = g.ring[g.head];
        g.ring[g.head].tree = NULL;
        g.ring[g.head].line = NULL;
        g.head = (g.head + 1) % g.queue_max;
        g.count--;
    }
    w.span = *span;
    return n;
}

/* The writer finished its batch of n records holding `span` bytes of
 * g.text. Caller holds g.lock. */
static void batch_done_locked(size_t n, size_t span)
{
    /* The batch was the oldest records: their bytes are the oldest of g.text. */
    g.text_head = g.text_used > span ? (g.text_head + span) % XV_EXP_TEXT_BYTES : 0;
    g.text_used -= span;
    g.done += n;
    w.writing = w.thread_writing = 0;
    w.span = 0;
    pthread_cond_broadcast(&g.progress);
}

static void *exporter_main(void *arg)
{
    (void)arg;
    xv_guard_enter();                  /* for the thread's whole life */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);  /* signals are the app's */

    /* Named by itself: one prctl, where naming it from the creating
     * thread opened /proc/self/task/N/comm on the app's first call. */
    pthread_setname_np(pthread_self(), "xenovia-export");
    pthread_mutex_lock(&g.lock);
    sched_self_idle_locked();
    for (;;) {
        while (g.count == 0 && !g.stop)
            pthread_cond_wait(&g.work, &g.lock);
        if (g.count == 0 && !w.writing) /* stop requested and drained */
            break;
        /* A pusher is writing the batch before ours (help_locked): ours
         * waits for it, so the file keeps queue order (and a batch it has
         * to put back is still ours to write when stop was asked). */
        if (w.writing) {
            while (w.writing)
                pthread_cond_wait(&g.progress, &g.lock);
            continue;
        }
        /* Lifted for a flush that is over: back to idle before working. */
        if (g.idle == EXP_PRIO_NORMAL && !g.flushing && !g.stop)
            sched_self_idle_locked();
        /* Linger briefly for more records: one wake-up and one file append
         * per batch instead of per call (a wake-up per record cost the
         * calling thread a context switch on every call). Flush and stop
         * cut the wait short; pushers signal again at XV_EXP_LINGER_MIN. */
        if (!g.stop && !g.flushing && g.count < XV_EXP_LINGER_MIN) {
            struct timespec dl;
            deadline_after(&dl, XV_EXP_LINGER_MS);
            while (!g.stop && !g.flushing && g.count < XV_EXP_LINGER_MIN)
                if (pthread_cond_clockwait(&g.work, &g.lock, CLOCK_MONOTONIC, &dl) == ETIMEDOUT)
                    break;
        }
        if (w.writing || g.count == 0) /* a pusher took the batch while we lingered */
            continue;
        size_t span;
        size_t n = take_batch_locked(&span);
        struct exp_rec *batch = BATCH;
        /* The path cannot change while we run (init refuses), so borrowing
         * it outside the lock is safe. */
        const char *path = g.path;
        int sinks = g.sinks;
        w.writing = w.thread_writing = 1;
        pthread_mutex_unlock(&g.lock);
        write_now(path, batch, n, sinks, 1, 0);
        pthread_mutex_lock(&g.lock);
        batch_done_locked(n, span);
    }
    /* A thread shutdown gave up on and detached must not be joined:
     * it leaves the state "not running" instead of "exited". */
    g.tstate = g.tstate == EXP_T_ABANDONED ? EXP_T_NONE : EXP_T_EXITED;
    pthread_cond_broadcast(&g.progress);
    pthread_mutex_unlock(&g.lock);
    xv_guard_leave();
    return NULL;
}

/* Start the thread; caller holds g.lock. Returns 0 or a negative code
 * (then the caller writes directly). */
static int start_thread_locked(void)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return XV_E_NOMEM;
    pthread_attr_setstacksize(&attr, XV_EXP_STACK_BYTES);
    /* Created with every signal blocked, so no signal can land on it
     * between creation and its own pthread_sigmask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g.thread, &attr, exporter_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* EAGAIN under RLIMIT_NPROC and the like: write directly, retry
         * at most once a second, say so once. */
        g.start_failed_ns = xv_now_mono_ns();
        if (!g.start_fail_logged) {
            g.start_fail_logged = 1;
            xv_log(XV_LOG_WARN, "exporter thread not started (%s); writing traces synchronously",
                   xv_strerror(-rc));
        }
        return -rc;
    }
    g.start_failed_ns = 0;
    g.idle = EXP_PRIO_NORMAL;         /* the thread lowers itself first thing */
    g.tstate = EXP_T_RUNNING;
    g.stop = 0;
    return 0;
}

/* Room for len bytes at the end of g.text's FIFO, contiguous (skipping
 * the rest of the buffer when the line does not fit before its end);
 * *span gets the bytes taken. NULL when there is no room. Caller holds
 * g.lock. */
static char *text_alloc_locked(size_t len, size_t *span)
{
    const size_t cap = XV_EXP_TEXT_BYTES;
    if (len == 0 || len > cap / 4)
        return NULL;
    if (!g.text && !(g.text = malloc(cap)))
        return NULL;
    if (g.text_used == 0)
        g.text_head = 0;
    size_t tail = (g.text_head + g.text_used) % cap, pad = 0;
    if (tail + len > cap || (tail >= XV_EXP_TEXT_SOFT && tail >= g.text_head &&
                             g.text_head >= len))
        pad = cap - tail; /* the line goes at offset 0 (see XV_EXP_TEXT_SOFT) */
    if (g.text_used + pad + len > cap)
        return NULL;
    *span = pad + len;
    g.text_used += pad + len;
    size_t at = (tail + pad) % cap;
    /* its pages resident ahead, 64 KiB at a time: a process whose thread
     * lags walks the FIFO's first few hundred KiB once (help_locked), a
     * page fault every four records before (issue 9) */
    xv_ready_ahead(g.text, cap, at + len, XV_EXP_TEXT_SOFT, &w.text_ready);
    return g.text + at;
}

/* A borrowed line about to be queued gets bytes of its own: in g.text,
 * else an allocation. 0, or -1 (then it is written directly). Caller
 * holds g.lock. */
static int own_line_locked(struct exp_rec *r)
{
    /* The line is followed by its '\n': consecutive lines in g.text are
     * then one run of bytes that the file append writes as one iovec (two
     * a line before: ~0.3 us a record of the kernel's per-segment copying
     * on the bench VM, issue 9). */
    size_t span = 0;
    char *p = text_alloc_locked(r->len + 1, &span);
    int kind = EXP_LINE_TEXT;
    if (!p) {
        p = malloc(r->len + 1);
        kind = EXP_LINE_OWNED;
        span = 0;
    }
    if (!p)
        return -1;
    memcpy(p, r->line, r->len);
    p[r->len] = '\n';
    r->line = p;
    r->kind = kind;
    r->span = span;
    r->nl = 1;
    return 0;
}

/* g.path copied for a write outside g.lock (a re-init after shutdown may
 * free it meanwhile): into `small` when it fits, the usual case, else onto
 * the heap (a PATH_MAX buffer on the stack was one more page a first call
 * faulted in, issue 9). NULL: no path, too long, or no memory. Release
 * with path_copy_free. */
#define PATH_COPY_SMALL 256
static char *path_copy_locked(char small[PATH_COPY_SMALL])
{
    size_t n = g.path ? strlen(g.path) : PATH_MAX;
    if (n < PATH_COPY_SMALL)
        return memcpy(small, g.path, n + 1);
    return n < PATH_MAX ? strdup(g.path) : NULL;
}

static void path_copy_free(char *p, const char *small)
{
    if (p != small)
        free(p);
}

/* A pusher's batch it could not write goes back to the head of the ring,
 * as it was. Caller holds g.lock. */
static void put_back_locked(size_t n)
{
    for (size_t i = n; i-- > 0;) {
        g.head = (g.head + g.queue_max - 1) % g.queue_max;
        g.ring[g.head] = BATCH[i];
    }
    g.count += n;
}

/*
 * The thread lags: at idle priority on a CPU the application keeps busy it
 * may not run for seconds, and meanwhile each record's bytes went to a page
 * of g.text not touched before (a page fault every few records, ~14 us
 * each on the bench VM) and, past queue_max records, each was written
 * alone by its pusher (ten system calls; issue 9). So the pusher that finds
 * a second batch queued behind the one the thread was woken for appends the
 * oldest batch itself: one append for up to XV_EXP_BATCH_MAX records, in
 * queue order (one writer at a time, w.writing). Only when the file is the
 * only output, and only a regular file whose lock is free at once (no wait,
 * no SIGPIPE); otherwise the batch goes back to the head of the ring. A
 * thread caught writing is lifted to normal priority instead, until it
 * takes its next batch. Caller holds g.lock; released during the write.
 */
static void help_locked(void)
{
    if (g.sinks != XV_EXP_SINK_FILE || g.stopped || g.flushing || g.tstate != EXP_T_RUNNING ||
        g.enqueued < w.help_next ||
        (g.count < XV_EXP_LAG_RECORDS && g.text_used - w.span < XV_EXP_LAG_BYTES))
        return;
    if (w.writing) {
        if (w.thread_writing)
            sched_lift_locked();
        return;
    }
    char small[PATH_COPY_SMALL];
    char *path = path_copy_locked(small);
    if (!path)
        return;
    size_t span;
    size_t n = take_batch_locked(&span);
    w.writing = 1;
    w.held = n;
    pthread_mutex_unlock(&g.lock);
    int rc = write_now(path, BATCH, n, XV_EXP_SINK_FILE, 0, 1);
    path_copy_free(path, small);
    pthread_mutex_lock(&g.lock);
    w.held = 0;
    if (rc == -EAGAIN) {
        /* busy (another process's append) or not a regular file: the
         * thread's turn; the pushers look again a batch later */
        w.help_next = g.enqueued + XV_EXP_LINGER_MIN;
        put_back_locked(n);
        w.writing = 0;
        w.span = 0;
        pthread_cond_broadcast(&g.progress);
        return;
    }
    atomic_fetch_add(&w.helped, n);
    batch_done_locked(n, span);
}

/* Queue one record (taken over), or write it here when it cannot be
 * queued. */
static int push_rec(struct exp_rec *record)
{
    int saved = errno;
    pthread_mutex_lock(&g.lock);
    if (!g.configured && configure_locked(NULL) < 0) {
        pthread_mutex_unlock(&g.lock);
        atomic_fetch_add(&g.failed, 1);
        rec_free(record);
        errno = saved;
        return XV_E_NOMEM;
    }
    atomic_fetch_add(&g.pushed, 1);
    /* OTLP: fix the call's span id now, in push order (see otlp_int.h). */
    if ((g.sinks & XV_EXP_SINK_OTLP) && record->tree)
        xv_exp_otlp_note_call(record->tree);
    /* The first record of a process (or fork child) whose only output is
     * the file is appended here, on the pusher's thread, when that cannot
     * make it wait (a regular file, its lock free at once); the thread
     * starts with the next record. A process that makes one call and
     * exits (a CI step, a script) never pays for a thread it would use
     * once (creating it, its first allocation and the exit join cost
     * ~0.5 ms CPU on a 2-CPU VM, issue 9), and its record is on disk when
     * the call returns. Not with OTLP: the pusher's thread only spools. */
    int first = !g.first_seen;
    g.first_seen = 1;
    char small[PATH_COPY_SMALL];
    char *first_path = NULL;
    if (first && !g.stopped && g.sinks == XV_EXP_SINK_FILE &&
        (first_path = path_copy_locked(small)) != NULL) {
        pthread_mutex_unlock(&g.lock);
        int rc = write_direct(first_path, record, 1, XV_EXP_SINK_FILE, 1);
        path_copy_free(first_path, small);
        if (rc != -EAGAIN) {
            atomic_fetch_add(&g.direct, 1);
            errno = saved;
            return rc;
        }
        pthread_mutex_lock(&g.lock);   /* it would have waited: queue it */
    }
    /* An exited-but-unjoined thread (only possible between shutdown's
     * wait and its join) counts as not running. */
    if (!g.stopped && g.tstate == EXP_T_NONE &&
        (!g.start_failed_ns || xv_now_mono_ns() - g.start_failed_ns >= XV_EXP_RETRY_NS))
        start_thread_locked();
    if (!g.ring && !g.stopped)
        g.ring = calloc(g.queue_max + XV_EXP_BATCH_MAX, sizeof *g.ring); /* NULL: records
                                                                           go direct */
    if (!g.stopped && g.tstate == EXP_T_RUNNING && !g.stop && g.ring &&
        g.count + w.held < g.queue_max &&
        (record->kind != EXP_LINE_BORROWED || own_line_locked(record) == 0)) {
        if (g.count == 0)
            g.head = 0; /* an empty ring restarts at its first slots (their pages stay
                           warm; see XV_EXP_TEXT_SOFT) */
        g.ring[(g.head + g.count) % g.queue_max] = *record;
        g.count++;
        g.enqueued++;
        /* Wake the thread when it sleeps on an empty ring, or when its
         * lingering batch is full; otherwise it is lingering and will come. */
        if (g.count == 1 || g.count == XV_EXP_LINGER_MIN)
            pthread_cond_signal(&g.work);
        help_locked();
        pthread_mutex_unlock(&g.lock);
        errno = saved;
        return 0;
    }
    /* Queue full, no thread, or shut down: never drop, write it here.
     * The path is copied: a re-init after shutdown may free g.path while
     * this write is still going on. */
    char *path = path_copy_locked(small);
    int sinks = g.sinks;
    pthread_mutex_unlock(&g.lock);
    atomic_fetch_add(&g.direct, 1);
    int rc = write_direct(path, record, 1, sinks, 0);
    path_copy_free(path, small);
    errno = saved;
    return rc;
}

int xv_exp_push(cJSON *record)
{
    if (!record)
        return XV_E_STATE;
    struct exp_rec r = { .tree = record, .line = NULL, .len = 0 };
    return push_rec(&r);
}

int xv_exp_push_line(char *line, size_t len)
{
    if (!line)
        return XV_E_STATE;
    struct exp_rec r = { .tree = NULL, .line = line, .len = len, .kind = EXP_LINE_OWNED };
    return push_rec(&r);
}

int xv_exp_push_text(const char *line, size_t len)
{
    if (!line)
        return XV_E_STATE;
    struct exp_rec r = { .tree = NULL, .line = (char *)line, .len = len,
                         .kind = EXP_LINE_BORROWED };
    return push_rec(&r);
}

int xv_exp_flush(uint64_t timeout_ms)
{
    int saved = errno;
    struct timespec dl;
    deadline_after(&dl, timeout_ms);
    uint64_t failed_before = atomic_load(&g.failed);
    int rc = 0;
    pthread_mutex_lock(&g.lock);
    uint64_t target = g.enqueued;
    /* OTLP: retries stop at 3/4 of the flush timeout and the rest is
     * spooled, so a flush (the preload's exit path) is not in vain with
     * a collector that is down. */
    uint64_t hurry = (g.sinks & XV_EXP_SINK_OTLP) && timeout_ms < XV_EXP_HURRY_MAX_MS
                         ? xv_exp_otlp_hurry_begin(xv_now_mono_ns() + timeout_ms * 750000u)
                         : 0;
    g.flushing++;
    sched_lift_locked();
    pthread_cond_signal(&g.work);
    while (g.done < target) {
        /* No live thread to drain the ring: waiting cannot succeed. */
        if (g.tstate != EXP_T_RUNNING) {
            rc = XV_E_IO;
            break;
        }
        if (pthread_cond_clockwait(&g.progress, &g.lock, CLOCK_MONOTONIC, &dl) == ETIMEDOUT && g.done < target) {
            rc = XV_E_IO;
            break;
        }
    }
    g.flushing--;
    pthread_mutex_unlock(&g.lock);
    xv_exp_otlp_hurry_end(hurry);
    if (rc == 0 && atomic_load(&g.failed) != failed_before)
        rc = XV_E_IO;
    errno = saved;
    return rc;
}

XV_EXIT_FN void xv_exp_shutdown(void)
{
    int saved = errno;
    struct timespec dl;
    pthread_mutex_lock(&g.lock);
    if (!g.configured || g.stopped) {
        pthread_mutex_unlock(&g.lock);
        errno = saved;
        return;
    }
    g.stopped = 1;                     /* new pushes go direct from here on */
    /* No thread (a process that recorded nothing, or one record written
     * by its pusher): nothing to wait for, and no clock read (its first
     * read faults in the vDSO's data pages, ~30 us at every exit here). */
    if (g.tstate == EXP_T_RUNNING || g.tstate == EXP_T_EXITED) {
        deadline_after(&dl, g.timeout_ms);
        /* OTLP: stop retrying after 3/4 of the budget and spool the rest,
         * so the thread can finish (and be joined) before the deadline. */
        if ((g.sinks & XV_EXP_SINK_OTLP) && g.timeout_ms < XV_EXP_HURRY_MAX_MS)
            xv_exp_otlp_hurry(xv_now_mono_ns() + g.timeout_ms * 750000u);
        g.stop = 1;
        sched_lift_locked();
        pthread_cond_signal(&g.work);
        int timed_out = 0;
        while (g.tstate == EXP_T_RUNNING && !timed_out)
            timed_out = pthread_cond_clockwait(&g.progress, &g.lock, CLOCK_MONOTONIC, &dl) == ETIMEDOUT;
        if (g.tstate == EXP_T_EXITED) {
            pthread_t t = g.thread;
            g.tstate = EXP_T_NONE;
            pthread_mutex_unlock(&g.lock);
            pthread_join(t, NULL);     /* it has left its loop: returns at once */
            pthread_mutex_lock(&g.lock);
        } else {
            /* Stuck in I/O (hung NFS, a full pipe): exit must not wait for
             * it. It keeps the ring and path, so nothing is freed. */
            g.tstate = EXP_T_ABANDONED;
            pthread_detach(g.thread);
            xv_log(XV_LOG_WARN, "trace export did not finish within %llu ms; %zu record(s) "
                   "left unwritten", (unsigned long long)g.timeout_ms, g.count);
        }
    }
    pthread_mutex_unlock(&g.lock);
    errno = saved;
}

void xv_exp_atfork_prepare(void)
{
    pthread_mutex_lock(&g.lock);
}

void xv_exp_atfork_parent(void)
{
    pthread_mutex_unlock(&g.lock);
}

void xv_exp_atfork_child(void)
{
    /* Only this thread exists now. The lock was taken by prepare in the
     * parent; a fresh init is the portable way to get a usable one. */
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.work, NULL);
    pthread_cond_init(&g.progress, NULL);
    /* The queued records are the parent's to write: free our copies
     * without writing them. A batch the parent's thread held at the fork
     * is unreachable here and simply leaks in the child. */
    for (size_t i = 0; i < g.count; i++) {
        size_t at = (g.head + i) % g.queue_max;
        rec_free(&g.ring[at]);
        g.ring[at].span = 0;
    }
    g.head = g.count = 0;
    g.text_head = g.text_used = 0; /* a batch the parent's thread held: its bytes are free here */
    g.enqueued = g.done = 0;
    g.stop = 0;
    g.flushing = 0;
    /* The thread does not exist in the child; start one on the next push.
     * An abandoned thread's state is unusable too, so we drop it here. */
    g.tstate = EXP_T_NONE;
    g.idle = EXP_PRIO_NORMAL;
    g.first_seen = 0;
    w.writing = w.thread_writing = 0; /* a batch being written at the fork: the parent's */
    w.span = w.held = 0;
    w.help_next = 0;
    g.start_failed_ns = 0;
    atomic_store(&g.pushed, 0);
    atomic_store(&g.written, 0);
    atomic_store(&g.direct, 0);
    atomic_store(&g.failed, 0);
    atomic_store(&w.helped, 0);
    xv_exp_otlp_atfork_child();
}

void xv_exp_get_stats(struct xv_exp_stats *out)
{
    if (!out)
        return;
    out->pushed = atomic_load(&g.pushed);
    out->written = atomic_load(&g.written);
    out->direct = atomic_load(&g.direct);
    out->helped = atomic_load(&w.helped);
    out->failed = atomic_load(&g.failed);
    xv_exp_otlp_stats(&out->otlp_sent, &out->otlp_spooled, &out->otlp_replayed,
                      &out->otlp_dropped);
}

char *xv_exp_default_path(const char *explicit_path)
{
    int saved = errno;
    char *p = xv_exp_file_default_path(explicit_path);
    errno = saved;
    return p;
}

const char *xv_exp_trace_path(void)
{
    pthread_mutex_lock(&g.lock);
    const char *p = g.path;
    pthread_mutex_unlock(&g.lock);
    return p;
}
