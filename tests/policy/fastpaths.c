/*
 * fastpaths.c — policy_fastpaths: the evaluator's shortcuts checked against
 * slower ways to the same answer, on one thread and on several at once.
 *
 *  - lower/upper (one SSE2/word-at-a-time pass, builtins/strings.c) against
 *    the same builtin applied code point by code point;
 *  - contains (first/last-byte filter, strings.c) against indexof (which
 *    compares code points) on random text, needles cut from it and mutated,
 *    periodic text, and a text long enough for libc's memmem;
 *  - refs with constant keys (the per-thread lookup hints, eval/frame.h)
 *    into objects of different shapes through one ref, and missing keys;
 *  - regex.match (the per-thread pattern slots, go/regexp.c) with more
 *    patterns than the slots and the shared cache hold, and a bad pattern;
 *  - decisions on the bench policy (tests/policy/fixtures/bench) from four
 *    threads, each equal to the single-threaded one.
 *
 * Prints each failure; exits 1 if any, else 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xv_policy.h"

#ifndef XV_BENCH_FIXTURES
#define XV_BENCH_FIXTURES "tests/policy/fixtures/bench"
#endif

static const char k_mod[] =
    "package t\n"
    "import rego.v1\n"
    "lower_ok if lower(input.s) == concat(\"\", [lower(c) | some c in split(input.s, \"\")])\n"
    "upper_ok if upper(input.s) == concat(\"\", [upper(c) | some c in split(input.s, \"\")])\n"
    "contains_ok if {\n"
    "\tevery n in input.needles { contains(input.s, n) == (indexof(input.s, n) >= 0) }\n"
    "}\n"
    "get(o) := o.k\n"
    "pick := [v | some o in input.objs; v := get(o)]\n"
    "deep := [v | some o in input.objs; v := o.a.b]\n"
    "re_hits := [p | some p in input.pats; regex.match(p, input.s)]\n";

static int g_fail; /* failures seen (threads add theirs at the end) */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "FAIL %s: %s\n", what, detail ? detail : "");
    g_fail++;
}

/* xorshift64: the same texts on every run */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* JSON text of query q's single row's x, or NULL (caller frees). */
static char *query_x(struct xv_policy *p, const char *q, struct xv_value *in, char *err,
                     size_t errlen)
{
    struct xv_value *rows = NULL;
    struct xv_policy_opts o = {1, 0, 0, NULL};
    if (xv_policy_query(p, q, in, &o, &rows, err, errlen))
        return NULL;
    char *js = NULL;
    if (XV_ARR_LEN(rows) == 1) {
        long i = xv_val_object_find_str(XV_ARR_ITEM(rows, 0), "x", 1);
        if (i >= 0)
            js = xv_val_json_dump(XV_OBJ_VAL(XV_ARR_ITEM(rows, 0), i), 0);
    } else {
        snprintf(err, errlen, "%zu rows", (size_t)XV_ARR_LEN(rows));
    }
    xv_val_decref(rows);
    return js;
}

/* 1 if query q yields x == expect (JSON text), else a printed failure. */
static int expect(struct xv_policy *p, const char *q, struct xv_value *in, const char *want,
                  const char *what)
{
    char err[512] = "";
    char *js = query_x(p, q, in, err, sizeof err);
    int ok = js && !strcmp(js, want);
    if (!ok) {
        char d[700];
        snprintf(d, sizeof d, "%s: got %s, want %s (%s)", q, js ? js : "nothing", want, err);
        fail(what, d);
    }
    free(js);
    return ok;
}

static void set_str(struct xv_value *o, const char *k, const char *s, size_t n)
{
    struct xv_value *v = xv_val_string(s, n);
    xv_val_object_set_str(o, k, v);
    xv_val_decref(v);
}

/* A random text of n bytes: letters of both cases, the bytes on either side
 * of A-Z and a-z, digits, spaces and (with utf8) two-byte letters. */
static size_t make_text(uint64_t *seed, char *buf, size_t n, int utf8)
{
    static const char pool[] = "abcXYZ@[`{AZaz09 .-_";
    static const char *const wide[] = {"\xc3\xa9", "\xc3\x84", "\xc3\x9f", "\xce\xa3"};
    size_t w = 0;
    while (w < n) {
        uint64_t r = rnd(seed);
        if (utf8 && r % 23 == 0 && w + 2 <= n) {
            memcpy(buf + w, wide[(r >> 8) % 4], 2);
            w += 2;
        } else {
            buf[w++] = pool[(r >> 8) % (sizeof pool - 1)];
        }
    }
    return w;
}

static void test_case_mapping(struct xv_policy *p)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[256];
    for (int i = 0; i < 300; i++) {
        size_t n = make_text(&seed, buf, (size_t)(rnd(&seed) % 90), i % 3 == 0);
        if (i % 7 == 0) /* nothing to change: the input itself comes back */
            for (size_t j = 0; j < n; j++)
                if (buf[j] >= 'A' && buf[j] <= 'Z')
                    buf[j] = 'q';
        struct xv_value *in = xv_val_object_new(1);
        set_str(in, "s", buf, n);
        expect(p, "x = data.t.lower_ok", in, "true", "lower");
        expect(p, "x = data.t.upper_ok", in, "true", "upper");
        xv_val_decref(in);
    }
}

static void test_contains(struct xv_policy *p)
{
    uint64_t seed = 0x2545f4914f6cdd1dull;
    static char buf[120000];
    for (int i = 0; i < 200; i++) {
        size_t n;
        if (i % 10 == 0) { /* periodic: many first/last-byte candidates */
            n = 40 + (size_t)(rnd(&seed) % 200);
            for (size_t j = 0; j < n; j++)
                buf[j] = j % 7 == 6 ? 'b' : 'a';
        } else if (i == 99) { /* long: past the filter's budget, libc's memmem */
            n = sizeof buf;
            make_text(&seed, buf, n, 0);
        } else {
            n = make_text(&seed, buf, 1 + (size_t)(rnd(&seed) % 300), i % 4 == 0);
        }
        struct xv_value *in = xv_val_object_new(2), *needles = xv_val_array_new(16);
        for (int k = 0; k < 16; k++) {
            size_t len = 1 + (size_t)(rnd(&seed) % (k < 8 ? 4 : 24));
            size_t at = n > len ? (size_t)(rnd(&seed) % (n - len + 1)) : 0;
            if (k == 0)
                at = 0;
            else if (k == 1 && n >= len)
                at = n - len;
            char nd[64];
            if (len > n)
                len = n;
            memcpy(nd, buf + at, len);
            /* keep whole two-byte letters (indexof counts code points) */
            while (len && (unsigned char)nd[len - 1] >= 0xc0)
                len--;
            if (len && ((unsigned char)nd[0] & 0xc0) == 0x80)
                nd[0] = 'a';
            if (len && k % 3 == 2 && (unsigned char)nd[len - 1] < 0x80) /* likely absent now */
                nd[len - 1] = nd[len - 1] == 'b' ? 'c' : 'b';
            if (!len)
                continue;
            struct xv_value *v = xv_val_string(nd, len);
            xv_val_array_push(needles, v);
            xv_val_decref(v);
        }
        struct xv_value *big = xv_val_string("a string longer than any text here? no", 38);
        if (n < 38)
            xv_val_array_push(needles, big);
        xv_val_decref(big);
        if (i % 10 == 5) { /* every position passes the end bytes, in vain: memmem's turn */
            memset(buf, 'a', 300);
            memcpy(buf + 300, "aba", 3);
            n = 303;
            static const char *const vain[] = {"aba", "aca", "aaaaaaaaaaaaaaaaaaaaaaaaba", "aab"};
            for (int k = 0; k < 4; k++) {
                struct xv_value *v = xv_val_cstring(vain[k]);
                xv_val_array_push(needles, v);
                xv_val_decref(v);
            }
        }
        set_str(in, "s", buf, n);
        xv_val_object_set_str(in, "needles", needles);
        xv_val_decref(needles);
        expect(p, "x = data.t.contains_ok", in, "true", "contains");
        xv_val_decref(in);
    }
}

/* "aab" k times, "b", then 32 "a": "abb" right after the last of many
 * candidates that pass the end-byte test in vain, wherever the filter
 * gives up (the "a"s keep it in the sixteen-position steps). */
static void test_contains_vain(struct xv_policy *p)
{
    static const char *const needles[] = {"abb", "aab", "bb", "abba", "aabb"};
    enum { KMAX = 190 };
    char buf[3 * KMAX + 1 + 32];
    for (int k = 1; k <= KMAX; k++) {
        for (int j = 0; j < k; j++)
            memcpy(buf + 3 * j, "aab", 3);
        buf[3 * k] = 'b';
        memset(buf + 3 * k + 1, 'a', 32);
        struct xv_value *in = xv_val_object_new(2), *arr = xv_val_array_new(5);
        set_str(in, "s", buf, (size_t)(3 * k + 33));
        for (int j = 0; j < 5; j++) {
            struct xv_value *v = xv_val_cstring(needles[j]);
            xv_val_array_push(arr, v);
            xv_val_decref(v);
        }
        xv_val_object_set_str(in, "needles", arr);
        xv_val_decref(arr);
        expect(p, "x = data.t.contains_ok", in, "true", "contains (vain candidates)");
        xv_val_decref(in);
    }
}

/* One ref, objects of other shapes each time: a hint left by one shape
 * must never answer for another. */
static void test_lookups(struct xv_policy *p)
{
    static const char *const inputs[2] = {
        "{\"objs\":[{\"k\":1},{\"a\":0,\"k\":2},{\"k\":3,\"z\":0},{\"a\":0,\"b\":0,\"k\":4},{},"
        "{\"kk\":5},\"k\",[1,2],{\"a\":{\"b\":7},\"k\":6},{\"a\":[1],\"k\":8},{\"k\":null}]}",
        "{\"objs\":[{\"k\":null},{\"a\":[1],\"k\":8},{\"a\":{\"b\":7},\"k\":6},[1,2],\"k\","
        "{\"kk\":5},{},{\"a\":0,\"b\":0,\"k\":4},{\"k\":3,\"z\":0},{\"a\":0,\"k\":2},{\"k\":1}]}",
    };
    static const char *const pick[2] = {"[1,2,3,4,6,8,null]", "[null,8,6,4,3,2,1]"};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 2; i++) {
            struct xv_value *in = NULL;
            char err[256];
            if (xv_val_json_parse(inputs[i], strlen(inputs[i]), &in, err, sizeof err)) {
                fail("lookups input", err);
                return;
            }
            expect(p, "x = data.t.pick", in, pick[i], "lookups");
            expect(p, "x = data.t.deep", in, "[7]", "lookups (two keys)");
            xv_val_decref(in);
        }
}

/* Patterns ^a{k}$ for k in [from, from + n) against "aaa...". */
static int regex_round(struct xv_policy *p, int from, int n, int want, char *got, size_t gotlen)
{
    struct xv_value *in = xv_val_object_new(2), *pats = xv_val_array_new((size_t)n);
    char pat[32], s[400];
    for (int k = from; k < from + n; k++) {
        snprintf(pat, sizeof pat, "^a{%d}$", k);
        struct xv_value *v = xv_val_cstring(pat);
        xv_val_array_push(pats, v);
        xv_val_decref(v);
    }
    memset(s, 'a', (size_t)want);
    set_str(in, "s", s, (size_t)want);
    xv_val_object_set_str(in, "pats", pats);
    xv_val_decref(pats);
    char err[256] = "", wantjs[64];
    char *js = query_x(p, "x = data.t.re_hits", in, err, sizeof err);
    if (want >= from && want < from + n)
        snprintf(wantjs, sizeof wantjs, "[\"^a{%d}$\"]", want);
    else
        snprintf(wantjs, sizeof wantjs, "[]");
    int ok = js && !strcmp(js, wantjs);
    snprintf(got, gotlen, "from %d: got %s, want %s (%s)", from, js ? js : "nothing", wantjs, err);
    free(js);
    xv_val_decref(in);
    return ok;
}

static void test_regex(struct xv_policy *p)
{
    char d[300];
    /* 300 patterns: more than the thread's slots and the shared cache */
    if (!regex_round(p, 1, 300, 3, d, sizeof d))
        fail("regex", d);
    for (int i = 0; i < 20; i++)
        if (!regex_round(p, 1 + i, 3, 2 + i, d, sizeof d))
            fail("regex (few patterns)", d);
    char err[512] = "";
    struct xv_value *in = xv_val_object_new(0);
    char *js = query_x(p, "x = regex.match(\"(a\", \"a\")", in, err, sizeof err);
    if (js || !strstr(err, "missing closing )"))
        fail("regex (bad pattern)", err);
    free(js);
    xv_val_decref(in);
}

/* ---- several threads ---- */

struct shared {
    struct xv_policy *bench; /* the bench policy */
    struct xv_value *input;  /* its input (frozen) */
    const char *want;        /* its decision, decided alone */
};

struct worker {
    struct shared *sh; /* read only */
    int id;            /* which thread */
    int bad;           /* failures seen */
};

static char *decision_json(struct xv_policy *p, struct xv_value *in)
{
    struct xv_decision d;
    char err[256];
    if (xv_policy_decide(p, in, NULL, &d, err, sizeof err))
        return NULL;
    char *js = xv_policy_decision_json(&d);
    xv_policy_decision_free(&d);
    return js;
}

static struct xv_policy *load_module(char *err, size_t errlen)
{
    struct xv_policy *p = xv_policy_new();
    if (p && !xv_policy_add_module(p, "t.rego", k_mod, sizeof k_mod - 1, XV_REGO_VERSION_V1, err,
                                   errlen) &&
        !xv_policy_compile(p, err, errlen))
        return p;
    xv_policy_free(p);
    return NULL;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char d[300];
    /* its own copy of the module: a query compiles into the policy, so
     * queries are not for several threads at once (decisions are) */
    struct xv_policy *t = load_module(d, sizeof d);
    if (!t) {
        w->bad++;
        return NULL;
    }
    for (int i = 0; i < 150; i++) {
        char *js = decision_json(w->sh->bench, w->sh->input);
        if (!js || strcmp(js, w->sh->want))
            w->bad++;
        free(js);
        /* each thread its own window of patterns: slots replaced often */
        if (!regex_round(t, 1 + (i + w->id * 7) % 40, 6, 5 + i % 30, d, sizeof d))
            w->bad++;
    }
    xv_policy_free(t);
    return NULL;
}

static void test_threads(void)
{
    struct shared sh = {NULL, NULL, NULL};
    char err[512];
    if (xv_policy_load(XV_BENCH_FIXTURES "/policy.rego", NULL, XV_REGO_VERSION_AUTO, &sh.bench,
                       err, sizeof err)) {
        fail("bench policy", err);
        return;
    }
    FILE *f = fopen(XV_BENCH_FIXTURES "/input.json", "rb");
    static char buf[1 << 16];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    struct xv_frozen_list fz = {0};
    if (!len || xv_val_json_parse(buf, len, &sh.input, err, sizeof err) ||
        xv_val_freeze(sh.input, &fz)) {
        fail("bench input", err);
        xv_policy_free(sh.bench);
        return;
    }
    char *want = decision_json(sh.bench, sh.input);
    sh.want = want;
    if (!want) {
        fail("bench decision", NULL);
    } else {
        pthread_t th[4];
        struct worker w[4];
        int started = 0;
        for (int i = 0; i < 4; i++) {
            w[i] = (struct worker){&sh, i, 0};
            if (pthread_create(&th[i], NULL, work, &w[i]) == 0)
                started++;
            else
                fail("pthread_create", NULL);
        }
        for (int i = 0; i < started; i++) {
            pthread_join(th[i], NULL);
            if (w[i].bad) {
                snprintf(err, sizeof err, "thread %d: %d wrong results", i, w[i].bad);
                fail("threads", err);
            }
        }
    }
    free(want);
    xv_val_free_frozen(&fz);
    xv_policy_free(sh.bench);
}

int main(void)
{
    char err[512];
    struct xv_policy *p = load_module(err, sizeof err);
    if (!p) {
        fprintf(stderr, "FAIL compile: %s\n", err);
        return 1;
    }
    test_case_mapping(p);
    test_contains(p);
    test_contains_vain(p);
    test_lookups(p);
    test_regex(p);
    test_threads();
    xv_policy_free(p);
    printf("policy_fastpaths: %s\n", g_fail ? "FAILED" : "ok");
    return g_fail ? 1 : 0;
}
