/*
 * test_common_jsonr.c — unit tests for common/jsonr.c: on every text the
 * arena reader's tree is cJSON's tree (types, member names and order,
 * strings, number bits, valueint, the head->prev tail link), its failures
 * are cJSON's failures with cJSON's `end`, and strict JSON is read by the
 * arena pass itself (not handed to cJSON, which would make the comparison
 * say nothing). Hand-picked texts, then mutations of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xv_jsonr.h"

/* Non-zero when the trees differ; *why names the first difference. */
static int tree_diff(const cJSON *a, const cJSON *b, const char **why)
{
    if (!a || !b) {
        *why = "one tree is NULL";
        return a != b;
    }
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return *why = "type", 1;
    if ((a->string == NULL) != (b->string == NULL) ||
        (a->string && strcmp(a->string, b->string) != 0))
        return *why = "member name", 1;
    if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0))
        return *why = "string value", 1;
    if (a->valueint != b->valueint)
        return *why = "valueint", 1;
    if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 &&
        !(isnan(a->valuedouble) && isnan(b->valuedouble)))
        return *why = "valuedouble", 1;
    const cJSON *ca = a->child, *cb = b->child;
    if (ca && cb && ((ca->prev == NULL) != (cb->prev == NULL)))
        return *why = "head->prev", 1;
    const cJSON *la = NULL, *lb = NULL;
    for (; ca && cb; la = ca, lb = cb, ca = ca->next, cb = cb->next) {
        if (ca->prev != (la ? la : a->child->prev))
            return *why = "prev link (arena)", 1;
        if (cb->prev != (lb ? lb : b->child->prev))
            return *why = "prev link (cJSON)", 1;
        if (tree_diff(ca, cb, why))
            return 1;
    }
    if (ca || cb)
        return *why = "child count", 1;
    if (a->child && a->child->prev != la)
        return *why = "head->prev is not the tail", 1;
    return 0;
}

/* Compare the reader with cJSON on text[0..len); returns 1 when the arena
 * pass read it itself. Fails the test on any difference. */
static int check(const char *text, size_t len)
{
    const char *e1 = NULL, *e2 = NULL;
    struct xv_jr_tree t = XV_JR_TREE_INIT;
    cJSON *a = xv_jr_parse(&t, text, len, &e1);
    cJSON *b = cJSON_ParseWithLengthOpts(text, len, &e2, 0);
    const char *why = "";
    if ((a == NULL) != (b == NULL) || (a && tree_diff(a, b, &why))) {
        fprintf(stderr, "differs (%s) on %zu bytes: %.*s\n", a && b ? why : "accept/refuse",
                len, (int)(len > 200 ? 200 : len), text);
        fail();
    }
    if (!a && e1 != e2) {
        fprintf(stderr, "end differs on: %.*s\n", (int)len, text);
        fail();
    }
    if (a) { /* what consumers print must agree too */
        char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
        assert_non_null(pa);
        assert_non_null(pb);
        assert_string_equal(pa, pb);
        free(pa);
        free(pb);
    }
    int ours = a && !t.by_cjson;
    xv_jr_free(&t);
    assert_null(t.root);
    assert_null(t.blocks);
    cJSON_Delete(b);
    return ours;
}

static int check_s(const char *s)
{
    return check(s, strlen(s));
}

/* Strict JSON: the arena pass must read these itself and agree. */
static const char *const strict[] = {
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
    "terse assistant.\"},{\"role\":\"user\",\"content\":\"Say hello.\"}],\"temperature\":0.2,"
    "\"max_tokens\":64}",
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
    "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":31,"
    "\"completion_tokens\":9,\"total_tokens\":40}}",
    "  {\n\t\"a\" : [ 1 , 2 , { } , [ ] , \"\" ] ,\r\n \"b\" : true , \"c\" : false } ",
    "{\"a\":1,\"a\":2,\"a\":{\"a\":[]}}", /* duplicates kept, first found by lookups */
    "[]", "{}", "0", "-0", "1", "-1", "\"x\"", "null", "true", "false",
    "[0.1,0.2,1e5,1E-7,-1.5e+300,1e400,-1e400,4.9e-324,2.2250738585072014e-308]",
    "[123456789012345,1234567890123456,9007199254740993,18446744073709551616,"
    "2147483647,2147483648,-2147483648,-2147483649,99999999999999999999999]",
    "[\"\\b\\f\\n\\r\\t\\\"\\\\\\/\",\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\",\"\\u0000after\"]",
    "{\"emoji\":\"\xf0\x9f\x98\x80\",\"latin1 bytes kept\":\"\xe9\xff\"}",
    "{\"k\":\"v\"} trailing garbage is not looked at",
    "[1]]", "{\"a\":1}}",
};

/* Not strict JSON: cJSON decides (reads, refuses, or reads differently). */
static const char *const other[] = {
    "", " ", "{", "[", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "[1 2]", "\"open",
    "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u12\"",
    "\"raw\ncontrol\"", "\xef\xbb\xbf{\"bom\":1}", "\x0b[1]", "[1,\x0c 2]", "01", "+1", "1.",
    ".5", "1e", "1e+", "-", "--1", "0x10", "nul", "tru", "fals", "NaN", "[1.5.3]",
    "1234567890123456789012345678901234567890123456789012345678901234567890",
    "[\"a\"\"b\"]", "{\"a\":1,}", "{,}", "[,]",
};

static void test_strict_read_by_arena(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof strict / sizeof *strict; i++)
        if (!check_s(strict[i])) {
            fprintf(stderr, "handed to cJSON: %s\n", strict[i]);
            fail();
        }
}

static void test_other_as_cjson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        check_s(other[i]);
    /* a text cut at every length, and with a NUL inside */
    const char *s = strict[1];
    for (size_t n = 0; n <= strlen(s); n++)
        check(s, n);
    char nul[] = "{\"a\":\"x\0y\",\"b\":2}";
    check(nul, sizeof nul - 1);
}

static void test_depth(void **state)
{
    (void)state;
    char buf[2 * 1100 + 1];
    for (int d = XV_JR_DEPTH - 2; d <= XV_JR_DEPTH + 2; d++) {
        memset(buf, '[', (size_t)d);
        memset(buf + d, ']', (size_t)d);
        int ours = check(buf, 2 * (size_t)d);
        assert_int_equal(ours, d <= XV_JR_DEPTH);
    }
    /* past cJSON's own limit: both refuse */
    memset(buf, '[', 1100);
    memset(buf + 1100, ']', 1100);
    check(buf, 2200);
}

/* A locale whose decimal point is a comma must not change numbers. */
static void test_comma_locale(void **state)
{
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    const char *got = NULL;
    for (size_t i = 0; i < 4 && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (!got) {
        printf("skipped part: no comma-decimal locale installed; C-locale numbers still checked\n");
    }
    struct xv_jr_tree t = XV_JR_TREE_INIT;
    cJSON *v = xv_jr_parse(&t, "[0.25,1e-3]", 11, NULL);
    assert_non_null(v);
    assert_false(t.by_cjson);
    assert_true(v->child->valuedouble == 0.25);
    assert_true(v->child->next->valuedouble == 1e-3);
    xv_jr_free(&t);
    setlocale(LC_NUMERIC, "C");
}

/* One tree parsed into again and again (the SSE path) keeps one block. */
static void test_reuse_and_move(void **state)
{
    (void)state;
    struct xv_jr_tree t = XV_JR_TREE_INIT, u = XV_JR_TREE_INIT;
    for (int i = 0; i < 100; i++) {
        char s[64];
        int n = snprintf(s, sizeof s, "{\"i\":%d,\"s\":\"%*s\"}", i, i % 40, "");
        cJSON *v = xv_jr_parse(&t, s, (size_t)n, NULL);
        assert_non_null(v);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(v, "i")->valueint, i);
        assert_non_null(t.blocks);
    }
    /* a text cJSON has to read: the tree is cJSON's, freed by cJSON */
    assert_non_null(xv_jr_parse(&t, "{\"a\":\"x\ny\"}", 11, NULL));
    assert_true(t.by_cjson);
    xv_jr_move(&u, &t);
    assert_null(t.root);
    assert_true(u.by_cjson);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(u.root, "a")->valuestring, "x\ny");
    xv_jr_free(&u);
    xv_jr_free(&t);
    /* a big text after small ones, then small again */
    size_t big = 300000;
    char *s = malloc(big + 16);
    assert_non_null(s);
    s[0] = '[';
    size_t n = 1;
    while (n < big) {
        memcpy(s + n, "{\"k\":[1,2]},", 12);
        n += 12;
    }
    s[n - 1] = ']';
    assert_int_equal(check(s, n), 1);
    assert_non_null(xv_jr_parse(&t, s, n, NULL));
    assert_non_null(xv_jr_parse(&t, "[1]", 3, NULL));
    xv_jr_free(&t);
    free(s);
}

/* Numbers of every shape the fast decimal path takes or leaves: the bits
 * of each value are strtod's (cJSON's), the arena pass reading them all. */
static void test_numbers(void **state)
{
    (void)state;
    uint64_t x = 0x2545F4914F6CDD1Dull;
    char buf[96];
    size_t ours = 0, total = 0;
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int shape = (int)(x % 5);
        uint64_t m = (x >> 8) >> ((x >> 3) % 60);
        int places = (int)((x >> 40) % 24), ex = (int)((x >> 50) % 700) - 350;
        switch (shape) {
        case 0: snprintf(buf, sizeof buf, "%llu.%0*llu", (unsigned long long)(m / 1000),
                         places % 8 + 1, (unsigned long long)(m % 1000)); break;
        case 1: snprintf(buf, sizeof buf, "-0.%0*llu", places + 1, (unsigned long long)m); break;
        case 2: snprintf(buf, sizeof buf, "%llue%d", (unsigned long long)m, ex % 40); break;
        case 3: snprintf(buf, sizeof buf, "%llu.%llue%d", (unsigned long long)m,
                         (unsigned long long)(x % 1000), ex); break;
        default: snprintf(buf, sizeof buf, "%.*g", places % 18 + 1,
                          (double)m / (double)(1 + (x >> 44))); break;
        }
        ours += (size_t)check_s(buf);
        total++;
    }
    printf("numbers: %zu texts, %zu read by the arena pass\n", total, ours);
    assert_true(ours > total * 9 / 10);
}

/* Random byte edits of the strict texts: every result as cJSON's. */
static void test_mutations(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    static const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnrl \n\t\x01\x80\xff";
    size_t ours = 0, total = 0;
    for (size_t i = 0; i < sizeof strict / sizeof *strict; i++) {
        size_t len = strlen(strict[i]);
        char *buf = malloc(len + 8);
        assert_non_null(buf);
        for (int round = 0; round < 4000; round++) {
            memcpy(buf, strict[i], len);
            size_t n = len;
            int edits = 1 + (int)((x >> 60) & 3);
            for (int k = 0; k < edits && n; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t at = (size_t)(x % n);
                char ch = alphabet[(x >> 32) % (sizeof alphabet - 1)];
                switch ((x >> 40) & 3) {
                case 0: buf[at] = ch; break;
                case 1: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
                default: memmove(buf + at + 1, buf + at, n - at), buf[at] = ch, n++; break;
                }
            }
            ours += (size_t)check(buf, n);
            total++;
        }
        free(buf);
    }
    printf("mutations: %zu texts, %zu read by the arena pass\n", total, ours);
    assert_true(ours > total / 20); /* the comparison covered the arena pass */
}

/* Strings read eight bytes at a time: a quote, backslash escape, control
 * byte, DEL or non-ASCII byte at every position of every length up to 40,
 * in a value and in a member name, read as cJSON reads them. */
static void test_string_positions(void **state)
{
    (void)state;
    static const char *const special[] = { "\\\"", "\\n", "\\u00e9", "\x01", "\x1f",
                                           "\x7f", "\xc3\xa9", "\"" };
    char body[64], text[160];
    for (size_t len = 0; len <= 40; len++)
        for (size_t at = 0; at <= len; at++)
            for (size_t k = 0; k < sizeof special / sizeof *special; k++) {
                memset(body, 'a', len);
                body[len] = '\0';
                int n = snprintf(text, sizeof text, "{\"k\":\"%.*s%s%s\"}", (int)at, body,
                                 special[k], body + at);
                check(text, (size_t)n);
                n = snprintf(text, sizeof text, "{\"%.*s%s%s\":1}", (int)at, body, special[k],
                             body + at);
                check(text, (size_t)n);
            }
}

/* Blocks of freed trees are kept per thread (at most two, at most 1 MiB)
 * and handed to the next parses: trees alive at once never share one, in
 * any order of freeing, in several threads at once, and a thread's spares
 * go with it (ASan/valgrind see a leak otherwise). */
static void *spares_worker(void *arg)
{
    intptr_t seed = (intptr_t)arg;
    struct xv_jr_tree t[3] = { XV_JR_TREE_INIT, XV_JR_TREE_INIT, XV_JR_TREE_INIT };
    char text[3][96];
    for (int r = 0; r < 2000; r++) {
        for (int k = 0; k < 3; k++) {
            int n = snprintf(text[k], sizeof text[k], "{\"r\":%d,\"k\":%d,\"s\":\"%*s\"}", r,
                             k, (int)((r * 7 + k + seed) % 60), "");
            if (!xv_jr_parse(&t[k], text[k], (size_t)n, NULL))
                return (void *)1;
        }
        for (int k = 0; k < 3; k++) { /* all three intact while alive */
            cJSON *v = t[k].root;
            if (xv_json_get(v, "r")->valueint != r || xv_json_get(v, "k")->valueint != k ||
                strlen(xv_json_get(v, "s")->valuestring) != (size_t)((r * 7 + k + seed) % 60))
                return (void *)1;
        }
        int first = (int)((r + seed) % 3); /* free in a changing order */
        for (int k = 0; k < 3; k++)
            if ((r & 1) || k != first)
                xv_jr_free(&t[(first + k) % 3]);
    }
    for (int k = 0; k < 3; k++)
        xv_jr_free(&t[k]);
    return NULL;
}

static void test_spares_across_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, spares_worker, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *rv = (void *)1;
        assert_int_equal(pthread_join(th[i], &rv), 0);
        assert_null(rv);
    }
    assert_null(spares_worker((void *)9)); /* and on this thread */
}

/* A conversation's requests, each a little longer than the last (an agent
 * loop of 60 to 100 KiB), parsed one after the other on one thread: after
 * the first, each parses into the block the previous one left, not a new
 * one from malloc — whose fresh pages cost a fault each (~10 us on a VM). */
static void *growing_requests(void *arg)
{
    uint64_t *from_malloc = arg;
    size_t cap = 110 << 10;
    char *text = malloc(cap);
    if (!text)
        return (void *)1;
    struct xv_jr_tree t = XV_JR_TREE_INIT;
    uint64_t before = 0;
    for (int r = 0; r < 20; r++) {
        size_t n = (size_t)snprintf(text, cap, "{\"messages\":[");
        for (int m = 0; m < 60 + 2 * r; m++) {
            n += (size_t)snprintf(text + n, cap - n, "%s{\"role\":\"user\",\"content\":\"",
                                  m ? "," : "");
            memset(text + n, 'a' + m % 26, 1000);
            n += 1000;
            n += (size_t)snprintf(text + n, cap - n, "\"}");
        }
        n += (size_t)snprintf(text + n, cap - n, "]}");
        if (!xv_jr_parse(&t, text, n, NULL) || t.by_cjson ||
            cJSON_GetArraySize(xv_json_get(t.root, "messages")) != 60 + 2 * r)
            return (void *)1;
        xv_jr_free(&t);
        if (r == 0)
            before = xv_jr_blocks_malloced();
    }
    *from_malloc = xv_jr_blocks_malloced() - before;
    free(text);
    return NULL;
}

/* (on a thread of its own: no spare left by the tests before) */
static void test_growing_requests_reuse_blocks(void **state)
{
    (void)state;
    pthread_t th;
    uint64_t from_malloc = 99;
    void *rv = (void *)1;
    assert_int_equal(pthread_create(&th, NULL, growing_requests, &from_malloc), 0);
    assert_int_equal(pthread_join(th, &rv), 0);
    assert_null(rv);
    printf("blocks from malloc after the first parse: %llu\n", (unsigned long long)from_malloc);
    assert_true(from_malloc <= 2);
}

/* xv_json_get and xv_json_pick give cJSON_GetObjectItemCaseSensitive's
 * answer for every name: the first member of that name (duplicates kept
 * in a tree), none for a prefix or an extension of a member's name, none
 * in a non-object; the empty name too. */
static void test_get_and_pick(void **state)
{
    (void)state;
    static const char text[] =
        "{\"model\":\"m1\",\"messages\":[1],\"max_tokens\":5,\"m\":0,\"\":7,"
        "\"model\":\"m2\",\"mo\":1,\"n\":2}";
    static const char *const names[] = { "model", "messages", "max_tokens", "m", "", "mo", "n",
                                         "mod", "models", "max", "absent", "x" };
    enum { N = sizeof names / sizeof names[0] };
    struct xv_jr_tree t = XV_JR_TREE_INIT;
    cJSON *root = xv_jr_parse(&t, text, sizeof text - 1, NULL);
    assert_non_null(root);
    const cJSON *got[N];
    xv_json_pick(root, names, N, got);
    for (size_t j = 0; j < N; j++) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(root, names[j]);
        assert_ptr_equal(xv_json_get(root, names[j]), want);
        assert_ptr_equal(got[j], want);
    }
    assert_string_equal(got[0]->valuestring, "m1"); /* the first of two */
    assert_null(got[7]);
    assert_null(got[8]);
    /* a non-object: nothing, whatever its children are */
    const cJSON *arr = xv_json_get(root, "messages");
    xv_json_pick(arr, names, N, got);
    for (size_t j = 0; j < N; j++)
        assert_null(got[j]);
    assert_null(xv_json_get(arr, "model"));
    xv_json_pick(NULL, names, N, got);
    assert_null(got[0]);
    xv_jr_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_read_by_arena),
        cmocka_unit_test(test_other_as_cjson),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_comma_locale),
        cmocka_unit_test(test_reuse_and_move),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_string_positions),
        cmocka_unit_test(test_spares_across_threads),
        cmocka_unit_test(test_growing_requests_reuse_blocks),
        cmocka_unit_test(test_get_and_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
