/*
 * xv_jsonr.h — a JSON reader that builds the same cJSON tree as
 * cJSON_ParseWithLengthOpts(text, len, &end, 0), with every node and string
 * in one arena owned by an xv_jr_tree (issue 9: cJSON allocates each node
 * and each string with malloc — ~70 allocations and as many frees for a
 * small chat call, a fifth of the agent's per-call cost — and its hooks for
 * other allocators are process-wide, shared with a host that may use
 * libcjson itself, so they cannot be set from a preloaded agent).
 *
 * Which text it reads itself: strict JSON (RFC 8259) nested at most
 * XV_JR_DEPTH deep, with no byte below 0x20 inside a string and no UTF-8
 * BOM. For everything else — malformed text included — it hands the whole
 * text to cJSON_ParseWithLengthOpts, so the tree, the failure and `end` are
 * cJSON's own; the tree is then cJSON's and freed by cJSON. On the text it
 * reads itself it builds the tree cJSON would (same types, member order,
 * duplicate members kept, strings decoded the same way, numbers by strtod
 * in the C locale — the value cJSON's locale dance gives —, valueint
 * saturated, head->prev the last child) and stops after the value as cJSON
 * does (what follows is not looked at).
 *
 * The tree is read-only: nothing may be added to, detached from or
 * replaced in it, and it must never be given to cJSON_Delete. Everything
 * else cJSON does with a tree it may do with this one (GetObjectItem,
 * ArrayForEach, PrintUnformatted, Duplicate — the copy is cJSON's).
 *
 * Memory: the arena is a chain of blocks, the first sized from the text;
 * about what cJSON's allocations would take, in one or a few malloc calls.
 * Thread safety: a tree belongs to one thread at a time; no global state
 * but a C locale object made once (pthread_once).
 */
#ifndef XV_JSONR_H
#define XV_JSONR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Deeper text is left to cJSON (which fails past 1,000 levels). */
#define XV_JR_DEPTH 64

struct xv_jr_block;

struct xv_jr_tree {
    cJSON *root;                 /* the parsed value, or NULL */
    struct xv_jr_block *blocks;  /* the arena, owned; NULL when root is cJSON's */
    int by_cjson;                /* root came from cJSON: free it with cJSON_Delete */
};

/* An empty tree (root NULL); what xv_jr_free leaves too. */
#define XV_JR_TREE_INIT { NULL, NULL, 0 }

/* Parse text[0..len) into t (freed first). Returns t->root: the value, or
 * NULL when the text is not JSON by cJSON's rules or memory ran out; `end`
 * (may be NULL) then gets what cJSON set it to. */
cJSON *xv_jr_parse(struct xv_jr_tree *t, const char *text, size_t len, const char **end);

/* Free the tree (either kind); t is left empty. */
void xv_jr_free(struct xv_jr_tree *t);

/* Arena blocks taken from malloc so far, by every thread (tests): a block
 * a thread kept from a freed tree (its spares) is not counted. */
uint64_t xv_jr_blocks_malloced(void);

/* Move the tree from `from` to `to` (to freed first, from left empty). */
void xv_jr_move(struct xv_jr_tree *to, struct xv_jr_tree *from);

/* cJSON_GetObjectItemCaseSensitive, the same answer (the first member of
 * that name; NULL for NULL, a non-object, or no such member) without a
 * strcmp call for each member whose first byte already differs: a chat
 * call looks up ~90 names, most of them absent (issue 9: strcmp was 3 % of
 * the agent's process). One out-of-line copy: inlined at its ~110 call
 * sites it took 5.6 KiB of the first call's code (tests/perf/test_start.py
 * allows two 64 KiB windows) for ~700 fewer instructions a call (0.7 %).
 * Works on any cJSON tree. */
cJSON *xv_json_get(const cJSON *o, const char *name);

/* out[j] = xv_json_get(o, names[j]) for each of the n names, in one pass
 * over o's members instead of one a name (a record's request parameters,
 * a message's role/content/tool fields: most names absent). */
void xv_json_pick(const cJSON *o, const char *const *names, size_t n, const cJSON **out);

/* v's text when it is a string, else NULL (cJSON_GetStringValue's answer). */
static inline const char *xv_json_str(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#endif
