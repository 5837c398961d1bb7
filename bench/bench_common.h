/*
 * bench_common.h — small helpers shared by bench_server.c and bench_client.c:
 * a monotonic clock, the HTTP/1.1 response/request head scanner the two use
 * to frame keep-alive messages, and the fixed chat payloads.
 *
 * Invariant: these are benchmark tools, not part of libxenovia; they link
 * OpenSSL dynamically (so the agent's SSL_* hooks see the client) and never
 * touch anything beyond 127.0.0.1. Everything here is static inline: no
 * symbol of these programs can collide with the agent's.
 *
 * Thread safety: pure functions on caller-owned buffers.
 */
#ifndef XV_BENCH_COMMON_H
#define XV_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Length of the head (up to and including the blank line) in buf[0..n), or 0
 * when it is not complete yet. */
static inline size_t bench_head_len(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Value of a header in a complete head as a number (-1 when absent). */
static inline long long bench_header_num(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 1 < len; i++) {
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, nl) == 0 &&
            head[i + nl] == ':')
            return strtoll(head + i + nl + 1, NULL, 10);
    }
    return -1;
}

/* Does a complete head contain a header with this name? */
static inline int bench_has_header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 1 < len; i++)
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, nl) == 0 &&
            head[i + nl] == ':')
            return 1;
    return 0;
}

/* A typical small chat request body and the server's fixed answer. */
#define BENCH_CHAT_BODY                                                                     \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a " \
    "terse assistant.\"},{\"role\":\"user\",\"content\":\"Say hello to the benchmark in "    \
    "one short sentence, please.\"}],\"temperature\":0.2,\"max_tokens\":64}"

#define BENCH_CHAT_REPLY                                                                     \
    "{\"id\":\"chatcmpl-bench0001\",\"object\":\"chat.completion\",\"created\":1700000000,"   \
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0," \
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello, benchmark! Nice to meet you.\","  \
    "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"              \
    "\"prompt_tokens\":31,\"completion_tokens\":9,\"total_tokens\":40}}"

#endif
