/*
 * reply.c — the assistant reply the session store learns (xv_session.h,
 * xv_session_reply_new): a cJSON tree in one allocation, nodes first, then
 * their texts.
 *
 * Invariant: a reply is one malloc block; nothing in it is freed on its
 * own (xv_session_reply_free frees the block).
 * Thread safety: no shared state; a reply belongs to its caller.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_int.h"

/* The reply tree in one block: nodes first, then their texts. Built by
 * hand (cJSON's public struct) so that learning a reply, on every call,
 * makes one allocation instead of one per node and text, and needs no
 * libcjson (the agent loads it only when something must parse or print
 * with it; issue 9). Keys point at constant strings; nothing in the tree
 * is freed on its own. */
struct reply_block {
    cJSON *node;   /* next free node */
    char *text;    /* next free text byte */
};

static cJSON *reply_node(struct reply_block *b, cJSON *parent, int type, const char *key,
                         const char *text, size_t len)
{
    cJSON *n = b->node++;
    memset(n, 0, sizeof *n);
    n->type = type;
    n->string = (char *)key;
    if (text) {
        memcpy(b->text, text, len);
        b->text[len] = '\0';
        n->valuestring = b->text;
        b->text += len + 1;
    }
    if (parent) {
        cJSON *first = parent->child;
        if (!first) {
            parent->child = n;
            n->prev = n;
        } else {
            first->prev->next = n; /* cJSON: the first child's prev is the last */
            n->prev = first->prev;
            first->prev = n;
        }
    }
    return n;
}

cJSON *xv_session_reply_new(const char *content, size_t content_len,
                            const struct xv_session_tool_call *calls, size_t ncalls)
{
    if (ncalls > (SIZE_MAX / sizeof(cJSON) - 4) / 6)
        return NULL;
    /* Texts are cut at a NUL byte, as strndup would. */
    size_t clen = content ? strnlen(content, content_len) : 0;
    size_t nodes = 3 + (ncalls ? 1 + 6 * ncalls : 0);
    size_t bytes = sizeof "assistant" + (content ? clen + 1 : 0);
    for (size_t i = 0; i < ncalls; i++) {
        const struct xv_session_tool_call *c = &calls[i];
        bytes += strlen(c->id ? c->id : "") + 1 + sizeof "function" +
                 strlen(c->name ? c->name : "") + 1 +
                 (c->arguments ? strnlen(c->arguments, c->arguments_len) : 0) + 1;
    }
    cJSON *m = malloc(nodes * sizeof(cJSON) + bytes);
    if (!m)
        return NULL;
    struct reply_block b = { m, (char *)(m + nodes) };
    reply_node(&b, NULL, cJSON_Object, NULL, NULL, 0);
    reply_node(&b, m, cJSON_String, "role", "assistant", sizeof "assistant" - 1);
    if (content)
        reply_node(&b, m, cJSON_String, "content", content, clen);
    else
        reply_node(&b, m, cJSON_NULL, "content", NULL, 0);
    if (ncalls) {
        cJSON *arr = reply_node(&b, m, cJSON_Array, "tool_calls", NULL, 0);
        for (size_t i = 0; i < ncalls; i++) {
            const struct xv_session_tool_call *c = &calls[i];
            const char *id = c->id ? c->id : "", *name = c->name ? c->name : "";
            cJSON *tc = reply_node(&b, arr, cJSON_Object, NULL, NULL, 0);
            reply_node(&b, tc, cJSON_String, "id", id, strlen(id));
            reply_node(&b, tc, cJSON_String, "type", "function", sizeof "function" - 1);
            cJSON *fn = reply_node(&b, tc, cJSON_Object, "function", NULL, 0);
            reply_node(&b, fn, cJSON_String, "name", name, strlen(name));
            reply_node(&b, fn, cJSON_String, "arguments", c->arguments ? c->arguments : "",
                       c->arguments ? strnlen(c->arguments, c->arguments_len) : 0);
        }
    }
    return m;
}

void xv_session_reply_free(cJSON *reply)
{
    free(reply);
}
