/*
 * unpatchable.c — test fixture for issue 11's negative case: a program that
 * looks like it has OpenSSL compiled in (it defines SSL_write, SSL_read,
 * SSL_get_error, SSL_free … itself) but whose SSL_write cannot be patched
 * safely: a loop in it branches back to offset 2, inside the 5 bytes the
 * entry jump would overwrite. The agent must refuse, patch nothing, say
 * "not covered" once, and the program must print exactly what it prints
 * without the agent. No real TLS: these are plain functions.
 *
 * Usage: unpatchable  -> prints "SSL_write=6 SSL_read=7 err=0"
 * Single-threaded.
 */
#include <stdio.h>

/* int SSL_write(void *ssl, const void *buf, int num): 0 + num + (num-1) + … + 1 */
__asm__(".text\n"
        ".globl SSL_write\n"
        ".type SSL_write, @function\n"
        "SSL_write:\n"
        "    xor %eax, %eax\n"
        "1:  add %edx, %eax\n"       /* offset 2: the branch target below */
        "    dec %edx\n"
        "    jg 1b\n"
        "    ret\n"
        ".size SSL_write, .-SSL_write\n");

int SSL_write(void *ssl, const void *buf, int num);

/* As much code as the smallest OpenSSL would bring (never run): the agent
 * does not read the file of a program with less code than
 * XV_PATCH_OPENSSL_MIN_CODE (patch/xv_patch.h), which cannot hold OpenSSL. */
__asm__(".text\n"
        "xv_fixture_bulk:\n"
        "    .fill 576 * 1024, 1, 0xcc\n");

/* The others have ordinary prologues (patchable on their own). */
__attribute__((noinline)) int SSL_read(void *ssl, void *buf, int num)
{
    (void)ssl;
    (void)buf;
    return num + 3;
}

__attribute__((noinline)) int SSL_get_error(const void *ssl, int ret)
{
    (void)ssl;
    return ret > 0 ? 0 : 5;
}

__attribute__((noinline)) void SSL_free(void *ssl)
{
    (void)ssl;
}

int main(void)
{
    char buf[8] = "abc";
    int w = SSL_write(NULL, buf, 3);
    int r = SSL_read(NULL, buf, 4);
    int e = SSL_get_error(NULL, w);
    SSL_free(NULL);
    printf("SSL_write=%d SSL_read=%d err=%d\n", w, r, e);
    return 0;
}
