/*
 * hostcheck — the agent must never hurt its host: run under LD_PRELOAD (and
 * without, by test_host.py) against the mock upstream on 127.0.0.1 over
 * plain HTTP, it checks that
 *   - every successful hooked call leaves errno exactly as it was before;
 *   - failing calls report the same errno as libc does (EBADF, EAGAIN);
 *   - a non-blocking read with nothing to read returns -1/EAGAIN;
 *   - twenty API calls open no file descriptor that outlives them.
 * It prints one "ok"/"FAIL" line per check and "N passed, N failed".
 * Usage: hostcheck PORT
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SENTINEL 12345 /* no libc call ever sets this */

static int passed, failed;

static void check(int cond, const char *what)
{
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    cond ? passed++ : failed++;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    errno = SENTINEL;
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    check(rc == 0 && errno == SENTINEL, "connect succeeds and keeps errno");
    return fd;
}

/* One chat call: head and body in separate writes (as CPython does), the
 * response read through a small buffer. Returns the response bytes read. */
static size_t one_call(int fd, int keep_errno_checks)
{
    const char *body = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", strlen(body));
    errno = SENTINEL;
    ssize_t w1 = write(fd, head, (size_t)hl);
    int e1 = errno;
    struct iovec iov = { (void *)body, strlen(body) };
    errno = SENTINEL;
    ssize_t w2 = writev(fd, &iov, 1);
    int e2 = errno;
    if (keep_errno_checks) {
        check(w1 == hl && e1 == SENTINEL, "write of the head: full count, errno kept");
        check(w2 == (ssize_t)strlen(body) && e2 == SENTINEL, "writev of the body: full count, errno kept");
    }
    /* read until the whole Content-Length body is in */
    char buf[64], all[65536];
    size_t got = 0;
    long want = -1;
    int errno_ok = 1;
    while (got < sizeof all - 1) {
        errno = SENTINEL;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0 && errno != SENTINEL)
            errno_ok = 0;
        if (r <= 0)
            break;
        memcpy(all + got, buf, (size_t)r);
        got += (size_t)r;
        all[got] = '\0';
        char *end = strstr(all, "\r\n\r\n");
        if (end && want < 0) {
            char *cl = strcasestr(all, "content-length:");
            want = cl ? (long)(end + 4 - all) + atol(cl + 15) : -1;
        }
        if (want >= 0 && (long)got >= want)
            break;
    }
    if (keep_errno_checks) {
        check(errno_ok, "recv through a 64-byte buffer keeps errno on every success");
        check(strncmp(all, "HTTP/1.1 200", 12) == 0, "response is 200");
    }
    return got;
}

/* Wait for readability with poll (0), select (1) or epoll (2); 1 when ready. */
static int wait_readable(int fd, int how)
{
    if (how == 0) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 3000) == 1 && (p.revents & POLLIN);
    }
    if (how == 1) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        struct timeval tv = { 3, 0 };
        return select(fd + 1, &rd, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rd);
    }
    /* a fresh epoll set each time: the fd number is reused across calls */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xabcdef00u + (unsigned)fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 3000);
    close(ep);
    return n == 1 && out[0].data.u64 == 0xabcdef00u + (unsigned)fd && (out[0].events & EPOLLIN);
}

/* An event-loop style reader: wait for readiness before every 16-byte read
 * of a whole response. Whatever the agent holds beyond the app's buffer
 * must be reported readable, or this waits for ever. */
static int evloop_call_sized(int port, int how, size_t bufsz, size_t *total, size_t *stamp);

static int evloop_call(int port, int how)
{
    /* First learn the response's size and how much of it the agent adds;
     * then read with a buffer exactly the upstream's size: the first read
     * drains the socket, and what the stamp adds is left with the agent. */
    size_t total = 0, stamp = 0;
    if (!evloop_call_sized(port, how, 16, &total, &stamp))
        return 0;
    size_t t2 = 0, s2 = 0;
    return evloop_call_sized(port, how, total - stamp, &t2, &s2) && t2 == total;
}

static int evloop_call_sized(int port, int how, size_t bufsz, size_t *total, size_t *stamp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return 0;
    /* status429: a small error body the mock writes in one piece */
    const char *body = "{\"model\":\"gpt-4o-mini-status429\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    if (write(fd, req, (size_t)n) != n)
        return 0;
    char all[65536];
    size_t got = 0;
    long want = -1;
    while (got + bufsz < sizeof all) {
        if (!wait_readable(fd, how))
            break; /* timed out: held bytes not reported */
        ssize_t r = read(fd, all + got, bufsz);
        if (r <= 0)
            break;
        got += (size_t)r;
        all[got] = '\0';
        char *end = strstr(all, "\r\n\r\n");
        if (end && want < 0) {
            char *cl = strcasestr(all, "content-length:");
            want = cl ? (long)(end + 4 - all) + atol(cl + 15) : -1;
        }
        if (want >= 0 && (long)got >= want)
            break;
    }
    close(fd);
    *total = got;
    *stamp = 0;
    for (char *l = strstr(all, "\r\nX-Xenovia-"); l; l = strstr(l + 2, "\r\nX-Xenovia-")) {
        char *e = strstr(l + 2, "\r\n");
        *stamp += e ? (size_t)(e - l) : 0;
    }
    return want >= 0 && (long)got == want;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hostcheck PORT\n");
        return 2;
    }
    int port = atoi(argv[1]);

    int fd = connect_to(port);
    one_call(fd, 1);

    /* non-blocking read with nothing to read */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    char b[16];
    errno = SENTINEL;
    ssize_t r = read(fd, b, sizeof b);
    check(r == -1 && errno == EAGAIN, "non-blocking read with no data: -1/EAGAIN");
    fcntl(fd, F_SETFL, fl);

    /* dup: the duplicate works like the original */
    errno = SENTINEL;
    int d = dup(fd);
    check(d >= 0 && errno == SENTINEL, "dup keeps errno");
    one_call(d, 0);
    errno = SENTINEL;
    check(close(d) == 0 && errno == SENTINEL, "close of the duplicate keeps errno");

    errno = SENTINEL;
    check(close(fd) == 0 && errno == SENTINEL, "close keeps errno");
    errno = SENTINEL;
    check(write(fd, "x", 1) == -1 && errno == EBADF, "write on a closed fd: -1/EBADF");
    errno = SENTINEL;
    check(read(fd, b, 1) == -1 && errno == EBADF, "read on a closed fd: -1/EBADF");

    check(evloop_call(port, 0), "poll-driven reader gets the whole response, also what the agent holds");
    check(evloop_call(port, 1), "select-driven reader gets the whole response, also what the agent holds");
    check(evloop_call(port, 2), "epoll-driven reader gets the whole response, also what the agent holds");

    /* no descriptor outlives twenty calls */
    int before = count_fds();
    for (int i = 0; i < 20; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
            one_call(s, 0);
        close(s);
    }
    usleep(100 * 1000); /* let the trace writer finish its batch */
    int after = count_fds();
    char what[128];
    snprintf(what, sizeof what, "no fd left behind by 20 calls (%d before, %d after)", before, after);
    check(after == before, what);

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
