/*
 * classify.c — which requests are OpenAI API calls (SPEC §2): POST to a
 * path ending in /chat/completions, /responses, /embeddings or
 * /completions under any prefix (/v1/, /openai/v1/,
 * /openai/deployments/NAME/, /a/ID/openai/v1/, or none).
 *
 * Invariant: no allocation, no library calls that may allocate, bounded
 * work (one scan for the query, then fixed suffix compares): this runs on
 * the hot path for every request head the hooks see.
 * Matching is exact and case-sensitive (paths are), so /chat/completionsX,
 * /chat/completions/ and /Chat/Completions are not API calls.
 *
 * Thread safety: pure functions; no state.
 */
#include <string.h>

#include "openai_int.h"

/* Longest first: "/chat/completions" must win over "/completions". */
static const struct {
    const char *suffix;
    size_t len;
    int type;
} suffixes[] = {
    {"/chat/completions", sizeof "/chat/completions" - 1, XV_OPENAI_CHAT},
    {"/completions", sizeof "/completions" - 1, XV_OPENAI_COMPLETIONS},
    {"/embeddings", sizeof "/embeddings" - 1, XV_OPENAI_EMBEDDINGS},
    {"/responses", sizeof "/responses" - 1, XV_OPENAI_RESPONSES},
};

int xv_openai_classify(const char *method, size_t method_len,
                       const char *target, size_t target_len)
{
    if (!method || !target || method_len != 4 || memcmp(method, "POST", 4) != 0)
        return XV_OPENAI_NONE;
    /* The path ends at the query or fragment. */
    size_t plen = 0;
    while (plen < target_len && target[plen] != '?' && target[plen] != '#')
        plen++;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t sl = suffixes[i].len;
        if (plen >= sl && memcmp(target + plen - sl, suffixes[i].suffix, sl) == 0)
            return suffixes[i].type;
    }
    return XV_OPENAI_NONE;
}

const char *xv_openai_type_name(int type)
{
    switch (type) {
    case XV_OPENAI_CHAT:
        return "chat_completions";
    case XV_OPENAI_RESPONSES:
        return "responses";
    case XV_OPENAI_EMBEDDINGS:
        return "embeddings";
    case XV_OPENAI_COMPLETIONS:
        return "completions";
    default:
        return "unknown";
    }
}
