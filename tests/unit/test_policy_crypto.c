/*
 * test_policy_crypto.c — unit_policy_crypto: the policy engine's crypto/
 * and UTF-8 layers against published vectors, so a change of backend
 * (nettle/hogweed for MD5, SHA-1, SHA-384, SHA-512, HMAC and Ed25519; the
 * project's one SHA-256 from common/) shows up here before it shows up as a
 * conformance difference.
 *
 * Vectors: FIPS 180-4 / RFC 1321 ("abc"), RFC 2202 and RFC 4231 (HMAC,
 * including a key longer than the block), RFC 8032 section 7.1 test 1
 * (Ed25519). UTF-8: RFC 3629's invalid forms decode to U+FFFD one byte at a
 * time, as Go does.
 *
 * Thread safety: single-threaded cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "crypto/digest.h"
#include "crypto/pubkey.h"
#include "value/buf.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void unhex(const char *s, unsigned char *out)
{
    for (size_t i = 0; s[2 * i]; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void check_digest(enum xv_crypto_hash alg, const char *msg, const char *want)
{
    unsigned char d[XV_CRYPTO_SHA512_LEN];
    size_t n = 0;
    char got[2 * XV_CRYPTO_SHA512_LEN + 1];
    xv_crypto_digest(alg, msg, strlen(msg), d, &n);
    assert_int_equal(n * 2, strlen(want));
    hex(d, n, got);
    assert_string_equal(got, want);
}

static void test_digests(void **state)
{
    (void)state;
    check_digest(XV_CRYPTO_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72");
    check_digest(XV_CRYPTO_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_digest(XV_CRYPTO_SHA256, "abc",
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_digest(XV_CRYPTO_SHA384, "abc",
                 "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
                 "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    check_digest(XV_CRYPTO_SHA512, "abc",
                 "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    /* the one-shot SHA-256 entry point is the same function */
    unsigned char d[32];
    char got[65];
    xv_crypto_sha256("", 0, d);
    hex(d, 32, got);
    assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void check_hmac(enum xv_crypto_hash alg, const void *key, size_t kn, const char *msg,
                       const char *want)
{
    unsigned char d[XV_CRYPTO_SHA512_LEN];
    size_t n = 0;
    char got[2 * XV_CRYPTO_SHA512_LEN + 1];
    assert_int_equal(xv_crypto_hmac(alg, key, kn, msg, strlen(msg), d, &n), 0);
    hex(d, n, got);
    assert_string_equal(got, want);
}

static void test_hmac(void **state)
{
    (void)state;
    const char *jefe = "Jefe", *m = "what do ya want for nothing?";
    check_hmac(XV_CRYPTO_MD5, jefe, 4, m, "750c783e6ab0b503eaa86e310a5db738");
    check_hmac(XV_CRYPTO_SHA1, jefe, 4, m, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    check_hmac(XV_CRYPTO_SHA256, jefe, 4, m,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    check_hmac(XV_CRYPTO_SHA512, jefe, 4, m,
               "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
               "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    /* RFC 4231 case 6: a key longer than the block is hashed first */
    unsigned char big[131];
    memset(big, 0xaa, sizeof big);
    check_hmac(XV_CRYPTO_SHA256, big, sizeof big,
               "Test Using Larger Than Block-Size Key - Hash Key First",
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_ed25519(void **state)
{
    (void)state;
    unsigned char seed[32], pub[32], want[64], sig[64];
    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed);
    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub);
    unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
          "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
          want);
    assert_int_equal(xv_crypto_ed25519_sign(seed, "", 0, sig), 0);
    assert_memory_equal(sig, want, 64);
    assert_true(xv_crypto_ed25519_verify(pub, "", 0, sig));
    sig[10] ^= 1;
    assert_false(xv_crypto_ed25519_verify(pub, "", 0, sig));
    sig[10] ^= 1;
    assert_false(xv_crypto_ed25519_verify(pub, "x", 1, sig));
}

static void check_decode(const char *s, size_t n, uint32_t want_cp, size_t want_len)
{
    uint32_t cp = 0;
    assert_int_equal(xv_val_utf8_decode(s, n, &cp), want_len);
    assert_int_equal(cp, want_cp);
}

static void test_utf8(void **state)
{
    (void)state;
    check_decode("A", 1, 'A', 1);
    check_decode("\xE2\x82\xAC", 3, 0x20AC, 3);           /* euro sign */
    check_decode("\xF0\x9F\x98\x80", 4, 0x1F600, 4);      /* U+1F600 */
    check_decode("\xC0\x80", 2, XV_VAL_RUNE_ERROR, 1);     /* overlong NUL */
    check_decode("\xED\xA0\x80", 3, XV_VAL_RUNE_ERROR, 1); /* surrogate */
    check_decode("\xF4\x90\x80\x80", 4, XV_VAL_RUNE_ERROR, 1); /* past U+10FFFF */
    check_decode("\xE2\x82", 2, XV_VAL_RUNE_ERROR, 1);     /* truncated */
    check_decode("\xEF\xBF\xBD", 3, 0xFFFD, 3);            /* a real U+FFFD */
    assert_int_equal(xv_val_utf8_count("a\xE2\x82\xAC\xC0", 5), 3);
    assert_int_equal(xv_val_utf8_offset("a\xE2\x82\xAC" "b", 5, 2), 4);
    assert_true(xv_val_utf8_valid("a\xE2\x82\xAC", 4));
    assert_false(xv_val_utf8_valid("a\xED\xA0\x80", 4));
    size_t i = 0;
    assert_int_equal(xv_val_utf8_next("\xE2\x82\xAC" "b", 4, &i), 0x20AC);
    assert_int_equal(i, 3);
    char out[4];
    assert_int_equal(xv_val_utf8_encode(0xD800, out), 3); /* surrogate -> U+FFFD */
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
