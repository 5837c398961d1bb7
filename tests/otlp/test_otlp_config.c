/*
 * test_otlp_config.c — unit tests for the OTLP output's environment
 * (endpoints, headers, protocol, timeout, service.name and resource, the
 * content opt-in), timestamps, gzip, and the spool (modes, caps, atomic
 * claim, release, stale claims). The encoding: test_otlp_unit.c.
 *
 * Single-threaded; each test sets the environment it needs and clears it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "otlp_int.h"
#include "../sweep/keep.h" /* temp dirs the secret sweep reads */

static void clear_env(void)
{
    const char *vars[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                           "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                           "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                           "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TIMEOUT",
                           "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "XENOVIA_SPOOL_DIR",
                           "XENOVIA_SPOOL_MAX_MB", NULL };
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
}

static void test_config(void **state)
{
    (void)state;
    clear_env();
    assert_null(xv_exp_otlp_cfg_from_env());              /* not configured */

    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.local:4318/base/", 1);
    struct xv_exp_otlp_cfg *c = xv_exp_otlp_cfg_from_env();
    assert_non_null(c);
    assert_string_equal(c->host, "collector.local");
    assert_string_equal(c->port, "4318");
    assert_string_equal(c->path, "/base/v1/traces");
    assert_string_equal(c->host_header, "collector.local:4318");
    assert_int_equal(c->proto, XV_OTLP_PROTOBUF);
    assert_int_equal(c->gzip, 0);
    assert_int_equal(c->timeout_ms, 10000);
    xv_exp_otlp_cfg_unref(c);

    /* the traces endpoint wins and is used as is */
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://[::1]:9999/custom", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%20b%3Dc , bad header=1,=x,ok=1", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);      /* unsupported: default + a line */
    c = xv_exp_otlp_cfg_from_env();
    assert_non_null(c);
    assert_string_equal(c->host, "::1");
    assert_string_equal(c->port, "9999");
    assert_string_equal(c->path, "/custom");
    assert_int_equal(c->proto, XV_OTLP_PROTOBUF);
    assert_int_equal(c->gzip, 1);
    assert_int_equal(c->timeout_ms, 2500);
    assert_string_equal(c->headers, "x-api-key: a b=c\r\nok: 1\r\n");
    xv_exp_otlp_cfg_unref(c);

    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", 1);
    c = xv_exp_otlp_cfg_from_env();
    assert_int_equal(c->timeout_ms, 10000);
    xv_exp_otlp_cfg_unref(c);

    /* https: through libssl.so.3 when it can be loaded, else the file output */
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://collector/v1/traces", 1);
    const char *why;
    c = xv_exp_otlp_cfg_from_env();
    if (xv_exp_otlp_tls_available(&why)) {
        assert_non_null(c);
        assert_int_equal(c->tls, 1);
        assert_string_equal(c->port, "443");
        assert_null(c->ca_file);
        xv_exp_otlp_cfg_unref(c);
    } else {
        assert_null(c);
    }
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318", 1);
    assert_null(xv_exp_otlp_cfg_from_env());
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://host:99999", 1);
    assert_null(xv_exp_otlp_cfg_from_env());
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://host:80/a b", 1);
    assert_null(xv_exp_otlp_cfg_from_env());

    /* service.name: OTEL_SERVICE_NAME > OTEL_RESOURCE_ATTRIBUTES > process */
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-res,a=1", 1);
    c = xv_exp_otlp_cfg_from_env();
    assert_string_equal(c->service_name, "from-res");
    assert_int_equal(c->nres, 1);
    assert_string_equal(c->port, "80");
    assert_string_equal(c->path, "/v1/traces");
    xv_exp_otlp_cfg_unref(c);
    unsetenv("OTEL_RESOURCE_ATTRIBUTES");
    c = xv_exp_otlp_cfg_from_env();
    assert_string_equal(c->service_name, "unknown_service:test_otlp_config");
    assert_string_equal(c->exe_name, "test_otlp_config");
    xv_exp_otlp_cfg_unref(c);
    clear_env();
}

static void test_parse_time(void **state)
{
    (void)state;
    assert_true(xv_exp_otlp_parse_time("1970-01-01T00:00:01Z") == 1000000000ull);
    assert_true(xv_exp_otlp_parse_time("1970-01-01T00:00:00.000001Z") == 1000ull);
    assert_true(xv_exp_otlp_parse_time("2000-02-29T12:00:00.5Z") == 951825600500000000ull);
    assert_true(xv_exp_otlp_parse_time("2000-02-29T12:00:00") == 0);
    assert_true(xv_exp_otlp_parse_time("garbage") == 0);
    assert_true(xv_exp_otlp_parse_time(NULL) == 0);
}

static void test_gzip(void **state)
{
    (void)state;
    char in[10000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)('a' + i % 7);
    char *gz;
    size_t gl;
    assert_int_equal(xv_exp_otlp_gzip(in, sizeof in, &gz, &gl), 0);
    assert_true(gl < sizeof in);
    assert_int_equal((unsigned char)gz[0], 0x1f);         /* gzip magic */
    assert_int_equal((unsigned char)gz[1], 0x8b);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    char out[12000];
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)gl;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof out;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    inflateEnd(&z);
    free(gz);
}

static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && (!part || strstr(de->d_name, part)))
            n++;
    closedir(d);
    return n;
}

static void test_spool(void **state)
{
    (void)state;
    char base[256], dir[300];
    assert_non_null(xv_test_mkdtemp(base, sizeof base, "xvotlp-")); /* $TMPDIR: swept */
    snprintf(dir, sizeof dir, "%s/a/spool", base);
    mode_t old = umask(0022);
    uint64_t dropped = 0;
    char body[1000];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 5; i++) {
        body[0] = (char)('0' + i);
        assert_int_equal(xv_exp_otlp_spool_write(dir, i % 2 ? XV_OTLP_JSON : XV_OTLP_PROTOBUF,
                                                 body, sizeof body, 10 + (size_t)i, 1 << 20,
                                                 &dropped), 0);
    }
    umask(old);
    assert_int_equal(dropped, 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(count_files(dir, NULL), 5);

    /* claim: oldest first, exclusive, readable; release puts it back */
    struct xv_exp_otlp_claim a, b;
    assert_int_equal(xv_exp_otlp_spool_claim(dir, &a), 1);
    assert_int_equal(a.nspans, 10);
    assert_int_equal(a.proto, XV_OTLP_PROTOBUF);
    assert_int_equal(stat(a.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(xv_exp_otlp_spool_claim(dir, &b), 1);
    assert_int_equal(b.nspans, 11);
    assert_int_equal(b.proto, XV_OTLP_JSON);
    char *data;
    size_t len;
    assert_int_equal(xv_exp_otlp_spool_read(&a, 1 << 20, &data, &len), 0);
    assert_int_equal(len, sizeof body);
    assert_int_equal(data[0], '0');
    free(data);
    xv_exp_otlp_spool_done(&a);
    xv_exp_otlp_spool_release(&b);
    assert_int_equal(count_files(dir, NULL), 4);
    assert_int_equal(count_files(dir, ".claim-"), 0);

    /* a claim left by a dead process becomes ready again */
    pid_t child = fork();
    if (child == 0) {
        struct xv_exp_otlp_claim c;
        _exit(xv_exp_otlp_spool_claim(dir, &c) == 1 && c.nspans == 11 ? 0 : 1);
    }
    int ws;
    waitpid(child, &ws, 0);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_int_equal(count_files(dir, ".claim-"), 1);
    assert_int_equal(xv_exp_otlp_spool_claim(dir, &b), 1);
    assert_int_equal(b.nspans, 11);                       /* recovered, still the oldest */
    xv_exp_otlp_spool_done(&b);

    /* the byte cap drops the oldest and counts their spans */
    assert_int_equal(xv_exp_otlp_spool_write(dir, XV_OTLP_PROTOBUF, body, sizeof body, 7, 2500,
                                             &dropped), 0);
    assert_int_equal(count_files(dir, NULL), 2);
    assert_int_equal(dropped, 12 + 13);                   /* files with 12 and 13 spans */
    assert_int_equal(xv_exp_otlp_spool_write(dir, XV_OTLP_PROTOBUF, body, sizeof body, 1, 10,
                                             &dropped), XV_E_LIMIT);
    assert_int_equal(xv_exp_otlp_spool_write(NULL, XV_OTLP_PROTOBUF, body, 1, 1, 10, &dropped),
                     XV_E_CONFIG);
    while (xv_exp_otlp_spool_claim(dir, &a) == 1)
        xv_exp_otlp_spool_done(&a);
    assert_int_equal(count_files(dir, NULL), 0);
    assert_int_equal(xv_test_rmdir(base), 0); /* kept for the sweep under ctest */
}

/* Which environment opts content in. */
static void test_capture_env(void **state)
{
    (void)state;
    struct { const char *otel, *xv; int want; } cases[] = {
        { NULL, NULL, 0 },      { "true", NULL, 1 },  { "TRUE", NULL, 1 },
        { "false", NULL, 0 },   { "maybe", NULL, 0 }, { NULL, "on", 1 },
        { NULL, "off", 0 },     { "true", "off", 1 }, { "false", "true", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        unsetenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT");
        unsetenv("XENOVIA_CAPTURE_CONTENT");
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
        if (cases[i].otel)
            setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", cases[i].otel, 1);
        if (cases[i].xv)
            setenv("XENOVIA_CAPTURE_CONTENT", cases[i].xv, 1);
        struct xv_exp_otlp_cfg *c = xv_exp_otlp_cfg_from_env();
        assert_non_null(c);
        if (c->capture_content != cases[i].want)
            fail_msg("case %zu: capture %d, want %d", i, c->capture_content, cases[i].want);
        xv_exp_otlp_cfg_unref(c);
    }
    unsetenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT");
    unsetenv("XENOVIA_CAPTURE_CONTENT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_capture_env),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_spool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
