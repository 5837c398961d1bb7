/*
 * Internal to cassette/: the loaded recordings and the helpers the files of
 * this module share. Not for use outside cassette/.
 */
#ifndef XV_CASSETTE_INT_H
#define XV_CASSETTE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>

#include "xv_cassette.h"

#define XV_CASSETTE_VERSION 1
#define XV_CASSETTE_MAX_IGNORE 32

/* One recording file, loaded at open. */
struct xv_cassette_entry {
    char *file;      /* base name in the directory (owned) */
    char key[65];    /* match key */
    int occ;         /* occurrence of that key */
    cJSON *doc;      /* the whole file (owned) */
};

/* Per-key counters of this process: requests seen, recordings written. */
struct xv_cassette_ctr {
    char key[65];
    int seen;
    int recorded;
};

struct xv_cassette {
    pthread_mutex_t mu;        /* guards the counters and the entry list */
    char *dir;                 /* the cassette directory (owned) */
    int mode;                  /* enum xv_cassette_mode */
    int had_recordings;        /* recordings existed at open (mode once) */
    char *ignore[XV_CASSETTE_MAX_IGNORE]; /* ignored dotted field paths (owned) */
    size_t nignore;
    struct xv_cassette_entry *e;    /* loaded recordings, sorted by key then occurrence */
    size_t n, cap;
    struct xv_cassette_ctr *ctr;    /* counters, one per key seen */
    size_t nctr, capctr;
    struct {
        char host[256];
        int port;
    } hosts[32];               /* distinct host:port of the recordings (first 32) */
    size_t nhosts;
};

/* The request body as JSON with the ignored fields removed, or NULL when it
 * is not JSON. Caller frees with cJSON_Delete. */
cJSON *xv_cassette_body_json(const struct xv_cassette *c, const char *body, size_t len);

/* answer.c: the raw HTTP/1.1 response a recording replays as. */
int xv_cassette_build_answer(const cJSON *resp, const char *extra_head, int keep_alive,
                             struct xv_buf *out, struct xv_buf *timing);
/* The no-match answer and its one-line explanation. */
int xv_cassette_build_miss(struct xv_cassette *c, const struct xv_cassette_req *req,
                           const char *extra_head, int keep_alive, struct xv_buf *answer,
                           struct xv_buf *why);
/* The recorded response object for a response (events for SSE). */
cJSON *xv_cassette_resp_json(const struct xv_cassette_resp *resp);
/* First difference between two JSON values (count of differing leaves,
 * capped); path/was/now describe the first. */
int xv_cassette_json_diff(const cJSON *was, const cJSON *now, char *path, size_t pathlen,
                     struct xv_buf *was_txt, struct xv_buf *now_txt);

/* Body text as a JSON string member when it is valid UTF-8, else base64. */
int xv_cassette_put_body(cJSON *obj, const char *body, size_t len);
/* The body bytes of a recorded request/response object (body or
 * body_base64); caller frees. */
char *xv_cassette_get_body(const cJSON *obj, size_t *len);

#endif
