/*
 * test_hooks.c — hooks/ (the static library xv_hooks) linked into a plain
 * program, without any preloading: this executable defines write, read,
 * poll, _exit … itself, so every such call below goes through the agent's
 * hook. Checks the one way down (common/xv_real.h): the table never points
 * at our own hooks and is resolved before main; hooks
 * that are off pass every call through with the real result and errno;
 * switched on, unwatched fds still pass through while a loopback connect
 * is remembered (xv_net_peer); _exit/_Exit run what preload/ registers
 * (xv_hooks_on_exit) and exit with the caller's status; the OpenSSL lookup
 * prefers the registered source (patch/'s trampolines) and never returns
 * one of our hooks; patch/'s list of entry points is hooked.def's.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "xv_hooks.h"
#include "xv_nextsym.h"
#include "xv_patch.h"
#include "xv_real.h"

/* First test on purpose: nothing in this program called xv_real_init
 * itself (common/real.c's load-time constructor took the loader snapshot),
 * and the table is usable: an entry is its own stub until its first call,
 * then libc's, the one dlsym(RTLD_NEXT) gives. */
static void test_table_usable_before_init(void **state)
{
    (void)state;
    void *libc_write = dlsym(RTLD_NEXT, "write"), *libc_poll = dlsym(RTLD_NEXT, "poll");
    assert_true(xv_real_is_self((void *)xv_real.write) || (void *)xv_real.write == libc_write);
    assert_true(xv_real_is_self((void *)xv_real.poll) || (void *)xv_real.poll == libc_poll);
    assert_ptr_not_equal((void *)xv_real.write, (void *)&write);
    int p[2];
    assert_int_equal(pipe(p), 0);
    errno = 77;
    assert_int_equal(XV_REAL(write)(p[1], "ab", 2), 2);
    assert_int_equal(errno, 77); /* the first call's resolution left errno alone */
    assert_ptr_equal((void *)xv_real.write, libc_write); /* resolved by its first call */
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    assert_int_equal(XV_REAL(poll)(&pf, 1, 1000), 1);
    assert_ptr_equal((void *)xv_real.poll, libc_poll);
    char b[4] = { 0 };
    assert_int_equal(XV_REAL(read)(p[0], b, sizeof b), 2);
    assert_memory_equal(b, "ab", 2);
    assert_int_equal(XV_REAL(close)(p[0]), 0);
    assert_int_equal(XV_REAL(close)(p[1]), 0);
}

/* The snapshot's lookup (common/xv_nextsym.h) answers every hooked name,
 * and answers as dlsym(RTLD_NEXT) does: the default version of a
 * versioned name (realpath, pthread_create, fcntl), plain data (environ);
 * what it cannot decide as the loader does it leaves to dlsym (an IFUNC
 * such as memcpy or gettimeofday, a name defined nowhere). */
static void test_nextsym_matches_dlsym(void **state)
{
    (void)state;
    assert_true(xv_nextsym_usable()); /* this program comes before libc */
    int n = 0;
#define CHECK(name)                                                              \
    do {                                                                         \
        void *p = NULL;                                                          \
        assert_int_equal(xv_nextsym(#name, &p), XV_NEXTSYM_FOUND);               \
        assert_ptr_equal(p, dlsym(RTLD_NEXT, #name));                            \
        n++;                                                                     \
    } while (0);
#define XV_LIBC(name, ret, params, args) CHECK(name)
#define XV_LIBC_VA(name) CHECK(name)
#define XV_EXIT(name) CHECK(name)
#include "hooked.def"
    CHECK(realpath)
    CHECK(pthread_create)
    CHECK(environ)
    CHECK(clock_gettime) /* libc's, not the vDSO's (out of the search scope) */
#undef CHECK
    assert_int_equal(n, sizeof xv_real / sizeof(void *) + 4);
    const char *ask[] = { "memcpy", "gettimeofday", "xv_no_such_function_anywhere" };
    for (size_t i = 0; i < sizeof ask / sizeof ask[0]; i++) {
        void *p = NULL;
        int r = xv_nextsym(ask[i], &p);
        if (r == XV_NEXTSYM_FOUND) /* an IFUNC-free libc: then it must agree */
            assert_ptr_equal(p, dlsym(RTLD_NEXT, ask[i]));
        else
            assert_int_equal(r, XV_NEXTSYM_ASK);
    }
}

/* Where the snapshot cannot answer as dlsym would, it says so: for an object
 * loaded after libc (dlopen()ed: RTLD_NEXT then searches that object's own
 * dependencies, not the load order), and for libc itself (nothing it could
 * reach after it). xv_real_init then resolves the table with dlsym. */
static void test_nextsym_refuses_when_dlopened(void **state)
{
    (void)state;
    void *p = NULL;
    /* a Debian library this program has not loaded yet, and one function of it */
    static const char *const libs[][2] = {
        { "libz.so.1", "zlibVersion" },   { "libbz2.so.1.0", "BZ2_bzlibVersion" },
        { "liblzma.so.5", "lzma_version_number" }, { "libexpat.so.1", "XML_ExpatVersion" },
    };
    void *z = NULL;
    const char *zfn = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !z; i++) {
        void *h = dlopen(libs[i][0], RTLD_NOW | RTLD_NOLOAD);
        if (h) { /* loaded at start already: not the case under test */
            dlclose(h);
            continue;
        }
        z = dlopen(libs[i][0], RTLD_NOW | RTLD_LOCAL);
        zfn = libs[i][1];
    }
    if (z) {
        void *fn = dlsym(z, zfn);
        assert_non_null(fn);
        xv_nextsym_init(fn);
        assert_false(xv_nextsym_usable());
        assert_int_equal(xv_nextsym("write", &p), XV_NEXTSYM_ASK);
    } else {
        print_message("skipped the dlopen()ed case: no library left to dlopen\n");
    }
    /* an address inside libc itself (RTLD_NEXT may name a sanitizer's
     * interceptor instead) */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(libc);
    xv_nextsym_init(dlsym(libc, "write"));
    dlclose(libc);
    assert_false(xv_nextsym_usable());
    assert_int_equal(xv_nextsym("write", &p), XV_NEXTSYM_ASK);
    /* an audit module may redirect dlsym's answers: the snapshot stands aside */
    assert_int_equal(setenv("LD_AUDIT", "/nonexistent/audit.so", 1), 0);
    xv_nextsym_init((const void *)&xv_real_init);
    assert_false(xv_nextsym_usable());
    assert_int_equal(unsetenv("LD_AUDIT"), 0);
    /* back to this program's own snapshot, which the table uses */
    xv_nextsym_init((const void *)&xv_real_init);
    assert_true(xv_nextsym_usable());
    assert_int_equal(xv_nextsym("write", &p), XV_NEXTSYM_FOUND);
    assert_ptr_equal(p, dlsym(RTLD_NEXT, "write"));
    if (z)
        dlclose(z);
}

/* Whatever the test above left: this program's own snapshot again. */
static int restore_snapshot(void **state)
{
    (void)state;
    unsetenv("LD_AUDIT");
    xv_nextsym_init((const void *)&xv_real_init);
    return 0;
}

/* Every libc entry of the table, resolved, is libc's own function: not in
 * this program (where the hooks live), the one dlsym(RTLD_NEXT) gives. */
static void test_table_never_points_at_hooks(void **state)
{
    (void)state;
    xv_real_init();
    xv_real_resolve_all();
    int n = 0;
#define CHECK(name)                                                              \
    do {                                                                         \
        void *e = *(void **)&xv_real.name;                                       \
        void *libc = dlsym(RTLD_NEXT, #name);                                    \
        assert_non_null(e);                                                      \
        assert_false(xv_real_is_self(e));                                        \
        if (libc)                                                                \
            assert_ptr_equal(e, libc);                                           \
        n++;                                                                     \
    } while (0);
#define XV_LIBC(name, ret, params, args) CHECK(name)
#define XV_LIBC_VA(name) CHECK(name)
#define XV_EXIT(name) CHECK(name)
#include "hooked.def"
#undef CHECK
    assert_int_equal(n * sizeof(void *), sizeof xv_real);
    /* and our hooks are where the table says they are not */
    assert_true(xv_real_is_self((void *)&write));
    assert_true(xv_real_is_self((void *)&poll));
    assert_ptr_not_equal((void *)xv_real.write, (void *)&write);
}

/* Hooks off (nothing called xv_hooks_set_ready): results and errno are
 * the real call's. */
static void test_off_passes_through(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "hello", 5), 5);
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    assert_int_equal(poll(&pf, 1, 1000), 1);
    assert_true(pf.revents & POLLIN);
    char b[8];
    assert_int_equal(read(p[0], b, sizeof b), 5);
    assert_memory_equal(b, "hello", 5);
    errno = 0;
    assert_int_equal(write(-1, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(close(-1), -1);
    assert_int_equal(errno, EBADF);
    int d = dup(p[0]);
    assert_true(d >= 0);
    assert_int_equal(close(d), 0);
    assert_int_equal(close(p[0]), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Hooks on, no agent configured: a loopback connect is remembered by the
 * hooks, socket I/O on it and on a socketpair is unchanged. */
static void test_on_unwatched_and_peer(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);

    xv_hooks_set_ready(1);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
    struct xv_conn_peer peer;
    assert_int_equal(xv_net_peer(c, &peer), 0);
    int a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    /* not HTTP: the bytes go through as they are */
    assert_int_equal(send(c, "\x16\x03\x01", 3, 0), 3);
    char b[8];
    assert_int_equal(recv(a, b, sizeof b, 0), 3);
    assert_memory_equal(b, "\x16\x03\x01", 3);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(write(sp[0], "xyz", 3), 3);
    assert_int_equal(read(sp[1], b, sizeof b), 3);
    errno = 0;
    assert_int_equal(read(-1, b, 1), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(close(sp[0]), 0);
    assert_int_equal(close(sp[1]), 0);
    assert_int_equal(close(c), 0);
    assert_int_equal(xv_net_peer(c, &peer), -1); /* forgotten at close */
    xv_hooks_set_ready(0);
    assert_int_equal(close(a), 0);
    assert_int_equal(close(l), 0);
}

static int g_exit_pipe = -1;

static void on_exit_cb(void)
{
    XV_REAL(write)(g_exit_pipe, "E", 1);
}

/* In a child: register (or not), leave through the hook; the parent sees
 * the status and whether the callback ran. */
static void run_exit(int which, int registered, int status)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        XV_REAL(close)(p[0]);
        g_exit_pipe = p[1];
        xv_hooks_on_exit(registered ? on_exit_cb : NULL);
        if (which)
            _Exit(status);
        _exit(status);
    }
    close(p[1]);
    char b[2];
    ssize_t n = read(p[0], b, sizeof b);
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), status);
    assert_int_equal(n, registered ? 1 : 0);
}

static void test_exit_runs_registered_callback(void **state)
{
    (void)state;
    run_exit(0, 1, 7);
    run_exit(1, 1, 9);
    run_exit(0, 0, 3);
    run_exit(1, 0, 0);
}

static int g_marker;

static void *fake_source(int idx)
{
    return idx == XV_SSL_do_handshake ? (void *)&g_marker : NULL;
}

/* OpenSSL lookup: the registered source first; without libssl loaded the
 * rest is NULL, never one of our SSL hooks (which this program defines). */
static void test_ssl_lookup(void **state)
{
    (void)state;
    assert_string_equal(xv_real_ssl_name(XV_SSL_write), "SSL_write");
    assert_string_equal(xv_real_ssl_name(XV_X509_verify_cert), "X509_verify_cert");
    assert_int_equal(XV_SSL_X509_verify_cert, XV_X509_verify_cert);
    assert_null(xv_real_ssl_name(XV_SSL_FN_COUNT));
    assert_null(xv_real_ssl(XV_SSL_FN_COUNT));
    assert_null(xv_real_ssl(-1));
    xv_real_ssl_source(fake_source);
    assert_ptr_equal(xv_real_ssl(XV_SSL_do_handshake), &g_marker);
    xv_real_ssl_source(NULL);
    assert_ptr_equal(xv_real_ssl(XV_SSL_do_handshake), &g_marker); /* kept */
    for (int i = 0; i < XV_SSL_FN_COUNT; i++) {
        void *p = xv_real_ssl(i);
        assert_false(xv_real_is_self(p) && p != (void *)&g_marker);
    }
    if (!dlopen("libssl.so.3", RTLD_NOLOAD | RTLD_LAZY))
        assert_null(xv_real_ssl(XV_SSL_write));
}

/* patch/ keeps its own list of OpenSSL entry points (names, which are
 * hooked): it must be common/hooked.def's XV_SSL list, in its order. */
static void test_patch_names_match_hooked_def(void **state)
{
    (void)state;
    static const unsigned char hooked[] = {
#define XV_SSL(name, hooked, essential) hooked,
#include "hooked.def"
    };
    static const unsigned char essential[] = {
#define XV_SSL(name, hooked, essential) essential,
#include "hooked.def"
    };
    assert_int_equal(XV_PATCH_NAMES, XV_SSL_FN_COUNT);
    assert_int_equal(sizeof hooked, XV_SSL_FN_COUNT);
    for (int i = 0; i < XV_SSL_FN_COUNT; i++) {
        assert_string_equal(xv_patch_names[i], xv_real_ssl_name(i));
        assert_int_equal(xv_patch_hooked[i], hooked[i]);
        assert_int_equal(xv_patch_essential[i], essential[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_usable_before_init),
        cmocka_unit_test(test_nextsym_matches_dlsym),
        cmocka_unit_test_teardown(test_nextsym_refuses_when_dlopened, restore_snapshot),
        cmocka_unit_test(test_table_never_points_at_hooks),
        cmocka_unit_test(test_off_passes_through),
        cmocka_unit_test(test_on_unwatched_and_peer),
        cmocka_unit_test(test_exit_runs_registered_callback),
        cmocka_unit_test(test_ssl_lookup),
        cmocka_unit_test(test_patch_names_match_hooked_def),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
