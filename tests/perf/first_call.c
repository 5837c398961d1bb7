/*
 * first_call.c — what the first API call of a process touches (issue 9).
 *
 * A one-call client: it forks a tiny HTTP/1.1 server on 127.0.0.1 (plain
 * TCP, or TLS with `first_call tls CERT KEY`; one connection, a fixed
 * chat-completion reply), connects to it (the TLS handshake done first), and
 * around its first and only POST /v1/chat/completions measures the minor
 * page faults of the whole process (getrusage(RUSAGE_SELF): all threads,
 * so the agent's exporter thread counts) and the resident set
 * (/proc/self/statm). After the response it waits WAIT_MS for the agent's
 * exporter to write the record (its work belongs to the call), then prints
 *
 *     faults=F rss_kib=R stamped=S code_kib=C
 *
 * S is 1 when the response carries X-Xenovia-Trace-Id (the agent inspected
 * the call); C the KiB of the agent's code mapped by then (start-up's and
 * the call's 64 KiB fault-around windows; over TLS, the path of
 * preload/hot_functions.txt's first group, which must end within two).
 * Run without and with LD_PRELOAD=libxenovia.so by
 * test_first_call.py, which compares the two. Everything the client itself
 * needs (buffers, the request text, stdio) is touched before the first
 * measurement, so the difference is the agent's.
 *
 * Exit 0 on success, 1 on any I/O error (message on stderr).
 * Thread safety: single-threaded (plus the agent's thread when preloaded).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define WAIT_MS 150
#define BUF 65536

static const char body[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"Say hello.\"}]}";
static const char reply[] =
    "{\"id\":\"chatcmpl-first\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello.\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":2,\"total_tokens\":14}}";

/* One end of the connection: plain when ssl is NULL. */
struct end {
    int fd;
    SSL *ssl;
};

static ssize_t end_read(struct end *e, char *buf, size_t n)
{
    if (!e->ssl)
        return read(e->fd, buf, n);
    int r = SSL_read(e->ssl, buf, (int)(n > 65536 ? 65536 : n));
    return r > 0 ? r : -1;
}

static int end_write_all(struct end *e, const char *buf, size_t n)
{
    if (!e->ssl)
        return write(e->fd, buf, n) == (ssize_t)n ? 0 : -1;
    return SSL_write(e->ssl, buf, (int)n) == (int)n ? 0 : -1;
}

/* The server child: one connection (TLS when sctx is set), read one request
 * head + body, answer. */
static void serve(int ls, SSL_CTX *sctx)
{
    struct end e = { accept(ls, NULL, NULL), NULL };
    if (e.fd < 0)
        _exit(1);
    if (sctx) {
        e.ssl = SSL_new(sctx);
        if (!e.ssl || SSL_set_fd(e.ssl, e.fd) != 1 || SSL_accept(e.ssl) != 1)
            _exit(1);
    }
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = end_read(&e, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            _exit(1);
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && have - (size_t)(end + 4 - buf) >= sizeof body - 1)
            break;
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", sizeof reply - 1);
    if (end_write_all(&e, head, (size_t)n) != 0 || end_write_all(&e, reply, sizeof reply - 1) != 0)
        _exit(1);
    /* wait for the client to close */
    while (end_read(&e, buf, sizeof buf) > 0) {
    }
    _exit(0);
}

static void mem_now(long *faults, long *rss_kib)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *faults = ru.ru_minflt;
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    *rss_kib = res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* KiB of libxenovia.so's code mapped into this process (the Rss of its
 * executable mapping in /proc/self/smaps): the 64 KiB fault-around windows
 * of code start-up and the call ran. 0 without the agent. */
static long agent_code_kib(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    long kib = 0;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        if (strchr(line, '-') && strstr(line, " r-xp ") && strchr(line, '/'))
            in = strstr(line, "/libxenovia.so") != NULL;
        else if (strchr(line, '-') && (strstr(line, " r--p ") || strstr(line, " rw-p ") ||
                                       strstr(line, " ---p ") || strstr(line, " r-xp ")))
            in = 0;
        long v;
        if (in && sscanf(line, "Rss: %ld kB", &v) == 1)
            kib += v;
    }
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int tls = argc == 4 && strcmp(argv[1], "tls") == 0;
    if (argc != 1 && !tls) {
        fprintf(stderr, "usage: first_call [tls CERT KEY]\n");
        return 2;
    }
    SSL_CTX *sctx = NULL, *cctx = NULL;
    if (tls) {
        sctx = SSL_CTX_new(TLS_server_method());
        cctx = SSL_CTX_new(TLS_client_method());
        if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, argv[2]) != 1 ||
            SSL_CTX_use_PrivateKey_file(sctx, argv[3], SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL); /* the agent's path is the same */
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
        perror("listen");
        return 1;
    }
    alarm(20); /* bounded: a hang fails the test */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        serve(ls, sctx);
    close(ls);

    static char req[4096], resp[BUF];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Authorization: Bearer sk-test-not-a-key\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     ntohs(sa.sin_port), sizeof body - 1, body);
    memset(resp, 0, sizeof resp);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    struct end e = { fd, NULL };
    if (tls) {
        e.ssl = SSL_new(cctx);
        if (!e.ssl || SSL_set_fd(e.ssl, fd) != 1 || SSL_connect(e.ssl) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
    }
    long f0, r0, f1, r1;
    mem_now(&f0, &r0); /* also warms fopen/fscanf's own pages */
    mem_now(&f0, &r0);

    if (end_write_all(&e, req, (size_t)n) != 0) {
        perror("write");
        return 1;
    }
    size_t have = 0;
    char *hend = NULL;
    long clen = -1;
    while (have < sizeof resp - 1) {
        ssize_t r = end_read(&e, resp + have, sizeof resp - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        resp[have] = '\0';
        if (!hend && (hend = strstr(resp, "\r\n\r\n")) != NULL) {
            char *cl = strcasestr(resp, "Content-Length:");
            clen = cl && cl < hend ? strtol(cl + 15, NULL, 10) : -1;
        }
        if (hend && clen >= 0 && have >= (size_t)(hend + 4 - resp) + (size_t)clen)
            break;
    }
    if (!hend || clen < 0 || have < (size_t)(hend + 4 - resp) + (size_t)clen) {
        fprintf(stderr, "incomplete response (%zu bytes)\n", have);
        return 1;
    }
    int stamped = strcasestr(resp, "X-Xenovia-Trace-Id:") != NULL &&
                  strcasestr(resp, "X-Xenovia-Trace-Id:") < hend;
    struct timespec ts = { 0, WAIT_MS * 1000000L };
    nanosleep(&ts, NULL);
    mem_now(&f1, &r1);
    if (e.ssl) {
        SSL_shutdown(e.ssl);
        SSL_free(e.ssl);
    }
    close(fd);
    int st;
    waitpid(pid, &st, 0);
    printf("faults=%ld rss_kib=%ld stamped=%d code_kib=%ld\n", f1 - f0, r1 - r0, stamped,
           agent_code_kib());
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
