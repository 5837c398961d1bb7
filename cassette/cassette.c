/*
 * cassette.c — a cassette directory: loading recordings, the match key,
 * deciding a request (replay, record, miss) and writing recordings.
 *
 * Invariant: a recording file is complete or absent. It is written to a
 * temporary file in the same directory and linked into place (link(2)
 * fails on an existing name, so two processes recording the same call take
 * different occurrence numbers), or renamed over the old one in mode all.
 *
 * File I/O goes through stdio: its writes are libc-internal and never reach
 * the preload's write/close hooks.
 *
 * Thread safety: every entry point takes c->mu; see xv_cassette.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cassette_int.h"
#include "sha256.h" /* common/: the project's one SHA-256 */
#include "xv_session.h"

#define CAS_FILE_MAX (64u << 20) /* largest recording file read */

int xv_cassette_mode_parse(const char *s, int *out)
{
    static const char *const names[] = { "once", "new_episodes", "none", "all" };
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return XV_E_CONFIG;
}

const char *xv_cassette_mode_name(int mode)
{
    switch (mode) {
    case XV_CASSETTE_ONCE: return "once";
    case XV_CASSETTE_NEW_EPISODES: return "new_episodes";
    case XV_CASSETTE_NONE: return "none";
    case XV_CASSETTE_ALL: return "all";
    }
    return "?";
}

int xv_cassette_header_secret(const char *name)
{
    static const char *const parts[] = { "auth", "key", "token", "secret", "password",
                                         "cookie", "credential" };
    char low[128];
    size_t n = strlen(name);
    if (n >= sizeof low)
        return 1; /* an odd, huge name: keep it out rather than guess */
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(low, parts[i]))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ match key */

static void remove_path(cJSON *root, const char *dotted)
{
    char seg[128];
    cJSON *cur = root;
    const char *p = dotted;
    while (cur && cJSON_IsObject(cur)) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof seg)
            return;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!dot) {
            cJSON_DeleteItemFromObjectCaseSensitive(cur, seg);
            return;
        }
        cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        p = dot + 1;
    }
}

cJSON *xv_cassette_body_json(const struct xv_cassette *c, const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    cJSON *v = cJSON_ParseWithLength(body, len);
    if (!v)
        return NULL;
    for (size_t i = 0; i < c->nignore; i++)
        remove_path(v, c->ignore[i]);
    return v;
}

void xv_cassette_key(const struct xv_cassette *c, const struct xv_cassette_req *req, char out[65])
{
    struct sha256_ctx h;
    sha256_init(&h);
    const char *parts[3] = { req->method ? req->method : "", req->host ? req->host : "",
                             req->path ? req->path : "" };
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; *p; p++) {
            /* the host is case-insensitive and carries no port */
            if (i == 1 && *p == ':')
                break;
            uint8_t ch = (uint8_t)*p;
            if (i == 1 && ch >= 'A' && ch <= 'Z')
                ch = (uint8_t)(ch + 32);
            sha256_update(&h, 1, &ch);
        }
        sha256_update(&h, 1, (const uint8_t *)"\n");
    }
    cJSON *v = xv_cassette_body_json(c, req->body, req->body_len);
    int hashed = 0;
    if (v) {
        struct xv_buf canon;
        xv_buf_init(&canon, (size_t)1 << 30);
        if (xv_session_canonical_json(v, &canon) == 0) {
            sha256_update(&h, canon.len, (const uint8_t *)canon.data);
            hashed = 1;
        }
        xv_buf_free(&canon);
        cJSON_Delete(v);
    }
    if (!hashed && req->body_len)
        sha256_update(&h, req->body_len, (const uint8_t *)req->body);
    uint8_t d[XV_SHA256_DIGEST_SIZE];
    sha256_digest(&h, sizeof d, d);
    xv_hex_encode(d, sizeof d, out);
}

/* -------------------------------------------------------------- loading */

static char *read_file(const char *path, size_t *len)
{
    return xv_file_read(path, CAS_FILE_MAX, len);   /* common/bytes.c */
}

static int entry_cmp(const void *a, const void *b)
{
    const struct xv_cassette_entry *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->occ > y->occ) - (x->occ < y->occ);
}

static int add_entry(struct xv_cassette *c, const char *name, cJSON *doc)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(doc, "key");
    const cJSON *occ = cJSON_GetObjectItemCaseSensitive(doc, "occurrence");
    if (!cJSON_IsString(key) || strlen(key->valuestring) != 64 || !cJSON_IsNumber(occ) ||
        occ->valuedouble < 0 || occ->valuedouble > 1e6 ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "response")))
        return XV_E_PARSE;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct xv_cassette_entry *e = realloc(c->e, cap * sizeof *e);
        if (!e)
            return XV_E_NOMEM;
        c->e = e;
        c->cap = cap;
    }
    struct xv_cassette_entry *e = &c->e[c->n];
    e->file = strdup(name);
    if (!e->file)
        return XV_E_NOMEM;
    memcpy(e->key, key->valuestring, 65);
    e->occ = (int)occ->valuedouble;
    e->doc = doc;
    c->n++;
    return 0;
}

static int load_dir(struct xv_cassette *c, char *err, size_t errlen)
{
    DIR *d = opendir(c->dir);
    if (!d) {
        snprintf(err, errlen, "cannot read cassette %s: %s", c->dir, strerror(errno));
        return XV_E_IO;
    }
    struct dirent *de;
    int bad = 0;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name) >= (int)sizeof path)
            continue;
        size_t len;
        char *text = read_file(path, &len);
        cJSON *doc = text ? cJSON_ParseWithLength(text, len) : NULL;
        free(text);
        if (!doc || add_entry(c, de->d_name, doc) != 0) {
            cJSON_Delete(doc);
            if (!bad)
                snprintf(err, errlen, "cassette %s: %s is not a recording (skipped)", c->dir,
                         de->d_name);
            bad++;
        }
    }
    closedir(d);
    if (c->n > 1)
        qsort(c->e, c->n, sizeof *c->e, entry_cmp);
    return bad ? 1 : 0;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char save = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            tmp[i] = save;
        }
    return 0;
}

struct xv_cassette *xv_cassette_open(const char *path, int mode, const char *ignore,
                                     char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!path || !*path || mode < 0 || mode > XV_CASSETTE_ALL) {
        snprintf(err, errlen, "no cassette path");
        return NULL;
    }
    struct xv_cassette *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(path))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->mode = mode;
    const char *list = ignore ? ignore : XV_CASSETTE_IGNORE_DEFAULT;
    for (const char *p = list; *p && c->nignore < XV_CASSETTE_MAX_IGNORE;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ')) {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n) {
            c->ignore[c->nignore] = strndup(p, n);
            if (c->ignore[c->nignore])
                c->nignore++;
        }
        p += comma ? (size_t)(comma - p) + 1 : strlen(p);
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (mode == XV_CASSETTE_NONE) {
            snprintf(err, errlen, "cassette %s does not exist (record mode none)", path);
            xv_cassette_free(c);
            return NULL;
        }
        if (mkdirs(path) != 0) {
            snprintf(err, errlen, "cannot create cassette %s: %s", path, strerror(errno));
            xv_cassette_free(c);
            return NULL;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cassette %s is not a directory", path);
        xv_cassette_free(c);
        return NULL;
    }
    if (load_dir(c, err, errlen) < 0) {
        xv_cassette_free(c);
        return NULL;
    }
    c->had_recordings = c->n > 0;
    for (size_t i = 0; i < c->n; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->e[i].doc, "match");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "port");
        int port = cJSON_IsNumber(p) ? (int)p->valuedouble : 0;
        static const char *const names[] = { "host", "address" };
        for (int j = 0; j < 2; j++) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(m, names[j]);
            if (!cJSON_IsString(h) || !h->valuestring[0] || strlen(h->valuestring) >= 256)
                continue;
            size_t k = 0;
            while (k < c->nhosts &&
                   (strcmp(c->hosts[k].host, h->valuestring) || c->hosts[k].port != port))
                k++;
            if (k == c->nhosts && c->nhosts < sizeof c->hosts / sizeof c->hosts[0]) {
                snprintf(c->hosts[k].host, sizeof c->hosts[k].host, "%s", h->valuestring);
                c->hosts[k].port = port;
                c->nhosts++;
            }
        }
    }
    return c;
}

int xv_cassette_replay_only(const struct xv_cassette *c)
{
    return c && (c->mode == XV_CASSETTE_NONE || (c->mode == XV_CASSETTE_ONCE && c->had_recordings));
}

const char *xv_cassette_host(const struct xv_cassette *c, size_t i, int *port)
{
    if (!c || i >= c->nhosts)
        return NULL;
    *port = c->hosts[i].port;
    return c->hosts[i].host;
}

void xv_cassette_free(struct xv_cassette *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].file);
        cJSON_Delete(c->e[i].doc);
    }
    for (size_t i = 0; i < c->nignore; i++)
        free(c->ignore[i]);
    free(c->e);
    free(c->ctr);
    free(c->dir);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t xv_cassette_count(const struct xv_cassette *c)
{
    return c ? c->n : 0;
}

/* ------------------------------------------------------------- deciding */

static struct xv_cassette_ctr *counter(struct xv_cassette *c, const char *key)
{
    for (size_t i = 0; i < c->nctr; i++)
        if (strcmp(c->ctr[i].key, key) == 0)
            return &c->ctr[i];
    if (c->nctr == c->capctr) {
        size_t cap = c->capctr ? c->capctr * 2 : 16;
        struct xv_cassette_ctr *n = realloc(c->ctr, cap * sizeof *n);
        if (!n)
            return NULL;
        c->ctr = n;
        c->capctr = cap;
    }
    struct xv_cassette_ctr *k = &c->ctr[c->nctr++];
    memcpy(k->key, key, 65);
    k->seen = k->recorded = 0;
    return k;
}

/* The recording for the n-th occurrence of key: occurrence n, else the
 * highest recorded one (repeats replay the last), else NULL. */
static struct xv_cassette_entry *find(struct xv_cassette *c, const char *key, int n)
{
    struct xv_cassette_entry *best = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->e[i].key, key) != 0)
            continue;
        if (c->e[i].occ == n)
            return &c->e[i];
        if (c->e[i].occ < n && (!best || c->e[i].occ > best->occ))
            best = &c->e[i];
    }
    return best;
}

static void note_used(struct xv_cassette *c, const char *file)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.used", c->dir) >= (int)sizeof path)
        return;
    FILE *f = fopen(path, "ae");
    if (!f)
        return;
    /* one short line per fwrite+fclose: an O_APPEND write of < PIPE_BUF bytes */
    fprintf(f, "%s\n", file);
    fclose(f);
}

int xv_cassette_decide(struct xv_cassette *c, const struct xv_cassette_req *req,
                       const char *extra_head, int keep_alive, struct xv_buf *answer,
                       struct xv_buf *why, struct xv_buf *timing)
{
    char key[65];
    xv_cassette_key(c, req, key);
    pthread_mutex_lock(&c->mu);
    struct xv_cassette_ctr *k = counter(c, key);
    if (!k) {
        pthread_mutex_unlock(&c->mu);
        return XV_E_NOMEM;
    }
    int n = k->seen++;
    int verdict;
    if (c->mode == XV_CASSETTE_ALL) {
        verdict = XV_CASSETTE_RECORD;
    } else {
        struct xv_cassette_entry *e = find(c, key, n);
        if (e) {
            int r = xv_cassette_build_answer(cJSON_GetObjectItemCaseSensitive(e->doc, "response"),
                                             extra_head, keep_alive, answer, timing);
            if (r == 0)
                note_used(c, e->file);
            pthread_mutex_unlock(&c->mu);
            return r == 0 ? XV_CASSETTE_REPLAY : r;
        }
        if (c->mode == XV_CASSETTE_NEW_EPISODES ||
            (c->mode == XV_CASSETTE_ONCE && !c->had_recordings))
            verdict = XV_CASSETTE_RECORD;
        else
            verdict = XV_CASSETTE_MISS;
    }
    int r = 0;
    if (verdict == XV_CASSETTE_MISS)
        r = xv_cassette_build_miss(c, req, extra_head, keep_alive, answer, why);
    pthread_mutex_unlock(&c->mu);
    return r == 0 ? verdict : r;
}

/* ------------------------------------------------------------ recording */

static cJSON *req_json(const struct xv_cassette_req *req)
{
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    cJSON_AddStringToObject(r, "method", req->method ? req->method : "");
    cJSON_AddStringToObject(r, "host", req->host ? req->host : "");
    cJSON_AddStringToObject(r, "path", req->path ? req->path : "");
    cJSON *h = cJSON_AddArrayToObject(r, "headers");
    for (size_t i = 0; h && i < req->nheaders; i++) {
        if (xv_cassette_header_secret(req->headers[i].name))
            continue;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(req->headers[i].name));
        cJSON_AddItemToArray(pair, cJSON_CreateString(req->headers[i].value));
        cJSON_AddItemToArray(h, pair);
    }
    xv_cassette_put_body(r, req->body, req->body_len);
    return r;
}

static int write_doc(struct xv_cassette *c, const char *name, const char *text, int replace,
                     int *collided)
{
    char tmp[4096], dst[4096];
    *collided = 0;
    static _Atomic unsigned seq;
    if (snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%u", c->dir, (long)getpid(), seq++) >=
            (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", c->dir, name) >= (int)sizeof dst)
        return XV_E_LIMIT;
    /* "x": O_EXCL, "e": O_CLOEXEC; a stale temporary of a killed writer with
     * the same pid is simply replaced on the next try */
    FILE *f = fopen(tmp, "wxe");
    if (!f && errno == EEXIST) {
        unlink(tmp);
        f = fopen(tmp, "wxe");
    }
    if (!f)
        return -errno;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(tmp);
        return XV_E_IO;
    }
    int r;
    if (replace) {
        r = rename(tmp, dst) == 0 ? 0 : -errno;
    } else {
        r = link(tmp, dst) == 0 ? 0 : -errno;
        if (r == -EEXIST)
            *collided = 1;
        unlink(tmp);
    }
    if (r != 0 && !*collided)
        unlink(tmp);
    return r;
}

int xv_cassette_record(struct xv_cassette *c, const struct xv_cassette_req *req,
                       const struct xv_cassette_resp *resp)
{
    char key[65];
    xv_cassette_key(c, req, key);
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return XV_E_NOMEM;
    cJSON_AddNumberToObject(doc, "version", XV_CASSETTE_VERSION);
    cJSON_AddStringToObject(doc, "key", key);
    cJSON *occ = cJSON_AddNumberToObject(doc, "occurrence", 0);
    cJSON *m = cJSON_AddObjectToObject(doc, "match");
    if (m) {
        cJSON_AddStringToObject(m, "method", req->method ? req->method : "");
        char host[256];
        snprintf(host, sizeof host, "%s", req->host ? req->host : "");
        char *colon = strchr(host, ':');
        if (colon)
            *colon = '\0';
        for (char *p = host; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        cJSON_AddStringToObject(m, "host", host);
        if (req->port > 0)
            cJSON_AddNumberToObject(m, "port", req->port);
        if (req->addr && req->addr[0] && strcmp(req->addr, host) != 0)
            cJSON_AddStringToObject(m, "address", req->addr);
        cJSON_AddStringToObject(m, "path", req->path ? req->path : "");
        cJSON *ig = cJSON_AddArrayToObject(m, "ignored_fields");
        for (size_t i = 0; ig && i < c->nignore; i++)
            cJSON_AddItemToArray(ig, cJSON_CreateString(c->ignore[i]));
    }
    cJSON *rq = req_json(req);
    cJSON *rs = xv_cassette_resp_json(resp);
    if (!occ || !m || !rq || !rs) {
        cJSON_Delete(rq);
        cJSON_Delete(rs);
        cJSON_Delete(doc);
        return XV_E_NOMEM;
    }
    cJSON_AddItemToObject(doc, "request", rq);
    cJSON_AddItemToObject(doc, "response", rs);

    pthread_mutex_lock(&c->mu);
    struct xv_cassette_ctr *k = counter(c, key);
    int start = 0;
    if (k) {
        if (c->mode == XV_CASSETTE_ALL) {
            start = k->recorded;
        } else {
            for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->e[i].key, key) == 0 && c->e[i].occ >= start)
                    start = c->e[i].occ + 1;
            start += k->recorded;
        }
        k->recorded++;
    }
    pthread_mutex_unlock(&c->mu);

    const char *type = req->request_type && *req->request_type ? req->request_type : "call";
    int r = XV_E_IO;
    for (int tries = 0; tries < 1000; tries++) {
        int n = start + tries;
        cJSON_SetNumberValue(occ, n);
        char name[160];
        snprintf(name, sizeof name, "%s-%.16s-%d.json", type, key, n);
        char *text = cJSON_Print(doc);
        if (!text) {
            r = XV_E_NOMEM;
            break;
        }
        int collided;
        r = write_doc(c, name, text, c->mode == XV_CASSETTE_ALL, &collided);
        free(text);
        if (r == 0) {
            pthread_mutex_lock(&c->mu);
            note_used(c, name);
            pthread_mutex_unlock(&c->mu);
            break;
        }
        if (!collided)
            break;
    }
    cJSON_Delete(doc);
    return r;
}
