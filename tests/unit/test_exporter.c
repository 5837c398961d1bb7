/*
 * test_exporter.c — unit tests for the exporter (queue, thread, JSONL file,
 * flush/shutdown, fork). Each test configures the exporter afresh on a
 * file in its own temporary directory and shuts it down again; scenarios
 * that leave the exporter unusable (a thread detached at shutdown) run in
 * a forked child and report through the exit status.
 *
 * A test "holds the lock" by taking flock(LOCK_EX) on the trace file
 * itself: the exporter thread then blocks in its own flock with a batch in
 * hand, which is how pending records and a stuck thread are produced
 * without any fault-injection hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_exporter.h"
#include "../../exporter/exp_internal.h" /* xv_exp_file_append */
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

/* ThreadSanitizer cannot follow a child that starts threads after a fork
 * of a multi-threaded process ("dup thread with used id"): the fork tests
 * are skipped in the TSan build (-DXV_SANITIZE=thread) and run under ASan
 * and in the normal build. */
#if defined(__SANITIZE_THREAD__)
#define SKIP_UNDER_TSAN() skip()
#else
#define SKIP_UNDER_TSAN() do { } while (0)
#endif

static char g_dir[256];    /* this test's temporary directory */
static char g_path[512];   /* trace file inside it */

static void make_dir(const char *sub)
{
    assert_non_null(xv_test_mkdtemp(g_dir, sizeof g_dir, "xvexp-"));
    snprintf(g_path, sizeof g_path, "%s/%s", g_dir, sub);
}

/* Removed, or kept for the secret sweep under ctest (tests/sweep/keep.h). */
static void rm_rf(const char *dir)
{
    assert_int_equal(xv_test_rmdir(dir), 0);
}

static void init_with(const char *path, size_t queue_max, uint64_t timeout_ms)
{
    struct xv_exp_config cfg = { .trace_file = path, .timeout_ms = timeout_ms,
                                 .queue_max = queue_max };
    assert_int_equal(xv_exp_init(&cfg), 0);
    assert_string_equal(xv_exp_trace_path(), path);
}

static cJSON *rec(int a, int b, size_t pad)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "a", a);
    cJSON_AddNumberToObject(o, "b", b);
    /* A newline inside a value must not split the line. */
    cJSON_AddStringToObject(o, "text", "two\nlines \"quoted\"");
    if (pad) {
        char *p = malloc(pad + 1);
        memset(p, 'x', pad);
        p[pad] = '\0';
        cJSON_AddStringToObject(o, "pad", p);
        free(p);
    }
    return o;
}

/*
 * Read the trace file: every line must be valid JSON with integer a/b;
 * seen[a * stride + b] counts occurrences. Returns the number of lines.
 * Fails the test on any malformed line.
 */
static size_t read_records(const char *path, int *seen, int na, int stride)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, lines = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        assert_true(line[n - 1] == '\n');
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("malformed line %zu: %.80s", lines + 1, line);
        cJSON *a = cJSON_GetObjectItem(o, "a"), *b = cJSON_GetObjectItem(o, "b");
        assert_true(cJSON_IsNumber(a) && cJSON_IsNumber(b));
        assert_string_equal(cJSON_GetObjectItem(o, "text")->valuestring, "two\nlines \"quoted\"");
        assert_true(a->valueint >= 0 && a->valueint < na);
        assert_true(b->valueint >= 0 && b->valueint < stride);
        seen[a->valueint * stride + b->valueint]++;
        cJSON_Delete(o);
        lines++;
    }
    free(line);
    fclose(f);
    return lines;
}

static void assert_all_once(const int *seen, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (seen[i] != 1)
            fail_msg("record %zu seen %d times", i, seen[i]);
}

/* Take flock(LOCK_EX) on the trace file, as another process would. */
static int hold_lock(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    return fd;
}

static void release_lock(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

/* ---- tests ---- */

static void test_jsonl_count_and_modes(void **state)
{
    (void)state;
    /* A umask that strips owner bits: the exporter must still get exactly
     * 0700 directories and a 0600 file. */
    mode_t old = umask(0277);
    make_dir("a/b/traces.jsonl");
    init_with(g_path, 0, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(xv_exp_push(rec(0, i, 0)), 0);
    assert_int_equal(xv_exp_flush(10000), 0);
    xv_exp_shutdown();
    umask(old);

    int seen[100] = { 0 };
    assert_int_equal(read_records(g_path, seen, 1, 100), 100);
    assert_all_once(seen, 100);

    struct stat st;
    assert_int_equal(stat(g_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char d[600];
    snprintf(d, sizeof d, "%s/a", g_dir);
    assert_int_equal(stat(d, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    snprintf(d, sizeof d, "%s/a/b", g_dir);
    assert_int_equal(stat(d, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.pushed, 100);
    assert_int_equal(s.written, 100);
    assert_int_equal(s.failed, 0);
    rm_rf(g_dir);
}

#define NTHREADS 16
#define NPUSH 200

static void *pusher(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < NPUSH; i++)
        if (xv_exp_push(rec(t, i, (size_t)(i % 7) * 300)) != 0)
            return (void *)1;
    return NULL;
}

static void run_pushers(int nthreads)
{
    pthread_t th[NTHREADS];
    for (int t = 0; t < nthreads; t++)
        assert_int_equal(pthread_create(&th[t], NULL, pusher, (void *)(intptr_t)t), 0);
    for (int t = 0; t < nthreads; t++) {
        void *r;
        pthread_join(th[t], &r);
        assert_null(r);
    }
}

static void test_threads_all_once(void **state)
{
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 0, 0);
    run_pushers(NTHREADS);
    assert_int_equal(xv_exp_flush(20000), 0);
    xv_exp_shutdown();
    static int seen[NTHREADS * NPUSH];
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, NTHREADS, NPUSH), NTHREADS * NPUSH);
    assert_all_once(seen, NTHREADS * NPUSH);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.pushed, NTHREADS * NPUSH);
    assert_int_equal(s.written, NTHREADS * NPUSH);
    rm_rf(g_dir);
}

static void test_tiny_queue_direct_path(void **state)
{
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 1, 0);
    run_pushers(NTHREADS);
    assert_int_equal(xv_exp_flush(20000), 0);
    xv_exp_shutdown();
    static int seen[NTHREADS * NPUSH];
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, NTHREADS, NPUSH), NTHREADS * NPUSH);
    assert_all_once(seen, NTHREADS * NPUSH);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.written, NTHREADS * NPUSH);
    assert_true(s.direct > 0);     /* the direct path was really taken */
    assert_int_equal(s.failed, 0);
    rm_rf(g_dir);
}

#define NPROC 8
#define PROC_RECS 400

static void test_many_processes_one_file(void **state)
{
    SKIP_UNDER_TSAN();
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 64, 5000);
    /* The parent's thread is running when the children fork. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(xv_exp_push(rec(NPROC, i, 0)), 0);
    assert_int_equal(xv_exp_flush(10000), 0);

    pid_t pids[NPROC];
    for (int k = 0; k < NPROC; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            /* Records of 0.5–12 KiB: well past PIPE_BUF, and batches past
             * the 1 MiB chunk size, so only the flock keeps lines whole. */
            int bad = 0;
            for (int i = 0; i < PROC_RECS; i++)
                bad |= xv_exp_push(rec(k, i, 512 + (size_t)(i % 24) * 512)) != 0;
            bad |= xv_exp_flush(30000) != 0;
            xv_exp_shutdown();
            struct xv_exp_stats s;
            xv_exp_get_stats(&s);
            bad |= s.pushed != PROC_RECS || s.written != PROC_RECS;
            _exit(bad ? 1 : 0);
        }
    }
    for (int k = 0; k < NPROC; k++) {
        int st;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    xv_exp_shutdown();
    static int seen[(NPROC + 1) * PROC_RECS];
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, NPROC + 1, PROC_RECS), NPROC * PROC_RECS + 10);
    for (int k = 0; k < NPROC; k++)
        assert_all_once(seen + k * PROC_RECS, PROC_RECS);
    assert_all_once(seen + NPROC * PROC_RECS, 10);
    rm_rf(g_dir);
}

static void test_fork_child_skips_parent_records(void **state)
{
    SKIP_UNDER_TSAN();
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 0, 5000);
    int lk = hold_lock(g_path);
    /* The thread takes the first batch and blocks in flock; the rest wait
     * in the queue. */
    assert_int_equal(xv_exp_push(rec(0, 0, 0)), 0);
    usleep(100 * 1000);
    for (int i = 1; i < 20; i++)
        assert_int_equal(xv_exp_push(rec(0, i, 0)), 0);
    assert_int_equal(xv_exp_flush(50), XV_E_IO);   /* really pending */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        struct xv_exp_stats s;
        xv_exp_get_stats(&s);
        bad |= s.pushed != 0;
        bad |= xv_exp_flush(0) != 0;          /* nothing of ours pending */
        /* The child's own record goes out through its own thread (once
         * the parent lets go of the lock). */
        bad |= xv_exp_push(rec(1, 0, 0)) != 0;
        bad |= xv_exp_flush(30000) != 0;
        xv_exp_shutdown();
        xv_exp_get_stats(&s);
        bad |= s.pushed != 1 || s.written != 1;
        _exit(bad ? 1 : 0);
    }
    usleep(100 * 1000);
    release_lock(lk);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(xv_exp_flush(10000), 0);
    xv_exp_shutdown();

    int seen[2 * 20] = { 0 };
    assert_int_equal(read_records(g_path, seen, 2, 20), 21);
    assert_all_once(seen, 20);                 /* the parent's, once each */
    assert_int_equal(seen[20], 1);             /* the child's own one */
    rm_rf(g_dir);
}

static void test_flush_timeout_and_stuck_shutdown(void **state)
{
    SKIP_UNDER_TSAN();
    (void)state;
    make_dir("traces.jsonl");
    int lk = hold_lock(g_path);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        struct xv_exp_config cfg = { .trace_file = g_path, .timeout_ms = 300 };
        bad |= xv_exp_init(&cfg) != 0;
        for (int i = 0; i < 5; i++)
            bad |= xv_exp_push(rec(0, i, 0)) != 0;
        uint64_t t0 = xv_now_mono_ns();
        bad |= (xv_exp_flush(200) != XV_E_IO) << 1;
        uint64_t ms = (xv_now_mono_ns() - t0) / 1000000u;
        bad |= (ms < 150 || ms > 3000) << 2;
        /* Shutdown with the thread stuck in flock: returns within the
         * configured timeout (it detaches the thread). */
        t0 = xv_now_mono_ns();
        xv_exp_shutdown();
        ms = (xv_now_mono_ns() - t0) / 1000000u;
        bad |= (ms > 3000) << 3;
        xv_exp_shutdown();                     /* idempotent */
        /* Re-init is refused while the detached thread may still run. */
        bad |= (xv_exp_init(&cfg) != XV_E_STATE) << 4;
        /* Let the parent release the lock: the detached thread finishes
         * its records and exits, after which re-init works again. */
        bad |= (write(go[1], "x", 1) != 1) << 5;
        int reinit = -1;
        for (int i = 0; i < 100 && reinit != 0; i++) {
            usleep(50 * 1000);
            reinit = xv_exp_init(&cfg);
        }
        bad |= (reinit != 0) << 6;
        xv_exp_shutdown();
        _exit(bad);
    }
    char c;
    assert_int_equal(read(go[0], &c, 1), 1);
    release_lock(lk);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(go[0]);
    close(go[1]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    int seen[5] = { 0 };
    assert_int_equal(read_records(g_path, seen, 1, 5), 5);   /* late, but all written */
    assert_all_once(seen, 5);
    rm_rf(g_dir);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 1, 0);
    for (int i = 0; i < 50; i++) {     /* queue path and direct path */
        errno = EDOM;
        assert_int_equal(xv_exp_push(rec(0, i, 0)), 0);
        assert_int_equal(errno, EDOM);
    }
    errno = ERANGE;
    assert_int_equal(xv_exp_flush(10000), 0);
    assert_int_equal(errno, ERANGE);
    xv_exp_shutdown();
    assert_int_equal(errno, ERANGE);

    /* A path that cannot be opened: the record fails (counted), errno
     * still untouched, nothing crashes. After shutdown the push is direct. */
    init_with("/proc/self/no/such/dir/traces.jsonl", 0, 0);
    xv_exp_shutdown();
    errno = EDOM;
    assert_true(xv_exp_push(rec(0, 0, 0)) < 0);
    assert_int_equal(errno, EDOM);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.pushed, 1);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.direct, 1);
    rm_rf(g_dir);
}

/* Threads of this process (entries of /proc/self/task). */
static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread count once it is `want`, waiting up to 2 s for it: a joined
 * thread stays listed in /proc/self/task until the kernel has reaped it,
 * which on a loaded machine comes a moment after pthread_join returns (the
 * clean-clone CI of 8 Dec 2026 saw one left over). A wrong count stays
 * wrong and is returned after the wait. */
static int tasks_become(int want)
{
    int n = count_tasks();
    for (int i = 0; i < 2000 && n != want; i++) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        n = count_tasks();
    }
    return n;
}

/* The thread count when it no longer changes (earlier tests' threads
 * reaped): two reads 20 ms apart agree, within 2 s. */
static int tasks_settled(void)
{
    int n = count_tasks();
    for (int i = 0; i < 100; i++) {
        struct timespec ms = { 0, 20000000 };
        nanosleep(&ms, NULL);
        int m = count_tasks();
        if (m == n)
            break;
        n = m;
    }
    return n;
}

static void test_first_record_inline(void **state)
{
    (void)state;
    /* A process's first record is in the file when the push returns, and
     * no thread was started for it; the second starts the thread. */
    make_dir("traces.jsonl");
    init_with(g_path, 0, 5000);
    int tasks = tasks_settled();
    assert_int_equal(xv_exp_push(rec(0, 0, 0)), 0);
    int seen[4] = { 0 };
    assert_int_equal(read_records(g_path, seen, 1, 4), 1);
    assert_int_equal(tasks_become(tasks), tasks);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.direct, 1);
    assert_int_equal(s.written, 1);
    assert_int_equal(xv_exp_push(rec(0, 1, 0)), 0);
    assert_int_equal(tasks_become(tasks + 1), tasks + 1);
    assert_int_equal(xv_exp_flush(10000), 0);
    xv_exp_shutdown();
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, 1, 4), 2);
    assert_all_once(seen, 2);
    rm_rf(g_dir);

    /* Another writer holds the lock: the first push must not wait for it
     * (the record goes to the thread, which writes it once the lock is free). */
    make_dir("traces.jsonl");
    init_with(g_path, 0, 5000);
    int lk = hold_lock(g_path);
    uint64_t t0 = xv_now_mono_ns();
    assert_int_equal(xv_exp_push(rec(0, 2, 0)), 0);
    assert_true((xv_now_mono_ns() - t0) / 1000000u < 2000);
    assert_int_equal(tasks_become(tasks + 1), tasks + 1);
    assert_int_equal(xv_exp_flush(50), XV_E_IO);   /* really pending */
    release_lock(lk);
    assert_int_equal(xv_exp_flush(10000), 0);
    xv_exp_shutdown();
    xv_exp_get_stats(&s);
    assert_int_equal(s.direct, 0);
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, 1, 4), 1);
    assert_int_equal(seen[2], 1);
    rm_rf(g_dir);
}

/* Text records (the agent's path: lines copied into the exporter's byte
 * FIFO) from two threads, 12,000 lines of 60 B to 3 KiB, ~18 MB: the FIFO
 * wraps at its end and early (back to its start once past its first
 * 64 KiB, XV_EXP_TEXT_SOFT) many times. Every line comes out once and
 * whole; its padding length is what the pusher wrote. */
#define TEXT_THREADS 2
#define TEXT_PUSH 6000

static size_t text_pad(int t, int i)
{
    return (size_t)((i * 37 + t * 11) % 3000);
}

static void *text_pusher(void *arg)
{
    int t = (int)(intptr_t)arg;
    static __thread char line[4096];
    char pad[3001];
    for (int i = 0; i < TEXT_PUSH; i++) {
        size_t n = text_pad(t, i);
        memset(pad, 'x', n);
        pad[n] = '\0';
        int len = snprintf(line, sizeof line,
                           "{\"a\":%d,\"b\":%d,\"text\":\"two\\nlines \\\"quoted\\\"\","
                           "\"pad\":\"%s\"}", t, i, pad);
        if (xv_exp_push_text(line, (size_t)len) != 0)
            return (void *)1;
        memset(line, '#', sizeof line); /* the exporter must have copied it */
    }
    return NULL;
}

static void test_text_fifo_order(void **state)
{
    (void)state;
    make_dir("traces.jsonl");
    init_with(g_path, 0, 0);
    pthread_t th[TEXT_THREADS];
    for (int t = 0; t < TEXT_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, text_pusher, (void *)(intptr_t)t), 0);
    for (int t = 0; t < TEXT_THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        assert_null(r);
    }
    assert_int_equal(xv_exp_flush(20000), 0);
    xv_exp_shutdown();
    static int seen[TEXT_THREADS * TEXT_PUSH];
    memset(seen, 0, sizeof seen);
    assert_int_equal(read_records(g_path, seen, TEXT_THREADS, TEXT_PUSH),
                     TEXT_THREADS * TEXT_PUSH);
    assert_all_once(seen, TEXT_THREADS * TEXT_PUSH);
    FILE *f = fopen(g_path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        int a = cJSON_GetObjectItem(o, "a")->valueint, b = cJSON_GetObjectItem(o, "b")->valueint;
        const char *pad = cJSON_GetObjectItem(o, "pad")->valuestring;
        assert_int_equal(strlen(pad), text_pad(a, b));
        assert_int_equal(strspn(pad, "x"), text_pad(a, b));
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.written, TEXT_THREADS * TEXT_PUSH);
    assert_int_equal(s.failed, 0);
    rm_rf(g_dir);
}

static void test_fifo_without_reader_never_blocks(void **state)
{
    (void)state;
    /* A FIFO nobody reads: opening it for writing would block forever;
     * the exporter must fail the record instead, on the direct path too. */
    make_dir("fifo");
    assert_int_equal(mkfifo(g_path, 0600), 0);
    init_with(g_path, 1, 500);
    uint64_t t0 = xv_now_mono_ns();
    for (int i = 0; i < 5; i++)
        xv_exp_push(rec(0, i, 0));
    assert_int_equal(xv_exp_flush(5000), XV_E_IO);   /* written: none */
    xv_exp_shutdown();
    assert_true((xv_now_mono_ns() - t0) / 1000000u < 3000);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.pushed, 5);
    assert_int_equal(s.failed, 5);
    assert_int_equal(s.written, 0);
    rm_rf(g_dir);
}

/* Whole file content in buf (NUL-terminated); its length. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return (size_t)n;
}

static void append_raw(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

/* The file append skips reading the last byte back only when the file is
 * exactly as its last batch left it: another writer's partial line after
 * our batch, or a file replaced by another of the same size, still gets its
 * newline before our next line; a file we left is not given an empty line. */
/* Append the record `line` as a batch of its own; then the whole
 * file must read `want`. */
static void append_expect(const char *line, const char *want)
{
    const char *lines[] = { line };
    size_t len = strlen(line), w = 0;
    char buf[256];
    assert_int_equal(xv_exp_file_append(g_path, lines, &len, 1, &w, 0), 0);
    assert_int_equal(w, 1);
    slurp(g_path, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_append_after_other_writers(void **state)
{
    (void)state;
    make_dir("traces.jsonl");
    unlink(g_path);
    append_expect("{\"a\":1}", "{\"a\":1}\n");
    append_expect("{\"a\":2}", "{\"a\":1}\n{\"a\":2}\n");
    /* another process's writer, killed mid-line */
    append_raw(g_path, "{\"cut");
    append_expect("{\"a\":3}", "{\"a\":1}\n{\"a\":2}\n{\"cut\n{\"a\":3}\n");
    /* rotated: a new file of the same size (30 bytes) ending mid-line */
    char old[600];
    snprintf(old, sizeof old, "%s.1", g_path);
    assert_int_equal(rename(g_path, old), 0);
    append_raw(g_path, "{\"other\":true}\n{\"cut2_xxxxxxxx");
    struct stat st;
    assert_int_equal(stat(g_path, &st), 0);
    assert_int_equal(st.st_size, 30);
    append_expect("{\"a\":1}", "{\"other\":true}\n{\"cut2_xxxxxxxx\n{\"a\":1}\n");
    /* a line appended whole by another writer: no empty line added */
    append_raw(g_path, "{\"b\":1}\n");
    append_expect("{\"a\":2}",
                  "{\"other\":true}\n{\"cut2_xxxxxxxx\n{\"a\":1}\n{\"b\":1}\n{\"a\":2}\n");
    unlink(g_path);
    unlink(old);
}

static void test_default_path_rule(void **state)
{
    (void)state;
    setenv("XENOVIA_TRACE_FILE", "/tmp/xv-env/t.jsonl", 1);
    assert_int_equal(xv_exp_init(NULL), 0);
    assert_string_equal(xv_exp_trace_path(), "/tmp/xv-env/t.jsonl");
    xv_exp_shutdown();
    unsetenv("XENOVIA_TRACE_FILE");
    setenv("XDG_STATE_HOME", "/tmp/xv-state", 1);
    assert_int_equal(xv_exp_init(NULL), 0);
    assert_string_equal(xv_exp_trace_path(), "/tmp/xv-state/xenovia/traces.jsonl");
    xv_exp_shutdown();
    setenv("XDG_STATE_HOME", "relative/ignored", 1);
    setenv("HOME", "/tmp/xv-home", 1);
    assert_int_equal(xv_exp_init(NULL), 0);
    assert_string_equal(xv_exp_trace_path(), "/tmp/xv-home/.local/state/xenovia/traces.jsonl");
    xv_exp_shutdown();
    /* init twice without shutdown is refused */
    assert_int_equal(xv_exp_init(NULL), 0);
    assert_int_equal(xv_exp_init(NULL), XV_E_STATE);
    xv_exp_shutdown();
}

/* ---- common/jsonw.c: records written as text, byte for byte what a tree
 * printed after the exporter's UTF-8 repair was (issue 9) ---- */
#include "xv_jsonw.h"

/* What the tree form produced for a string s[0..n): a C string (cut at its
 * NUL), repaired by xv_utf8_fix, printed by cJSON. */
static char *tree_string(const char *s, size_t n)
{
    char *c = strndup(s, n);
    size_t len = strlen(c);
    char *fixed = xv_utf8_valid(c, len) ? strdup(c) : xv_utf8_fix(c, len, 3 * len, NULL);
    cJSON *v = cJSON_CreateString(fixed);
    char *out = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    free(fixed);
    free(c);
    return out;
}

static void test_jsonw_writer(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } strs[] = {
        { "", 0 }, { "plain", 5 }, { "q\"b\\s\n\t\x01\x1f", 11 }, { "caf\xc3\xa9", 5 },
        { "bad \xff\xfe end", 10 }, { "cut \xc3", 5 }, { "\xed\xa0\x80 surrogate", 13 },
        { "before\0after", 12 }, { "\xf4\x90\x80\x80 past", 9 },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        struct xv_jw w;
        xv_jw_init(&w, 0);
        xv_jw_strn(&w, strs[i].s, strs[i].n);
        char *want = tree_string(strs[i].s, strs[i].n);
        size_t len = 0;
        char *got = xv_jw_steal(&w, &len);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(got);
        free(want);
    }
    /* members, nesting, numbers, commas; a tentative member rewound; an insert */
    struct xv_jw w;
    xv_jw_init(&w, 16); /* small: growth on the way */
    xv_jw_obj_begin(&w);
    xv_jw_kstr(&w, "a", "x");
    struct xv_jw_mark m = xv_jw_mark(&w);
    xv_jw_key(&w, "gone");
    xv_jw_obj_begin(&w);
    xv_jw_rewind(&w, m);
    xv_jw_key(&w, "n");
    xv_jw_arr_begin(&w);
    xv_jw_num(&w, 1);
    xv_jw_num(&w, 0.1);
    xv_jw_num(&w, 1e300);
    xv_jw_num(&w, NAN);
    xv_jw_null(&w);
    xv_jw_bool(&w, 0);
    xv_jw_arr_end(&w);
    size_t at = w.len;
    xv_jw_kbool(&w, "t", 1);
    xv_jw_insert(&w, at, ",\"i\":2", 6);
    xv_jw_obj_end(&w);
    assert_string_equal(w.p, "{\"a\":\"x\",\"n\":[1,0.1,1e+300,null,null,false],\"i\":2,"
                             "\"t\":true}");
    cJSON *back = cJSON_Parse(w.p);
    assert_non_null(back);
    cJSON_Delete(back);
    /* a capped capture: cut at a character boundary, flagged */
    xv_jw_reset(&w, 1 << 20);
    int cut = 0;
    xv_jw_strn_max(&w, "ab\xc3\xa9" "cd", 6, 3, &cut);
    assert_string_equal(w.p, "\"ab\"");
    assert_int_equal(cut, 1);
    xv_jw_free(&w);
}

/* ---- exp_json.c: byte for byte what cJSON_PrintUnformatted prints ---- */
char *xv_exp_json_print(const cJSON *item);

static void same_as_cjson(const cJSON *v)
{
    char *want = cJSON_PrintUnformatted(v);
    char *got = xv_exp_json_print(v);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

/* Issue 9: latencies are printed from integers (ns as ms) without printf;
 * the text must be byte for byte what the double's formatting gives. */
/* The writer's scan takes eight bytes at a time and the last eight again:
 * a byte that needs escaping (or UTF-8 checking) at every position of
 * every length up to 40, as a value and as a key, prints as cJSON does. */
static void test_jsonw_scan_boundaries(void **state)
{
    (void)state;
    static const char specials[] = { '"', '\\', '\n', 0x1f, 0x7f, (char)0xc3, (char)0xff };
    char s[48];
    for (size_t n = 0; n <= 40; n++) {
        for (size_t p = 0; p <= n; p++) {
            for (size_t k = 0; k < sizeof specials; k++) {
                memset(s, 'a' + (int)(n % 26), n);
                s[n] = '\0';
                if (p < n)
                    s[p] = specials[k];
                char *want = tree_string(s, n);
                struct xv_jw w;
                xv_jw_init(&w, 0);
                xv_jw_strn(&w, s, n);
                char *got = xv_jw_steal(&w, NULL);
                assert_non_null(got);
                assert_string_equal(got, want);
                free(got);
                xv_jw_init(&w, 0);
                xv_jw_obj_begin(&w);
                xv_jw_key(&w, s);
                xv_jw_null(&w);
                xv_jw_obj_end(&w);
                got = xv_jw_steal(&w, NULL);
                assert_non_null(got);
                assert_int_equal(got[0], '{');
                assert_memory_equal(got + 1, want, strlen(want));
                assert_string_equal(got + 1 + strlen(want), ":null}");
                free(got);
                free(want);
                if (p == n)
                    break; /* no special byte: one string per length */
            }
        }
    }
}

static void test_jsonw_scaled(void **state)
{
    (void)state;
    static const double p10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const uint64_t edge[] = {0, 1, 9, 10, 99, 100, 101, 999, 1000, 1001, 123456,
                                    1000000, 1234567, 999999999999999ull,
                                    1000000000000000ull, 1000000000000001ull,
                                    18446744073709551615ull};
    char a[40], b[40];
    for (int k = 0; k <= 6; k++) {
        for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 200000; i++) {
            uint64_t n;
            if (i < sizeof edge / sizeof edge[0]) {
                n = edge[i];
            } else {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                n = x >> (x % 64); /* every magnitude */
            }
            size_t la = xv_jw_format_scaled(n, k, a);
            size_t lb = xv_jw_format_number((double)n / p10[k], b);
            if (la != lb || memcmp(a, b, la) != 0)
                fail_msg("n=%llu k=%d: %.*s, want %.*s", (unsigned long long)n, k, (int)la, a,
                         (int)lb, b);
        }
    }
}

/* Decimals with up to six places and doubles near them: the writer prints
 * each exactly as cJSON's own printer does (its shortcut for n / 10^k must
 * never differ from "%1.15g", read back, else "%1.17g"). */
static void test_jsonw_decimals(void **state)
{
    (void)state;
    static const double p10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
    uint64_t x = 0xD1B54A32D192ED03ull;
    char a[40];
    for (int i = 0; i < 400000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)(x % 8);
        /* 1 to 15 digits, evenly, so the doubles next to n / 10^k (whose
         * scaled product can round to n) are as common as the decimals */
        static const uint64_t lim[16] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                         100000000, 1000000000, 10000000000ull,
                                         100000000000ull, 1000000000000ull,
                                         10000000000000ull, 100000000000000ull,
                                         1000000000000000ull};
        uint64_t n = (x >> 8) % lim[1 + (x >> 3) % 15];
        double d = (double)n / p10[k];
        switch ((x >> 59) & 7) {
        case 1: d = -d; break;
        case 2: d = nextafter(d, INFINITY); break; /* just off the decimal */
        case 3: d = nextafter(d, 0); break;
        case 4: d = -nextafter(nextafter(d, INFINITY), INFINITY); break;
        case 5: d = d * 1e-3; break;
        default: break;
        }
        cJSON *v = cJSON_CreateNumber(d);
        char *want = cJSON_PrintUnformatted(v);
        assert_non_null(want);
        size_t la = xv_jw_format_number(d, a);
        if (la != strlen(want) || memcmp(a, want, la) != 0)
            fail_msg("%.17g: %.*s, cJSON prints %s", d, (int)la, a, want);
        free(want);
        cJSON_Delete(v);
    }
}

static void test_json_print(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}", "[]", "null", "true", "false", "0", "-0", "1", "-1", "2147483647", "-2147483648",
        "2147483648", "-2147483649", "3000000000", "1e15", "123456789012345678",
        "0.1", "0.5", "1.5e-7", "3.141592653589793", "2.2250738585072014e-308", "1e308",
        "-1.7976931348623157e308", "123.456", "0.30000000000000004", "1234.5678e10",
        "\"\"", "\"a\\\"b\\\\c\\/d\"", "\"\\u0001\\u001f\\b\\f\\n\\r\\t x\"",
        "\"caf\u00e9 \u2603 \U0001F600\"",
        "{\"a\":[1,2,{\"b\":null,\"c\":[true,false]}],\"d\":\"e\",\"\":0.25}",
        "[[[[[[[[[[1]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *v = cJSON_Parse(docs[i]);
        assert_non_null(v);
        same_as_cjson(v);
        cJSON_Delete(v);
    }
    /* numbers that only exist as doubles, and control bytes in keys */
    cJSON *o = cJSON_CreateObject();
    unsigned seed = 12345;
    for (int i = 0; i < 2000; i++) {
        seed = seed * 1103515245u + 12345u;
        double d = (double)(int)seed / (double)(1 + (seed >> 20)) * ((i % 7) ? 1.0 : 1e12);
        char key[16];
        snprintf(key, sizeof key, "k%d\x01", i);
        cJSON_AddNumberToObject(o, key, d);
    }
    cJSON_AddItemToObject(o, "nan", cJSON_CreateNumber(NAN));
    cJSON_AddItemToObject(o, "raw", cJSON_CreateRaw("{\"pre\":1}"));
    cJSON_AddItemToObject(o, "nul", cJSON_CreateString(""));
    same_as_cjson(o);
    cJSON_Delete(o);
    /* a real trace record, when the source tree has one */
    const char *src = getenv("XV_TEST_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tools/tests/fixtures/traces.jsonl", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (f) {
        char line[65536];
        while (fgets(line, sizeof line, f)) {
            cJSON *r = cJSON_Parse(line);
            if (r) {
                same_as_cjson(r);
                cJSON_Delete(r);
            }
        }
        fclose(f);
    }
}

int main(void)
{
    /* What the preload does at load time. */
    pthread_atfork(xv_exp_atfork_prepare, xv_exp_atfork_parent, xv_exp_atfork_child);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_count_and_modes),
        cmocka_unit_test(test_json_print),
        cmocka_unit_test(test_jsonw_writer),
        cmocka_unit_test(test_jsonw_scan_boundaries),
        cmocka_unit_test(test_jsonw_scaled),
        cmocka_unit_test(test_jsonw_decimals),
        cmocka_unit_test(test_threads_all_once),
        cmocka_unit_test(test_tiny_queue_direct_path),
        cmocka_unit_test(test_first_record_inline),
        cmocka_unit_test(test_text_fifo_order),
        cmocka_unit_test(test_many_processes_one_file),
        cmocka_unit_test(test_fork_child_skips_parent_records),
        cmocka_unit_test(test_flush_timeout_and_stuck_shutdown),
        cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_fifo_without_reader_never_blocks),
        cmocka_unit_test(test_default_path_rule),
        cmocka_unit_test(test_append_after_other_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
