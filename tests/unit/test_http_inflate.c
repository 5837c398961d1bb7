/*
 * test_http_inflate.c — unit tests for http/inflate.c through the parser:
 * gzip, x-gzip, zlib and raw deflate bodies (whole, chunked, multi-member,
 * reused parsers), unknown and corrupt encodings, a large body, and the
 * inflation bounds in bytes and in ratio (issue 7, class 5).
 *
 * Same invariant as test_http.c: events do not depend on the slicing.
 */
#include "http_harness.h"

/* ------------------------------------------------------ compressed bodies */

/* Compress with zlib: wbits 31 = gzip, 15 = zlib, -15 = raw deflate. */
static size_t zpack(int wbits, const char *in, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

/* Text that compresses but not trivially. */
static void make_text(char *out, size_t n, unsigned seed)
{
    static const char *words[] = {"assistant ", "delta ", "{\"content\":", "\"hello\" ",
                                  "tokens ", "stream ", "0.42 ", "\n", "usage ", "model "};
    size_t at = 0;
    while (at < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 10];
        size_t l = strlen(w);
        if (l > n - at)
            l = n - at;
        memcpy(out + at, w, l);
        at += l;
    }
}

struct msgbuf {
    char *s;
    size_t len, cap;
};

static void mb_add(struct msgbuf *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2 + 64;
        m->s = realloc(m->s, m->cap);
        assert_non_null(m->s);
    }
    memcpy(m->s + m->len, p, n);
    m->len += n;
}

static void mb_str(struct msgbuf *m, const char *s)
{
    mb_add(m, s, strlen(s));
}

/* Append body as chunks of `step` bytes, with an extension now and then. */
static void mb_chunked(struct msgbuf *m, const char *body, size_t n, size_t step)
{
    char line[64];
    for (size_t at = 0, k = 0; at < n; at += step, k++) {
        size_t l = n - at < step ? n - at : step;
        snprintf(line, sizeof line, k % 3 == 1 ? "%zx;ext=1\r\n" : "%zX\r\n", l);
        mb_str(m, line);
        mb_add(m, body + at, l);
        mb_str(m, "\r\n");
    }
    mb_str(m, "0\r\nX-Checksum: none\r\n\r\n");
}

/* Response "HTTP/1.1 200 OK" + extra headers + Content-Length; returns the head length. */
static size_t mb_resp_cl(struct msgbuf *m, const char *extra, size_t body_len)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n", extra,
                     body_len);
    mb_add(m, head, (size_t)n);
    return (size_t)n;
}

static void test_http_gzip_deflate(void **st)
{
    (void)st;
    char plain[700], packed[1024], want[4096];
    make_text(plain, sizeof plain, 7);
    static const struct {
        int wbits;
        const char *ce;
        int code;
    } kinds[] = {{31, "gzip", 1}, {31, "x-gzip", 1}, {15, "deflate", 2}, {-15, "deflate", 2},
                 {31, "deflate", 2}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t pn = zpack(kinds[k].wbits, plain, sizeof plain, packed, sizeof packed);
        struct msgbuf m = {0};
        char extra[64];
        snprintf(extra, sizeof extra, "Content-Encoding: %s\r\n", kinds[k].ce);
        size_t hl = mb_resp_cl(&m, extra, pn);
        mb_add(&m, packed, pn);
        snprintf(want, sizeof want,
                 "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=%d nb=0 raw=%zu "
                 "[Content-Encoding=%s;Content-Length=%zu;]\nB:%.*s\nE\nS0\n",
                 pn, kinds[k].code, hl, kinds[k].ce, pn, (int)sizeof plain, plain);
        http_check(RESP(0), m.s, m.len, want);
        free(m.s);
    }

    /* Chunked + gzip request body, then an identity request on the same connection. */
    size_t pn = zpack(31, plain, sizeof plain, packed, sizeof packed);
    struct msgbuf m = {0};
    mb_str(&m, "POST /v1/chat/completions HTTP/1.1\r\nContent-Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    mb_chunked(&m, packed, pn, 37);
    mb_str(&m, "POST /v1/embeddings HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    snprintf(want, sizeof want,
             "H:POST /v1/chat/completions 1.1 cl=-1 ch=1 ka=1 ec=0 ce=1 nb=0 raw=90 "
             "[Content-Encoding=gzip;Transfer-Encoding=chunked;]\nB:%.*s\nE\n"
             "H:POST /v1/embeddings 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=51 "
             "[Content-Length=2;]\nB:{}\nE\nS0\n",
             (int)sizeof plain, plain);
    http_check(REQ(0), m.s, m.len, want);
    free(m.s);
}

static void test_http_gzip_members_and_reuse(void **st)
{
    (void)st;
    char a[300], b[200], pa[512], pb[512], want[4096];
    make_text(a, sizeof a, 1);
    make_text(b, sizeof b, 2);
    size_t na = zpack(31, a, sizeof a, pa, sizeof pa);
    size_t nb = zpack(31, b, sizeof b, pb, sizeof pb);
    /* One body of two gzip members (RFC 1952), then a raw-deflate message and
     * an identity one: the decoder is reused and reset per message. */
    struct msgbuf m = {0};
    size_t h1 = mb_resp_cl(&m, "Content-Encoding: gzip\r\n", na + nb);
    mb_add(&m, pa, na);
    mb_add(&m, pb, nb);
    size_t nr = zpack(-15, b, sizeof b, pb, sizeof pb);
    size_t h2 = mb_resp_cl(&m, "Content-Encoding: deflate\r\n", nr);
    mb_add(&m, pb, nr);
    size_t h3 = mb_resp_cl(&m, "", 3);
    mb_str(&m, "end");
    snprintf(want, sizeof want,
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=1 nb=0 raw=%zu "
             "[Content-Encoding=gzip;Content-Length=%zu;]\nB:%.*s%.*s\nE\n"
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=2 nb=0 raw=%zu "
             "[Content-Encoding=deflate;Content-Length=%zu;]\nB:%.*s\nE\n"
             "H:200 1.1 cl=3 ch=0 ka=1 ec=0 ce=0 nb=0 raw=%zu [Content-Length=3;]\nB:end\nE\nS0\n",
             na + nb, h1, na + nb, (int)sizeof a, a, (int)sizeof b, b, nr, h2, nr,
             (int)sizeof b, b, h3);
    http_check(RESP(0), m.s, m.len, want);
    free(m.s);
}

static void test_http_other_and_corrupt_encodings(void **st)
{
    (void)st;
    /* br: body not reported, framing kept; the next message parses. */
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nTransfer-Encoding: chunked\r\n\r\n"
               "4\r\n\x0b\x02\x80x\r\n0\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
               "H:200 1.1 cl=-1 ch=1 ka=1 ec=0 ce=3 nb=0 raw=69 "
               "[Content-Encoding=br;Transfer-Encoding=chunked;]\nE\n"
               "H:200 1.1 cl=2 ch=0 ka=1 ec=0 ce=0 nb=0 raw=38 [Content-Length=2;]\nB:ok\nE\nS0\n");
    /* Stacked codings count as "other". */
    HTTP_CHECK(RESP(0), "HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: 1\r\n\r\nq",
               "H:200 1.1 cl=1 ch=0 ka=1 ec=0 ce=3 nb=0 raw=66 "
               "[Content-Encoding=gzip, br;Content-Length=1;]\nE\nS0\n");
    /* Not gzip at all. */
    HTTP_CHECK(RESP(0),
               "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\n"
               "not gzip!!!!",
               "H:200 1.1 cl=12 ch=0 ka=1 ec=0 ce=1 nb=0 raw=63 "
               "[Content-Encoding=gzip;Content-Length=12;]\nX:corrupt compressed body\nS3\n");
}

/* A large compressed body: output leaves in bounded chunks, every split works. */
static void test_http_large_gzip(void **st)
{
    (void)st;
    size_t plen = 300000;
    char *plain = malloc(plen);
    char *packed = malloc(plen);
    assert_non_null(plain);
    assert_non_null(packed);
    make_text(plain, plen, 99);
    size_t pn = zpack(31, plain, plen, packed, plen);
    struct msgbuf m = {0};
    size_t hl = mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);
    struct msgbuf want = {0};
    char head[256];
    snprintf(head, sizeof head,
             "H:200 1.1 cl=%zu ch=0 ka=1 ec=0 ce=1 nb=0 raw=%zu "
             "[Content-Encoding=gzip;Content-Length=%zu;]\nB:",
             pn, hl, pn);
    mb_str(&want, head);
    mb_add(&want, plain, plen);
    mb_str(&want, "\nE\nS0\n");
    mb_add(&want, "", 1);
    size_t maxcall = 0;
    char *got = http_run(RESP(0), m.s, m.len, NULL, 0, &maxcall);
    assert_string_equal(got, want.s);
    assert_true(maxcall <= 16384);
    free(got);
    for (size_t k = 1; k <= 64; k++) {
        size_t cuts[3] = {m.len * k / 130, m.len * k / 65, m.len * k / 65 + k};
        if (cuts[2] > m.len)
            cuts[2] = m.len;
        got = http_run(RESP(0), m.s, m.len, cuts, 3, NULL);
        assert_string_equal(got, want.s);
        free(got);
    }
    size_t *all = malloc(m.len * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < m.len; i++)
        all[i] = i;
    got = http_run(RESP(0), m.s, m.len, all, m.len, &maxcall);
    assert_string_equal(got, want.s);
    assert_true(maxcall <= 16384);
    free(got);
    free(all);
    free(m.s);
    free(want.s);
    free(plain);
    free(packed);
}

/* Decompression bombs (issue 7 class 5): the byte bound emits exactly
 * max_bytes then errors, whatever the feed slicing; the ratio bound stops a
 * highly compressible body soon after the floor; legitimate text under both
 * bounds is untouched; 0 disables a bound. */
static void test_http_inflate_bounds(void **st)
{
    (void)st;
    size_t plen = 4u << 20; /* 4 MiB of one letter: ratio ~1000 (no NUL: the log is a C string) */
    char *plain = malloc(plen);
    char *packed = malloc(plen);
    assert_non_null(plain);
    assert_non_null(packed);
    memset(plain, 'a', plen);
    size_t pn = zpack(31, plain, plen, packed, plen);
    struct msgbuf m = {0};
    mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);

    /* Byte bound only: exactly 100000 zero bytes reach on_body, then the error. */
    xv_http_set_inflate_limits(100000, 0);
    char *whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "X:compressed body exceeds the inflation limits"));
    assert_null(strstr(whole, "\nE\n"));
    size_t cuts[3] = {m.len / 3, m.len / 2, m.len - 1};
    char *sliced = http_run(RESP(0), m.s, m.len, cuts, 3, NULL);
    assert_string_equal(whole, sliced);
    const char *b = strstr(whole, "B:");
    assert_non_null(b);
    const char *x = strstr(b, "\nX:");
    assert_int_equal((size_t)(x - b - 2), 100000);
    free(whole);
    free(sliced);

    /* Ratio bound only: stops after the floor, long before 4 MiB. */
    xv_http_set_inflate_limits(0, 200);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    b = strstr(whole, "B:");
    x = strstr(whole, "\nX:compressed body exceeds the inflation limits");
    assert_non_null(x);
    assert_true((size_t)(x - b - 2) > XV_HTTP_INFLATE_RATIO_FLOOR);
    assert_true((size_t)(x - b - 2) < XV_HTTP_INFLATE_RATIO_FLOOR + 2 * 16384);
    free(whole);

    /* No bounds: the whole body, and the message ends. */
    xv_http_set_inflate_limits(0, 0);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "\nE\nS0\n"));
    free(whole);

    /* Defaults: ordinary text (ratio ~5) of 2 MiB passes. */
    xv_http_set_inflate_limits(XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, XV_HTTP_INFLATE_DEFAULT_MAX_RATIO);
    make_text(plain, 2u << 20, 5);
    pn = zpack(31, plain, 2u << 20, packed, plen);
    free(m.s);
    memset(&m, 0, sizeof m);
    mb_resp_cl(&m, "Content-Encoding: gzip\r\n", pn);
    mb_add(&m, packed, pn);
    whole = http_run(RESP(0), m.s, m.len, NULL, 0, NULL);
    assert_non_null(strstr(whole, "\nE\nS0\n"));
    assert_null(strstr(whole, "\nX:"));
    free(whole);
    free(m.s);
    free(plain);
    free(packed);
}

/* --------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_inflate_bounds),
        cmocka_unit_test(test_http_gzip_deflate),
        cmocka_unit_test(test_http_gzip_members_and_reuse),
        cmocka_unit_test(test_http_other_and_corrupt_encodings),
        cmocka_unit_test(test_http_large_gzip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
