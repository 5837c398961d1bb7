/*
 * common/sha256.h — the project's one SHA-256 (FIPS 180-4): session
 * digests, cassette keys and the policy engine's SHA-256, with the
 * spelling of nettle's <nettle/sha2.h> and <nettle/hmac.h> that canon.c was
 * written against (struct sha256_ctx, sha256_init/update/digest,
 * hmac_sha256_set_key/update/digest as macros over xv_…).
 *
 * Why not nettle: linking libnettle (shared or static) runs its CPU-feature
 * probe (several CPUID instructions, each a VM exit) in a constructor of
 * every process started under the agent — it was the most expensive
 * library at start (~0.09 ms of /bin/true's CPU here, issue 9). Here the
 * SHA extensions are probed once, at the first digest.
 *
 * A context may be copied by value (a snapshot) and both copies continued.
 * Thread safety: a context belongs to one thread; the functions keep no
 * other state than the once-probed CPU feature (atomic).
 */
#ifndef XV_SHA256_H
#define XV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define XV_SHA256_DIGEST_SIZE 32

struct sha256_ctx {
    uint32_t state[8];      /* H0..H7 */
    uint64_t count;         /* blocks compressed so far */
    unsigned index;         /* bytes waiting in block */
    uint8_t block[64];      /* the partial block */
};

void xv_sha256_init(struct sha256_ctx *ctx);
void xv_sha256_update(struct sha256_ctx *ctx, size_t length, const uint8_t *data);
/* Writes the first `length` (≤ 32) bytes of the digest and re-initialises
 * ctx, as nettle's sha256_digest does. */
void xv_sha256_digest(struct sha256_ctx *ctx, size_t length, uint8_t *digest);

/* HMAC-SHA-256 (RFC 2104), nettle's hmac_sha256_* spelling. */
struct hmac_sha256_ctx {
    struct sha256_ctx inner, outer; /* keyed states, reused by every digest */
    struct sha256_ctx state;        /* the message so far */
};
void xv_hmac_sha256_set_key(struct hmac_sha256_ctx *ctx, size_t key_length, const uint8_t *key);
void xv_hmac_sha256_update(struct hmac_sha256_ctx *ctx, size_t length, const uint8_t *data);
/* Writes the first `length` (≤ 32) bytes of the MAC; ctx is ready for the
 * next message under the same key. */
void xv_hmac_sha256_digest(struct hmac_sha256_ctx *ctx, size_t length, uint8_t *digest);

#define SHA256_DIGEST_SIZE XV_SHA256_DIGEST_SIZE
#define hmac_sha256_set_key xv_hmac_sha256_set_key
#define hmac_sha256_update xv_hmac_sha256_update
#define hmac_sha256_digest xv_hmac_sha256_digest
#define sha256_init xv_sha256_init
#define sha256_update xv_sha256_update
#define sha256_digest xv_sha256_digest

#endif
