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
 * With a third argument "nokcmp" the program first makes kcmp(2) fail with
 * EPERM (a seccomp filter, as Docker's default profile does): the agent then
 * tells a vfork child by which process registered its fork handlers.
 * Usage: fork_first PORT NONCE [nokcmp]. Exit status 0 when every step
 * answered 200.
 */
#include <arpa/inet.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

/* kcmp(2) answers EPERM from now on (this process and its children). */
static int refuse_kcmp(void)
{
#if defined(__x86_64__) && defined(SYS_kcmp)
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kcmp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1 /* EPERM */),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -1;
    return syscall(SYS_kcmp, getpid(), getppid(), 1, 0, 0) == -1 ? 0 : -1;
#else
    return -1;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        return 2;
    if (argc == 4 && (strcmp(argv[3], "nokcmp") != 0 || refuse_kcmp() != 0))
        return 9;
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
