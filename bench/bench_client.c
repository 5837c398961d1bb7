/*
 * bench_client.c — the benchmark's client: OpenSSL linked dynamically (as
 * curl and CPython use it), so under LD_PRELOAD=libxenovia.so every call goes
 * through the agent's SSL_write/SSL_read hooks. Two modes:
 *
 *   bench_client chat tls|plain PORT CA CALLS WARMUP
 *     One connection to 127.0.0.1:PORT, WARMUP + CALLS keep-alive
 *     POST /v1/chat/completions calls, one after the other. For each measured
 *     call prints its latency in nanoseconds (from just before the request is
 *     written to the last byte of the response) on its own line. On stderr:
 *     "calls=N stamped=K cpu_us=C thread_cpu_us=T" (K = responses carrying
 *     X-Xenovia-Trace-Id, i.e. calls the agent inspected; C = CPU time of the
 *     whole process, all threads, during the measured calls; T = the same for
 *     the calling thread alone, i.e. without the agent's exporter thread).
 *
 *   bench_client convo tls|plain PORT CA TURNS MSG_BYTES
 *     An agent loop on one connection: TURNS chat calls of one conversation,
 *     each request the previous one plus the reply and a new MSG_BYTES user
 *     message. On stderr "calls=N stamped=K cpu_us=C body_bytes=B
 *     peer_cpu_us=P" (C and P as for chat, over every call; B the request
 *     bodies' bytes together).
 *
 *   bench_client download tls|plain PORT CA BYTES
 *     GET /download/BYTES on a new connection; prints "BYTES SECONDS CPU_US"
 *     where SECONDS runs from the request write to the last body byte (the
 *     TLS handshake is excluded) and CPU_US is the process's CPU time (user +
 *     system, all threads) over the same span.
 *
 *   bench_client once tls|plain PORT CA
 *     A one-call process: connects, makes ONE chat call (no warm-up) and
 *     exits. Prints "once LAT_NS MINFLT RSS_KB" where LAT_NS is that call's
 *     latency (request write to last response byte), MINFLT the minor page
 *     faults and RSS_KB the change of the resident set (/proc/self/statm)
 *     across the call: with the agent, what its first API call touches.
 *
 *   bench_client spawn N LIB|- PROGRAM [ARGS...]
 *     Starts PROGRAM (e.g. /bin/true, or `bench_client once ...`) N times in
 *     a row, with LD_PRELOAD=LIB in its environment or without ("-"); prints
 *     "WALL_NS CPU_US PEER_CPU_US" per start (CPU_US: the child's user +
 *     system time, start and exit included; PEER_CPU_US: see below) after
 *     anything the child printed. Measures what loading the agent costs
 *     every process that starts under it.
 *
 * BENCH_PEER_PIDS (environment, optional): space-separated pids of a proxy
 * in the path (nginx); chat, convo and spawn add "peer_cpu_us" / PEER_CPU_US, the
 * CPU time those processes used over the same span (from
 * /proc/PID/task/TID/schedstat, nanosecond resolution).
 *
 * CA is the PEM file the server certificate is verified against ("-" for
 * plain). Exit 0 on success, 1 on any protocol or I/O error (message on
 * stderr), 2 on bad usage.
 *
 * Thread safety: single-threaded program.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BUF_CAP (256u * 1024u)

struct io {
    SSL_CTX *ctx;  /* NULL on plain TCP */
    SSL *ssl;      /* NULL on plain TCP */
    int fd;
};

static int io_open(struct io *io, int tls, int port, const char *ca)
{
    memset(io, 0, sizeof *io);
    io->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (io->fd < 0)
        return -1;
    int one = 1;
    setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(io->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return -1;
    }
    if (!tls)
        return 0;
    io->ctx = SSL_CTX_new(TLS_client_method());
    if (!io->ctx || SSL_CTX_load_verify_locations(io->ctx, ca, NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    SSL_CTX_set_verify(io->ctx, SSL_VERIFY_PEER, NULL);
    io->ssl = SSL_new(io->ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(io->ssl), "127.0.0.1");
    SSL_set_fd(io->ssl, io->fd);
    if (SSL_connect(io->ssl) != 1) {
        fprintf(stderr, "TLS handshake failed\n");
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static void io_close(struct io *io)
{
    if (io->ssl) {
        SSL_shutdown(io->ssl);
        SSL_free(io->ssl);
    }
    if (io->ctx)
        SSL_CTX_free(io->ctx);
    if (io->fd >= 0)
        close(io->fd);
}

static long io_read(struct io *io, char *buf, size_t n)
{
    if (io->ssl) {
        int r = SSL_read(io->ssl, buf, (int)n);
        return r > 0 ? r : -1;
    }
    for (;;) {
        ssize_t r = read(io->fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        return r > 0 ? (long)r : -1;
    }
}

static int io_write_all(struct io *io, const char *p, size_t n)
{
    while (n > 0) {
        long w;
        if (io->ssl) {
            w = SSL_write(io->ssl, p, (int)n);
        } else {
            w = write(io->fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one response with Content-Length. Returns the body length, -1 on error;
 * *stamped is set when the head carries X-Xenovia-Trace-Id. The whole
 * response is left in buf when it fits (the body is discarded otherwise). */
static long long read_response(struct io *io, char *buf, int *stamped, int *status)
{
    size_t have = 0, head;
    while ((head = bench_head_len(buf, have)) == 0) {
        if (have == BUF_CAP)
            return -1;
        long r = io_read(io, buf + have, BUF_CAP - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    *status = atoi(buf + 9);
    *stamped = bench_has_header(buf, head, "X-Xenovia-Trace-Id");
    long long clen = bench_header_num(buf, head, "Content-Length");
    if (clen < 0)
        return -1;
    long long body = (long long)(have - head);
    while (body < clen) {
        long r = io_read(io, buf, BUF_CAP);
        if (r <= 0)
            return -1;
        body += r;
    }
    return body == clen ? clen : -1;   /* no pipelining: nothing may follow */
}

/* CPU time (user + system) in microseconds: of the whole process (all
 * threads, so the agent's exporter thread counts) or of the calling thread. */
static uint64_t cpu_us_of(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static uint64_t cpu_us(void)
{
    return cpu_us_of(RUSAGE_SELF);
}

/* CPU time in ns of the processes named by BENCH_PEER_PIDS (all their
 * threads), 0 when unset. schedstat's first field is the task's run time. */
static uint64_t peer_cpu_ns(void)
{
    const char *pids = getenv("BENCH_PEER_PIDS");
    uint64_t sum = 0;
    while (pids && *pids) {
        char *end;
        long pid = strtol(pids, &end, 10);
        if (end == pids)
            break;
        pids = end;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%ld/task", pid);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[384];
            snprintf(path, sizeof path, "%s/%s/schedstat", dir, e->d_name);
            FILE *f = fopen(path, "r");
            unsigned long long ns = 0;
            if (f) {
                if (fscanf(f, "%llu", &ns) == 1)
                    sum += ns;
                fclose(f);
            }
        }
        closedir(d);
    }
    return sum;
}

/* Minor faults so far and resident pages now (of this process). */
static void mem_now(long *minflt, long *rss_pages)
{
    struct rusage ru;
    *minflt = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
    *rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size;
        if (fscanf(f, "%ld %ld", &size, rss_pages) != 2)
            *rss_pages = 0;
        fclose(f);
    }
}

/* The head of every chat call this client makes (port, body length). */
#define CHAT_HEAD                                                                  \
    "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"                 \
    "User-Agent: xv-bench/1\r\nAuthorization: Bearer sk-bench-not-a-key\r\n"       \
    "Content-Type: application/json\r\nAccept: application/json\r\n"               \
    "Content-Length: %zu\r\n\r\n"

static int run_chat(int tls, int port, const char *ca, long calls, long warm)
{
    static const char body[] = BENCH_CHAT_BODY;
    char req[2048];
    int n = snprintf(req, sizeof req,
                     CHAT_HEAD "%s",
                     port, sizeof body - 1, body);
    struct io io;
    char *buf = malloc(BUF_CAP);
    uint64_t *lat = calloc((size_t)calls, sizeof *lat);
    if (!buf || !lat || io_open(&io, tls, port, ca) != 0)
        return 1;
    long stamped_total = 0;
    uint64_t cpu0 = 0, tcpu0 = 0, pcpu0 = 0;
    for (long i = 0; i < warm + calls; i++) {
        int stamped = 0, status = 0;
        if (i == warm) {
            pcpu0 = peer_cpu_ns();
            cpu0 = cpu_us();
            tcpu0 = cpu_us_of(RUSAGE_THREAD);
        }
        uint64_t t0 = bench_now_ns();
        if (io_write_all(&io, req, (size_t)n) != 0 ||
            read_response(&io, buf, &stamped, &status) < 0 || status != 200) {
            fprintf(stderr, "call %ld failed (status %d)\n", i, status);
            return 1;
        }
        uint64_t t1 = bench_now_ns();
        if (i >= warm) {
            lat[i - warm] = t1 - t0;
            stamped_total += stamped;
        }
    }
    uint64_t cpu1 = cpu_us(), tcpu1 = cpu_us_of(RUSAGE_THREAD), pcpu1 = peer_cpu_ns();
    io_close(&io);
    /* Printed after the loop: no stdio work between calls. */
    for (long i = 0; i < calls; i++)
        printf("%llu\n", (unsigned long long)lat[i]);
    fprintf(stderr, "calls=%ld stamped=%ld cpu_us=%llu thread_cpu_us=%llu peer_cpu_us=%llu\n",
            calls, stamped_total, (unsigned long long)(cpu1 - cpu0),
            (unsigned long long)(tcpu1 - tcpu0), (unsigned long long)((pcpu1 - pcpu0) / 1000));
    free(lat);
    free(buf);
    return 0;
}

/* A one-call process (see the file comment): the call's latency and what
 * it touched, then exit (the agent's exit flush included in the process's
 * CPU, which the spawning bench_client measures). */
static int run_once(int tls, int port, const char *ca)
{
    static const char body[] = BENCH_CHAT_BODY;
    char req[2048];
    int n = snprintf(req, sizeof req,
                     CHAT_HEAD "%s",
                     port, sizeof body - 1, body);
    struct io io;
    char *buf = malloc(BUF_CAP);
    if (!buf || io_open(&io, tls, port, ca) != 0)
        return 1;
    memset(buf, 0, BUF_CAP); /* the client's own buffer is resident before the call */
    int stamped = 0, status = 0;
    long f0, r0, f1, r1;
    mem_now(&f0, &r0);
    uint64_t t0 = bench_now_ns();
    if (io_write_all(&io, req, (size_t)n) != 0 ||
        read_response(&io, buf, &stamped, &status) < 0 || status != 200) {
        fprintf(stderr, "call failed (status %d)\n", status);
        return 1;
    }
    uint64_t t1 = bench_now_ns();
    mem_now(&f1, &r1);
    printf("once %llu %ld %ld %d\n", (unsigned long long)(t1 - t0), f1 - f0,
           (r1 - r0) * (sysconf(_SC_PAGESIZE) / 1024), stamped);
    fflush(stdout);
    io_close(&io);
    free(buf);
    return 0;
}

/* An agent loop: one conversation continued `turns` times on one
 * connection, each request the last one plus the reply and a new user
 * message of `msg` bytes (the history grows by ~msg bytes a turn). Prints
 * the calls, the stamped responses, CPU and the request bodies' bytes. */
static int run_convo(int tls, int port, const char *ca, long turns, long msg)
{
    static const char reply_item[] =
        ",{\"role\":\"assistant\",\"content\":\"Hello, benchmark! Nice to meet you.\"}";
    size_t cap = 1024 + (size_t)turns * ((size_t)msg + 128);
    char *body = malloc(cap), *req = malloc(cap + 512), *buf = malloc(BUF_CAP);
    struct io io;
    if (!body || !req || !buf || msg < 1 || io_open(&io, tls, port, ca) != 0)
        return 1;
    size_t len = (size_t)snprintf(body, cap, "{\"model\":\"gpt-4o-mini\",\"messages\":["
                                  "{\"role\":\"system\",\"content\":\"You are a terse assistant.\"}");
    long stamped_total = 0;
    unsigned long long bytes = 0;
    uint64_t pcpu0 = peer_cpu_ns(), cpu0 = cpu_us();
    for (long t = 0; t < turns; t++) {
        if (t > 0) {
            memcpy(body + len, reply_item, sizeof reply_item - 1);
            len += sizeof reply_item - 1;
        }
        len += (size_t)snprintf(body + len, cap - len, ",{\"role\":\"user\",\"content\":\"");
        for (long i = 0; i < msg; i++) /* words, turn-dependent (no two messages equal) */
            body[len++] = i % 8 == 7 ? ' ' : (char)('a' + (i / 8 + t) % 26);
        body[len++] = '"';
        body[len++] = '}';
        size_t blen = len;
        memcpy(body + blen, "]}", 2);
        blen += 2;
        int hn = snprintf(req, 512, CHAT_HEAD, port, blen);
        memcpy(req + hn, body, blen);
        int stamped = 0, status = 0;
        if (io_write_all(&io, req, (size_t)hn + blen) != 0 ||
            read_response(&io, buf, &stamped, &status) < 0 || status != 200) {
            fprintf(stderr, "turn %ld failed (status %d)\n", t, status);
            return 1;
        }
        stamped_total += stamped;
        bytes += blen;
    }
    uint64_t cpu1 = cpu_us(), pcpu1 = peer_cpu_ns();
    io_close(&io);
    fprintf(stderr, "calls=%ld stamped=%ld cpu_us=%llu body_bytes=%llu peer_cpu_us=%llu\n", turns,
            stamped_total, (unsigned long long)(cpu1 - cpu0), bytes,
            (unsigned long long)((pcpu1 - pcpu0) / 1000));
    free(body);
    free(req);
    free(buf);
    return 0;
}

static int run_download(int tls, int port, const char *ca, long long bytes)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /download/%lld HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "User-Agent: xv-bench/1\r\nAccept: */*\r\n\r\n",
                     bytes, port);
    struct io io;
    char *buf = malloc(BUF_CAP);
    if (!buf || io_open(&io, tls, port, ca) != 0)
        return 1;
    int stamped = 0, status = 0;
    uint64_t cpu0 = cpu_us();
    uint64_t t0 = bench_now_ns();
    if (io_write_all(&io, req, (size_t)n) != 0)
        return 1;
    long long got = read_response(&io, buf, &stamped, &status);
    uint64_t t1 = bench_now_ns();
    uint64_t cpu1 = cpu_us();
    if (got != bytes || status != 200 || stamped) {
        fprintf(stderr, "download failed: got %lld of %lld bytes, status %d, stamped %d\n",
                got, bytes, status, stamped);
        return 1;
    }
    io_close(&io);
    printf("%lld %.6f %llu\n", got, (double)(t1 - t0) / 1e9, (unsigned long long)(cpu1 - cpu0));
    free(buf);
    return 0;
}

/* Start PROG (no arguments) N times, one after the other, with LD_PRELOAD=LIB
 * in its environment (or without LD_PRELOAD when LIB is "-"); this process
 * itself runs without the agent. Prints per start "WALL_NS CPU_US PEER_US
 * MINFLT" (the child's user + system time and minor page faults, from
 * wait4; a proxy's CPU meanwhile). */
static int run_spawn(long n, const char *lib, char **args)
{
    const char *prog = args[0];
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **env = calloc(ne + 2, sizeof *env);
    char pre[4096];
    if (!env)
        return 1;
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    if (strcmp(lib, "-") != 0) {
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
        env[k++] = pre;
    }
    env[k] = NULL;
    for (long i = 0; i < n; i++) {
        pid_t pid;
        struct rusage ru;
        int st;
        uint64_t p0 = peer_cpu_ns();
        uint64_t t0 = bench_now_ns();
        if (posix_spawn(&pid, prog, NULL, NULL, args, env) != 0) {
            perror("posix_spawn");
            return 1;
        }
        if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s failed\n", prog);
            return 1;
        }
        uint64_t t1 = bench_now_ns();
        uint64_t p1 = peer_cpu_ns();
        /* Flushed per line: a child writing to the same file comes first. */
        printf("%llu %llu %llu %ld\n", (unsigned long long)(t1 - t0),
               (unsigned long long)((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
                                    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec),
               (unsigned long long)((p1 - p0) / 1000), (long)ru.ru_minflt);
        fflush(stdout);
    }
    free(env);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "spawn") == 0)
        return run_spawn(atol(argv[2]), argv[3], argv + 4);
    if (argc >= 5 && strcmp(argv[1], "once") == 0)
        return run_once(strcmp(argv[2], "tls") == 0, atoi(argv[3]), argv[4]);
    if (argc >= 7 && strcmp(argv[1], "chat") == 0)
        return run_chat(strcmp(argv[2], "tls") == 0, atoi(argv[3]), argv[4], atol(argv[5]),
                        atol(argv[6]));
    if (argc >= 7 && strcmp(argv[1], "convo") == 0)
        return run_convo(strcmp(argv[2], "tls") == 0, atoi(argv[3]), argv[4], atol(argv[5]),
                         atol(argv[6]));
    if (argc >= 6 && strcmp(argv[1], "download") == 0)
        return run_download(strcmp(argv[2], "tls") == 0, atoi(argv[3]), argv[4],
                            atoll(argv[5]));
    fprintf(stderr,
            "usage: %s chat tls|plain PORT CA CALLS WARMUP\n"
            "       %s convo tls|plain PORT CA TURNS MSG_BYTES\n"
            "       %s download tls|plain PORT CA BYTES\n"
            "       %s once tls|plain PORT CA\n"
            "       %s spawn N LIB|- PROGRAM [ARGS...]\n",
            argv[0], argv[0], argv[0], argv[0], argv[0]);
    return 2;
}
