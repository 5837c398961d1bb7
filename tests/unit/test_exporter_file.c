/*
 * test_exporter_file.c — unit_exporter_file: the trace file's batch append
 * (exporter/exp_file.c, xv_exp_file_append) with lines of both kinds: a
 * queued line that carries its own '\n' (the exporter's byte FIFO stores
 * each line followed by it, end to end, and the append merges such runs
 * into one iovec), and a line without one (a record written directly, a
 * printed tree), which gets a separate "\n". Whatever the mix, the file must
 * hold every line once, in order, each ended by exactly one '\n' — also
 * across the iovec array's capacity, where one kind takes one slot and the
 * other two.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../exporter/exp_internal.h" /* xv_exp_file_append */
#include "xv_common.h"
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

#define NLINES 300

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0)
        len += r;
    fclose(f);
    *n = len;
    return buf;
}

/* Line i's text: {"i":I,"p":"xx…"} with a length that varies with i. */
static size_t line_text(int i, char *out, size_t cap)
{
    char pad[200];
    size_t np = (size_t)(i * 37 % 150);
    memset(pad, 'x', np);
    pad[np] = '\0';
    int n = snprintf(out, cap, "{\"i\":%d,\"p\":\"%s\"}", i, pad);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* Lines 0..NLINES-1 in one batch: mostly stored end to end in one arena
 * with their '\n' (mergeable runs, broken by a line of the other kind every
 * few lines and by gaps), and the file must read them back exactly. */
static void test_mixed_batch(void **state)
{
    (void)state;
    char dir[256], path[512];
    assert_non_null(xv_test_mkdtemp(dir, sizeof dir, "xvfile-"));
    snprintf(path, sizeof path, "%s/traces.jsonl", dir);

    char *arena = malloc(NLINES * 256);
    char *solo[NLINES] = { 0 };
    const char *lines[NLINES];
    size_t lens[NLINES];
    char *want = malloc(NLINES * 256);
    assert_non_null(arena);
    assert_non_null(want);
    size_t at = 0, wlen = 0;
    for (int i = 0; i < NLINES; i++) {
        char t[256];
        size_t n = line_text(i, t, sizeof t);
        memcpy(want + wlen, t, n);
        want[wlen + n] = '\n';
        wlen += n + 1;
        if (i % 7 == 3) {                  /* no '\n' of its own: its own buffer */
            solo[i] = malloc(n + 1);
            assert_non_null(solo[i]);
            memcpy(solo[i], t, n + 1);
            lines[i] = solo[i];
            lens[i] = n;
            continue;
        }
        if (i % 11 == 5)
            at += 3;                       /* a gap: not adjacent to the previous run */
        memcpy(arena + at, t, n);
        arena[at + n] = '\n';
        lines[i] = arena + at;
        lens[i] = n + 1;                   /* with its '\n' */
        at += n + 1;
    }
    size_t written = 0;
    assert_int_equal(xv_exp_file_append(path, lines, lens, NLINES, &written, 0), 0);
    assert_int_equal(written, NLINES);
    size_t got_len;
    char *got = slurp(path, &got_len);
    assert_int_equal(got_len, wlen);
    assert_memory_equal(got, want, wlen);

    /* A second batch of only merged lines follows the first exactly. */
    size_t more = 0;
    assert_int_equal(xv_exp_file_append(path, lines, lens, 2, &more, 0), 0);
    assert_int_equal(more, 2);
    free(got);
    got = slurp(path, &got_len);
    size_t l0 = strlen("{\"i\":0,\"p\":\"\"}") + 1;
    assert_int_equal(got_len, wlen + l0 + lens[1]);
    assert_memory_equal(got + wlen, "{\"i\":0,\"p\":\"\"}\n", l0);

    free(got);
    for (int i = 0; i < NLINES; i++)
        free(solo[i]);
    free(arena);
    free(want);
    unlink(path);
    assert_int_equal(xv_test_rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
