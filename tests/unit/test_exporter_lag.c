/*
 * test_exporter_lag.c — the exporter when its thread lags (exporter.c,
 * help_locked): at idle priority on a CPU the application keeps busy the
 * thread may not run at all, and the pushing threads then append the
 * oldest batch themselves. Each test pins the process to one CPU and pushes
 * records in a tight loop, so the thread cannot keep up; the file must
 * still hold every record once, in push order, and no record may take the
 * one-by-one direct path a full queue used to send them down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_exporter.h"
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

#define LAG_RECORDS 6000   /* more than the default queue (4096) */
#define LAG_PAD 900        /* ~1 KB a record: 6 MB, past the 1 MiB byte FIFO */

static char g_dir[256];
static char g_path[512];

/* The process on one CPU of those it may use: the pusher then keeps the
 * only CPU the idle-priority thread could run on. */
static void one_cpu(void)
{
    cpu_set_t set, one;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
}

static void start(void)
{
    assert_non_null(xv_test_mkdtemp(g_dir, sizeof g_dir, "xvlag-"));
    snprintf(g_path, sizeof g_path, "%s/traces.jsonl", g_dir);
    struct xv_exp_config cfg = { .trace_file = g_path };
    assert_int_equal(xv_exp_init(&cfg), 0);
}

/* Push records 0..n-1 as JSON lines {"seq":i,"pad":"xx…"} (the agent's
 * way: text the exporter copies into its byte FIFO). */
static void push_all(int n)
{
    static char line[LAG_PAD + 64];
    for (int i = 0; i < n; i++) {
        int k = snprintf(line, sizeof line, "{\"seq\":%d,\"pad\":\"", i);
        size_t pad = LAG_PAD - (size_t)(i % 97) * 7; /* lengths vary */
        memset(line + k, 'x', pad);
        memcpy(line + k + pad, "\"}", 3);
        assert_int_equal(xv_exp_push_text(line, (size_t)k + pad + 2), 0);
    }
}

/* Every line is record i, i = 0, 1, …, n-1 in that order, whole. */
static void assert_in_order(int n)
{
    FILE *f = fopen(g_path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int i = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        int seq = -1, at = 0;
        if (sscanf(line, "{\"seq\":%d,\"pad\":\"%n", &seq, &at) != 1 || at == 0)
            fail_msg("line %d malformed: %.60s", i + 1, line);
        if (seq != i)
            fail_msg("line %d holds record %d", i + 1, seq);
        size_t pad = LAG_PAD - (size_t)(i % 97) * 7;
        assert_int_equal(strspn(line + at, "x"), pad);
        assert_string_equal(line + at + pad, "\"}\n");
        i++;
    }
    free(line);
    fclose(f);
    assert_int_equal(i, n);
}

static void test_lagging_thread_is_helped(void **state)
{
    (void)state;
    one_cpu();
    start();
    push_all(LAG_RECORDS);
    assert_int_equal(xv_exp_flush(30000), 0);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    xv_exp_shutdown();
    assert_in_order(LAG_RECORDS);
    assert_int_equal(s.written, LAG_RECORDS);
    assert_int_equal(s.failed, 0);
    /* the pusher appended batches (the thread had no CPU to run on) ... */
    assert_true(s.helped > 0);
    /* ... and no record went down the one-by-one path of a full queue
     * (the first record of a process is written by its pusher anyway) */
    assert_true(s.direct <= 1);
    assert_int_equal(xv_test_rmdir(g_dir), 0);
}

/* Another process holds the trace file's lock: the pusher's append, which
 * never waits, puts its batch back at the head of the queue, and the
 * order survives; once the lock is free everything is written. */
static void test_helper_puts_batch_back(void **state)
{
    (void)state;
    one_cpu();
    start();
    int fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    push_all(1000);
    struct xv_exp_stats s;
    xv_exp_get_stats(&s);
    assert_int_equal(s.written, 0);   /* nothing could be written yet */
    assert_int_equal(s.helped, 0);
    flock(fd, LOCK_UN);
    close(fd);
    assert_int_equal(xv_exp_flush(30000), 0);
    xv_exp_get_stats(&s);
    xv_exp_shutdown();
    assert_in_order(1000);
    assert_int_equal(s.written, 1000);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.direct, 0);
    assert_int_equal(xv_test_rmdir(g_dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lagging_thread_is_helped),
        cmocka_unit_test(test_helper_puts_batch_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
