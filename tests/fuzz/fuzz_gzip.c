/* link: xv_http xv_common */
/*
 * fuzz_gzip.c — libFuzzer target for http/inflate.c, the gzip/deflate body
 * decoder, on untrusted compressed bytes (a response or request body).
 *
 * Input: byte 0 is a control byte, byte 1 a corruption position, the rest
 * is the payload.
 *   bit 0     Content-Encoding: 0 gzip, 1 deflate
 *   bits 1-2  payload framing: 0 the payload is the compressed stream as
 *             is; 1/2/3 the payload is plain text that the target first
 *             compresses (gzip, zlib, raw deflate) — then real streams reach
 *             the decoder's deeper states
 *   bit 3     flip one bit of the compressed stream at byte 1's position
 *   bits 4-6  feed stride 1, 2, 3, 7, 64, 512, 4096, whole
 *   bit 7     small bounds (byte bound 4096, ratio bound on)
 * Invariants checked (abort on violation): the decoded bytes are the same
 * whole or sliced (ratio bound off; with it on, one run's output is a
 * prefix of the other's), never more than the byte bound, emitted in
 * chunks of at most XV_HTTP_INFLATE_CHUNK; an uncorrupted self-compressed
 * payload decodes to exactly the payload (within the bound); after an
 * error or the end nothing more is emitted.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http_int.h"
#include "xv_common.h"
#include "xv_http.h"

#define OUT_CAP (2u << 20)

struct sink {
    unsigned char *p;
    size_t n;
    int after_stop; /* bytes emitted after an error return */
    int stopped;
};

static void emit(void *ud, const char *p, size_t n)
{
    struct sink *s = ud;
    if (n == 0 || n > XV_HTTP_INFLATE_CHUNK)
        abort();
    if (s->stopped)
        s->after_stop = 1;
    size_t room = OUT_CAP - s->n;
    if (n > room)
        n = room;
    memcpy(s->p + s->n, p, n);
    s->n += n;
}

static int run(int enc, const unsigned char *z, size_t zn, size_t stride, struct sink *s)
{
    struct xv_http_inflate d;
    memset(&d, 0, sizeof d);
    if (xv_http_inflate_begin(&d, enc) != 0)
        return -1;
    int rc = 0;
    for (size_t at = 0; at < zn && rc == 0;) {
        size_t k = zn - at < stride ? zn - at : stride;
        rc = xv_http_inflate_feed(&d, (const char *)z + at, k, emit, s);
        at += k;
    }
    if (rc)
        s->stopped = 1;
    /* Feeding after an error must be harmless and silent. */
    xv_http_inflate_feed(&d, (const char *)z, zn < 8 ? zn : 8, emit, s);
    xv_http_inflate_free(&d);
    return rc;
}

/* One deflate stream per framing, made once and reset per input: a
 * deflateInit2/deflateEnd pair per input (~270 KB allocated and cleared)
 * was most of the target's time under ASan. framing: 1 gzip, 2 zlib, 3 raw. */
static z_stream g_def[4];
static int g_def_ok[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const int wb[4] = { 0, 31, 15, -15 };
    (void)argc;
    (void)argv;
    for (int f = 1; f < 4; f++)
        g_def_ok[f] = deflateInit2(&g_def[f], 6, Z_DEFLATED, wb[f], 8, Z_DEFAULT_STRATEGY) == Z_OK;
    return 0;
}

static size_t compress_with(int framing, const uint8_t *in, size_t n, unsigned char *out,
                            size_t cap)
{
    z_stream *z = &g_def[framing];
    if (!g_def_ok[framing] || deflateReset(z) != Z_OK)
        return 0;
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    int rc = deflate(z, Z_FINISH);
    return rc == Z_STREAM_END ? cap - z->avail_out : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t strides[8] = { 1, 2, 3, 7, 64, 512, 4096, SIZE_MAX };
    if (size < 2 || size > (1u << 20))
        return 0;
    unsigned ctl = data[0], pos = data[1];
    const uint8_t *payload = data + 2;
    size_t pn = size - 2;
    int enc = ctl & 1 ? XV_HTTP_CE_DEFLATE : XV_HTTP_CE_GZIP;
    int framing = (ctl >> 1) & 3;
    int corrupt = (ctl >> 3) & 1;
    size_t stride = strides[(ctl >> 4) & 7];
    int small = (ctl >> 7) & 1;
    uint64_t max_bytes = small ? 4096 : (1u << 20);
    xv_http_set_inflate_limits(max_bytes, small ? 4 : 0);

    size_t zcap = pn + pn / 8 + 128;
    unsigned char *z = malloc(zcap);
    if (!z)
        return 0;
    size_t zn;
    if (framing == 0) {
        memcpy(z, payload, pn);
        zn = pn;
    } else {
        zn = compress_with(framing, payload, pn, z, zcap);
    }
    if (corrupt && zn)
        z[pos % zn] ^= (unsigned char)(1u << (ctl % 8));

    /* Output buffers made once: a fresh 2 MiB pair per input cost most of
     * the target's time under ASan. */
    static unsigned char *bufa, *bufb;
    if (!bufa)
        bufa = malloc(OUT_CAP), bufb = malloc(OUT_CAP);
    struct sink a = { bufa, 0, 0, 0 }, b = { bufb, 0, 0, 0 };
    if (!a.p || !b.p)
        goto out;
    int ra = run(enc, z, zn, SIZE_MAX, &a);
    int rb = run(enc, z, zn, stride, &b);
    if (a.after_stop || b.after_stop)
        abort();
    if (a.n > max_bytes || b.n > max_bytes)
        abort();
    if (!small) {
        if (a.n != b.n || memcmp(a.p, b.p, a.n) != 0 || (ra == 0) != (rb == 0))
            abort();
    } else {
        size_t m = a.n < b.n ? a.n : b.n;
        if (memcmp(a.p, b.p, m) != 0)
            abort();
    }
    /* A stream we compressed ourselves, intact, decodes to the payload
     * (deflate framing is sniffed: raw deflate under "gzip" is corrupt). */
    if (framing && !corrupt && zn && !small && (enc == XV_HTTP_CE_DEFLATE || framing != 3)) {
        size_t want = pn < max_bytes ? pn : (size_t)max_bytes;
        if (a.n != want || memcmp(a.p, payload, want) != 0)
            abort();
    }
out:
    free(z);
    return 0;
}
