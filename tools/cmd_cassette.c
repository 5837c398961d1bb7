/*
 * cmd_cassette.c — `xenovia cassette ls|show|diff|prune`: look into the
 * cassettes of record/replay (docs/cassette.md) from a terminal.
 *
 *   ls DIR              one line per recording: file, call, model, status, kind, prompt
 *   show DIR [NAME]     a recording (or all) in full: request body and response
 *   diff A B            recordings only in A, only in B, and those whose request or
 *                       response differ (first difference named); exit 1 when any
 *   prune DIR [--dry-run]
 *                       delete recordings no run used since the last prune (the
 *                       agent lists the ones it replays or records in DIR/.used)
 *
 * Single-threaded; reads the files directly (they are plain JSON).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "xv_cassette.h"
#include "xv_tools.h"

struct rec {
    char *name;
    cJSON *doc;
};

static char *slurp(const char *path, size_t *len)
{
    return xv_file_read(path, (size_t)64 << 20, len);   /* common/bytes.c */
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct rec *)a)->name, ((const struct rec *)b)->name);
}

/* Every recording of dir, sorted by file name. Returns the count, -1 when
 * dir cannot be read (message printed). */
static int load(const char *cmd, const char *dir, struct rec **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "xenovia cassette %s: cannot read %s: %s\n", cmd, dir, strerror(errno));
        return -1;
    }
    struct rec *r = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *text = slurp(path, &len);
        cJSON *doc = text ? cJSON_ParseWithLength(text, len) : NULL;
        free(text);
        if (!doc) {
            fprintf(stderr, "xenovia cassette %s: %s is not a recording (skipped)\n", cmd, path);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            struct rec *g = realloc(r, (size_t)cap * sizeof *r);
            if (!g) {
                cJSON_Delete(doc);
                break;
            }
            r = g;
        }
        r[n].name = strdup(de->d_name);
        r[n].doc = doc;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(r, (size_t)n, sizeof *r, by_name);
    *out = r;
    return n;
}

static void unload(struct rec *r, int n)
{
    for (int i = 0; i < n; i++) {
        free(r[i].name);
        cJSON_Delete(r[i].doc);
    }
    free(r);
}

static const cJSON *get(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static const char *str(const cJSON *v, const char *dflt)
{
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* One line of text for a table cell: control bytes as spaces, at most w
 * bytes, cut on a UTF-8 boundary. */
static void cell(char *out, size_t outlen, const char *s, size_t w)
{
    size_t n = 0;
    for (; s && *s && n + 1 < outlen && n < w; s++)
        out[n++] = ((unsigned char)*s < 0x20) ? ' ' : *s;
    while (n > 0 && s && *s && ((unsigned char)out[n] & 0xC0) == 0x80)
        n--;
    out[n] = '\0';
}

static void summary(const cJSON *doc, char *model, size_t ml, char *prompt, size_t pl)
{
    model[0] = prompt[0] = '\0';
    const cJSON *body = get(doc, "request", "body");
    cJSON *req = cJSON_IsString(body) ? cJSON_Parse(body->valuestring) : NULL;
    cell(model, ml, str(get(req, "model", NULL), "-"), 24);
    const cJSON *msgs = get(req, "messages", NULL);
    if (!msgs)
        msgs = get(req, "input", NULL);
    const char *last = NULL;
    if (cJSON_IsString(msgs))
        last = msgs->valuestring;
    const cJSON *list = cJSON_IsArray(msgs) ? msgs : NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, list)
    {
        const cJSON *c = get(m, "content", NULL);
        if (cJSON_IsString(c) && strcmp(str(get(m, "role", NULL), "user"), "user") == 0)
            last = c->valuestring;
    }
    cell(prompt, pl, last ? last : "", 48);
    cJSON_Delete(req);
}

static int cmd_ls(const char *dir)
{
    struct rec *r;
    int n = load("ls", dir, &r);
    if (n < 0)
        return 1;
    printf("%-44s %-28s %-24s %-6s %-6s %s\n", "RECORDING", "CALL", "MODEL", "STATUS", "KIND",
           "LAST USER MESSAGE");
    for (int i = 0; i < n; i++) {
        char call[128], model[64], prompt[128];
        snprintf(call, sizeof call, "%s %s", str(get(r[i].doc, "request", "method"), "?"),
                 str(get(r[i].doc, "request", "path"), "?"));
        summary(r[i].doc, model, sizeof model, prompt, sizeof prompt);
        const cJSON *resp = get(r[i].doc, "response", NULL);
        const cJSON *st = get(resp, "status", NULL);
        const char *kind = get(resp, "events", NULL) ? "stream"
                           : get(resp, "body_base64", NULL) ? "binary" : "body";
        printf("%-44s %-28s %-24s %-6d %-6s %s\n", r[i].name, call, model,
               cJSON_IsNumber(st) ? (int)st->valuedouble : 0, kind, prompt);
    }
    printf("%d recording%s\n", n, n == 1 ? "" : "s");
    unload(r, n);
    return 0;
}

static void show_one(const struct rec *r)
{
    const cJSON *rq = get(r->doc, "request", NULL), *rs = get(r->doc, "response", NULL);
    printf("== %s\n%s %s (host %s)\n", r->name, str(get(rq, "method", NULL), "?"),
           str(get(rq, "path", NULL), "?"), str(get(rq, "host", NULL), "?"));
    const cJSON *h;
    cJSON_ArrayForEach(h, get(rq, "headers", NULL))
        printf("  %s: %s\n", str(cJSON_GetArrayItem(h, 0), ""), str(cJSON_GetArrayItem(h, 1), ""));
    const cJSON *body = get(rq, "body", NULL);
    cJSON *pj = cJSON_IsString(body) ? cJSON_Parse(body->valuestring) : NULL;
    char *pretty = pj ? cJSON_Print(pj) : NULL;
    printf("request body:\n%s\n", pretty ? pretty : str(body, "(binary)"));
    free(pretty);
    cJSON_Delete(pj);
    const cJSON *st = get(rs, "status", NULL);
    printf("response %d %s\n", cJSON_IsNumber(st) ? (int)st->valuedouble : 0,
           str(get(rs, "reason", NULL), ""));
    cJSON_ArrayForEach(h, get(rs, "headers", NULL))
        printf("  %s: %s\n", str(cJSON_GetArrayItem(h, 0), ""), str(cJSON_GetArrayItem(h, 1), ""));
    const cJSON *ev = get(rs, "events", NULL);
    if (ev) {
        const cJSON *e;
        cJSON_ArrayForEach(e, ev)
        {
            const cJSON *t = get(e, "t_ms", NULL);
            printf("  +%5d ms  %s", cJSON_IsNumber(t) ? (int)t->valuedouble : 0,
                   str(get(e, "data", NULL), "\n"));
        }
    } else {
        body = get(rs, "body", NULL);
        pj = cJSON_IsString(body) ? cJSON_Parse(body->valuestring) : NULL;
        pretty = pj ? cJSON_Print(pj) : NULL;
        printf("response body:\n%s\n",
               pretty ? pretty : cJSON_IsString(body) ? body->valuestring : "(binary, base64 in the file)");
        free(pretty);
        cJSON_Delete(pj);
    }
}

static int cmd_show(const char *dir, const char *which)
{
    struct rec *r;
    int n = load("show", dir, &r);
    if (n < 0)
        return 1;
    int shown = 0;
    for (int i = 0; i < n; i++)
        if (!which || strncmp(r[i].name, which, strlen(which)) == 0 || strstr(r[i].name, which)) {
            show_one(&r[i]);
            shown++;
        }
    unload(r, n);
    if (which && !shown) {
        fprintf(stderr, "xenovia cassette show: no recording named like \"%s\" in %s\n", which, dir);
        return 1;
    }
    return 0;
}

/* The text of a recorded request or response, for comparing. */
static char *text_of(const cJSON *part, size_t *len)
{
    cJSON *copy = cJSON_Duplicate(part, 1);
    char *t = copy ? cJSON_PrintUnformatted(copy) : NULL;
    cJSON_Delete(copy);
    *len = t ? strlen(t) : 0;
    return t;
}

static int compare(const char *what, const char *name, const cJSON *a, const cJSON *b)
{
    size_t al, bl;
    char *x = text_of(a, &al), *y = text_of(b, &bl);
    char path[256];
    struct xv_buf was, now;
    xv_buf_init(&was, 256);
    xv_buf_init(&now, 256);
    int n = xv_cassette_diff_text(x, al, y, bl, path, sizeof path, &was, &now);
    if (n)
        printf("~ %s: %s differs in %d place%s, first at %s: %s -> %s\n", name, what, n,
               n == 1 ? "" : "s", path, was.data ? was.data : "", now.data ? now.data : "");
    xv_buf_free(&was);
    xv_buf_free(&now);
    free(x);
    free(y);
    return n != 0;
}

static int cmd_diff(const char *a, const char *b)
{
    struct rec *ra, *rb;
    int na = load("diff", a, &ra);
    if (na < 0)
        return 2;
    int nb = load("diff", b, &rb);
    if (nb < 0) {
        unload(ra, na);
        return 2;
    }
    int i = 0, j = 0, changes = 0;
    while (i < na || j < nb) {
        int c = i >= na ? 1 : j >= nb ? -1 : strcmp(ra[i].name, rb[j].name);
        if (c < 0) {
            printf("- %s (only in %s)\n", ra[i++].name, a);
            changes++;
        } else if (c > 0) {
            printf("+ %s (only in %s)\n", rb[j++].name, b);
            changes++;
        } else {
            int d = compare("request", ra[i].name, get(ra[i].doc, "request", NULL),
                            get(rb[j].doc, "request", NULL));
            d |= compare("response", ra[i].name, get(ra[i].doc, "response", NULL),
                         get(rb[j].doc, "response", NULL));
            changes += d;
            i++;
            j++;
        }
    }
    printf("%d difference%s\n", changes, changes == 1 ? "" : "s");
    unload(ra, na);
    unload(rb, nb);
    return changes ? 1 : 0;
}

static int cmd_prune(const char *dir, int dry)
{
    char used_path[4096];
    snprintf(used_path, sizeof used_path, "%s/.used", dir);
    size_t len = 0;
    char *used = slurp(used_path, &len);
    if (!used) {
        fprintf(stderr, "xenovia cassette prune: %s has no record of use (%s missing): run the "
                        "suite with the cassette first; nothing deleted\n", dir, used_path);
        return 1;
    }
    struct rec *r;
    int n = load("prune", dir, &r);
    if (n < 0) {
        free(used);
        return 1;
    }
    int gone = 0;
    for (int i = 0; i < n; i++) {
        /* a name counts as used when it is one whole line of .used */
        size_t nl = strlen(r[i].name);
        int hit = 0;
        for (char *p = used; p && *p;) {
            char *eol = strchr(p, '\n');
            size_t l = eol ? (size_t)(eol - p) : strlen(p);
            if (l == nl && memcmp(p, r[i].name, nl) == 0) {
                hit = 1;
                break;
            }
            p = eol ? eol + 1 : NULL;
        }
        if (hit)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, r[i].name);
        printf("%s %s\n", dry ? "would delete" : "deleted", path);
        if (!dry && unlink(path) != 0)
            fprintf(stderr, "xenovia cassette prune: %s: %s\n", path, strerror(errno));
        gone++;
    }
    if (!dry)
        unlink(used_path);
    printf("%d of %d recording%s %s\n", gone, n, n == 1 ? "" : "s", dry ? "unused" : "pruned");
    unload(r, n);
    free(used);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  xenovia cassette ls DIR                 list recordings\n"
               "  xenovia cassette show DIR [NAME]        show a recording (or all) in full\n"
               "  xenovia cassette diff A B               compare two cassettes (exit 1 if they differ)\n"
               "  xenovia cassette prune DIR [--dry-run]  delete recordings no run used since the last prune\n"
               "Recording and replaying: xenovia run --record DIR | --replay DIR [--record-mode MODE] -- CMD\n");
}

int xv_tool_cassette(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "ls") && argc == 3)
        return cmd_ls(argv[2]);
    if (!strcmp(sub, "show") && (argc == 3 || argc == 4))
        return cmd_show(argv[2], argc == 4 ? argv[3] : NULL);
    if (!strcmp(sub, "diff") && argc == 4)
        return cmd_diff(argv[2], argv[3]);
    if (!strcmp(sub, "prune") && (argc == 3 || argc == 4)) {
        int dry = argc == 4 && !strcmp(argv[3], "--dry-run");
        if (argc == 4 && !dry)
            return xv_tool_usage_error("cassette", "prune: unknown option %s", argv[3]);
        return cmd_prune(argv[2], dry);
    }
    usage(stderr);
    return 2;
}
