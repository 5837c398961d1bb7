/*
 * crypto/sha256.c — the project's one SHA-256 (common/sha256.c) dressed as
 * a nettle hash (struct nettle_hash), so that crypto/digest.c runs it
 * through nettle's generic HMAC exactly as it runs nettle's own MD5, SHA-1,
 * SHA-384 and SHA-512 (docs/dependencies.md says why SHA-256 is not
 * nettle's).
 *
 * This file is alone in including common/sha256.h: that header spells
 * nettle's names (struct sha256_ctx, sha256_init …) as macros over xv_…,
 * which would collide with <nettle/sha2.h> in the same translation unit.
 *
 * Invariant: the functions have nettle's signatures exactly (void *ctx,
 * size_t length, const uint8_t *data), so the casts below are calls with
 * the argument types the callees declare.
 * Thread safety: a context belongs to its caller; no state here.
 */
#include "crypto/digest.h"

#include <nettle/nettle-meta.h>

#include "sha256.h" /* common/ */

static void init(void *ctx)
{
    xv_sha256_init(ctx);
}

static void update(void *ctx, size_t length, const uint8_t *data)
{
    xv_sha256_update(ctx, length, data);
}

static void digest(void *ctx, size_t length, uint8_t *out)
{
    xv_sha256_digest(ctx, length, out);
}

const struct nettle_hash xv_crypto_sha256_hash = {
    "sha256", sizeof(struct sha256_ctx), XV_SHA256_DIGEST_SIZE, 64, init, update, digest,
};
