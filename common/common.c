/*
 * common.c — error strings, bounded buffers, clocks and the logger.
 * Invariants: an xv_buf never holds more than `max` bytes; xv_log never
 * allocates, never changes errno, never calls a hooked libc function and
 * never writes to an fd 2 that is not the stderr the process started with.
 */
#include "xv_common.h"
#include "xv_rawsys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const char *xv_strerror(int code)
{
    switch (code) {
#define XV_ERR_CASE(name, value, text) case name: return text;
        XV_ERRORS(XV_ERR_CASE)
#undef XV_ERR_CASE
    default:
        break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code); /* glibc: thread-safe for known codes */
    return "unknown error";
}

void xv_buf_init(struct xv_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int buf_reserve(struct xv_buf *b, size_t need)
{
    if (need > b->max)
        return XV_E_LIMIT;
    if (need <= b->cap && b->data)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap + 1);
    if (!p)
        return XV_E_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int xv_buf_reserve(struct xv_buf *b, size_t need)
{
    return buf_reserve(b, need < b->max ? need : b->max);
}

int xv_buf_append(struct xv_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return XV_E_LIMIT;
    int rc = buf_reserve(b, b->len + n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int xv_hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

int xv_buf_append_header(struct xv_buf *b, const char *name, const char *value,
                         const char *eol)
{
    size_t ln = strlen(name), lv = strlen(value), le = strlen(eol), n = ln + 2 + lv + le;
    if (n > b->max - b->len)
        return XV_E_LIMIT;
    int rc = buf_reserve(b, b->len + n);
    if (rc)
        return rc;
    char *d = b->data + b->len;
    memcpy(d, name, ln);
    d[ln] = ':';
    d[ln + 1] = ' ';
    memcpy(d + ln + 2, value, lv);
    memcpy(d + ln + 2 + lv, eol, le);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int xv_buf_appendf(struct xv_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return XV_E_PARSE;
    if ((size_t)n < sizeof small)
        return xv_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->max - b->len)
        return XV_E_LIMIT;
    int rc = buf_reserve(b, b->len + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void xv_buf_consume(struct xv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void xv_buf_reset(struct xv_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void xv_buf_free(struct xv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *xv_buf_steal(struct xv_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void xv_ready_ahead(void *base, size_t total, size_t need, size_t max_step, struct xv_ready *r)
{
    if (need <= r->ready || r->ready == SIZE_MAX)
        return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!r->step)
        r->step = page;
    size_t to = need + r->step < total ? need + r->step : total;
    uintptr_t a = ((uintptr_t)base + r->ready) & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)base + to + page - 1) & ~(uintptr_t)(page - 1);
    int saved = errno;
    if (madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0) {
        r->ready = SIZE_MAX;
        errno = saved;
        return;
    }
    r->ready = to;
    if (r->step < max_step)
        r->step *= 2;
}

uint64_t xv_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t xv_now_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Logger state: written by xv_log_set_level (config), the rate limiter and
 * xv_log_capture_stderr (once-init, or the first line). */
static struct {
    atomic_int level;          /* lines above this level are dropped */
    atomic_uint_fast64_t sec;  /* current rate-limit window (seconds) */
    atomic_int count;          /* lines written in that window */
    atomic_int err_state;      /* ERR_UNKNOWN, ERR_FILE (identity below) or ERR_NONE */
    dev_t err_dev;             /* fd 2's st_dev when captured; read after err_state */
    ino_t err_ino;             /* its st_ino */
    mode_t err_type;           /* its S_IFMT bits */
} g_log = { XV_LOG_WARN, 0, 0, 0, 0, 0, 0 };

enum { ERR_UNKNOWN = 0, ERR_FILE = 1, ERR_NONE = 2 };

/* Issue 7 class 6: a program that closed fd 2 and got that number back for
 * a socket received our log line as the first bytes it sent upstream. We
 * remember what fd 2 was at start (device, inode, type) and write a line
 * only while fd 2 is still that very file; a closed fd 2 at start means no
 * lines at all. The fstat before each line is cheap next to the rate limit.
 * (A dup2 onto fd 2 in another thread between the check and the write can
 * still race; a private dup of fd 2 would avoid that but would keep the
 * program's stderr pipe open after it closed it, which hurts more.) */
XV_START_FN void xv_log_capture_stderr(void)
{
    struct stat st;
    if (xv_fstat_raw(2, &st) == 0) {
        g_log.err_dev = st.st_dev;
        g_log.err_ino = st.st_ino;
        g_log.err_type = st.st_mode & S_IFMT;
        atomic_store_explicit(&g_log.err_state, ERR_FILE, memory_order_release);
    } else {
        atomic_store_explicit(&g_log.err_state, ERR_NONE, memory_order_release);
    }
}

/* Is fd 2 still the stderr we captured? Captures on first use when nobody
 * did (the CLI, unit tests). */
static int stderr_is_ours(void)
{
    int state = atomic_load_explicit(&g_log.err_state, memory_order_acquire);
    if (state == ERR_UNKNOWN) {
        xv_log_capture_stderr();
        state = atomic_load_explicit(&g_log.err_state, memory_order_acquire);
    }
    if (state != ERR_FILE)
        return 0;
    struct stat st;
    if (fstat(2, &st) != 0)
        return 0;
    return st.st_dev == g_log.err_dev && st.st_ino == g_log.err_ino &&
           (st.st_mode & S_IFMT) == g_log.err_type;
}

XV_START_FN void xv_log_set_level(int level)
{
    atomic_store(&g_log.level, level);
}

void xv_vlog(int level, const char *fmt, va_list ap)
{
    if (level > atomic_load(&g_log.level))
        return;
    int saved = errno;
    uint64_t now = xv_now_mono_ns() / 1000000000u;
    if (atomic_exchange(&g_log.sec, now) != now)
        atomic_store(&g_log.count, 0);
    if (atomic_fetch_add(&g_log.count, 1) >= 20) {
        errno = saved;
        return;
    }
    char line[1024];
    size_t off = (size_t)snprintf(line, sizeof line, "xenovia: ");
    int n = vsnprintf(line + off, sizeof line - off - 1, fmt, ap);
    if (n < 0)
        n = 0;
    off += (size_t)n;
    if (off > sizeof line - 2)
        off = sizeof line - 2;
    line[off++] = '\n';
    if (!stderr_is_ours()) {
        errno = saved;
        return;
    }
    size_t done = 0;
    while (done < off) {
        long w = syscall(SYS_write, 2, line + done, off - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    errno = saved;
}

void xv_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xv_vlog(level, fmt, ap);
    va_end(ap);
}

/* Reentrancy depth of the current thread (see xv_guard_enter). */
__thread int xv_guard_depth __attribute__((tls_model("initial-exec")));

/* Every start runs the first two (the constructor's own I/O is guarded):
 * kept with the start-up code, so a process that never connects pages in no
 * other window of the agent's code (xv_place.h). */
XV_START_FN void xv_guard_enter(void) { xv_guard_depth++; }
XV_START_FN void xv_guard_leave(void) { xv_guard_depth--; }
