/*
 * http_int.h — what the http module's own files share (not public).
 *
 * The body decoder: a zlib inflate stream reused across the messages of one
 * connection direction, turning gzip or deflate bytes into bounded output
 * chunks handed to a callback as soon as they are produced.
 *
 * Thread safety: a decoder belongs to one parser; no global state.
 */
#ifndef XV_HTTP_INT_H
#define XV_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* Size of one decoded output chunk handed to the callback. */
#define XV_HTTP_INFLATE_CHUNK 16384

struct xv_http_inflate {
    z_stream z;            /* zlib state; valid when `inited` */
    int inited;            /* inflateInit2 has run (reused via inflateReset2) */
    int encoding;          /* XV_HTTP_CE_GZIP or XV_HTTP_CE_DEFLATE */
    int started;           /* window bits chosen and stream (re)set for this body */
    unsigned char hdr[2];  /* deflate only: first body bytes, kept to sniff zlib vs raw */
    int hdr_n;             /* bytes in hdr */
    int member_end;        /* a gzip member / deflate stream ended */
    int done;              /* stream over: further body bytes are ignored */
    uint64_t in_total;     /* compressed bytes of this body handed to zlib */
    uint64_t out_total;    /* decoded bytes of this body emitted so far */
    unsigned char *out;    /* output chunk (XV_HTTP_INFLATE_CHUNK bytes), owned */
};

typedef void (*xv_http_emit_fn)(void *ud, const char *p, size_t n);

/* Prepare for a new body in `encoding`. 0, or XV_E_NOMEM. */
int xv_http_inflate_begin(struct xv_http_inflate *d, int encoding);
/* Decode n more body bytes; output goes to emit in chunks of at most
 * XV_HTTP_INFLATE_CHUNK bytes. 0, or XV_E_PARSE on corrupt data, XV_E_NOMEM,
 * or XV_E_LIMIT when the body passed the inflation bounds (see
 * xv_http_set_inflate_limits): then exactly max_bytes were emitted (byte
 * bound) or the ratio bound tripped, and the decoder emits nothing more. */
int xv_http_inflate_feed(struct xv_http_inflate *d, const char *p, size_t n,
                         xv_http_emit_fn emit, void *ud);
/* Release zlib state and the output chunk; the struct may be begun again. */
void xv_http_inflate_free(struct xv_http_inflate *d);

#endif
