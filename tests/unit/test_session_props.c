/*
 * test_session_props.c — unit tests for session/props.c: XENOVIA_PROPERTIES
 * parsing (names, values, limits, rejects) and the property headers injected
 * into requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xv_session.h"

/* ------------------------------------------------------------ properties */

static void test_properties_parse(void **state)
{
    (void)state;
    struct xv_session_props p;
    char err[512];
    assert_int_equal(xv_session_props_parse(NULL, &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(xv_session_props_parse("", &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(xv_session_props_parse(" team = search , env=prod%2Ceu,,"
                                            "note=a%3Db%25c%20d+e,name=Ren%C3%A9,Empty=,",
                                            &p, err, sizeof err), 0);
    assert_int_equal(p.n, 5);
    assert_string_equal(p.p[0].key, "team");
    assert_string_equal(p.p[0].value, "search");
    assert_string_equal(p.p[1].value, "prod,eu");
    assert_string_equal(p.p[2].value, "a=b%c d+e");
    assert_string_equal(p.p[3].value, "Ren\xc3\xa9");
    assert_int_equal(p.p[3].value_len, 5);
    assert_string_equal(p.p[4].key, "Empty");
    assert_string_equal(p.p[4].value, "");
    cJSON *rec = cJSON_CreateObject();
    assert_int_equal(xv_session_props_to_json(&p, rec, "custom_properties"), 0);
    cJSON *cp = cJSON_GetObjectItem(rec, "custom_properties");
    assert_string_equal(cJSON_GetObjectItem(cp, "env")->valuestring, "prod,eu");
    cJSON_Delete(rec);
    xv_session_props_free(&p);
    assert_int_equal(p.n, 0);

    /* Exactly at the limits: 20 properties, 64-char key, 512-char values
     * (512 two-byte characters count as 512). */
    char text[20000], *w = text;
    for (int i = 0; i < 20; i++)
        w += sprintf(w, "%sk%d=v", i ? "," : "", i);
    assert_int_equal(xv_session_props_parse(text, &p, err, sizeof err), 0);
    assert_int_equal(p.n, 20);
    xv_session_props_free(&p);
    w = text;
    w += sprintf(w, "%.64s=", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
    for (int i = 0; i < 512; i++)
        w += sprintf(w, "%%C3%%A9");
    assert_int_equal(xv_session_props_parse(text, &p, err, sizeof err), 0);
    assert_int_equal(p.p[0].value_len, 1024);
    xv_session_props_free(&p);

    /* Each violation: XV_E_CONFIG, empty set, one line naming the variable. */
    struct {
        const char *text;
        const char *needle;
    } bad[] = {
        { "a=1,b", "no '='" },
        { "=1", "is empty" },
        { "a.b=1", "character other than" },
        { "policy_x=1", "reserved prefix policy_" },
        { "Policy_X=1", "reserved prefix policy_" },
        { "a=1,A=2", "appears twice" },
        { "a=%2", "percent-encode" },
        { "a=%zz", "percent-encode" },
        { "a=x%0Ay", "control character" },
        { "a=%C3", "not valid UTF-8" },
        { "a=%C0%AF", "not valid UTF-8" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(xv_session_props_parse(bad[i].text, &p, err, sizeof err), XV_E_CONFIG);
        assert_int_equal(p.n, 0);
        assert_non_null(strstr(err, "XENOVIA_PROPERTIES"));
        if (!strstr(err, bad[i].needle))
            fail_msg("%s: %s", bad[i].text, err);
        assert_null(strchr(err, '\n'));
    }
    w = text;
    for (int i = 0; i < 21; i++)
        w += sprintf(w, "%sk%d=v", i ? "," : "", i);
    assert_int_equal(xv_session_props_parse(text, &p, err, sizeof err), XV_E_CONFIG);
    assert_non_null(strstr(err, "more than 20"));
    memset(text, 'k', 65);
    strcpy(text + 65, "=v");
    assert_int_equal(xv_session_props_parse(text, &p, err, sizeof err), XV_E_CONFIG);
    assert_non_null(strstr(err, "longer than 64"));
    strcpy(text, "k=");
    memset(text + 2, 'v', 513);
    text[515] = '\0';
    assert_int_equal(xv_session_props_parse(text, &p, err, sizeof err), XV_E_CONFIG);
    assert_non_null(strstr(err, "longer than 512"));
    /* A tiny error buffer is fine. */
    assert_int_equal(xv_session_props_parse("policy_a=1", &p, err, 8), XV_E_CONFIG);
    assert_true(strlen(err) < 8);
    assert_int_equal(xv_session_props_parse("policy_a=1", &p, NULL, 0), XV_E_CONFIG);
}

static void test_property_headers(void **state)
{
    (void)state;
    struct xv_session_props cfg, p;
    char err[256];
    assert_int_equal(xv_session_props_parse("team=a,env=prod", &cfg, err, sizeof err), 0);
    assert_int_equal(xv_session_props_copy(&p, &cfg), 0);
#define ADD(n, v) xv_session_props_add_header(&p, n, strlen(n), v, strlen(v))
    assert_int_equal(ADD("Content-Type", "x"), XV_E_PARSE);
    assert_int_equal(ADD("X-Xenovia-Property-", "x"), XV_E_PARSE);
    assert_int_equal(ADD("x-xenovia-property-TEAM", " b "), 0); /* the app's value wins */
    assert_int_equal(p.n, 2);
    assert_string_equal(p.p[0].value, "b");
    assert_string_equal(p.p[0].key, "TEAM");
    assert_string_equal(cfg.p[0].value, "a"); /* the config set is untouched */
    assert_int_equal(ADD("X-Xenovia-Property-policy_rule", "x"), XV_E_LIMIT);
    assert_int_equal(ADD("X-Xenovia-Property-a.b", "x"), XV_E_LIMIT);
    char name[128], val[600];
    snprintf(name, sizeof name, "X-Xenovia-Property-%065d", 0);
    assert_int_equal(ADD(name, "x"), XV_E_LIMIT);
    memset(val, 'v', 513);
    val[513] = '\0';
    assert_int_equal(ADD("X-Xenovia-Property-long", val), XV_E_LIMIT);
    val[512] = '\0';
    assert_int_equal(ADD("X-Xenovia-Property-long", val), 0);
    assert_int_equal(p.dropped, 4);
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "X-Xenovia-Property-k%d", i);
        ADD(name, "v");
    }
    assert_int_equal(p.n, XV_SESSION_PROP_MAX);
    assert_int_equal(p.dropped, 4 + 30 - (XV_SESSION_PROP_MAX - 3));
    /* Replacing an existing key still works when full. */
    assert_int_equal(ADD("X-Xenovia-Property-env", "dev"), 0);
#undef ADD
    xv_session_props_free(&p);
    xv_session_props_free(&cfg);
}


/* --------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties_parse),
        cmocka_unit_test(test_property_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
