/*
 * Unit tests for cassette/: match keys, modes, replay framing, SSE events,
 * binary bodies, secrets, repeats, misses with the nearest difference, and
 * two writers recording into one cassette.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "xv_cassette.h"
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

static char g_dir[256];

static int setup(void **state)
{
    assert_non_null(xv_test_mkdtemp(g_dir, sizeof g_dir - 8, "xv-cassette-test-"));
    strcat(g_dir, "/cas");
    return 0;
}

static int teardown(void **state)
{
    char *slash = strrchr(g_dir, '/');
    *slash = '\0';
    /* Removed, or kept for the secret sweep under ctest: the recordings
     * must hold no credential (tests/sweep/keep.h). */
    assert_int_equal(xv_test_rmdir(g_dir), 0);
    return 0;
}

static const struct xv_cassette_header req_h[] = {
    { "Content-Type", "application/json" },
    { "Authorization", "Bearer sk-test-SECRET-0001" },
    { "api-key", "azure-SECRET-0002" },
    { "Cookie", "session=SECRET-0003" },
    { "User-Agent", "OpenAI/Python 1.0" },
};

static struct xv_cassette_req mkreq(const char *body)
{
    struct xv_cassette_req r = { .method = "POST", .host = "api.openai.com", .port = 443,
                                 .path = "/v1/chat/completions",
                                 .request_type = "chat_completions", .headers = req_h,
                                 .nheaders = 5, .body = body, .body_len = strlen(body) };
    return r;
}

static const char *CHAT = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static void record_json(struct xv_cassette *c, const char *reqbody, const char *respbody)
{
    struct xv_cassette_req rq = mkreq(reqbody);
    static const struct xv_cassette_header rh[] = {
        { "Content-Type", "application/json" },
        { "Content-Length", "999" },
        { "Set-Cookie", "__cf=SECRET-0004" },
        { "X-Request-Id", "req_1" },
    };
    struct xv_cassette_resp rs = { .status = 200, .reason = "OK", .headers = rh, .nheaders = 4,
                                   .body = respbody, .body_len = strlen(respbody) };
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, NULL, NULL), XV_CASSETTE_RECORD);
    xv_buf_free(&a);
    assert_int_equal(xv_cassette_record(c, &rq, &rs), 0);
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (de->d_name[0] != '.' && l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static char *slurp_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat '%s'/*.json", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct xv_buf b;
    xv_buf_init(&b, 1 << 24);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        assert_int_equal(xv_buf_append(&b, chunk, n), 0);
    pclose(p);
    return xv_buf_steal(&b, &n);
}

static void test_modes(void **state)
{
    int m = -1;
    assert_int_equal(xv_cassette_mode_parse("once", &m), 0);
    assert_int_equal(m, XV_CASSETTE_ONCE);
    assert_int_equal(xv_cassette_mode_parse("new_episodes", &m), 0);
    assert_int_equal(m, XV_CASSETTE_NEW_EPISODES);
    assert_int_equal(xv_cassette_mode_parse("none", &m), 0);
    assert_int_equal(xv_cassette_mode_parse("all", &m), 0);
    assert_int_equal(m, XV_CASSETTE_ALL);
    assert_int_equal(xv_cassette_mode_parse("sometimes", &m), XV_E_CONFIG);
    assert_int_equal(xv_cassette_mode_parse(NULL, &m), XV_E_CONFIG);
    assert_string_equal(xv_cassette_mode_name(XV_CASSETTE_NEW_EPISODES), "new_episodes");
}

static void test_key(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    assert_non_null(c);
    char k1[65], k2[65];
    struct xv_cassette_req a = mkreq(CHAT);
    xv_cassette_key(c, &a, k1);
    assert_int_equal(strlen(k1), 64);
    /* key order, whitespace and ignored fields do not matter */
    struct xv_cassette_req b = mkreq("{ \"messages\" : [ {\"content\":\"hi\", \"role\":\"user\"} ],"
                                     " \"user\":\"u-1\", \"model\" : \"gpt-4o\","
                                     " \"stream_options\":{\"include_usage\":true}, \"seed\": 7 }");
    xv_cassette_key(c, &b, k2);
    assert_string_equal(k1, k2);
    /* host case and port do not matter */
    b = mkreq(CHAT);
    b.host = "API.OpenAI.com:443";
    xv_cassette_key(c, &b, k2);
    assert_string_equal(k1, k2);
    /* content, path and method do */
    b = mkreq("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"ho\"}]}");
    xv_cassette_key(c, &b, k2);
    assert_string_not_equal(k1, k2);
    b = mkreq(CHAT);
    b.path = "/v1/responses";
    xv_cassette_key(c, &b, k2);
    assert_string_not_equal(k1, k2);
    b = mkreq(CHAT);
    b.method = "PUT";
    xv_cassette_key(c, &b, k2);
    assert_string_not_equal(k1, k2);
    xv_cassette_free(c);
    /* an explicit empty ignore list makes `user` count */
    c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, "", err, sizeof err);
    assert_non_null(c);
    b = mkreq("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"user\":\"x\"}");
    xv_cassette_key(c, &b, k2);
    assert_string_not_equal(k1, k2);
    xv_cassette_free(c);
    /* a dotted ignore path */
    c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, "metadata.run", err, sizeof err);
    assert_non_null(c);
    struct xv_cassette_req m1 = mkreq("{\"metadata\":{\"run\":\"1\",\"k\":\"v\"}}");
    struct xv_cassette_req m2 = mkreq("{\"metadata\":{\"run\":\"2\",\"k\":\"v\"}}");
    struct xv_cassette_req m3 = mkreq("{\"metadata\":{\"run\":\"2\",\"k\":\"w\"}}");
    xv_cassette_key(c, &m1, k1);
    xv_cassette_key(c, &m2, k2);
    assert_string_equal(k1, k2);
    xv_cassette_key(c, &m3, k2);
    assert_string_not_equal(k1, k2);
    xv_cassette_free(c);
}

static void test_record_replay(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(xv_cassette_count(c), 0);
    const char *resp = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"héllo\"}}]}";
    record_json(c, CHAT, resp);
    xv_cassette_free(c);
    assert_int_equal(count_files(g_dir, ".json"), 1);

    /* no credential in the cassette, however it was sent */
    char *all = slurp_dir(g_dir);
    assert_null(strstr(all, "SECRET"));
    assert_non_null(strstr(all, "OpenAI/Python"));
    free(all);

    c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(xv_cassette_count(c), 1);
    struct xv_cassette_req rq = mkreq(CHAT);
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &rq, "X-Xenovia-Trace-Id: t\r\n", 0, &a, NULL, NULL),
                     XV_CASSETTE_REPLAY);
    char expect[512];
    snprintf(expect, sizeof expect,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "X-Request-Id: req_1\r\nConnection: close\r\nX-Xenovia-Trace-Id: t\r\n\r\n%s",
             strlen(resp), resp);
    assert_int_equal(a.len, strlen(expect));
    assert_memory_equal(a.data, expect, a.len);
    xv_buf_free(&a);
    xv_cassette_free(c);

    /* .used names the file replayed */
    char used[600];
    snprintf(used, sizeof used, "%s/.used", g_dir);
    struct stat st;
    assert_int_equal(stat(used, &st), 0);
    assert_true(st.st_size > 10);
}

static void test_sse_and_binary(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ALL, NULL, err, sizeof err);
    assert_non_null(c);
    const char *sse = "data: {\"a\":1}\n\ndata: {\"a\":2}\r\n\r\ndata: [DONE]\n\n";
    struct xv_cassette_mark marks[] = { { 15, 5 }, { 32, 40 }, { 46, 41 } };
    static const struct xv_cassette_header rh[] = { { "Content-Type", "text/event-stream" },
                                                    { "Transfer-Encoding", "chunked" } };
    struct xv_cassette_req rq = mkreq("{\"model\":\"m\",\"stream\":true}");
    struct xv_cassette_resp rs = { .status = 200, .reason = "OK", .headers = rh, .nheaders = 2,
                                   .body = sse, .body_len = strlen(sse), .marks = marks,
                                   .nmarks = 3 };
    assert_int_equal(xv_cassette_record(c, &rq, &rs), 0);
    /* a gzip body is binary: kept byte for byte */
    static const char gz[] = { 0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 0, 3, (char)0xff, 0, 1, 2 };
    static const struct xv_cassette_header gh[] = { { "Content-Type", "application/json" },
                                                    { "Content-Encoding", "gzip" } };
    struct xv_cassette_req rq2 = mkreq("{\"model\":\"m\",\"gz\":true}");
    struct xv_cassette_resp rs2 = { .status = 200, .reason = "OK", .headers = gh, .nheaders = 2,
                                    .body = gz, .body_len = sizeof gz };
    assert_int_equal(xv_cassette_record(c, &rq2, &rs2), 0);
    xv_cassette_free(c);

    char *all = slurp_dir(g_dir);
    assert_non_null(strstr(all, "\"t_ms\":\t40"));
    assert_non_null(strstr(all, "body_base64"));
    free(all);

    c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    assert_non_null(c);
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    const char *expect = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         "f\r\ndata: {\"a\":1}\n\n\r\n"
                         "11\r\ndata: {\"a\":2}\r\n\r\n\r\n"
                         "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    assert_int_equal(a.len, strlen(expect));
    assert_memory_equal(a.data, expect, a.len);
    xv_buf_reset(&a);
    assert_int_equal(xv_cassette_decide(c, &rq2, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    const char *hdr_end = strstr(a.data, "\r\n\r\n");
    assert_non_null(hdr_end);
    assert_non_null(strstr(a.data, "Content-Encoding: gzip\r\n"));
    assert_non_null(strstr(a.data, "Content-Length: 14\r\n"));
    assert_memory_equal(hdr_end + 4, gz, sizeof gz);
    xv_buf_free(&a);
    xv_cassette_free(c);
}

/* A body stored decoded is gzip-encoded again at replay, stream events too. */
static void test_decoded_gzip(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ALL, NULL, err, sizeof err);
    static const struct xv_cassette_header gh[] = { { "Content-Type", "text/event-stream" },
                                                    { "Content-Encoding", "gzip" } };
    const char *sse = "data: one\n\ndata: two\n\n";
    struct xv_cassette_req rq = mkreq("{\"model\":\"m\",\"stream\":true,\"g\":1}");
    struct xv_cassette_resp rs = { .status = 200, .reason = "OK", .headers = gh, .nheaders = 2,
                                   .body = sse, .body_len = strlen(sse), .decoded = 1 };
    assert_int_equal(xv_cassette_record(c, &rq, &rs), 0);
    xv_cassette_free(c);
    char *all = slurp_dir(g_dir);
    assert_non_null(strstr(all, "data: two")); /* readable in the file */
    free(all);
    c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    assert_non_null(strstr(a.data, "Content-Encoding: gzip\r\n"));
    assert_non_null(strstr(a.data, "Transfer-Encoding: chunked\r\n"));
    /* de-chunk, then gunzip with zlib: the events come back */
    const char *p = strstr(a.data, "\r\n\r\n") + 4;
    char gz[4096];
    size_t gl = 0;
    for (;;) {
        size_t n = strtoul(p, NULL, 16);
        p = strstr(p, "\r\n") + 2;
        if (n == 0)
            break;
        memcpy(gz + gl, p, n);
        gl += n;
        p += n + 2;
    }
    char out[256];
    z_stream z = { 0 };
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)gl;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof out;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, strlen(sse));
    assert_memory_equal(out, sse, strlen(sse));
    inflateEnd(&z);
    xv_buf_free(&a);
    xv_cassette_free(c);
}

static void test_repeats_and_writers(void **state)
{
    char err[256];
    /* two writers (two processes of one CI job) record the same request */
    struct xv_cassette *c1 = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    struct xv_cassette *c2 = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    assert_non_null(c1);
    assert_non_null(c2);
    record_json(c1, CHAT, "{\"n\":1}");
    record_json(c2, CHAT, "{\"n\":2}");
    record_json(c1, CHAT, "{\"n\":3}");
    xv_cassette_free(c1);
    xv_cassette_free(c2);
    assert_int_equal(count_files(g_dir, ".json"), 3);

    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    assert_non_null(c);
    struct xv_cassette_req rq = mkreq(CHAT);
    const char *want[] = { "{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":3}" };
    for (int i = 0; i < 4; i++) {
        struct xv_buf a;
        xv_buf_init(&a, 1 << 20);
        assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
        assert_non_null(strstr(a.data, "\r\n\r\n"));
        assert_string_equal(strstr(a.data, "\r\n\r\n") + 4, want[i]);
        xv_buf_free(&a);
    }
    xv_cassette_free(c);
}

static void test_miss(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    record_json(c, CHAT, "{}");
    record_json(c, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"},"
                   "{\"role\":\"user\",\"content\":\"other\"}]}", "{}");
    xv_cassette_free(c);
    int modes[] = { XV_CASSETTE_NONE, XV_CASSETTE_ONCE };
    for (int i = 0; i < 2; i++) {
        c = xv_cassette_open(g_dir, modes[i], NULL, err, sizeof err);
        assert_non_null(c);
        struct xv_cassette_req rq =
            mkreq("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}");
        struct xv_buf a, why;
        xv_buf_init(&a, 1 << 20);
        xv_buf_init(&why, 4096);
        assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, &why, NULL), XV_CASSETTE_MISS);
        assert_true(strncmp(a.data, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
        assert_non_null(strstr(a.data, "cassette_no_match"));
        assert_non_null(strstr(why.data, "messages[0].content"));
        assert_non_null(strstr(why.data, "\"hi\""));
        assert_non_null(strstr(why.data, "\"hello\""));
        assert_non_null(strstr(why.data, g_dir));
        xv_buf_free(&a);
        xv_buf_free(&why);
        xv_cassette_free(c);
    }
    /* none on a missing cassette is a configuration error */
    char missing[300];
    snprintf(missing, sizeof missing, "%s-nope", g_dir);
    assert_null(xv_cassette_open(missing, XV_CASSETTE_NONE, NULL, err, sizeof err));
    assert_non_null(strstr(err, "does not exist"));
}

static void test_new_episodes_and_all(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    record_json(c, CHAT, "{\"v\":1}");
    xv_cassette_free(c);

    c = xv_cassette_open(g_dir, XV_CASSETTE_NEW_EPISODES, NULL, err, sizeof err);
    struct xv_cassette_req old = mkreq(CHAT);
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &old, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    xv_buf_free(&a);
    record_json(c, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"new\"}]}",
                "{\"v\":2}");
    xv_cassette_free(c);
    assert_int_equal(count_files(g_dir, ".json"), 2);

    /* all: never replays; re-recording replaces, so the count stays */
    c = xv_cassette_open(g_dir, XV_CASSETTE_ALL, NULL, err, sizeof err);
    record_json(c, CHAT, "{\"v\":3}");
    xv_cassette_free(c);
    assert_int_equal(count_files(g_dir, ".json"), 2);
    c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &old, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    assert_string_equal(strstr(a.data, "\r\n\r\n") + 4, "{\"v\":3}");
    xv_buf_free(&a);
    xv_cassette_free(c);
}

static void test_hostile_file(void **state)
{
    char err[256];
    struct xv_cassette *c = xv_cassette_open(g_dir, XV_CASSETTE_ONCE, NULL, err, sizeof err);
    record_json(c, CHAT, "{}");
    xv_cassette_free(c);
    /* a hand-edited recording cannot inject header lines; a broken file is skipped */
    char cmd[700];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sed -i 's/\"X-Request-Id\"/\"X-Evil\\\\r\\\\nInjected: 1\"/' *.json && "
             "printf '{not json' > broken.json",
             g_dir);
    assert_int_equal(system(cmd), 0);
    c = xv_cassette_open(g_dir, XV_CASSETTE_NONE, NULL, err, sizeof err);
    assert_non_null(c);
    assert_non_null(strstr(err, "broken.json"));
    assert_int_equal(xv_cassette_count(c), 1);
    struct xv_cassette_req rq = mkreq(CHAT);
    struct xv_buf a;
    xv_buf_init(&a, 1 << 20);
    assert_int_equal(xv_cassette_decide(c, &rq, NULL, 0, &a, NULL, NULL), XV_CASSETTE_REPLAY);
    assert_null(strstr(a.data, "Injected"));
    xv_buf_free(&a);
    xv_cassette_free(c);
}

static void test_secret_names(void **state)
{
    assert_true(xv_cassette_header_secret("Authorization"));
    assert_true(xv_cassette_header_secret("X-Api-Key"));
    assert_true(xv_cassette_header_secret("api-key"));
    assert_true(xv_cassette_header_secret("X-Xenovia-Key"));
    assert_true(xv_cassette_header_secret("Cookie"));
    assert_true(xv_cassette_header_secret("Set-Cookie"));
    assert_true(xv_cassette_header_secret("Proxy-Authorization"));
    assert_true(xv_cassette_header_secret("X-Goog-Api-Key"));
    assert_false(xv_cassette_header_secret("Content-Type"));
    assert_false(xv_cassette_header_secret("OpenAI-Organization"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_secret_names),
        cmocka_unit_test_setup_teardown(test_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_and_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats_and_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoded_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_episodes_and_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
