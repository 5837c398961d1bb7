/*
 * test_policy_pool.c — unit_policy_pool: the per-thread block lists values
 * are made of (policy/value/pool.h). A freed block serves the next request
 * of its class on the same thread; a thread keeps at most XV_POOL_DEPTH
 * blocks a class and none above the classes; a thread that exits gives its
 * blocks back (malloc's in-use bytes after it are those before it); values
 * built on one thread and dropped on another stay correct.
 *
 * Under ASan the pool keeps nothing (every block from malloc, back to free):
 * the tests that need kept blocks say so and pass as skipped.
 * Thread safety: the thread tests join every thread they start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "value/pool.h"
#include "xv_value.h"

#ifdef __SANITIZE_ADDRESS__
#define NEED_LISTS()                                                                \
    do {                                                                            \
        printf("skipped: under ASan the pool keeps no block (value/pool.h)\n"); \
        skip();                                                                     \
    } while (0)
#else
#define NEED_LISTS() ((void)0)
#endif

/* Empty this thread's lists: take every kept block out, then free it. */
static void empty_lists(void)
{
    static const size_t sizes[] = { 64, 128, 256 };
    for (size_t c = 0; c < 3; c++) {
        void *b[XV_POOL_DEPTH];
        size_t n = 0;
        while (n < XV_POOL_DEPTH)
            b[n++] = xv_pool_alloc(sizes[c]);
        for (size_t i = 0; i < n; i++)
            free(b[i]); /* plain free of a pool block is allowed */
    }
    assert_int_equal(xv_pool_held(), 0);
}

static void test_reuse_within_class(void **state)
{
    (void)state;
    NEED_LISTS();
    empty_lists();
    char *a = xv_pool_alloc(40);
    assert_non_null(a);
    memset(a, 'x', 64); /* the class's full 64 bytes are the caller's */
    xv_pool_free(a, 40);
    assert_int_equal(xv_pool_held(), 64);
    char *b = xv_pool_alloc(64);
    assert_ptr_equal(a, b);
    assert_int_equal(xv_pool_held(), 0);
    char *c = xv_pool_alloc(100); /* another class: not that block */
    assert_ptr_not_equal(c, b);
    xv_pool_free(b, 1);
    xv_pool_free(c, 128);
    assert_int_equal(xv_pool_held(), 64 + 128);
    char *big = xv_pool_alloc(1000);
    assert_non_null(big);
    xv_pool_free(big, 1000); /* above the classes: to free(), nothing kept */
    assert_int_equal(xv_pool_held(), 64 + 128);
    xv_pool_free(NULL, 64);
    empty_lists();
}

static void test_depth_bound(void **state)
{
    (void)state;
    NEED_LISTS();
    empty_lists();
    enum { N = 3 * XV_POOL_DEPTH };
    void *b[N];
    for (int i = 0; i < N; i++)
        assert_non_null(b[i] = xv_pool_alloc(200));
    for (int i = 0; i < N; i++)
        xv_pool_free(b[i], 200);
    assert_int_equal(xv_pool_held(), (size_t)XV_POOL_DEPTH * 256);
    empty_lists();
}

/* A thread that fills its three lists to the bound and exits. */
static void *filler(void *arg)
{
    size_t *held = arg;
    static const size_t sizes[] = { 50, 120, 250 };
    for (size_t c = 0; c < 3; c++) {
        void *b[XV_POOL_DEPTH];
        for (int i = 0; i < XV_POOL_DEPTH; i++)
            b[i] = xv_pool_alloc(sizes[c]);
        for (int i = 0; i < XV_POOL_DEPTH; i++)
            xv_pool_free(b[i], sizes[c]);
    }
    *held = xv_pool_held();
    return NULL;
}

static void test_thread_exit_gives_back(void **state)
{
    (void)state;
    NEED_LISTS();
    pthread_t t;
    size_t held = 0;
    /* a first thread: whatever starting one costs malloc once (stack cache,
     * the pthread key) is paid before the measurement */
    assert_int_equal(pthread_create(&t, NULL, filler, &held), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    size_t before = mallinfo2().uordblks;
    assert_int_equal(pthread_create(&t, NULL, filler, &held), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    size_t after = mallinfo2().uordblks;
    assert_int_equal(held, (size_t)XV_POOL_DEPTH * (64 + 128 + 256));
    /* without the exit drain the 28 KiB held above would still be in use */
    printf("in use before %zu, after %zu (the thread held %zu)\n", before, after, held);
    assert_true(after < before + 4096);
}

/* Values built on one thread, dropped on another (their blocks join the
 * dropping thread's lists): every value still reads back whole. */
static void *builder(void *arg)
{
    struct xv_value **out = arg;
    struct xv_value *o = xv_val_object_new(0);
    for (int i = 0; i < 40; i++) {
        char k[16], s[96];
        snprintf(k, sizeof k, "k%02d", i);
        snprintf(s, sizeof s, "value %d with some text to pass a class boundary %d", i, i);
        struct xv_value *a = xv_val_array_new(0);
        for (int j = 0; j <= i % 9; j++) {
            struct xv_value *e = xv_val_int(j);
            xv_val_array_push(a, e);
            xv_val_decref(e);
        }
        struct xv_value *pair = xv_val_array_new(2);
        struct xv_value *sv = xv_val_cstring(s);
        xv_val_array_push(pair, sv);
        xv_val_array_push(pair, a);
        xv_val_decref(sv);
        xv_val_decref(a);
        xv_val_object_set_str(o, k, pair);
        xv_val_decref(pair);
    }
    *out = o;
    return NULL;
}

static void test_cross_thread_values(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        struct xv_value *o = NULL;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, builder, &o), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_non_null(o);
        assert_int_equal(XV_OBJ_LEN(o), 40);
        for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
            struct xv_value *pair = XV_OBJ_VAL(o, i);
            char want[96];
            snprintf(want, sizeof want, "value %zu with some text to pass a class boundary %zu",
                     i, i);
            assert_string_equal(XV_STR(XV_ARR_ITEM(pair, 0)), want);
            assert_int_equal(XV_ARR_LEN(XV_ARR_ITEM(pair, 1)), i % 9 + 1);
        }
        xv_val_decref(o); /* this thread's lists take the blocks */
        /* and serve this thread's next values */
        struct xv_value *again = NULL;
        builder(&again);
        assert_int_equal(XV_OBJ_LEN(again), 40);
        xv_val_decref(again);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_within_class),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_thread_exit_gives_back),
        cmocka_unit_test(test_cross_thread_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
