/*
 * bytes.c — the small byte helpers every module shares (issue 10: one of
 * each): hex digits both ways, writing a whole buffer to an fd, reading a
 * whole file into memory.
 *
 * Invariants: xv_write_all either writes every byte or reports why (EINTR
 * retried, a zero-byte write is -EIO); xv_file_read never holds more than
 * `max` bytes and always NUL-terminates what it returns.
 * Thread safety: reentrant. xv_write_all and xv_file_read use plain libc
 * calls: inside the agent, call them only where the hooks pass through
 * (the exporter's guarded paths), as the copies they replace did.
 */
#include "xv_common.h"
#include "xv_real.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

void xv_hex_encode(const void *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int xv_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int xv_pct_decode(const char *s, size_t n, char *out, size_t *outn, int strict)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = xv_hex_value((unsigned char)s[i + 1])) >= 0 &&
            (lo = xv_hex_value((unsigned char)s[i + 2])) >= 0) {
            out[j++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '%' && strict) {
            return XV_E_PARSE;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    if (outn)
        *outn = j;
    return 0;
}

int xv_writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = XV_REAL(writev)(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int xv_write_all(int fd, const void *p, size_t n)
{
    struct iovec one = { (void *)p, n };
    return n ? xv_writev_all(fd, &one, 1) : 0;
}

char *xv_file_read(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct xv_buf b;
    xv_buf_init(&b, max);
    int err = 0;
    char chunk[8192];
    for (;;) {
        ssize_t r = XV_REAL(read)(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            break;
        }
        if (r == 0)
            break;
        int rc = xv_buf_append(&b, chunk, (size_t)r);
        if (rc != 0) {
            err = rc == XV_E_LIMIT ? EFBIG : ENOMEM;
            break;
        }
    }
    XV_REAL(close)(fd);
    if (!err && !b.data && xv_buf_append(&b, "", 0) != 0)   /* an empty file: "" */
        err = ENOMEM;
    if (err) {
        xv_buf_free(&b);
        errno = err;
        return NULL;
    }
    return xv_buf_steal(&b, len);
}
