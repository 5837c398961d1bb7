/*
 * test_common.c — common/'s UUID generator and parser (uuid.c): every id is
 * a hyphenated lower-case RFC 4122 v4 UUID, ids do not repeat (within a
 * thread, across threads, across fork), and every valid spelling an app may
 * send normalises to the canonical text while invalid ones are refused;
 * the knob table (knobs.c): consistent rows, bounds and spellings; and the
 * byte helpers (bytes.c).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "xv_common.h"
#include "xv_knobs.h"

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, XV_UUID_LEN + 1);
}

static void test_v4_format_and_unique(void **state)
{
    (void)state;
    enum { N = 50000 };
    char(*ids)[XV_UUID_LEN + 1] = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        xv_uuid_v4(ids[i]);
        assert_int_equal(strlen(ids[i]), XV_UUID_LEN);
        assert_true(xv_uuid_is_v4(ids[i], XV_UUID_LEN));
    }
    qsort(ids, N, sizeof *ids, cmp_id);
    for (int i = 1; i < N; i++)
        assert_int_not_equal(memcmp(ids[i - 1], ids[i], XV_UUID_LEN), 0);
    free(ids);
}

static void *draw_one(void *arg)
{
    xv_uuid_v4(arg);
    return NULL;
}

static void test_threads_differ(void **state)
{
    (void)state;
    char a[XV_UUID_LEN + 1], b[XV_UUID_LEN + 1];
    pthread_t t1, t2;
    pthread_create(&t1, NULL, draw_one, a);
    pthread_join(t1, NULL);
    pthread_create(&t2, NULL, draw_one, b);
    pthread_join(t2, NULL);
    assert_true(xv_uuid_is_v4(a, XV_UUID_LEN));
    assert_string_not_equal(a, b);
}

/* A fork child must not draw the ids its parent draws next. */
static void test_fork_reseeds(void **state)
{
    (void)state;
    char warm[XV_UUID_LEN + 1];
    xv_uuid_v4(warm); /* this thread's generator is seeded */
    char dec[32];
    size_t dn = 0;
    assert_int_equal(xv_pct_decode("a%20b+c%2C%zz", 13, dec, &dn, 0), 0);   /* lenient */
    assert_string_equal(dec, "a b+c,%zz");
    assert_int_equal(dn, 9);
    assert_int_equal(xv_pct_decode("a%2", 3, dec, &dn, 1), XV_E_PARSE);   /* strict */
    assert_int_equal(xv_pct_decode("%e2%82%ac", 9, dec, &dn, 1), 0);
    assert_string_equal(dec, "\xe2\x82\xac");

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[XV_UUID_LEN + 1];
        xv_uuid_v4(id);
        ssize_t w = write(fds[1], id, XV_UUID_LEN);
        _exit(w == XV_UUID_LEN ? 0 : 1);
    }
    char mine[XV_UUID_LEN + 1], theirs[XV_UUID_LEN + 1] = "";
    xv_uuid_v4(mine);
    assert_int_equal(read(fds[0], theirs, XV_UUID_LEN), XV_UUID_LEN);
    theirs[XV_UUID_LEN] = '\0';
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(xv_uuid_is_v4(theirs, XV_UUID_LEN));
    assert_string_not_equal(mine, theirs);
    close(fds[0]);
    close(fds[1]);
}

static void test_normalize_spellings(void **state)
{
    (void)state;
    const char *want = "123e4567-e89b-42d3-a456-426614174000";
    const char *good[] = {
        "123e4567-e89b-42d3-a456-426614174000", "123E4567-E89B-42D3-A456-426614174000",
        "123e4567e89b42d3a456426614174000",     "{123e4567-e89b-42d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-42d3-a456-426614174000",
        "URN:UUID:123E4567-E89B-42D3-A456-426614174000",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char out[XV_UUID_LEN + 1];
        assert_int_equal(xv_uuid_normalize(good[i], strlen(good[i]), out), 0);
        assert_string_equal(out, want);
    }
    const char *bad[] = {
        "", "not-a-uuid", "123e4567-e89b-42d3-a456-42661417400",
        "123e4567-e89b-42d3-a456_426614174000", "{123e4567e89b42d3a456426614174000}",
        "123e4567e89b42d3a45642661417400g", "urn:uuid:123e4567e89b42d3a456426614174000",
        "{123e4567-e89b-42d3-a456-426614174000", " 123e4567-e89b-42d3-a456-426614174000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[XV_UUID_LEN + 1];
        assert_int_not_equal(xv_uuid_normalize(bad[i], strlen(bad[i]), out), 0);
        assert_string_equal(out, "");
    }
    /* is_v4 wants the canonical v4 text only */
    assert_true(xv_uuid_is_v4(want, strlen(want)));
    assert_false(xv_uuid_is_v4("123E4567-E89B-42D3-A456-426614174000", 36));
    assert_false(xv_uuid_is_v4("123e4567-e89b-12d3-a456-426614174000", 36)); /* v1 */
    assert_false(xv_uuid_is_v4("123e4567-e89b-42d3-c456-426614174000", 36)); /* variant */
}

/* The knob table (common/xv_knobs.def) is consistent with itself: names
 * unique and found, defaults acceptable, bounds and spellings judged right. */
static void test_knob_table(void **state)
{
    (void)state;
    char buf[256];
    for (size_t i = 0; i < XV_KNOB_COUNT; i++) {
        const struct xv_knob *k = &xv_knobs[i];
        assert_ptr_equal(xv_knob_by_env(xv_knob_env(k)), k);
        assert_ptr_equal(xv_knob_by_flag(xv_knob_flag(k), strlen(xv_knob_flag(k))), k);
        assert_true(xv_knob_help(k) && *xv_knob_help(k) && xv_knob_doc(k) && *xv_knob_doc(k));
        xv_knob_default(k, buf, sizeof buf);
        assert_true(buf[0] != '\0');
        uint64_t v = 12345;
        if (k->kind == XV_KNOB_UINT) {
            assert_true(k->min <= k->def && k->def <= k->max);
            assert_int_equal(xv_knob_check(k, buf, &v), 0);
            assert_true(v == k->def);
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)k->max + 1);
            assert_int_equal(xv_knob_check(k, buf, &v), -1);
            assert_true(v == k->def);
        } else if (k->kind == XV_KNOB_LINE) {
            assert_true(k->max > 0);
            assert_int_equal(xv_knob_check(k, "a\tb", NULL), 0);
            assert_int_equal(xv_knob_check(k, "a\r\nb", NULL), -1);
        } else if (k->kind != XV_KNOB_TEXT) {
            assert_int_equal(xv_knob_check(k, buf, &v), 0);   /* the default's own word */
            assert_true(v == k->def);
            assert_int_equal(xv_knob_check(k, "no-such-word", NULL), -1);
        }
    }
    const struct xv_knob *t = &xv_knobs[XV_KNOB_POLICY_TIMEOUT_MS];
    assert_int_equal(xv_knob_check(t, "0", NULL), -1);
    assert_int_equal(xv_knob_check(t, "1", NULL), 0);
    assert_int_equal(xv_knob_check(t, "60000", NULL), 0);
    assert_int_equal(xv_knob_check(t, "60001", NULL), -1);
    assert_int_equal(xv_knob_check(t, "+5", NULL), -1);
    assert_int_equal(xv_knob_check(t, " 5", NULL), -1);
    assert_int_equal(xv_knob_check(t, "99999999999999999999999", NULL), -1);
    uint64_t v;
    assert_int_equal(xv_knob_check(&xv_knobs[XV_KNOB_STAMP], "Yes", &v), 0);
    assert_true(v == 1);
    assert_int_equal(xv_knob_check(&xv_knobs[XV_KNOB_STAMP], "OFF", &v), 0);
    assert_true(v == 0);
    assert_int_equal(xv_knob_check(&xv_knobs[XV_KNOB_RECORD_MODE], "NONE", &v), 0);
    assert_true(v == 2);
    xv_knob_expect(&xv_knobs[XV_KNOB_LOG_LEVEL], buf, sizeof buf);
    assert_string_equal(buf, "error, warn, info or debug");
    assert_null(xv_knob_by_env("XENOVIA_NO_SUCH_KNOB"));
    /* reading: unset → default (0), bad → default (-1), good → value (1) */
    unsetenv("XENOVIA_SESSION_MAX");
    assert_int_equal(xv_knob_get_num(XV_KNOB_SESSION_MAX, &v), 0);
    assert_true(v == 10000);
    setenv("XENOVIA_SESSION_MAX", "15", 1);
    xv_log_set_level(-1);
    assert_int_equal(xv_knob_get_num(XV_KNOB_SESSION_MAX, &v), -1);
    assert_true(v == 10000);
    setenv("XENOVIA_SESSION_MAX", "16", 1);
    assert_int_equal(xv_knob_get_num(XV_KNOB_SESSION_MAX, &v), 1);
    assert_true(v == 16);
    unsetenv("XENOVIA_SESSION_MAX");
}

static void same_as_glibc(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *mine = xv_secure_getenv(names[i]), *glibc = secure_getenv(names[i]);
        if (!glibc)
            assert_null(mine);
        else
            assert_string_equal(mine, glibc);
    }
}

/* xv_secure_getenv gives glibc's answer: the first "NAME=" entry, the
 * whole name only, an empty value as "", NULL when unset. */
static void test_secure_getenv(void **state)
{
    (void)state;
    assert_int_equal(setenv("XV_TEST_ENV", "one", 1), 0);
    assert_int_equal(setenv("XV_TEST_ENV_LONGER", "two", 1), 0);
    assert_int_equal(setenv("XV_TEST_EMPTY", "", 1), 0);
    unsetenv("XV_TEST_ENV_UNSET");
    const char *names[] = { "XV_TEST_ENV", "XV_TEST_ENV_LONGER", "XV_TEST_EMPTY",
                            "XV_TEST_ENV_UNSET", "XV_TEST", "XV_TEST_ENV_LONGE", "PATH", "" };
    same_as_glibc(names, sizeof names / sizeof names[0]);
    assert_string_equal(xv_secure_getenv("XV_TEST_ENV"), "one");
    assert_string_equal(xv_secure_getenv("XV_TEST_EMPTY"), "");
    assert_null(xv_secure_getenv("XV_TEST"));
    assert_null(xv_secure_getenv(NULL));
    unsetenv("XV_TEST_ENV");
    assert_null(xv_secure_getenv("XV_TEST_ENV"));
    assert_string_equal(xv_secure_getenv("XV_TEST_ENV_LONGER"), "two");
    unsetenv("XV_TEST_ENV_LONGER");
    unsetenv("XV_TEST_EMPTY");
}

/* The start-up index of XENOVIA_* and OTEL_* entries gives the same answers
 * as the scan, for names inside and outside it, prefixes and near misses;
 * a variable added meanwhile (a new environ array) is still found; with
 * more entries than it holds, lookups scan (and still answer right). */
static void test_env_index(void **state)
{
    (void)state;
    assert_int_equal(setenv("XENOVIA_XVT_A", "a", 1), 0);
    assert_int_equal(setenv("XENOVIA_XVT_AB", "ab", 1), 0);
    assert_int_equal(setenv("XENOVIA_XVT_EMPTY", "", 1), 0);
    assert_int_equal(setenv("OTEL_XVT_X", "x", 1), 0);
    assert_int_equal(setenv("XVT_OTHER", "o", 1), 0);
    const char *names[] = { "XENOVIA_XVT_A", "XENOVIA_XVT_AB", "XENOVIA_XVT_EMPTY", "XENOVIA_XVT",
                            "XENOVIA_XVT_ABC", "XENOVIA_", "OTEL_XVT_X", "OTEL_XVT", "XVT_OTHER",
                            "PATH", "X", "O", "" };
    for (int round = 0; round < 2; round++) {
        xv_env_index_begin();
        same_as_glibc(names, sizeof names / sizeof names[0]);
        assert_int_equal(setenv("XENOVIA_XVT_LATE", "late", 1), 0);
        assert_string_equal(xv_secure_getenv("XENOVIA_XVT_LATE"), "late");
        assert_string_equal(xv_secure_getenv("XVT_OTHER"), "o"); /* not indexed: live */
        xv_env_index_end();
        assert_string_equal(xv_secure_getenv("XENOVIA_XVT_LATE"), "late");
        unsetenv("XENOVIA_XVT_LATE");
        for (int k = 0; round == 0 && k < 40; k++) {
            char n[32];
            snprintf(n, sizeof n, "XENOVIA_XVT_MANY%d", k);
            assert_int_equal(setenv(n, "m", 1), 0);
        }
    }
    for (int k = 0; k < 40; k++) {
        char n[32];
        snprintf(n, sizeof n, "XENOVIA_XVT_MANY%d", k);
        unsetenv(n);
    }
    unsetenv("XENOVIA_XVT_A");
    unsetenv("XENOVIA_XVT_AB");
    unsetenv("XENOVIA_XVT_EMPTY");
    unsetenv("OTEL_XVT_X");
    unsetenv("XVT_OTHER");
}

static void test_bytes_helpers(void **state)
{
    (void)state;
    char hex[9];
    xv_hex_encode("\x00\x9f\xa0\xff", 4, hex);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(xv_hex_value('7'), 7);
    assert_int_equal(xv_hex_value('b'), 11);
    assert_int_equal(xv_hex_value('F'), 15);
    assert_int_equal(xv_hex_value('g'), -1);
    assert_int_equal(xv_hex_value(0), -1);

    char dec[32];
    size_t dn = 0;
    assert_int_equal(xv_pct_decode("a%20b+c%2C%zz", 13, dec, &dn, 0), 0);   /* lenient */
    assert_string_equal(dec, "a b+c,%zz");
    assert_int_equal(dn, 9);
    assert_int_equal(xv_pct_decode("a%2", 3, dec, &dn, 1), XV_E_PARSE);   /* strict */
    assert_int_equal(xv_pct_decode("%e2%82%ac", 9, dec, &dn, 1), 0);
    assert_string_equal(dec, "\xe2\x82\xac");

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(xv_write_all(fds[1], "hello", 5), 0);
    char got[8] = "";
    assert_int_equal(read(fds[0], got, sizeof got), 5);
    assert_memory_equal(got, "hello", 5);
    close(fds[0]);
    assert_int_equal(xv_write_all(fds[1], "x", 1), -EPIPE);   /* reader gone (SIGPIPE ignored) */
    close(fds[1]);

    char path[] = "/tmp/xv-bytes-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = 99;
    char *t = xv_file_read(path, 16, &len);                   /* empty file: "" */
    assert_non_null(t);
    assert_int_equal(len, 0);
    assert_string_equal(t, "");
    free(t);
    assert_int_equal(xv_write_all(fd, "0123456789abcdef", 16), 0);
    close(fd);
    t = xv_file_read(path, 16, &len);
    assert_non_null(t);
    assert_int_equal(len, 16);
    assert_string_equal(t, "0123456789abcdef");
    free(t);
    errno = 0;
    assert_null(xv_file_read(path, 15, &len));               /* one byte over the bound */
    assert_int_equal(errno, EFBIG);
    unlink(path);
    assert_null(xv_file_read(path, 16, &len));
    assert_int_equal(errno, ENOENT);
}

/* xv_buf_append_header: the same bytes as the printf it replaced, and
 * nothing appended when the line would pass the buffer's limit. */
static void test_buf_append_header(void **state)
{
    (void)state;
    static const char *const vals[] = { "", "x", "6cc0af7c-6cdd-4de6-87fb-df6d8c6b94d3" };
    for (size_t i = 0; i < 3; i++)
        for (int crlf = 0; crlf < 2; crlf++) {
            const char *eol = crlf ? "\r\n" : "\n";
            struct xv_buf a, b;
            xv_buf_init(&a, 1 << 20);
            xv_buf_init(&b, 1 << 20);
            assert_int_equal(xv_buf_append(&a, "GET / HTTP/1.1\r\n", 16), 0);
            assert_int_equal(xv_buf_append(&b, "GET / HTTP/1.1\r\n", 16), 0);
            assert_int_equal(xv_buf_append_header(&a, "X-Xenovia-Trace-Id", vals[i], eol), 0);
            assert_int_equal(xv_buf_appendf(&b, "X-Xenovia-Trace-Id: %s%s", vals[i], eol), 0);
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.data, b.data, a.len + 1); /* NUL-terminated too */
            xv_buf_free(&a);
            xv_buf_free(&b);
        }
    struct xv_buf c;
    xv_buf_init(&c, 20);
    assert_int_equal(xv_buf_append(&c, "0123456789", 10), 0);
    assert_int_equal(xv_buf_append_header(&c, "Name", "value", "\r\n"), XV_E_LIMIT); /* 23 > 20 */
    assert_int_equal(c.len, 10);
    assert_int_equal(xv_buf_append_header(&c, "N", "v", "\r\n"), 0); /* 16 <= 20 */
    assert_int_equal(c.len, 16);
    assert_string_equal(c.data, "0123456789N: v\r\n");
    xv_buf_free(&c);
}

/* Pages of base resident per mincore: 1 page i is, 0 is not. */
static int resident(const char *base, size_t page, size_t i)
{
    unsigned char v = 0;
    assert_int_equal(mincore((void *)(base + i * page), page, &v), 0);
    return v & 1;
}

/* xv_ready_ahead: pages become resident before their first touch, a step
 * ahead of what is needed, the step doubling up to its cap and the range
 * ending at `total`; errno untouched. */
static void test_ready_ahead(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), total = 64 * page;
    char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    struct xv_ready r = { 0, 0 };
    errno = 1234;
    xv_ready_ahead(base, total, 100, 4 * page, &r);
    assert_int_equal(errno, 1234);
    if (r.ready == SIZE_MAX) {
        printf("skipped: MADV_POPULATE_WRITE refused by this kernel (< 5.14)\n");
        munmap(base, total);
        return;
    }
    assert_int_equal(r.ready, 100 + page);        /* one page ahead at first */
    assert_true(resident(base, page, 0) && resident(base, page, 1));
    assert_false(resident(base, page, 2));
    xv_ready_ahead(base, total, 50, 4 * page, &r); /* already there: nothing */
    assert_int_equal(r.ready, 100 + page);
    size_t need = 10 * page + 1;
    xv_ready_ahead(base, total, need, 4 * page, &r);
    assert_int_equal(r.ready, need + 2 * page);   /* the step doubled */
    for (size_t i = 0; i * page < r.ready; i++)
        assert_true(resident(base, page, i));
    assert_false(resident(base, page, (r.ready + page - 1) / page));
    for (int k = 0; k < 4; k++)                   /* doubling stops at the cap */
        xv_ready_ahead(base, total, r.ready + 1, 4 * page, &r);
    assert_int_equal(r.step, 4 * page);
    xv_ready_ahead(base, total, total - 1, 4 * page, &r);
    assert_int_equal(r.ready, total);             /* never past the end */
    for (size_t i = 0; i < 64; i++)
        assert_true(resident(base, page, i));
    munmap(base, total);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_format_and_unique),
        cmocka_unit_test(test_threads_differ),
        cmocka_unit_test(test_fork_reseeds),
        cmocka_unit_test(test_normalize_spellings),
        cmocka_unit_test(test_knob_table),
        cmocka_unit_test(test_secure_getenv),
        cmocka_unit_test(test_env_index),
        cmocka_unit_test(test_bytes_helpers),
        cmocka_unit_test(test_buf_append_header),
        cmocka_unit_test(test_ready_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
