/*
 * test_common_sha256.c — unit tests for common/sha256.c: FIPS 180-4
 * vectors through both block functions (portable and SHA-NI), every split of
 * the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


#include "sha256.h"

#include <openssl/evp.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
int xv_sha256_impl_select(int impl);

static void sha_hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha256(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    int impls[2] = { 1, xv_sha256_impl_select(2) };
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    {
        /* the probe (glibc's record of the CPU where it has one) says what
         * CPUID says: SHA extensions with SSSE3 and SSE4.1 */
        unsigned a, b, c, d;
        int ni = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1) &&
                 __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
        assert_int_equal(xv_sha256_impl_select(0), ni ? 2 : 1);
        assert_int_equal(impls[1], ni ? 2 : 1);
    }
#endif
    for (int k = 0; k < 2; k++) {
        assert_int_equal(xv_sha256_impl_select(impls[k]), impls[k]);
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            struct sha256_ctx c;
            uint8_t d[32];
            char hex[65];
            size_t n = strlen(v[i].in);
            for (size_t cut = 0; cut <= n; cut++) {
                sha256_init(&c);
                sha256_update(&c, cut, (const uint8_t *)v[i].in);
                sha256_update(&c, n - cut, (const uint8_t *)v[i].in + cut);
                sha256_digest(&c, 32, d);
                sha_hex(d, hex);
                assert_string_equal(hex, v[i].hex);
            }
        }
        /* one million 'a' in uneven pieces */
        struct sha256_ctx c;
        uint8_t buf[1000], d[32];
        char hex[65];
        memset(buf, 'a', sizeof buf);
        sha256_init(&c);
        size_t done = 0, step = 1;
        while (done < 1000000) {
            size_t n = step < 1000000 - done ? step : 1000000 - done;
            sha256_update(&c, n, buf);
            done += n;
            step = step * 7 % 997 + 1;
        }
        sha256_digest(&c, 32, d);
        sha_hex(d, hex);
        assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    /* both block functions give OpenSSL's digest for every length up to
     * 300, whole or in two pieces (every padding case: the length in the
     * same block, in a block of its own) */
    {
        uint8_t in[300], want[32], got[32];
        for (size_t i = 0; i < sizeof in; i++)
            in[i] = (uint8_t)(i * 37 + 11);
        for (int k = 0; k < 2; k++) {
            xv_sha256_impl_select(impls[k]);
            for (size_t n = 0; n <= sizeof in; n++) {
                unsigned int wl = 0;
                assert_int_equal(EVP_Digest(in, n, want, &wl, EVP_sha256(), NULL), 1);
                assert_int_equal(wl, 32);
                struct sha256_ctx c;
                sha256_init(&c);
                sha256_update(&c, n / 3, in);
                sha256_update(&c, n - n / 3, in + n / 3);
                sha256_digest(&c, 32, got);
                assert_memory_equal(got, want, 32);
                /* and fed in pieces of every size up to 17 (the small-piece copy) */
                for (size_t piece = 1; piece <= 17; piece++) {
                    sha256_init(&c);
                    for (size_t at = 0; at < n; at += piece)
                        sha256_update(&c, n - at < piece ? n - at : piece, in + at);
                    sha256_digest(&c, 32, got);
                    assert_memory_equal(got, want, 32);
                }
            }
        }
    }
    /* the two block functions agree on every length up to 300 */
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof data; n++) {
        uint8_t d1[32], d2[32];
        struct sha256_ctx c;
        xv_sha256_impl_select(1);
        sha256_init(&c);
        sha256_update(&c, n, data);
        sha256_digest(&c, 32, d1);
        xv_sha256_impl_select(impls[1]);
        sha256_init(&c);
        sha256_update(&c, n, data);
        sha256_digest(&c, 32, d2);
        assert_memory_equal(d1, d2, 32);
    }
    xv_sha256_impl_select(0);
    /* HMAC-SHA-256, RFC 4231 test cases 1 and 6 (a key longer than a block) */
    struct hmac_sha256_ctx h;
    uint8_t key[131], mac[32];
    char hex[65];
    memset(key, 0x0b, 20);
    hmac_sha256_set_key(&h, 20, key);
    hmac_sha256_update(&h, 8, (const uint8_t *)"Hi There");
    hmac_sha256_digest(&h, 32, mac);
    sha_hex(mac, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    memset(key, 0xaa, sizeof key);
    static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_sha256_set_key(&h, sizeof key, key);
    hmac_sha256_update(&h, sizeof m6 - 1, (const uint8_t *)m6);
    hmac_sha256_digest(&h, 32, mac);
    sha_hex(mac, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* the context is reusable: the same message again gives the same MAC */
    hmac_sha256_update(&h, sizeof m6 - 1, (const uint8_t *)m6);
    hmac_sha256_digest(&h, 32, mac);
    sha_hex(mac, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}


/* --------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
