/*
 * small_tls.c — test fixture for a program too small to hold OpenSSL
 * (patch/xv_patch.h, XV_PATCH_OPENSSL_MIN_CODE) that still carries another
 * TLS library's name: mbedtls_ssl_write, a plain function here. The agent
 * reads no file of such a program at start; its "not covered" verdict comes
 * at the program's first connect, and only then.
 *
 * Usage: small_tls            -> prints "mbedtls_ssl_write=3"
 *        small_tls connect    -> also connects to a listener of its own on
 *                                127.0.0.1 first, prints "connected" too
 * Single-threaded.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) int mbedtls_ssl_write(void *ssl, const unsigned char *buf, size_t len)
{
    (void)ssl;
    (void)buf;
    return (int)len;
}

static int connect_self(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    int ok = l >= 0 && c >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 &&
             listen(l, 1) == 0 && getsockname(l, (struct sockaddr *)&a, &n) == 0 &&
             connect(c, (struct sockaddr *)&a, sizeof a) == 0;
    if (l >= 0)
        close(l);
    if (c >= 0)
        close(c);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "connect") == 0) {
        if (!connect_self())
            return 2;
        printf("connected\n");
    }
    printf("mbedtls_ssl_write=%d\n", mbedtls_ssl_write(NULL, (const unsigned char *)"abc", 3));
    return 0;
}
