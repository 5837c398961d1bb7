/*
 * common/sha256.c — the project's one SHA-256 (FIPS 180-4, written from the
 * standard): session digests, cassette match keys, and the policy engine's
 * SHA-256 (crypto.sha256, HMAC-SHA-256, RS256/ES256 digests, through
 * policy/crypto/sha256.c); see sha256.h for why it is not nettle's.
 *
 * Two block functions: portable C, and one using the x86 SHA extensions
 * (SHA256RNDS2/MSG1/MSG2), chosen at the first digest by one CPUID probe
 * (never at process start: CPUID is a VM exit on this kind of machine).
 * Both are checked against each other and against the standard's vectors
 * by tests/unit/test_session.c.
 *
 * Thread safety: contexts are per caller; the probe result is an atomic
 * written once (a race only probes twice).
 */
#include "sha256.h"
#include "xv_place.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define XV_SHA_X86 1
#if defined(__GLIBC__) && defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h> /* glibc 2.33 and later */
#define XV_SHA_GLIBC_CPU 1
#endif
#endif
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Compress n 64-byte blocks into state (portable). */
static void blocks_c(uint32_t st[8], const uint8_t *p, size_t n)
{
    for (; n > 0; n--, p += 64) {
        uint32_t w[64];
        for (int t = 0; t < 16; t++)
            w[t] = load_be32(p + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] +
                          w[t];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
        st[4] += e;
        st[5] += f;
        st[6] += g;
        st[7] += h;
    }
}

#ifdef XV_SHA_X86
/* Compress n blocks with the SHA extensions. The state is kept as the
 * instructions want it: one register ABEF, one CDGH. Each group of four
 * rounds adds K to four message words; SHA256RNDS2 does two rounds with the
 * low two, then (after moving the high two down) two more. */
__attribute__((target("sha,sse4.1"))) static void blocks_ni(uint32_t st[8], const uint8_t *p,
                                                             size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_loadu_si128((const __m128i *)&st[0]);     /* a b c d */
    __m128i s1 = _mm_loadu_si128((const __m128i *)&st[4]);    /* e f g h */
    t = _mm_shuffle_epi32(t, 0xB1);                            /* b a d c */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                          /* h g f e */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                    /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xF0);                         /* CDGH */
    for (; n > 0; n--, p += 64) {
        __m128i save0 = s0, save1 = s1, w[16];
        for (int i = 0; i < 16; i++) {
            if (i < 4)
                w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            else
                w[i] = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]),
                                  _mm_alignr_epi8(w[i - 1], w[i - 2], 4)),
                    w[i - 1]);
            __m128i m = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            /* Two rounds: the old ABEF becomes the new CDGH, so the
             * registers trade roles and, after two more, trade back. */
            s1 = _mm_sha256rnds2_epu32(s1, s0, m);
            m = _mm_shuffle_epi32(m, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, m);
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);                           /* a b e f */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                          /* g h c d */
    s0 = _mm_blend_epi16(t, s1, 0xF0);                         /* a b c d */
    s1 = _mm_alignr_epi8(s1, t, 8);                            /* e f g h */
    _mm_storeu_si128((__m128i *)&st[0], s0);
    _mm_storeu_si128((__m128i *)&st[4], s1);
}

/* 0 unknown, 1 portable, 2 SHA extensions (with SSSE3/SSE4.1). */
static atomic_int g_impl XV_CALL_DATA; /* read by every call */

static int probe(void)
{
#ifdef XV_SHA_GLIBC_CPU
    /* What the loader found at start (its cpu_features), not CPUID
     * again: under a hypervisor each CPUID is a VM exit, and the four
     * below cost ~25 us of a one-call process's first call here. */
    return CPU_FEATURE_ACTIVE(SHA) && CPU_FEATURE_ACTIVE(SSSE3) && CPU_FEATURE_ACTIVE(SSE4_1) ? 2 : 1;
#else
    unsigned a, b, c, d;
    int ni = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1) &&
        __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA))
        ni = 1;
    return ni ? 2 : 1;
#endif
}
#endif

/* Exposed to the unit test (not in the header): force an implementation
 * (1 portable, 2 SHA extensions) or 0 to probe again. Returns the one in
 * use after the call, 1 when the extensions are unavailable. */
int xv_sha256_impl_select(int impl);
int xv_sha256_impl_select(int impl)
{
#ifdef XV_SHA_X86
    if (impl == 2 && probe() != 2)
        impl = 1;
    atomic_store(&g_impl, impl);
    return impl ? impl : (atomic_store(&g_impl, probe()), atomic_load(&g_impl));
#else
    (void)impl;
    return 1;
#endif
}

static void blocks(uint32_t st[8], const uint8_t *p, size_t n)
{
#ifdef XV_SHA_X86
    int impl = atomic_load_explicit(&g_impl, memory_order_relaxed);
    if (!impl) {
        impl = probe();
        atomic_store_explicit(&g_impl, impl, memory_order_relaxed);
    }
    if (impl == 2) {
        blocks_ni(st, p, n);
        return;
    }
#endif
    blocks_c(st, p, n);
}

void xv_sha256_init(struct sha256_ctx *ctx)
{
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(ctx->state, h0, sizeof h0);
    ctx->count = 0;
    ctx->index = 0;
}

void xv_sha256_update(struct sha256_ctx *ctx, size_t length, const uint8_t *data)
{
    if (ctx->index) {
        size_t take = 64 - ctx->index < length ? 64 - ctx->index : length;
        memcpy(ctx->block + ctx->index, data, take);
        ctx->index += (unsigned)take;
        data += take;
        length -= take;
        if (ctx->index < 64)
            return;
        blocks(ctx->state, ctx->block, 1);
        ctx->count++;
        ctx->index = 0;
    }
    if (length >= 64) {
        size_t n = length / 64;
        blocks(ctx->state, data, n);
        ctx->count += n;
        data += n * 64;
        length -= n * 64;
    }
    memcpy(ctx->block, data, length);
    ctx->index = (unsigned)length;
}

void xv_sha256_digest(struct sha256_ctx *ctx, size_t length, uint8_t *digest)
{
    /* The padding written in the block itself: 0x80, zeros, the length in
     * bits big-endian in the last eight bytes (a second block when fewer
     * than nine bytes are left). */
    uint64_t bits = (ctx->count * 64 + ctx->index) * 8;
    unsigned i = ctx->index;
    ctx->block[i++] = 0x80;
    if (i > 56) {
        memset(ctx->block + i, 0, 64 - i);
        blocks(ctx->state, ctx->block, 1);
        i = 0;
    }
    memset(ctx->block + i, 0, 56 - i);
    for (int k = 0; k < 8; k++)
        ctx->block[56 + k] = (uint8_t)(bits >> (56 - 8 * k));
    blocks(ctx->state, ctx->block, 1);
    uint8_t out[32];
    for (int k = 0; k < 8; k++) {
        uint32_t be = ctx->state[k]; /* stored big-endian */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        be = __builtin_bswap32(be);
#endif
        memcpy(out + 4 * k, &be, 4);
    }
    memcpy(digest, out, length < 32 ? length : 32);
    xv_sha256_init(ctx);
}

void xv_hmac_sha256_set_key(struct hmac_sha256_ctx *ctx, size_t key_length, const uint8_t *key)
{
    uint8_t k[64] = { 0 }, pad[64];
    if (key_length > 64) {
        xv_sha256_init(&ctx->state);
        xv_sha256_update(&ctx->state, key_length, key);
        xv_sha256_digest(&ctx->state, 32, k);
    } else {
        memcpy(k, key, key_length);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    xv_sha256_init(&ctx->inner);
    xv_sha256_update(&ctx->inner, 64, pad);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    xv_sha256_init(&ctx->outer);
    xv_sha256_update(&ctx->outer, 64, pad);
    ctx->state = ctx->inner;
}

void xv_hmac_sha256_update(struct hmac_sha256_ctx *ctx, size_t length, const uint8_t *data)
{
    xv_sha256_update(&ctx->state, length, data);
}

void xv_hmac_sha256_digest(struct hmac_sha256_ctx *ctx, size_t length, uint8_t *digest)
{
    uint8_t in[32];
    xv_sha256_digest(&ctx->state, 32, in);
    ctx->state = ctx->outer;
    xv_sha256_update(&ctx->state, 32, in);
    xv_sha256_digest(&ctx->state, length, digest);
    ctx->state = ctx->inner;
}
