/* link: xv_route xv_http xv_common */
/*
 * fuzz_route.c — libFuzzer target for route/: XENOVIA_ROUTE strings and the
 * request rewriter on untrusted bytes.
 *
 * Input: up to the first NUL is a XENOVIA_ROUTE value (parsed; a valid rule
 * set is matched against a few hosts); the rest is a request stream fed to a
 * rewriter for the first rule (or a fixed one), whole and then in slices of
 * the size given by the byte after the NUL. Checks besides ASan/UBSan: the
 * output (plus what is still held) is the same however the stream is sliced, and an error message
 * never holds a control byte or a line break (credential replacement is
 * asserted by unit_route).
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xv_route.h"

static int rewrite(const struct xv_route_rule *r, const char *p, size_t n, size_t step,
                   struct xv_buf *out)
{
    struct xv_route_rewriter *w = xv_route_rewriter_new(r, "gw-key");
    if (!w)
        return -1;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        size_t k = step && n - off > step ? step : n - off;
        rc = xv_route_rewriter_feed(w, p + off, k, out);
        off += k;
    }
    /* what is still held (an incomplete head, and stray line ends before it,
     * which a slicing may have forwarded already or not) counts as output */
    const char *h;
    size_t hl = xv_route_rewriter_held(w, &h);
    if (rc == 0 && hl)
        rc = xv_buf_append(out, h, hl);
    xv_route_rewriter_free(w);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, 0, size);
    size_t rl = nul ? (size_t)(nul - (const char *)data) : size;
    char *route = malloc(rl + 1);
    if (!route)
        return 0;
    memcpy(route, data, rl);
    route[rl] = '\0';
    static struct xv_route_config cfg;
    char err[300];
    if (xv_route_parse(route, rl % 3 ? NULL : "proxy-id", NULL, "k", NULL, &cfg, err,
                       sizeof err) != 0) {
        for (const char *e = err; *e; e++)
            if ((unsigned char)*e < 0x20)
                abort();
    } else {
        static const char *const hosts[] = { "api.openai.com", "x.openai.azure.com", "127.0.0.1",
                                             "" };
        for (size_t i = 0; i < 4; i++)
            (void)xv_route_match(&cfg, hosts[i], (int)(rl % 70000));
    }
    free(route);
    if (!nul || size - rl < 2)
        return 0;
    size_t step = data[rl + 1];
    const char *p = (const char *)data + rl + 2;
    size_t n = size - rl - 2;
    struct xv_route_rule fixed = { .match_host = "api.openai.com", .tls = 1,
                                   .host = "gw.example", .port = 8443, .prefix = "/a/p/openai" };
    const struct xv_route_rule *r = cfg.n ? &cfg.rule[0] : &fixed;
    struct xv_buf whole, sliced;
    xv_buf_init(&whole, 1 << 22);
    xv_buf_init(&sliced, 1 << 22);
    int a = rewrite(r, p, n, 0, &whole);
    int b = rewrite(r, p, n, step, &sliced);
    if (a == 0 && b == 0 &&
        (whole.len != sliced.len || (whole.len && memcmp(whole.data, sliced.data, whole.len))))
        abort(); /* the output must not depend on how the stream was sliced */
    xv_buf_free(&whole);
    xv_buf_free(&sliced);
    return 0;
}
