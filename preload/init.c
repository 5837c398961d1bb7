/*
 * init.c — constructor, once-init, fork handlers and the exit path of
 * libxenovia.so.
 *
 * Order: the constructor (or the first hook, whichever runs first) resolves
 * the real libc functions, then once-init reads the configuration, sets up
 * the exporter and the connection layer, registers fork handlers, checks
 * coverage, and only then turns the hooks on. A hook that runs before that
 * (another library's constructor, a second thread during init, or our own
 * init doing I/O) goes straight to the real function.
 *
 * Inert processes: secure-execution (setuid, AT_SECURE) and
 * XENOVIA_DISABLE=1 — hooks stay off for the life of the process.
 */
#include "xv_preload.h"
#include "xv_route.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xv_common.h"
#include "xv_knobs.h"
#include "xv_conn.h"
#include "xv_exporter.h"
#include "xv_hooks.h"
#include "xv_patch.h"
#include "xv_session.h"
#include "xv_policy.h"

_Static_assert(XV_PATCH_NAMES == XV_SSL_FN_COUNT, "patch/ and common/hooked.def name the same functions");

/* Process-wide agent state; written only by once-init. */
static struct {
    struct xv_config cfg;
    char process[256];        /* argv[0] as the program was started */
    int active;               /* hooks were turned on */
    struct xv_policy *policy; /* compiled XENOVIA_POLICY, or NULL */
    int policy_broken;        /* XENOVIA_POLICY did not load */
    pid_t pid;                /* this process (a vfork child has another pid) */
    pid_t armed_pid;          /* the process that registered the fork handlers */
} g XV_START_DATA;

/* Compiled-in OpenSSL: what patch/ did. Its exe member holds the program
 * file's facts for the coverage verdict (completed at the first connect
 * when rodata_pending), read here when patch/ did not — at the first
 * connect too when the program is too small to hold OpenSSL (exe_small). */
static struct xv_patch_report g_patch XV_START_TAIL_DATA;

static void exit_flush(void);

#ifdef __GLIBC__
/* pthread_atfork() is a stub from libc_nonshared.a, linked at the far end
 * of the agent's code: calling it paged in one more 64 KiB window of code at
 * every start (issue 9). This is the call the stub makes. */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                             void *dso);
extern void *__dso_handle __attribute__((weak, visibility("hidden")));
#define register_fork_handlers(p, a, c) \
    __register_atfork((p), (a), (c), &__dso_handle == NULL ? NULL : __dso_handle)
#else
#define register_fork_handlers(p, a, c) pthread_atfork((p), (a), (c))
#endif

static void on_fork_prepare(void)
{
    xv_conn_atfork_prepare();
    xv_exp_atfork_prepare();
}

static void on_fork_parent(void)
{
    xv_exp_atfork_parent();
    xv_conn_atfork_parent();
}

static void on_fork_child(void)
{
    g.pid = getpid();
    xv_uuid_atfork_child(); /* the child draws UUIDs of its own */
    /* Locks may have been held by threads that do not exist here. */
    xv_conn_atfork_child();
    xv_net_atfork_child();
    xv_tls_atfork_child();
    xv_dns_atfork_child();
    xv_poll_atfork_child();
    xv_route_atfork_child();
    xv_exp_atfork_child();
}

/* The first hook into the agent's work (hooks/net.c): from then on a fork
 * must pass through the handlers below. */
static void arm_fork_handlers(void)
{
    g.armed_pid = (pid_t)syscall(SYS_getpid);
    if (register_fork_handlers(on_fork_prepare, on_fork_parent, on_fork_child) == 0)
        xv_uuid_fork_handled(); /* else the generator registers its own at first use */
}

XV_START_FN static void read_process_name(int argc, char **argv)
{
    if (argc > 0 && argv && argv[0]) {
        /* a bounded copy, cut on a character boundary (no printf machinery
         * paged in at every start) */
        size_t n = strnlen(argv[0], sizeof g.process - 1);
        memcpy(g.process, argv[0], n);
        g.process[n] = '\0';
        if (argv[0][n])
            g.process[xv_utf8_tail(g.process, n)] = '\0';
        return;
    }
    /* Fallback: /proc/self/cmdline (first NUL-terminated field). */
    ssize_t n = readlink("/proc/self/exe", g.process, sizeof g.process - 1);
    g.process[n > 0 ? n : 0] = '\0';
}

/* The coverage verdict on the program's own file (preload/coverage.c). Its
 * facts come from patch/'s read of the symbols; a stripped program without
 * TLS symbols would also need a byte search of its .rodata (2 MB for
 * python, most of what the agent costs its start): that search, and so the
 * verdict, waits for the program's first connect — a program that never
 * connects has nothing to cover. */
static void coverage_report(void)
{
    char exe[512], why[768];
    if (g_patch.exe.rodata_pending)
        xv_patch_elf_read_rodata("/proc/self/exe", &g_patch.exe);
    /* the verdict first (its text after the path: ": …"), the program's
     * path (a readlink of /proc/self/exe, ~30 us on the bench VM) only when
     * there is something to say */
    if (!xv_coverage_verdict("", &g_patch.exe, why, sizeof why))
        return;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    xv_log(XV_LOG_ERROR, "not covered: %s%s", n > 0 ? exe : "(this program)", why);
}

/* The verdict on a program too small for OpenSSL (patch/ did not read its
 * file): at its first connect, if it ever makes one. */
static void coverage_at_connect(void)
{
    if (xv_patch_elf_read_symbols("/proc/self/exe", &g_patch.exe) != 0)
        return;
    g_patch.exe_read = 1;
    coverage_report();
}

XV_START_FN static void coverage_at_start(void)
{
    if (!g_patch.exe_read && g_patch.exe_small) {
        /* A small program on a dynamic libssl (curl, wget, most clients):
         * its TLS is that libssl's, hooked; OpenSSL cannot be compiled in
         * beside it, and a second, smaller TLS stack (mbed TLS, wolfSSL)
         * in the same program is not looked for (doctor still reports it).
         * Any other small program: its verdict at its first connect. */
        if (!g_patch.libssl)
            xv_hooks_on_first_connect(coverage_at_connect);
        return;
    }
    if (!g_patch.exe_read && xv_patch_elf_read_symbols("/proc/self/exe", &g_patch.exe) != 0)
        return;
    if (g_patch.exe.rodata_pending)
        xv_hooks_on_first_connect(coverage_report);
    else
        coverage_report();
}

XV_START_FN static void do_init(void)
{
    /* Before the program can close fd 2 and reuse the number (issue 7 class 6). */
    xv_log_capture_stderr();
    xv_real_init();
    if (getauxval(AT_SECURE))
        return; /* setuid/setgid/capabilities: stay inert */
    int saved = errno;
    xv_config_load(&g.cfg);
    if (g.cfg.disabled) {
        errno = saved;
        return;
    }
    /* Compiled-in OpenSSL (Node's official builds): patch its entry points
     * now, while the program is still single-threaded (before the exporter
     * or anything else starts a thread). */
    void *hooks[XV_SSL_FN_COUNT];
    xv_tls_hook_table(hooks);
    /* once patched, the trampolines are the real functions (common/real.c) */
    xv_real_ssl_source(xv_patch_real);
    xv_patch_apply(hooks, &g_patch);
    if (g_patch.covered)
        xv_log(XV_LOG_DEBUG, "OpenSSL compiled into %s; entry points patched: %s", g_patch.object,
               g_patch.patched);
    struct xv_exp_config ec = {
        .trace_file = g.cfg.trace_file,
        /* 0 means "do not wait"; the exporter reads 0 as its default */
        .timeout_ms = g.cfg.export_timeout_ms ? g.cfg.export_timeout_ms : 1,
        .queue_max = 4096,
    };
    if (xv_exp_init(&ec) != 0) {
        xv_log(XV_LOG_ERROR, "exporter could not start; traces are not recorded");
    }
    if (g.cfg.policy_path) {
        char err[512] = "";
        if (xv_policy_load(g.cfg.policy_path, NULL, XV_REGO_VERSION_AUTO, &g.policy, err,
                           sizeof err) != 0) {
            g.policy_broken = 1;
            xv_log(XV_LOG_ERROR, "XENOVIA_POLICY: %s; inspected requests are answered 403 "
                   "(policy_error) unless XENOVIA_FAIL_MODE=open", err[0] ? err : "cannot load");
        }
    }
    struct xv_conn_config cc = {
        .hosts = g.cfg.hosts,
        .body_max = g.cfg.body_max,
        .capture_max = g.cfg.capture_max,
        .capture_content = g.cfg.capture_content,
        .head_max = 65536,
        .process = g.process,
        .agent_id = g.cfg.agent_id,
        .org_id = g.cfg.org_id,
        .disabled_stamp = !g.cfg.stamp,
        .hold_max = g.cfg.body_max,
        .write_timeout_ms = 30000,
        .inject_lines = g.cfg.inject_lines,
        .session_env = g.cfg.session_id,
        .inject_session = 1,
        .session_max = g.cfg.session_max,
        .props = g.cfg.props,
        .session_path = g.cfg.session_path,
        .flow_id = g.cfg.flow_id,
        .parent_trace_id = g.cfg.parent_trace_id,
        .policy = g.policy,
        .policy_broken = g.policy_broken,
        .policy_monitor = g.cfg.policy_monitor,
        .policy_fail_open = g.cfg.fail_open,
        .policy_timeout_ms = g.cfg.policy_timeout_ms,
        .stream_buffer = g.cfg.stream_buffer,
        .cassette = g.cfg.cassette,
    };
    xv_conn_configure(&cc);
    /* The fork handlers wait for the first hook that reaches the agent's
     * own work (every lock and every piece of state lies behind it): a
     * process that never gets there (most of a CI job's) never pays the
     * two page faults of registering them (issue 9). */
    xv_hooks_on_first_use(arm_fork_handlers);
    /* _exit/_Exit run no destructor: hooks/proc.c calls this first */
    xv_hooks_on_exit(exit_flush);

    if (g_patch.tried && !g_patch.covered)
        xv_log(XV_LOG_ERROR, "not covered: %s has OpenSSL compiled in and its entry points "
               "cannot be patched safely (%s); its HTTPS is not inspected, plain HTTP is",
               g_patch.object, g_patch.why);
    else if (!g_patch.covered)
        coverage_at_start();

    /* syscall(), already called by start-up: getpid() sat on one more page
     * of libc's code, a fault at every start (issue 9) */
    g.pid = (pid_t)syscall(SYS_getpid);
    g.active = 1;
    xv_hooks_set_ready(1);
    errno = saved;
}

/* glibc passes argc/argv/envp to ELF constructors. */
__attribute__((constructor(200))) static void xv_preload_ctor(int argc, char **argv, char **envp)
{
    (void)envp;
    xv_real_init();
    read_process_name(argc, argv);
    int saved = errno;
    xv_guard_enter(); /* our own init I/O is never inspected */
    /* The loader runs a constructor once; nothing else calls do_init (a
     * hook that runs earlier goes to the real function), so no
     * pthread_once and its futex call (issue 9). */
    xv_env_index_begin(); /* its settings: one pass over the environment */
    do_init();
    xv_env_index_end();
    xv_guard_leave();
    errno = saved;
}

/* Does this process share its parent's memory (a vfork child)? 1, 0, or -1
 * when the kernel cannot tell (no kcmp, or no right to compare). */
XV_EXIT_FN static int shares_parent_memory(void)
{
#ifdef SYS_kcmp
    long r = syscall(SYS_kcmp, (pid_t)syscall(SYS_getpid), (pid_t)syscall(SYS_getppid),
                     1 /* KCMP_VM */, 0UL, 0UL);
    return r == 0 ? 1 : r > 0 ? 0 : -1;
#else
    return -1;
#endif
}

/* The bounded flush for an _exit of this process (hooks/proc.c calls it
 * through xv_hooks_on_exit); nothing in a vfork child or when inactive.
 * Another pid than the one the fork handler last wrote is a vfork child —
 * or the child of a fork made before the handlers were registered (they
 * wait for the agent's first use), whose own memory the kernel tells. When
 * it cannot (kcmp refused, as under Docker's default seccomp profile), a
 * process that registered the handlers itself flushes: either a fork
 * child, or a vfork child of a parent that had no agent state to lose. */
XV_EXIT_FN static void exit_flush(void)
{
    if (!g.active)
        return;
    int saved = errno;
    pid_t me = getpid();
    int shared = me != g.pid ? shares_parent_memory() : 0;
    if (shared > 0 || (shared < 0 && me != g.armed_pid)) {
        errno = saved;
        return;
    }
    struct xv_exp_stats st;
    /* queued request bytes the app was told are sent (bounded like a write) */
    xv_net_tx_drain_all(xv_conn_get_config()->write_timeout_ms);
    xv_conn_end_all("process exited before the response completed");
    xv_exp_get_stats(&st);
    if (st.pushed > st.written + st.failed)
        xv_exp_flush(g.cfg.export_timeout_ms);
    errno = saved;
}

XV_EXIT_FN __attribute__((destructor)) static void xv_preload_dtor(void)
{
    if (!g.active)
        return;
    int saved = errno;
    xv_hooks_set_ready(0);
    xv_conn_end_all("process exited before the response completed");
    xv_exp_shutdown();
    errno = saved;
}
