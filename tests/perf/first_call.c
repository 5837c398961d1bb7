/*
 * first_call.c — what the first API call of a process touches (issue 9).
 *
 * A one-call client: it forks a tiny HTTP/1.1 server on 127.0.0.1 (plain
 * TCP, one connection, a fixed chat-completion reply), connects to it, and
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
 * the call's 64 KiB fault-around windows). Run once without and once with LD_PRELOAD=libxenovia.so by
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

/* The server child: one connection, read one request head + body, answer. */
static void serve(int ls)
{
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
        _exit(1);
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
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
    if (write(fd, head, (size_t)n) != n || write(fd, reply, sizeof reply - 1) < 0)
        _exit(1);
    /* wait for the client to close */
    while (read(fd, buf, sizeof buf) > 0) {
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

int main(void)
{
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
        serve(ls);
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
    long f0, r0, f1, r1;
    mem_now(&f0, &r0); /* also warms fopen/fscanf's own pages */
    mem_now(&f0, &r0);

    if (write(fd, req, (size_t)n) != n) {
        perror("write");
        return 1;
    }
    size_t have = 0;
    char *hend = NULL;
    long clen = -1;
    while (have < sizeof resp - 1) {
        ssize_t r = read(fd, resp + have, sizeof resp - 1 - have);
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
    close(fd);
    int st;
    waitpid(pid, &st, 0);
    printf("faults=%ld rss_kib=%ld stamped=%d code_kib=%ld\n", f1 - f0, r1 - r0, stamped,
           agent_code_kib());
    return 0;
}
