/*
 * test_common_jsonw.c — unit_common_jsonw: the record writer's capped
 * capture (xv_jw_strn_max, common/jsonw.c) against the rule it replaced:
 * checking and repairing the whole string, then cutting it. It now reads at
 * most max + 4 bytes, and must write the same bytes and set the same flag.
 *
 * Thread safety: single-threaded cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_common.h"
#include "xv_jsonw.h"

/* What xv_jw_strn_max wrote when it checked the whole string (before it
 * looked only at max + 4 bytes): the reference it must equal. */
static char *strn_max_whole(const char *s, size_t n, size_t max, int *cut)
{
    struct xv_jw w;
    xv_jw_init(&w, 0);
    if (xv_utf8_valid(s, n)) {
        size_t k = xv_utf8_cut(s, n, max);
        if (k < n)
            *cut = 1;
        xv_jw_strn(&w, s, k);
    } else {
        char *t = xv_utf8_fix(s, n, max, cut);
        assert_non_null(t);
        xv_jw_str(&w, t);
        free(t);
    }
    return xv_jw_steal(&w, NULL);
}

/* A capped capture reads at most max + 4 bytes and writes what reading
 * all of them wrote: strings of 0-24 bytes drawn from ASCII, NUL, whole
 * and broken UTF-8 sequences, stray continuation and invalid bytes, at
 * every cap from 0 to past their length (and the flag alike). */
static void test_jsonw_cap_reads_ahead_little(void **state)
{
    (void)state;
    static const char *const pieces[] = { "a", "\"", "\0", "\xc3\xa9", "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\x80",
                                          "\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80" };
    static const size_t plen[] = { 1, 1, 1, 2, 3, 4, 1, 2, 1, 1, 3, 4 };
    uint32_t seed = 12345;
    char s[64];
    for (int round = 0; round < 4000; round++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        size_t parts = (seed >> 16) % 9;
        for (size_t i = 0; i < parts; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t k = (seed >> 16) % (sizeof plen / sizeof plen[0]);
            memcpy(s + n, pieces[k], plen[k]);
            n += plen[k];
        }
        for (size_t max = 0; max <= n + 2; max++) {
            int cut_want = 0, cut_got = 0;
            char *want = strn_max_whole(s, n, max, &cut_want);
            struct xv_jw w;
            xv_jw_init(&w, 0);
            xv_jw_strn_max(&w, s, n, max, &cut_got);
            char *got = xv_jw_steal(&w, NULL);
            assert_non_null(want);
            assert_non_null(got);
            if (strcmp(got, want) != 0 || cut_got != cut_want)
                fail_msg("round %d, %zu bytes, max %zu: got %s (cut %d), want %s (cut %d)",
                         round, n, max, got, cut_got, want, cut_want);
            free(want);
            free(got);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonw_cap_reads_ahead_little),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
