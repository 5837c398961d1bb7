/*
 * test_common_word.c — unit_common_word: xv_json_plain_len (common/xv_word.h),
 * the scan of every JSON string the agent parses, fingerprints or writes,
 * against the byte-at-a-time rule it stands for: for every byte value at
 * every position of strings of 0 to 70 bytes (the 16- and 8-byte steps and
 * the tail, each boundary crossed), and at every alignment of the start,
 * with and without the stop at bytes from 0x80.
 *
 * Thread safety: single-threaded cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "xv_word.h"

static size_t reference(const char *p, size_t n, int high)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == '"' || c == '\\' || (high && c >= 0x80))
            break;
        i++;
    }
    return i;
}

static void test_every_byte_every_position(void **state)
{
    (void)state;
    char buf[96];
    for (size_t align = 0; align < 8; align++) {
        char *p = buf + align;
        for (size_t n = 0; n <= 70; n++) {
            memset(buf, 'a', sizeof buf);
            assert_int_equal(xv_json_plain_len(p, n, 0), n);
            assert_int_equal(xv_json_plain_len(p, n, 1), n);
            for (size_t at = 0; at < n; at++) {
                for (int b = 0; b < 256; b++) {
                    p[at] = (char)b;
                    assert_int_equal(xv_json_plain_len(p, n, 0), reference(p, n, 0));
                    assert_int_equal(xv_json_plain_len(p, n, 1), reference(p, n, 1));
                }
                p[at] = 'a';
            }
        }
    }
}

/* The first of several stops is the one reported, whichever step finds it. */
static void test_first_of_several(void **state)
{
    (void)state;
    char s[64];
    memset(s, 'x', sizeof s);
    s[40] = '"';
    s[20] = '\n';
    s[33] = (char)0xC3;
    assert_int_equal(xv_json_plain_len(s, sizeof s, 0), 20);
    assert_int_equal(xv_json_plain_len(s + 21, sizeof s - 21, 0), 19);
    assert_int_equal(xv_json_plain_len(s + 21, sizeof s - 21, 1), 12);
    assert_int_equal(xv_json_plain_len(s + 41, sizeof s - 41, 1), sizeof s - 41);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_every_position),
        cmocka_unit_test(test_first_of_several),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
