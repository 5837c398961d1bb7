/*
 * common — the few things every module shares: the project's error codes,
 * a bounded growable byte buffer, hex/write_all/file-read helpers,
 * monotonic/wall clocks, and the agent's own rate-limited, prefixed stderr
 * logger. (Knobs: xv_knobs.h.)
 *
 * Thread safety: everything here is safe from any thread. Nothing here
 * allocates except xv_buf_* and xv_file_read; xv_log never allocates and writes with a raw
 * write(2) syscall, so it never re-enters the preload's hooks.
 */
#ifndef XV_COMMON_H
#define XV_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Project error codes, all negative; -errno values are used alongside them.
 * X(name, value, text) */
#define XV_ERRORS(X)                                              \
    X(XV_E_NOMEM, -1001, "out of memory")                         \
    X(XV_E_LIMIT, -1002, "size limit reached")                    \
    X(XV_E_PARSE, -1003, "malformed input")                       \
    X(XV_E_STATE, -1004, "call not valid in this state")          \
    X(XV_E_CONFIG, -1005, "invalid configuration")                \
    X(XV_E_IO, -1006, "input/output error")                       \
    X(XV_E_UNSUPPORTED, -1007, "not supported")

enum xv_error {
#define XV_ERR_ENUM(name, value, text) name = value,
    XV_ERRORS(XV_ERR_ENUM)
#undef XV_ERR_ENUM
};

/* Text for a project code or a -errno value. Never NULL; static storage. */
const char *xv_strerror(int code);

/*
 * struct xv_buf — growable byte buffer with a hard limit (curl's dynbuf).
 * Always NUL-terminated after the data when data != NULL, so text can be
 * handed to parsers expecting C strings. Appending past `max` fails with
 * XV_E_LIMIT and leaves the buffer unchanged.
 */
struct xv_buf {
    char *data;   /* owned; NULL until the first append */
    size_t len;   /* bytes in use */
    size_t cap;   /* bytes allocated (excluding the NUL) */
    size_t max;   /* hard limit on len */
};

void xv_buf_init(struct xv_buf *b, size_t max);
int xv_buf_append(struct xv_buf *b, const void *p, size_t n);
/* Room for `need` bytes in all (at most max) at once, when the size to come
 * is known: appends up to it neither move nor grow the buffer. 0 or
 * XV_E_NOMEM (the buffer unchanged). */
int xv_buf_reserve(struct xv_buf *b, size_t need);
int xv_buf_appendf(struct xv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append the header line "name: value" + eol in one step, without printf
 * (issue 9: three vsnprintf calls per chat call); all or nothing. */
/* Four hex digits (either case) at s into *out, as in a JSON \uXXXX
 * escape; -1 (and *out untouched) when one is not a hex digit. */
int xv_hex4(const char *s, uint32_t *out);
int xv_buf_append_header(struct xv_buf *b, const char *name, const char *value,
                         const char *eol);
/* Drop the first n bytes (n <= len), keeping the allocation. */
void xv_buf_consume(struct xv_buf *b, size_t n);
void xv_buf_reset(struct xv_buf *b);   /* len = 0, keeps memory */
void xv_buf_free(struct xv_buf *b);    /* frees; buffer reusable after init */
/* Hand the data to the caller (who frees it with free()); buffer becomes empty. */
char *xv_buf_steal(struct xv_buf *b, size_t *len);

/*
 * Byte helpers (bytes.c): the one copy of each for every module.
 */
/* Lower-case hex of p[0..n) into out (2n characters + NUL). Pure. */
void xv_hex_encode(const void *p, size_t n, char *out);
/* Value of a hex digit (either case), or -1. Pure. */
int xv_hex_value(int c);
/* Percent-decode s[0..n) into out (room for n + 1 bytes; NUL-terminated,
 * *outn its length; '+' stays '+', as OTEL_RESOURCE_ATTRIBUTES wants). A
 * '%' without two hex digits: XV_E_PARSE when strict, else kept as is.
 * Returns 0 or XV_E_PARSE. Pure. */
int xv_pct_decode(const char *s, size_t n, char *out, size_t *outn, int strict);
/* Write all n bytes to fd (retrying EINTR and short writes): 0, or -errno
 * (-EIO when write returns 0). errno is changed on failure. */
int xv_write_all(int fd, const void *p, size_t n);
/* The same for iov[0..cnt) in order (writev); advances through iov on a
 * short write, so changes it. */
struct iovec;
int xv_writev_all(int fd, struct iovec *iov, int cnt);
/* The whole file at path, NUL-terminated (an empty file gives ""), at most
 * `max` bytes. Caller owns the result; free with free(). NULL with errno
 * set (EFBIG when larger than max) on failure; *len is its length. */
char *xv_file_read(const char *path, size_t max, size_t *len);

/* Memory used front to back (a store's slots, a byte FIFO): make it
 * resident ahead of use, in steps, instead of a page fault at each first
 * touch (~14 us each on the bench VM, issue 9). Once `need` bytes from
 * `base` are about to be used and go past `r->ready`, the pages up to need
 * + r->step (at most `total`) are populated in one madvise call
 * (MADV_POPULATE_WRITE), the step doubling from a page up to `max_step`.
 * A kernel that refuses (< 5.14) leaves the pages to fault as before and
 * is not asked again. errno is preserved. Zero-initialised state is valid. */
struct xv_ready {
    size_t ready; /* bytes from base made resident; SIZE_MAX: refused */
    size_t step;  /* the next step's bytes (0: a page) */
};
void xv_ready_ahead(void *base, size_t total, size_t need, size_t max_step, struct xv_ready *r);

/* Clocks, in nanoseconds. Async-signal-safe. */
uint64_t xv_now_mono_ns(void);
uint64_t xv_now_wall_ns(void);

/* Logging: "xenovia: <message>\n" on stderr via a raw write(2) syscall,
 * only while fd 2 is the stderr captured by xv_log_capture_stderr.
 * Rate-limited per call site class (at most 20 lines per second overall),
 * never allocates, errno preserved. Level below the configured one is dropped. */
enum xv_log_level { XV_LOG_ERROR = 0, XV_LOG_WARN = 1, XV_LOG_INFO = 2, XV_LOG_DEBUG = 3 };
void xv_log_set_level(int level);
/* Remember which file fd 2 is now (device, inode, type; or that it is
 * closed). Lines are written only while fd 2 is still that file, so a
 * program that closed its stderr and reused the number for a socket or a
 * data file never receives them. The preload calls this first thing in
 * once-init; without a call the first line captures. Not async-signal-safe
 * to race with itself; call once. */
void xv_log_capture_stderr(void);
void xv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xv_vlog(int level, const char *fmt, va_list ap);

/*
 * UTF-8 (utf8.c): the one set of helpers every module uses so that records
 * are always valid UTF-8 JSON. Pure; safe from any thread.
 */
/* Length of the valid sequence at s[0..avail) (1..4), or 0 when invalid
 * (overlong, surrogate, past U+10FFFF, truncated, stray continuation). */
size_t xv_utf8_seq_len(const unsigned char *s, size_t avail);
int xv_utf8_valid(const char *s, size_t len);
/* Longest prefix of s[0..len) of at most max bytes that does not end
 * inside a UTF-8 sequence (reads s[max] when len > max). */
size_t xv_utf8_cut(const char *s, size_t len, size_t max);
/* len minus an incomplete sequence at the very end of s[0..len) (what a
 * byte-count cut left behind), else len. */
size_t xv_utf8_tail(const char *s, size_t len);
/* Copy of s[0..len) of at most max bytes, invalid bytes replaced by U+FFFD
 * (counted in the budget), cut on a boundary; *cut (may be NULL) set to 1
 * when input was dropped. Caller owns the result; free(). NULL on OOM. */
char *xv_utf8_fix(const char *s, size_t len, size_t max, int *cut);
/* snprintf that, when it truncates, also drops a character left half
 * written at the end. Same return value as snprintf. */
int xv_utf8_snprintf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Per-thread reentrancy guard. While > 0 on a thread (the agent's own
 * exporter thread, or a hook already running agent logic), hooks pass
 * straight through to the real functions. */
void xv_guard_enter(void);
void xv_guard_leave(void);
/* Read inline: every hook asks (xv_hooks_active), a call into common.c
 * per read of a bulk download was a cold line of its own (issue 9). */
extern __thread int xv_guard_depth __attribute__((tls_model("initial-exec"), visibility("hidden")));
static inline int xv_guard_active(void)
{
    return xv_guard_depth > 0;
}

/*
 * UUIDs (uuid.c). XV_UUID_LEN is the canonical text: 8-4-4-4-12 hex digits.
 * xv_uuid_v4* draw RFC 4122 version-4 UUIDs from a per-thread generator
 * seeded once per thread from getrandom() and reseeded in a fork child: no
 * syscall, no lock, no allocation per id. Any thread; not in a signal handler.
 */
#define XV_UUID_LEN 36
void xv_uuid_v4_bytes(unsigned char b[16]);
/* Fork safety of the generator: by default its first use registers a
 * pthread_atfork child handler. A program with its own child handler (the
 * agent: one registration, at start, instead of a second at the first
 * call, issue 9) calls xv_uuid_fork_handled() before the first UUID and
 * xv_uuid_atfork_child() from that handler. */
void xv_uuid_fork_handled(void);
void xv_uuid_atfork_child(void);
/* Hyphenated lower-case text of a new v4 UUID (XV_UUID_LEN chars + NUL). */
void xv_uuid_v4(char out[XV_UUID_LEN + 1]);
/* Hyphenated lower-case text of 16 bytes. */
void xv_uuid_format(const unsigned char b[16], char out[XV_UUID_LEN + 1]);
/* Parse any valid spelling: 8-4-4-4-12, 32 hex digits, {8-4-4-4-12},
 * urn:uuid:8-4-4-4-12 (hex of either case, any version). 0 or XV_E_PARSE. */
int xv_uuid_parse(const char *s, size_t n, unsigned char b[16]);
/* The canonical (hyphenated, lower-case) text of any valid spelling; 0, or
 * XV_E_PARSE with out "". */
int xv_uuid_normalize(const char *s, size_t n, char out[XV_UUID_LEN + 1]);
/* 1 when s[0..n) is a hyphenated lower-case version-4 RFC 4122 UUID. */
int xv_uuid_is_v4(const char *s, size_t n);

/* dlopen flag for the agent's private objects and libz: RTLD_DEEPBIND, so a
 * library the agent brings never binds to same-named symbols a program
 * exports (Node's OpenSSL and zlib). The sanitizer runtimes refuse
 * RTLD_DEEPBIND, so sanitizer builds load without it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XV_RTLD_DEEPBIND 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define XV_RTLD_DEEPBIND 0
#endif
#endif
#ifndef XV_RTLD_DEEPBIND
#define XV_RTLD_DEEPBIND RTLD_DEEPBIND
#endif

#include "xv_place.h"

#endif
