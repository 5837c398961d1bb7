/*
 * cassette — record and replay of inspected LLM calls (SPEC §8.1, issue 13).
 *
 * A cassette is a directory. Each recorded call is one pretty-printed JSON
 * file named after its match key and its occurrence:
 *
 *     <request_type>-<key16>-<n>.json      e.g. chat_completions-3f2a9c1b0d4e5f60-0.json
 *
 * so re-recording the same calls produces the same file names (diffs in git
 * show only what changed), several processes can record into one cassette at
 * once (each file is written aside and linked into place, never half
 * written), and `ls` order is stable. docs/cassette.md describes the file
 * format, the match key and the modes.
 *
 * Match key: SHA-256 of "METHOD\nhost\npath\n" followed by the canonical
 * JSON (docs/session.md) of the request body with the ignored fields
 * removed; a body that is not JSON is hashed as its bytes. The host is
 * lower-cased and carries no port (a test mock's port changes every run).
 * The n-th identical request of a process replays occurrence n; once the
 * recorded occurrences are used up, the last one is replayed again.
 *
 * Modes (VCR's): once — a cassette that holds recordings replays only (a
 * request with no match gets the no-match answer), an empty or missing one
 * records everything; new_episodes — replay what matches, send and record
 * the rest; none — replay only; all — send and record everything, never
 * replay (a recording replaces the one with the same key and occurrence).
 *
 * Nothing here holds a credential: request and response headers whose names
 * carry credentials (authorization, api-key, x-api-key, cookie, set-cookie,
 * x-xenovia-key, proxy-authorization, and any name containing "token",
 * "secret" or "password") are never written.
 *
 * Thread safety: a struct xv_cassette may be used from any thread; it has
 * its own mutex, never held across anything but its own file I/O.
 */
#ifndef XV_CASSETTE_H
#define XV_CASSETTE_H

#include <stddef.h>
#include <stdint.h>

#include "xv_common.h"

enum xv_cassette_mode {
    XV_CASSETTE_ONCE = 0,
    XV_CASSETTE_NEW_EPISODES = 1,
    XV_CASSETTE_NONE = 2,
    XV_CASSETTE_ALL = 3,
};

/* "once" | "new_episodes" | "none" | "all" -> mode; returns 0 or XV_E_CONFIG. */
int xv_cassette_mode_parse(const char *s, int *out);
const char *xv_cassette_mode_name(int mode);

/* The default ignored request fields (comma list, top-level or dotted). */
#define XV_CASSETTE_IGNORE_DEFAULT \
    "user,metadata,stream_options,seed,prompt_cache_key,safety_identifier"

struct xv_cassette_header {
    const char *name;  /* borrowed */
    const char *value; /* borrowed */
};

/* One arrival of response body bytes: body[off_end-1] was received t_ms
 * after the response head (used to time SSE events). */
struct xv_cassette_mark {
    size_t off_end;
    uint32_t t_ms;
};

/* A request as the app sent it (framing removed: the body de-chunked,
 * still content-encoded if it was). Everything borrowed. */
struct xv_cassette_req {
    const char *method;
    const char *host;           /* without port (a port after ':' is ignored) */
    int port;                   /* the port the program asked for (0 unknown): kept in
                                   the recording so a replay knows where to answer */
    const char *addr;           /* the numeric address it connected to, or NULL (kept
                                   too: some clients resolve "localhost" themselves) */
    const char *path;           /* with query */
    const char *request_type;   /* chat_completions | responses | … (file name) or NULL */
    const struct xv_cassette_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
};

/* A response as the upstream sent it (framing removed). Borrowed. */
struct xv_cassette_resp {
    int status;
    const char *reason;
    const struct xv_cassette_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    const struct xv_cassette_mark *marks; /* NULL: no timing known */
    size_t nmarks;
    int decoded;   /* body is already decoded from its Content-Encoding (gzip/deflate):
                      it is stored readable and encoded again at replay */
    int chunked;   /* the upstream framed it chunked (replayed so) */
    const char *raw; /* with decoded: the body as it came (still encoded), kept too so
                        a replay hands over the very same bytes; NULL: encoded again */
    size_t raw_len;
};

struct xv_cassette;

/* Open (or create, for the recording modes) the cassette directory `path`.
 * `ignore`: comma list of request fields left out of the match key (NULL:
 * XV_CASSETTE_IGNORE_DEFAULT, "": none). Loads every recording. Returns
 * NULL with a one-line reason in err on failure. Caller owns the result;
 * free with xv_cassette_free. */
struct xv_cassette *xv_cassette_open(const char *path, int mode, const char *ignore,
                                     char *err, size_t errlen);
void xv_cassette_free(struct xv_cassette *c); /* NULL ok */

/* Recordings loaded (for tests and the CLI). */
size_t xv_cassette_count(const struct xv_cassette *c);

/* 1 when the cassette only replays (mode none, or once with recordings):
 * then nothing may reach the network for the hosts it holds. */
int xv_cassette_replay_only(const struct xv_cassette *c);

/* The i-th distinct host:port the loaded recordings were made against
 * (i from 0; NULL past the end). For routing a replay without network. */
const char *xv_cassette_host(const struct xv_cassette *c, size_t i, int *port);

/* The match key of a request: 64 lower-case hex digits. */
void xv_cassette_key(const struct xv_cassette *c, const struct xv_cassette_req *req,
                     char out[65]);

enum xv_cassette_verdict {
    XV_CASSETTE_REPLAY = 0, /* answer holds the recorded response (raw HTTP/1.1) */
    XV_CASSETTE_RECORD = 1, /* send the call; hand its response to xv_cassette_record */
    XV_CASSETTE_MISS = 2,   /* no match and sending is not allowed: answer holds a 404
                               whose JSON error names the cassette and the nearest
                               recorded request's difference; why holds one line */
};

/* Decide a request. `answer` receives a complete HTTP/1.1 response (status
 * line, headers with Content-Length or chunked framing, and `extra_head`
 * inserted before the blank line when not NULL: the agent's stamped lines);
 * keep_alive 0: Connection: close (the answer ends its stream), 1: the
 * recorded Connection header as it was (the relay's wire-level replay keeps
 * the connection). `why` gets the one-line explanation of a miss (may be
 * NULL). `timing` (may be NULL) gets, for a stream, one struct
 * xv_cassette_mark per event: where in `answer` the event ends and when it
 * arrived after the head when recorded (for XENOVIA_REPLAY_TIMING=recorded). Both are appended to; their limits bound what is built (a bound
 * hit is reported as XV_E_LIMIT). Returns a verdict (>= 0) or < 0 on
 * failure (then the caller sends the call as if no cassette were set). */
int xv_cassette_decide(struct xv_cassette *c, const struct xv_cassette_req *req,
                       const char *extra_head, int keep_alive, struct xv_buf *answer,
                       struct xv_buf *why, struct xv_buf *timing);

/* Store the response of a call decided XV_CASSETTE_RECORD. Returns 0 or < 0
 * (the recording is then lost; the caller logs once). */
int xv_cassette_record(struct xv_cassette *c, const struct xv_cassette_req *req,
                       const struct xv_cassette_resp *resp);

/* 1 when header `name` (any case) must never be written to a cassette. */
int xv_cassette_header_secret(const char *name);

/* Differences between two JSON texts (a text that is not JSON compares as a
 * string): returns how many leaves differ (capped near 1000), and describes
 * the first one: its path ("messages[1].content"), and the two values
 * shortened to ~80 bytes on a UTF-8 boundary ("(absent)" when missing). */
int xv_cassette_diff_text(const char *a, size_t alen, const char *b, size_t blen, char *path,
                          size_t pathlen, struct xv_buf *was, struct xv_buf *now);

/* Which recordings this process used (replayed or recorded) are appended,
 * one file name a line, to <dir>/.used (`xenovia cassette prune` reads it). */

#endif
