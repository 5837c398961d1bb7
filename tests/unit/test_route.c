/*
 * Unit tests for route/: XENOVIA_ROUTE grammar and errors, the proxy-id
 * shorthand, matching (ports, wildcards, case), sentinel addresses, request
 * head rewriting, and the stream rewriter fed every split of keep-alive,
 * chunked and pipelined requests.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xv_route.h"

static struct xv_route_config cfg;
static char err[400];

static int parse(const char *route)
{
    return xv_route_parse(route, NULL, NULL, NULL, NULL, &cfg, err, sizeof err);
}

static void test_grammar(void **state)
{
    assert_int_equal(parse("api.openai.com=https://runtime.xenovia.io/a/p1/openai"), 0);
    assert_int_equal(cfg.n, 1);
    assert_string_equal(cfg.rule[0].match_host, "api.openai.com");
    assert_int_equal(cfg.rule[0].match_port, 0);
    assert_int_equal(cfg.rule[0].tls, 1);
    assert_string_equal(cfg.rule[0].host, "runtime.xenovia.io");
    assert_int_equal(cfg.rule[0].port, 443);
    assert_string_equal(cfg.rule[0].prefix, "/a/p1/openai");

    assert_int_equal(parse(" API.OpenAI.com:443 = http://10.0.0.1:8080/ , *.openai.azure.com=https://[::1]:9443/x/y// "), 0);
    assert_int_equal(cfg.n, 2);
    assert_string_equal(cfg.rule[0].match_host, "api.openai.com");
    assert_int_equal(cfg.rule[0].match_port, 443);
    assert_int_equal(cfg.rule[0].tls, 0);
    assert_string_equal(cfg.rule[0].host, "10.0.0.1");
    assert_int_equal(cfg.rule[0].port, 8080);
    assert_string_equal(cfg.rule[0].prefix, "");
    assert_string_equal(cfg.rule[1].match_host, "*.openai.azure.com");
    assert_string_equal(cfg.rule[1].host, "::1");
    assert_int_equal(cfg.rule[1].port, 9443);
    assert_string_equal(cfg.rule[1].prefix, "/x/y");

    /* errors: one line naming the variable, no rule kept */
    const char *bad[] = { "api.openai.com", "api.openai.com=ftp://x", "=https://x",
                          "api.openai.com=https://u:p@x/", "api.openai.com=https://x/?q=1",
                          "a*b.com=https://x", "api.openai.com:99999=https://x",
                          "api.openai.com=https://x:0", "::1=https://x",
                          "api.openai.com=https://x/a b", "api.openai.com=https://*.x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i]), XV_E_CONFIG);
        assert_int_equal(cfg.n, 0);
        assert_non_null(strstr(err, "XENOVIA_ROUTE"));
        assert_null(strchr(err, '\n'));
    }
    /* a control byte is not echoed into the log line */
    assert_int_equal(parse("api.openai.com\x1b[31m=https://x"), XV_E_CONFIG);
    assert_null(strchr(err, '\x1b'));
    /* more than 16 rules */
    char many[2048] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "h%d.com=https://g,", i);
    assert_int_equal(parse(many), XV_E_CONFIG);
    assert_int_equal(parse(""), 0);
    assert_int_equal(cfg.n, 0);
}

static void test_shorthand(void **state)
{
    assert_int_equal(xv_route_parse(NULL, "proxy-1", NULL, "xv-key", "/ca.pem", &cfg, err,
                                    sizeof err), 0);
    assert_int_equal(cfg.n, 1);
    assert_string_equal(cfg.rule[0].match_host, "api.openai.com");
    assert_string_equal(cfg.rule[0].url, "https://runtime.xenovia.io/a/proxy-1/openai");
    assert_string_equal(cfg.api_key, "xv-key");
    assert_string_equal(cfg.ca_file, "/ca.pem");
    assert_int_equal(xv_route_parse(NULL, "p2", "https://localhost:8443/", NULL, NULL, &cfg, err,
                                    sizeof err), 0);
    assert_string_equal(cfg.rule[0].url, "https://localhost:8443/a/p2/openai");
    assert_int_equal(cfg.rule[0].port, 8443);
    assert_string_equal(cfg.rule[0].prefix, "/a/p2/openai");
    /* an explicit route wins over the shorthand */
    assert_int_equal(xv_route_parse("x.com=http://y", "p3", NULL, NULL, NULL, &cfg, err,
                                    sizeof err), 0);
    assert_string_equal(cfg.rule[0].match_host, "x.com");
    assert_int_equal(xv_route_parse(NULL, "bad/id", NULL, NULL, NULL, &cfg, err, sizeof err),
                     XV_E_CONFIG);
    assert_non_null(strstr(err, "XENOVIA_PROXY_ID"));
    assert_int_equal(xv_route_parse(NULL, "p", "gopher://x", NULL, NULL, &cfg, err, sizeof err),
                     XV_E_CONFIG);
    assert_non_null(strstr(err, "XENOVIA_RUNTIME_URL"));
    assert_int_equal(xv_route_parse(NULL, "p", NULL, "key\r\nX: y", NULL, &cfg, err, sizeof err),
                     XV_E_CONFIG);
    assert_non_null(strstr(err, "XENOVIA_API_KEY"));
}

static void test_match(void **state)
{
    assert_int_equal(parse("api.openai.com:443=https://a,*.azure.com=https://b,127.0.0.1:8080=http://c"), 0);
    assert_ptr_equal(xv_route_match(&cfg, "api.openai.com", 443), &cfg.rule[0]);
    assert_ptr_equal(xv_route_match(&cfg, "API.OPENAI.COM", 0), &cfg.rule[0]);
    assert_null(xv_route_match(&cfg, "api.openai.com", 80));
    assert_ptr_equal(xv_route_match(&cfg, "x.azure.com", 443), &cfg.rule[1]);
    assert_ptr_equal(xv_route_match(&cfg, "a.b.azure.com", 1), &cfg.rule[1]);
    assert_null(xv_route_match(&cfg, "azure.com", 443));
    assert_null(xv_route_match(&cfg, "xazure.com", 443));
    assert_ptr_equal(xv_route_match(&cfg, "127.0.0.1", 8080), &cfg.rule[2]);
    assert_null(xv_route_match(&cfg, "127.0.0.1", 8081));
    assert_null(xv_route_match(&cfg, "", 443));
    assert_null(xv_route_match(NULL, "api.openai.com", 443));
    assert_true(xv_route_rule_covers(&cfg.rule[1], "q.azure.com"));
    assert_false(xv_route_rule_covers(&cfg.rule[1], "q.azure.com.evil"));
}

static void test_sentinel(void **state)
{
    assert_int_equal(parse("a.com=https://x,b.com=https://y"), 0);
    xv_route_configure(&cfg);
    char s[16];
    xv_route_sentinel(1, s);
    assert_string_equal(s, "127.88.0.2");
    struct sockaddr_in in = { 0 };
    in.sin_family = AF_INET;
    inet_pton(AF_INET, s, &in.sin_addr);
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in, sizeof in), 1);
    inet_pton(AF_INET, "127.88.0.3", &in.sin_addr); /* no third rule */
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in, sizeof in), -1);
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in, sizeof in), -1);
    struct sockaddr_in6 in6 = { 0 };
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.88.0.1", &in6.sin6_addr);
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in6, sizeof in6), 0);
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in6, sizeof in6), -1);
    assert_int_equal(xv_route_sentinel_rule((struct sockaddr *)&in, 4), -1); /* short */
    xv_route_configure(NULL);
    assert_null(xv_route_config());
}

/* Feed `in` to a fresh rewriter split at every pair of positions; each run
 * must produce exactly `want`. */
static void rewrite_all_splits(const struct xv_route_rule *r, const char *key, const char *in,
                               const char *want)
{
    size_t n = strlen(in);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += (n > 200 ? 7 : 1)) {
            struct xv_route_rewriter *w = xv_route_rewriter_new(r, key);
            assert_non_null(w);
            struct xv_buf out;
            xv_buf_init(&out, 1 << 20);
            assert_int_equal(xv_route_rewriter_feed(w, in, a, &out), 0);
            assert_int_equal(xv_route_rewriter_feed(w, in + a, b - a, &out), 0);
            assert_int_equal(xv_route_rewriter_feed(w, in + b, n - b, &out), 0);
            if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
                fail_msg("split %zu/%zu:\n%.*s\n-- want --\n%s", a, b, (int)out.len,
                         out.data ? out.data : "", want);
            xv_buf_free(&out);
            xv_route_rewriter_free(w);
        }
    }
}

static void test_rewrite(void **state)
{
    assert_int_equal(parse("api.openai.com=https://gw.example:8443/a/p1/openai"), 0);
    const struct xv_route_rule *r = &cfg.rule[0];
    /* keep-alive: a body, then a chunked request, then a GET without a body */
    const char *in =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
        "Authorization: Bearer sk-app\r\nContent-Length: 5\r\n\r\nhello"
        "POST https://api.openai.com/v1/responses HTTP/1.1\r\nHost: api.openai.com\r\n"
        "api-key: app-azure\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "GET /v1/models HTTP/1.1\r\nhost: api.openai.com\r\n\r\n";
    const char *want =
        "POST /a/p1/openai/v1/chat/completions HTTP/1.1\r\nHost: gw.example:8443\r\n"
        "Authorization: Bearer xv-KEY\r\nContent-Length: 5\r\n\r\nhello"
        "POST /a/p1/openai/v1/responses HTTP/1.1\r\nHost: gw.example:8443\r\n"
        "api-key: xv-KEY\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "GET /a/p1/openai/v1/models HTTP/1.1\r\nHost: gw.example:8443\r\n"
        "Authorization: Bearer xv-KEY\r\n\r\n";
    rewrite_all_splits(r, "xv-KEY", in, want);
    /* without a key the app's credential stays; default port: no :443 */
    assert_int_equal(parse("api.openai.com=https://gw.example/p"), 0);
    rewrite_all_splits(&cfg.rule[0], NULL,
                       "POST /v1/embeddings HTTP/1.0\r\nAuthorization: Bearer sk-app\r\n"
                       "Content-Length: 2\r\n\r\n{}",
                       "POST /p/v1/embeddings HTTP/1.0\r\nHost: gw.example\r\n"
                       "Authorization: Bearer sk-app\r\nContent-Length: 2\r\n\r\n{}");
}

static void test_rewrite_malformed(void **state)
{
    assert_int_equal(parse("api.openai.com=https://gw/p"), 0);
    struct xv_route_rewriter *w = xv_route_rewriter_new(&cfg.rule[0], "k");
    struct xv_buf out;
    xv_buf_init(&out, 1 << 20);
    const char *bad = "POST /v1/x HTTP/1.1\r\nBad Header: y\r\nAuthorization: Bearer sk-app\r\n\r\n";
    assert_int_equal(xv_route_rewriter_feed(w, bad, strlen(bad), &out), XV_E_PARSE);
    assert_true(xv_route_rewriter_passthrough(w));
    assert_null(out.data ? strstr(out.data, "sk-app") : NULL); /* nothing of it forwarded */
    xv_buf_free(&out);
    xv_route_rewriter_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),     cmocka_unit_test(test_shorthand),
        cmocka_unit_test(test_match),       cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_rewrite),     cmocka_unit_test(test_rewrite_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
