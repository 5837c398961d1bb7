/*
 * uuid.c — RFC 4122 version-4 UUIDs for trace ids, tool-step ids and new
 * session ids, and the normalisation of UUIDs an app sends.
 *
 * The generator is per thread: xoshiro256** seeded once per thread from
 * getrandom(2) (one syscall in a thread's life), so a UUID costs no syscall
 * and no lock. libuuid's uuid_generate reseeds from pid/ppid/uid/tid on
 * every call (several syscalls each; FACTS.md), which the hot path cannot
 * afford.
 *
 * Invariant: two processes never share a stream. After fork() the child
 * would continue the parent's state and draw the same ids, so a child
 * handler (registered once, on first use) bumps a generation counter and a
 * thread whose seed belongs to an older generation reseeds before drawing.
 * When getrandom is unavailable (old kernel, or its pool not ready with
 * GRND_NONBLOCK) the seed mixes the clocks, pid, tid and stack address
 * through splitmix64: unique enough for ids, which are not secrets.
 *
 * Thread safety: every function may be called from any thread; none may be
 * called from a signal handler (the per-thread state is not reentrant).
 */
#include "xv_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Fork generation; the atfork child handler bumps it (single-threaded then). */
static atomic_uint g_gen = 1;
static pthread_once_t g_fork_once XV_CALL_DATA = PTHREAD_ONCE_INIT;
/* the agent's fork handler calls xv_uuid_atfork_child: no handler of our own */
static atomic_int g_fork_external XV_START_DATA;

void xv_uuid_atfork_child(void)
{
    atomic_fetch_add_explicit(&g_gen, 1, memory_order_relaxed);
}

XV_START_FN void xv_uuid_fork_handled(void)
{
    atomic_store_explicit(&g_fork_external, 1, memory_order_relaxed);
}

static void uuid_atfork_child(void)
{
    xv_uuid_atfork_child();
}

static void register_fork(void)
{
    pthread_atfork(NULL, NULL, uuid_atfork_child);
}

/* This thread's generator: seeded for generation `gen` (0 = never). */
static __thread struct {
    uint64_t s[4];
    unsigned gen;
} t_rng __attribute__((tls_model("initial-exec")));

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void seed(unsigned gen)
{
    uint64_t s[4] = { 0, 0, 0, 0 };
    ssize_t got = getrandom(s, sizeof s, GRND_NONBLOCK);
    if (got != (ssize_t)sizeof s) {
        uint64_t x = xv_now_wall_ns() ^ (xv_now_mono_ns() << 17) ^
                     ((uint64_t)getpid() << 32) ^ (uint64_t)syscall(SYS_gettid) ^
                     (uint64_t)(uintptr_t)&x;
        for (int i = 0; i < 4; i++)
            s[i] ^= splitmix64(&x);
    }
    if (!(s[0] | s[1] | s[2] | s[3]))
        s[0] = 1; /* xoshiro's one forbidden state */
    memcpy(t_rng.s, s, sizeof s);
    t_rng.gen = gen;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna), from its published definition. */
static uint64_t next64(void)
{
    uint64_t *s = t_rng.s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

void xv_uuid_v4_bytes(unsigned char b[16])
{
    if (!atomic_load_explicit(&g_fork_external, memory_order_relaxed))
        pthread_once(&g_fork_once, register_fork);
    unsigned gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
    if (t_rng.gen != gen)
        seed(gen);
    uint64_t a = next64(), c = next64();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void xv_uuid_format(const unsigned char b[16], char out[XV_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void xv_uuid_v4(char out[XV_UUID_LEN + 1])
{
    unsigned char b[16];
    xv_uuid_v4_bytes(b);
    xv_uuid_format(b, out);
}

static int hexval(char ch)
{
    return xv_hex_value((unsigned char)ch);
}

int xv_uuid_parse(const char *s, size_t n, unsigned char b[16])
{
    if (!s)
        return XV_E_PARSE;
    /* spellings: 8-4-4-4-12, 32 hex, {8-4-4-4-12}, urn:uuid:8-4-4-4-12 */
    if (n == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    } else if (n == 38 && s[0] == '{' && s[37] == '}') {
        s += 1;
        n -= 2;
    }
    int dashed = n == 36;
    if (!dashed && n != 32)
        return XV_E_PARSE;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return XV_E_PARSE;
            continue;
        }
        int hi = hexval(s[i]);
        if (hi < 0)
            return XV_E_PARSE;
        if (k & 1)
            b[k / 2] = (unsigned char)(b[k / 2] | hi);
        else
            b[k / 2] = (unsigned char)(hi << 4);
        k++;
    }
    return k == 32 ? 0 : XV_E_PARSE;
}

int xv_uuid_normalize(const char *s, size_t n, char out[XV_UUID_LEN + 1])
{
    unsigned char b[16];
    out[0] = '\0';
    if (xv_uuid_parse(s, n, b) != 0)
        return XV_E_PARSE;
    xv_uuid_format(b, out);
    return 0;
}

int xv_uuid_is_v4(const char *s, size_t n)
{
    if (!s || n != XV_UUID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return 0;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return 0; /* lower case only */
        }
    }
    return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}
