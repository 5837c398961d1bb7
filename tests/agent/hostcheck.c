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
