/*
 * observe.c — loads the uprobe program (tls.bpf.c, through its bpftool
 * skeleton), attaches it to the TLS library of each target, consumes the
 * ring buffer and hands every record to feed.c.
 *
 * Targets: `--pid P` (the libssl* objects P has mapped, and P's executable
 * when it exports SSL_write, e.g. Node's compiled-in OpenSSL) and `-- CMD`
 * (started stopped on a pipe, attached to the system libssl.so.3 and to
 * CMD's executable, then released). Attachments are per process (libbpf
 * attaches by symbol name; it turns the symbol into a file offset), so no
 * other process on the machine pays for the probes.
 *
 * The consumer polls with a short timeout because the program wakes it only
 * when XV_OBS_WAKE_BYTES are pending (batched wake-ups). Detaching
 * (SIGINT/SIGTERM, or every target gone) removes every probe and leaves the
 * targets running. Single-threaded, apart from the exporter's own thread.
 */
#include "xv_observe.h"
#include "xv_observe_event.h"
#include "xv_real.h"
#include "tls.skel.h"

#include "xv_conn.h"
#include "xv_exporter.h"
#include "xv_knobs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 256

static volatile sig_atomic_t g_stop;
static int g_verbose;
static struct bpf_link *g_links[MAX_LINKS];
static size_t g_nlinks;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (!g_verbose || level == LIBBPF_DEBUG)
        return 0;
    return vfprintf(stderr, fmt, ap);
}

static int attach_pid(struct xv_tls_bpf *sk, pid_t pid);
static int attach_object(struct xv_tls_bpf *sk, pid_t pid, const char *path);
static char *system_libssl(void);

static void add_target(struct xv_tls_bpf *sk, pid_t pid)
{
    __u32 k = (__u32)pid;
    __u8 one = 1;
    bpf_map_update_elem(bpf_map__fd(sk->maps.xv_targets), &k, &one, BPF_ANY);
}

/* Tgid of a task id (0 when gone). */
static pid_t tgid_of(pid_t tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int tg = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Tgid: %d", &tg) == 1)
            break;
    fclose(f);
    return (pid_t)tg;
}

/* Follow a fork (a new process maps what its parent did) or an exec (a new
 * image: its executable, and the system libssl it may load later). */
static void follow(struct xv_tls_bpf *sk, const struct xv_obs_hdr *h)
{
    if (h->kind == XV_OBS_FORK) {
        pid_t child = (pid_t)h->ssl;
        if (tgid_of(child) != child) {          /* a thread, or already gone */
            __u32 k = (__u32)child;
            bpf_map_delete_elem(bpf_map__fd(sk->maps.xv_targets), &k);
            return;
        }
        int r = attach_pid(sk, child);
        if (g_verbose)
            fprintf(stderr, "xenovia observe: pid %d forked %d%s\n", (int)h->tgid, (int)child,
                    r == 0 ? "" : " (no OpenSSL mapped: not observed until it execs)");
        return;
    }
    xv_observe_feed_exec(h->tgid);
    char exe[64];
    snprintf(exe, sizeof exe, "/proc/%u/exe", h->tgid);
    char *lib = attach_object(sk, (pid_t)h->tgid, exe) == -ENOENT ? system_libssl() : NULL;
    if (lib)
        attach_object(sk, (pid_t)h->tgid, lib);
    free(lib);
}

static int on_record(void *ctx, void *data, size_t size)
{
    if (size < sizeof(struct xv_obs_hdr))
        return 0;
    const struct xv_obs_hdr *h = data;
    if (h->kind == XV_OBS_FORK || h->kind == XV_OBS_EXEC) {
        follow(ctx, h);
        return 0;
    }
    if (h->len > size - sizeof *h)
        return 0;
    xv_observe_feed(h, (const char *)data + sizeof *h);
    return 0;
}

/* One uprobe by symbol name on `path` for `pid`; 0 or -errno. */
static int attach_one(struct bpf_program *prog, pid_t pid, const char *path, const char *func,
                      int ret)
{
    if (g_nlinks >= MAX_LINKS)
        return -ENOSPC;
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = func, .retprobe = ret);
    struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, pid, path, 0, &uo);
    if (!l)
        return -errno;
    g_links[g_nlinks++] = l;
    return 0;
}

/* Every probe on one object for one process. Returns 0 when SSL_write and
 * SSL_read were attached, -EPERM/-EACCES when not permitted, else -ENOENT. */
static struct {
    pid_t pid;
    dev_t dev;
    ino_t ino;
} g_att[MAX_LINKS / 4];
static size_t g_natt;

static int attach_object(struct xv_tls_bpf *sk, pid_t pid, const char *path)
{
    /* once per (process, object): two attachments would copy every byte twice */
    struct stat st;
    if (stat(path, &st) != 0)
        return -ENOENT;
    for (size_t i = 0; i < g_natt; i++)
        if (g_att[i].pid == pid && g_att[i].dev == st.st_dev && g_att[i].ino == st.st_ino)
            return 0;
    static const struct {
        const char *fn;
        int which; /* 0 write, 1 write_ex, 2 read, 3 read_ex */
    } fns[] = { { "SSL_write", 0 }, { "SSL_write_ex", 1 }, { "SSL_read", 2 }, { "SSL_read_ex", 3 } };
    int first = attach_one(sk->progs.xv_ssl_write, pid, path, "SSL_write", 0);
    if (first < 0)
        return first == -EPERM || first == -EACCES ? first : -ENOENT;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct bpf_program *entry = fns[i].which == 0 ? NULL
                                    : fns[i].which == 1 ? sk->progs.xv_ssl_write_ex
                                    : fns[i].which == 2 ? sk->progs.xv_ssl_read
                                                        : sk->progs.xv_ssl_read_ex;
        if (entry && attach_one(entry, pid, path, fns[i].fn, 0) < 0)
            continue;
        attach_one(fns[i].which & 1 ? sk->progs.xv_ssl_ret_ex : sk->progs.xv_ssl_ret, pid, path,
                   fns[i].fn, 1);
    }
    attach_one(sk->progs.xv_ssl_free, pid, path, "SSL_free", 0);
    attach_one(sk->progs.xv_ssl_new_ret, pid, path, "SSL_new", 1);
    if (g_natt < sizeof g_att / sizeof g_att[0])
        g_att[g_natt++] = (__typeof__(g_att[0])){ pid, st.st_dev, st.st_ino };
    if (g_verbose)
        fprintf(stderr, "xenovia observe: pid %d: probes on %s\n", (int)pid, path);
    return 0;
}

/* The system's libssl.so.3, as the dynamic loader finds it. */
static char *system_libssl(void)
{
    void *h = dlopen("libssl.so.3", RTLD_LAZY | RTLD_LOCAL);
    if (!h)
        return NULL;
    void *sym = dlsym(h, "SSL_write");
    Dl_info info;
    char *out = NULL;
    if (sym && dladdr(sym, &info) && info.dli_fname)
        out = realpath(info.dli_fname, NULL);
    return out; /* stays loaded: harmless in the CLI */
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Objects of a running process: its executable, then each libssl* it maps. */
static int attach_pid(struct xv_tls_bpf *sk, pid_t pid)
{
    char path[64], exe[4096];
    int got = 0, perm = 0;
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        int r = attach_object(sk, pid, path);
        got += r == 0;
        perm |= r == -EPERM || r == -EACCES;
    }
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -ESRCH;
    char line[4608], done[8][4096];
    size_t ndone = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p)
            continue;
        p[strcspn(p, "\n")] = '\0';
        const char *base = strrchr(p, '/') + 1;
        if (strncmp(base, "libssl", 6) != 0)
            continue;
        int seen = 0;
        for (size_t i = 0; i < ndone; i++)
            seen |= !strcmp(done[i], p);
        if (seen || ndone == 8)
            continue;
        snprintf(done[ndone++], sizeof done[0], "%s", p);
        /* through /proc/P/root so a process in another mount namespace works */
        char rooted[4200];
        snprintf(rooted, sizeof rooted, "/proc/%d/root%s", (int)pid, p);
        int r = attach_object(sk, pid, rooted);
        got += r == 0;
        perm |= r == -EPERM || r == -EACCES;
    }
    fclose(f);
    if (got)
        return 0;
    return perm ? -EPERM : -ENOENT;
}

/* PATH lookup as execvp does it. */
static char *which(const char *cmd)
{
    if (strchr(cmd, '/'))
        return realpath(cmd, NULL);
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, cmd);
        if (access(buf, X_OK) == 0)
            return realpath(buf, NULL);
        p += n;
        if (*p)
            p++;
    }
    return NULL;
}

static int why_not(int err, const char *what)
{
    if (err == -EPERM || err == -EACCES)
        fprintf(stderr, "xenovia observe: not permitted to %s (attaching uprobes needs root "
                        "with CAP_SYS_ADMIN)\n", what);
    else
        fprintf(stderr, "xenovia observe: cannot %s: %s\n", what, strerror(-err));
    return 2;
}

/* CAP_SYS_ADMIN (bit 21) in the effective set: attaching uprobes needs it
 * on this kernel (CAP_BPF + CAP_PERFMON load the program, attach fails). */
static int have_sys_admin(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long eff = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    fclose(f);
    return (eff >> 21) & 1;
}

static void report_counters(struct xv_tls_bpf *sk)
{
    unsigned long long v[XV_OBS_C_COUNT] = { 0 };
    int fd = bpf_map__fd(sk->maps.xv_counters);
    for (unsigned i = 0; i < XV_OBS_C_COUNT; i++)
        bpf_map_lookup_elem(fd, &i, &v[i]);
    if (g_verbose || v[XV_OBS_C_DROPPED] || v[XV_OBS_C_CUT_BYTES] || v[XV_OBS_C_COPY_FAIL])
        fprintf(stderr, "xenovia observe: %llu events, %llu dropped (ring buffer full, %llu "
                "bytes), %llu bytes beyond the per-call cap, %llu failed copies\n",
                v[XV_OBS_C_EVENTS], v[XV_OBS_C_DROPPED], v[XV_OBS_C_DROP_BYTES],
                v[XV_OBS_C_CUT_BYTES], v[XV_OBS_C_COPY_FAIL]);
}

/* Start CMD held on a pipe, put the probes on its executable (and the system
 * libssl.so.3 unless OpenSSL is compiled in), and leave it waiting: the
 * caller releases it by writing one byte to *gate_w. 0, or the exit status. */
static int start_command(struct xv_tls_bpf *sk, char *const *cmd, pid_t *child_out, int *gate_w)
{
    char *exe = which(cmd[0]);
    if (!exe) {
        fprintf(stderr, "xenovia observe: %s: command not found\n", cmd[0]);
        return 127;
    }
    int gate[2];
    if (pipe(gate) != 0) {
        free(exe);
        return why_not(-errno, "create a pipe");
    }
    /* The child calls the table: its loader snapshot is taken before the
     * fork, so an entry the child is first to call resolves without a lock
     * (or every entry is resolved now, where there is no snapshot). */
    xv_real_init();
    pid_t child = fork();
    if (child == 0) {
        XV_REAL(close)(gate[1]);
        char b;
        ssize_t n;
        do
            n = XV_REAL(read)(gate[0], &b, 1);
        while (n < 0 && errno == EINTR);
        XV_REAL(close)(gate[0]);
        if (n != 1)
            XV_REAL(_exit)(126);
        execvp(cmd[0], cmd);
        fprintf(stderr, "xenovia observe: %s: %s\n", cmd[0], strerror(errno));
        XV_REAL(_exit)(127);
    }
    XV_REAL(close)(gate[0]);
    if (child < 0) {
        free(exe);
        XV_REAL(close)(gate[1]);
        return why_not(-errno, "fork");
    }
    int got = 0, r = attach_object(sk, child, exe);
    got += r == 0;
    char *lib = system_libssl();
    /* OpenSSL compiled in (node): its own copy is the one used; probes on
     * libssl.so.3 too would double the attach and detach time */
    if (r == -ENOENT && lib && !same_file(lib, exe)) {
        r = attach_object(sk, child, lib);
        got += r == 0;
    }
    free(lib);
    free(exe);
    if (!got) {
        kill(child, SIGKILL);
        XV_REAL(close)(gate[1]);
        waitpid(child, NULL, 0);
        return r == -EPERM || r == -EACCES ? why_not(r, "attach uprobes")
                                         : (fprintf(stderr, "xenovia observe: no OpenSSL "
                                                    "found for %s\n", cmd[0]), 2);
    }
    *child_out = child;
    *gate_w = gate[1];
    return 0;
}

int xv_observe_run(const struct xv_observe_opts *o)
{
    g_verbose = o->verbose;
    libbpf_set_print(libbpf_quiet);
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        fprintf(stderr, "xenovia observe: this kernel exposes no BTF (/sys/kernel/btf/vmlinux); "
                        "the CO-RE probes cannot load\n");
        return 2;
    }
    if (!have_sys_admin()) {
        fprintf(stderr, "xenovia observe: not permitted: attaching uprobes needs root with "
                        "CAP_SYS_ADMIN\n");
        return 2;
    }
    struct xv_tls_bpf *sk = xv_tls_bpf__open();
    /* XENOVIA_OBSERVE_RING_KB: ring buffer size (a power of two, pages), for
     * tuning and for the test that makes it overflow; default 65536 (64 MiB). */
    const char *rk = xv_knob_get_text(XV_KNOB_OBSERVE_RING_KB);
    if (sk && rk) {
        /* range from common/xv_knobs.def; a power of two on top */
        uint64_t kb;
        if (xv_knob_check(&xv_knobs[XV_KNOB_OBSERVE_RING_KB], rk, &kb) != 0 || (kb & (kb - 1))) {
            fprintf(stderr, "xenovia observe: XENOVIA_OBSERVE_RING_KB must be a power of two "
                            "from 4 to 4194304, got \"%s\"\n", rk);
            xv_tls_bpf__destroy(sk);
            return 2;
        }
        bpf_map__set_max_entries(sk->maps.xv_events, (unsigned)(kb * 1024));
    }
    if (sk && xv_tls_bpf__load(sk) != 0) {
        int e = errno;
        xv_tls_bpf__destroy(sk);
        sk = NULL;
        errno = e;
    }
    if (!sk) {
        int e = errno;
        fprintf(stderr, "xenovia observe: the kernel refused the BPF program: %s (--verbose "
                        "shows the verifier's log)\n", strerror(e));
        return 2;
    }
    /* forks and execs of followed processes */
    struct bpf_link *tp_fork = bpf_program__attach(sk->progs.xv_fork);
    struct bpf_link *tp_exec = bpf_program__attach(sk->progs.xv_exec);
    if (!tp_fork || !tp_exec)
        fprintf(stderr, "xenovia observe: cannot follow forks and execs (%s); only the "
                        "processes named are observed\n", strerror(errno));
    struct xv_exp_config ec = { .trace_file = o->trace_file, .timeout_ms = 5000,
                                .queue_max = 65536 };
    if (xv_exp_init(&ec) != 0)
        fprintf(stderr, "xenovia observe: exporter could not start; traces are not recorded\n");
    xv_observe_feed_init();

    int status = 0, rc = 0;
    pid_t child = -1;
    int gate[2] = { -1, -1 };
    for (size_t i = 0; i < o->npids; i++) {
        add_target(sk, o->pids[i]);
        int r = attach_pid(sk, o->pids[i]);
        if (r < 0) {
            char what[96];
            snprintf(what, sizeof what, "attach to pid %d", (int)o->pids[i]);
            rc = r == -ENOENT ? (fprintf(stderr, "xenovia observe: pid %d maps no OpenSSL "
                                         "(no libssl*, no SSL_write in its executable)\n",
                                         (int)o->pids[i]), 2)
                              : why_not(r, what);
            goto out;
        }
    }
    if (o->cmd && o->cmd[0]) {
        rc = start_command(sk, o->cmd, &child, &gate[1]);
        if (rc)
            goto out;
    }
    struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(sk->maps.xv_events), on_record, sk,
                                              NULL);
    if (!rb) {
        rc = why_not(-errno, "open the ring buffer");
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (child > 0) {
        add_target(sk, child);
        if (XV_REAL(write)(gate[1], "g", 1) != 1)
            g_stop = 1;
        XV_REAL(close)(gate[1]);
        gate[1] = -1;
    }
    size_t alive = o->npids;
    while (!g_stop) {
        ring_buffer__poll(rb, 5);
        ring_buffer__consume(rb);
        if (child > 0) {
            pid_t w = waitpid(child, &status, WNOHANG);
            if (w == child) {
                child = -1;
                rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (!alive)
                    break;
            }
        }
        if (o->npids) {
            size_t n = 0;
            for (size_t i = 0; i < o->npids; i++)
                n += kill(o->pids[i], 0) == 0 || errno == EPERM;
            alive = n;
            if (!alive && child <= 0)
                break;
        }
    }
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
    if (child > 0) {
        /* interrupted: the command keeps running detached, as --pid targets do */
        child = -1;
    }
out:
    bpf_link__destroy(tp_fork);
    bpf_link__destroy(tp_exec);
    for (size_t i = 0; i < g_nlinks; i++)
        bpf_link__destroy(g_links[i]);
    g_nlinks = 0;
    report_counters(sk);
    xv_observe_feed_end_all(g_stop ? "observe detached before the response completed"
                                   : "process exited before the response completed");
    xv_tls_bpf__destroy(sk);
    if (gate[1] >= 0)
        XV_REAL(close)(gate[1]);
    xv_exp_flush(5000);
    xv_exp_shutdown();
    return rc;
}
