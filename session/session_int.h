/*
 * session_int.h — what only session/'s own files share: the canonical-JSON
 * sink (a SHA-256 context and/or a bounded buffer) and the conversation
 * digests the store keys on.
 *
 * Thread safety: everything here works on caller-owned state only.
 */
#ifndef XV_SESSION_INT_H
#define XV_SESSION_INT_H

#include "sha256.h" /* nettle's sha2.h spelling, see there */
#include "xv_jsonr.h"

#include "xv_session.h"

/* The thread's last fingerprinted histories (fpcache.c): a run compares the
 * canonical text it produces with them and hashes only where it differs or
 * goes past one. */
#define XV_FPC_WAYS 4                      /* histories kept a thread */
#define XV_FPC_ENTRY_MAX ((size_t)4 << 20) /* bytes kept a history at most */
#define XV_FPC_BUDGET ((size_t)32 << 20)   /* over all threads */
#define XV_FPC_KEEP ((size_t)256 << 10)    /* a buffer not kept is freed above this */
#define XV_FPC_MARKS 2                     /* states kept inside a history (the request's
                                              two prefix digests, SPEC §4) */
enum { XV_FPC_PLAIN = 0, XV_FPC_COMPARE, XV_FPC_STREAM };
struct xv_fpc_entry;
struct xv_fpc_thread;
struct xv_fpc_run {
    struct xv_fpc_thread *t; /* the thread's histories; NULL: hashing only */
    struct xv_fpc_entry *e;  /* the one the run streams into (stream mode) */
    unsigned cands;          /* compare mode: the histories matching so far (bits) */
    struct sha256_ctx *sha;  /* the run's state (current once it streams) */
    size_t pos;              /* bytes produced that matched them (compare mode) */
    size_t hashed;           /* compare mode: bytes already in *sha (from a mark) */
    int mode;                /* XV_FPC_* */
    int nmarks;              /* the run's marks so far (kept with its history) */
    size_t mark_pos[XV_FPC_MARKS];
    struct sha256_ctx mark[XV_FPC_MARKS];
};
/* Start a run hashing into *sha (initialised here). */
void xv_fpc_begin(struct xv_fpc_run *r, struct sha256_ctx *sha);
/* The next n bytes of the run's canonical text. */
void xv_fpc_put(struct xv_fpc_run *r, const void *p, size_t n);
/* Make *r->sha the state after every byte put so far, for a prefix digest;
 * the state is kept with the run's history (a mark), and taken from a kept
 * history's mark at the same place when
 * there is one, so a repeated history (a retry, an eval running one
 * prompt many times) hashes nothing. */
void xv_fpc_mark(struct xv_fpc_run *r);
/* End the run: keep its text and final state for the thread's next run
 * (keep != 0, when it was all captured), else forget the entry's bytes. */
void xv_fpc_end(struct xv_fpc_run *r, int keep);
/* Bytes of kept histories over all threads; bytes this thread's runs took
 * the hash of from a kept state instead of hashing them (tests, bench). */
size_t xv_fpc_budget_used(void);
uint64_t xv_fpc_resumed_total(void);
/* Bytes this thread's runs hashed (tests). */
uint64_t xv_fpc_hashed_total(void);

/* Where canonical text goes: hashed (sha != NULL), kept (buf != NULL), or both. */
struct xv_session_sink {
    struct sha256_ctx *sha; /* borrowed; updated with every byte */
    struct xv_buf *buf;     /* borrowed; appended to until it fails */
    struct xv_fpc_run *fpc; /* when set, it hashes into sha (see fpcache.c) */
    int err;                /* first error: XV_E_LIMIT (depth or buf max), XV_E_NOMEM */
    size_t staged;          /* bytes in stage not yet hashed (sha sinks gather the
                               small pieces: flush before reading *sha) */
    unsigned char stage[256];
};
/* Hash the staged bytes (before the state in *sha is read). */
void xv_session_sink_flush(struct xv_session_sink *k);

/* Canonical JSON of a generic value into the sink (depth = current nesting). */
void xv_session_canon_value(struct xv_session_sink *k, const cJSON *v, int depth);

/* Digests the resolution chain looks up for one request (strategy 4):
 * last = messages[:-1]; asst = messages up to and including the last
 * assistant message when that differs from `last` (parallel tool results,
 * several new user messages). has_* say which were computed. With convo,
 * also the state after the last message (convo->valid), for a request of at
 * least one message that is not too deep. */
struct xv_session_fps {
    int has_last, has_asst;
    uint8_t last[XV_SESSION_DIGEST_LEN];
    uint8_t asst[XV_SESSION_DIGEST_LEN];
};
int xv_session_request_fps(int type, const cJSON *body, struct xv_session_fps *out,
                           struct xv_session_convo *convo);

/* Digest of the next turn's key: request messages + the reply (as chat
 * message, or Responses output items), hashed on top of convo when it is
 * valid (the same body's state, from xv_session_request_fps), else from the
 * start. Returns 0, XV_E_PARSE when there is nothing to key on, XV_E_LIMIT
 * when too deep. */
int xv_session_next_fp(int type, const cJSON *body, const cJSON *reply,
                       const struct xv_session_convo *convo,
                       uint8_t digest[XV_SESSION_DIGEST_LEN]);

/* SHA-256 of a string with a one-byte domain tag (response ids, users). */
void xv_session_digest_str(char tag, const char *s, size_t n,
                           uint8_t digest[XV_SESSION_DIGEST_LEN]);

/* The request's messages array (chat `messages`, Responses `input` array)
 * or NULL; for Responses a string `input` sets *input_str instead. */
const cJSON *xv_session_messages_of(int type, const cJSON *body, const char **input_str);

/* Text of a message's content as a tool result: string as is; array: text
 * parts joined with "\n"; anything else printed as canonical JSON. Appended
 * to out (bounded). */
int xv_session_content_text(const cJSON *content, struct xv_buf *out);

#endif
