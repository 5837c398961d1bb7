/*
 * inflate.c — streaming gzip/deflate body decoder on top of zlib.
 *
 * Invariant: no body is ever buffered whole. Input is handed to zlib as it
 * arrives; output leaves in chunks of at most XV_HTTP_INFLATE_CHUNK bytes.
 * The only state kept between feeds is zlib's (window ≤ 32 KiB) plus, for
 * "deflate", up to two header bytes until we can tell zlib-wrapped from raw.
 *
 * Choices: "gzip" uses windowBits 15+32 (zlib's automatic gzip/zlib header
 * detection) and accepts concatenated gzip members (RFC 1952 allows them;
 * some servers flush a member per chunk). "deflate" is meant to be zlib
 * (RFC 9110 §8.4.1.2) but IIS and others historically sent raw deflate, so
 * the first two bytes decide: a valid zlib header → zlib, 1f 8b → gzip,
 * anything else → raw. Bytes after the end of the compressed stream are
 * ignored (some servers pad), unless they start another gzip member.
 *
 * Bounds (decompression bombs): a body's decoded bytes are counted; past
 * the byte bound (exactly max_bytes are emitted, then XV_E_LIMIT) or, once
 * past XV_HTTP_INFLATE_RATIO_FLOOR decoded bytes, past max_ratio times the
 * compressed bytes consumed, decoding stops for good. zlib cannot produce
 * more than ~1032 bytes per input byte, so the ratio bound stops a bomb after
 * about a megabyte of work whatever the byte bound is.
 *
 * Thread safety: a decoder belongs to one parser; the only global state is
 * the pair of bounds (relaxed atomics, written at configuration time).
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "xv_common.h"
#include "xv_http.h"

/* Process-wide bounds; written by xv_http_set_inflate_limits (config). */
static struct {
    _Atomic uint64_t max_bytes;  /* 0: no byte bound */
    atomic_uint max_ratio;       /* 0: no ratio bound */
} g_lim = { XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO };

XV_START_FN void xv_http_set_inflate_limits(uint64_t max_bytes, unsigned max_ratio)
{
    atomic_store_explicit(&g_lim.max_bytes, max_bytes, memory_order_relaxed);
    atomic_store_explicit(&g_lim.max_ratio, max_ratio, memory_order_relaxed);
}

int xv_http_inflate_begin(struct xv_http_inflate *d, int encoding)
{
    if (!d->out) {
        d->out = malloc(XV_HTTP_INFLATE_CHUNK);
        if (!d->out)
            return XV_E_NOMEM;
    }
    d->encoding = encoding;
    d->started = 0;
    d->hdr_n = 0;
    d->member_end = 0;
    d->done = 0;
    d->in_total = 0;
    d->out_total = 0;
    return 0;
}

/* Set zlib up for this body with the given window bits. */
static int inflate_start(struct xv_http_inflate *d, int wbits)
{
    int rc;
    if (!d->inited) {
        memset(&d->z, 0, sizeof d->z);
        rc = inflateInit2(&d->z, wbits);
        if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? XV_E_NOMEM : XV_E_PARSE;
        d->inited = 1;
    } else {
        rc = inflateReset2(&d->z, wbits);
        if (rc != Z_OK)
            return XV_E_PARSE;
    }
    /* Multi-member continuation only makes sense for gzip framing. */
    d->started = wbits > 15 ? 2 : 1;
    return 0;
}

/* Push n bytes through zlib. zlib's avail_in is a uInt: slice huge inputs. */
static int inflate_run(struct xv_http_inflate *d, const unsigned char *p, size_t n,
                       xv_http_emit_fn emit, void *ud)
{
    while (n > 0 && !d->done) {
        if (d->member_end) {
            /* Another gzip member follows, or trailing bytes we ignore. */
            if (d->started == 2 && p[0] == 0x1f) {
                if (inflateReset(&d->z) != Z_OK)
                    return XV_E_PARSE;
                d->member_end = 0;
            } else {
                d->done = 1;
                return 0;
            }
        }
        size_t slice = n > (size_t)UINT_MAX / 2 ? (size_t)UINT_MAX / 2 : n;
        d->z.next_in = (Bytef *)p;
        d->z.avail_in = (uInt)slice;
        uint64_t max_bytes = atomic_load_explicit(&g_lim.max_bytes, memory_order_relaxed);
        uint64_t ratio = atomic_load_explicit(&g_lim.max_ratio, memory_order_relaxed);
        for (;;) {
            d->z.next_out = d->out;
            d->z.avail_out = XV_HTTP_INFLATE_CHUNK;
            int rc = inflate(&d->z, Z_NO_FLUSH);
            size_t got = XV_HTTP_INFLATE_CHUNK - d->z.avail_out;
            if (max_bytes && got > max_bytes - d->out_total) {
                /* Byte bound: emit exactly up to it (the same whatever the
                 * feed slicing), then stop for good. */
                got = (size_t)(max_bytes - d->out_total);
                if (got)
                    emit(ud, (const char *)d->out, got);
                d->out_total = max_bytes;
                d->done = 1;
                return XV_E_LIMIT;
            }
            d->out_total += got;
            if (got)
                emit(ud, (const char *)d->out, got);
            if (ratio && d->out_total > XV_HTTP_INFLATE_RATIO_FLOOR &&
                d->out_total / ratio > d->in_total + (slice - d->z.avail_in)) {
                d->done = 1;
                return XV_E_LIMIT;
            }
            if (rc == Z_STREAM_END) {
                d->member_end = 1;
                break;
            }
            if (rc == Z_BUF_ERROR)
                break; /* no progress possible: all input used, output flushed */
            if (rc != Z_OK)
                return rc == Z_MEM_ERROR ? XV_E_NOMEM : XV_E_PARSE;
            if (d->z.avail_in == 0 && d->z.avail_out != 0)
                break;
        }
        size_t used = slice - d->z.avail_in;
        d->in_total += used;
        p += used;
        n -= used;
        if (!d->member_end && used < slice)
            break; /* cannot happen with Z_NO_FLUSH, but never spin */
    }
    return 0;
}

int xv_http_inflate_feed(struct xv_http_inflate *d, const char *p, size_t n,
                         xv_http_emit_fn emit, void *ud)
{
    const unsigned char *u = (const unsigned char *)p;
    if (d->done || n == 0)
        return 0;
    if (!d->started) {
        int rc;
        if (d->encoding == XV_HTTP_CE_GZIP) {
            rc = inflate_start(d, 15 + 32);
            if (rc)
                return rc;
        } else {
            while (d->hdr_n < 2 && n) {
                d->hdr[d->hdr_n++] = *u++;
                n--;
            }
            if (d->hdr_n < 2)
                return 0;
            unsigned h0 = d->hdr[0], h1 = d->hdr[1];
            int wbits;
            if (h0 == 0x1f && h1 == 0x8b)
                wbits = 15 + 16;
            else if ((h0 & 0x0f) == 8 && (h0 >> 4) <= 7 && ((h0 << 8) | h1) % 31 == 0)
                wbits = 15;
            else
                wbits = -15;
            rc = inflate_start(d, wbits);
            if (rc)
                return rc;
            rc = inflate_run(d, d->hdr, 2, emit, ud);
            if (rc)
                return rc;
        }
    }
    return inflate_run(d, u, n, emit, ud);
}

void xv_http_inflate_free(struct xv_http_inflate *d)
{
    if (d->inited)
        inflateEnd(&d->z);
    d->inited = 0;
    free(d->out);
    d->out = NULL;
}
