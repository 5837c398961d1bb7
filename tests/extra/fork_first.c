/*
 * fork_first.c — a program that forks before it has made a single call the
 * agent looks at (the agent registers its fork handlers only at that first
 * use, issue 9), for tests/extra/test_fork_first.py:
 *   1. fork() first thing; the child makes two chat calls over plain HTTP
 *      (markers FF-<nonce>-child, -child2) and leaves with _exit(0) at once:
 *      both records must be written all the same (the second is queued, so
 *      only the agent's exit flush writes it);
 *   2. the parent sends a call (FF-<nonce>-inflight) and, before reading its
 *      answer, vfork()s; the vfork child writes a line to stderr (a hook that
 *      reaches the agent) and leaves with _exit(0): it must not flush or end
 *      anything of the parent's, so the in-flight call completes normally;
 *   3. the parent makes its own two calls (FF-<nonce>-parent, -parent2) and
 *      leaves with _exit(0).
 * Usage: fork_first PORT NONCE. Exit status 0 when every step answered 200.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Send one chat call (marker FF-<nonce>-<who>): the connected socket, or -1. */
static int send_call(int port, const char *nonce, const char *who)
{
    char body[256], req[768];
    int bn = snprintf(body, sizeof body,
                      "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hello FF-%s-%s\"}]}", nonce, who);
    int rn = snprintf(req, sizeof req,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n%s", port, bn, body);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    for (int off = 0; off < rn;) {
        ssize_t w = write(fd, req + off, (size_t)(rn - off));
        if (w <= 0)
            return -1;
        off += (int)w;
    }
    return fd;
}

/* Read the response to its end: 0 when it was a 200. */
static int finish_call(int fd)
{
    if (fd < 0)
        return -1;
    char resp[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof resp - 1)
            break;
    }
    resp[got] = '\0';
    close(fd);
    return strncmp(resp, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

static int call(int port, const char *nonce, const char *who)
{
    return finish_call(send_call(port, nonce, who));
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int port = atoi(argv[1]);
    pid_t c = fork();
    if (c == 0) /* a process's first record is written on the spot, a second
                   one queued: only the exit flush writes it before _exit */
        _exit(call(port, argv[2], "child") == 0 && call(port, argv[2], "child2") == 0 ? 0 : 3);
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 4;
    /* a call of the parent's in flight while the vfork child runs */
    int inflight = send_call(port, argv[2], "inflight");
    pid_t v = vfork();
    if (v == 0) {
        static const char line[] = "fork_first: vfork child\n";
        if (write(2, line, sizeof line - 1) < 0)
            _exit(6);
        _exit(0);
    }
    if (v < 0 || waitpid(v, &st, 0) != v || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 5;
    if (finish_call(inflight) != 0)
        return 8;
    _exit(call(port, argv[2], "parent") == 0 && call(port, argv[2], "parent2") == 0 ? 0 : 7);
}
