/*
 * otlp_spool.c — the disk spool for OTLP requests that could not be sent
 * (SPEC §7: a collector that is down, slow or restarting loses nothing).
 *
 * A spool file is one complete, uncompressed request body, named
 *   <wall-ns, 20 digits>-<pid>-<seq>-<spans>.<otlp-pb|otlp-json>
 * so that name order is age order and the span count is known without
 * reading it. Invariants:
 * - a file appears whole: written as ".tmp-<pid>-<seq>" (0600, O_EXCL,
 *   O_NOFOLLOW) and renamed into place;
 * - a file is sent by at most one process: a sender first renames it to
 *   "<name>.claim-<pid>" (rename is atomic: of two processes racing for a
 *   file, one gets ENOENT) and unlinks it after the collector took it, or
 *   renames it back when it could not be sent. Claims and temp files of
 *   processes that no longer exist are given back / removed by the next
 *   scan;
 * - the spool stays under its byte cap and XV_OTLP_SPOOL_FILES_MAX files:
 *   the oldest are removed beyond it and their spans counted as dropped.
 *
 * The directory is created 0700. No descriptor outlives a call.
 * Thread safety: any thread, any number of processes (see above).
 */
#include "otlp_int.h"
#include "xv_real.h"

#include "exp_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint g_seq;          /* per-process file sequence number */

struct ent {
    char *name;                    /* file name (owned) */
    uint64_t size;                 /* bytes */
};

static int cmp_ent(const void *a, const void *b)
{
    return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void free_ents(struct ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

static int pid_gone(long pid)
{
    return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Ready spool files (not temp, not claimed), sorted oldest first. Stale
 * claims and temp files of dead processes are repaired on the way. */
static int list_ready(const char *dir, struct ent **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(dir);         /* glibc opens it O_CLOEXEC */
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct ent *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    char a[4096], b[4096];
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strncmp(nm, ".tmp-", 5)) {
            if (pid_gone(strtol(nm + 5, NULL, 10))) {
                snprintf(a, sizeof a, "%s/%s", dir, nm);
                unlink(a);
            }
            continue;
        }
        if (nm[0] == '.' || (!strstr(nm, "." XV_OTLP_EXT_PB) && !strstr(nm, "." XV_OTLP_EXT_JSON)))
            continue;
        const char *cl = strstr(nm, ".claim-");
        char back[256];
        if (cl) {
            if (!pid_gone(strtol(cl + 7, NULL, 10)) || (size_t)(cl - nm) >= sizeof back)
                continue;
            snprintf(a, sizeof a, "%s/%s", dir, nm);
            snprintf(back, sizeof back, "%.*s", (int)(cl - nm), nm);
            snprintf(b, sizeof b, "%s/%s", dir, back);
            /* The claimer died: the file is ready again. readdir may or may
             * not show the new name later, so list it now (deduplicated
             * below). */
            if (rename(a, b) < 0)
                continue;
            nm = back;
        }
        if (n == cap) {
            if (cap >= 4 * XV_OTLP_SPOOL_FILES_MAX)
                break;             /* bounded scan */
            size_t nc = cap ? cap * 2 : 64;
            struct ent *nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        struct stat st;
        snprintf(a, sizeof a, "%s/%s", dir, nm);
        if (stat(a, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        v[n].name = strdup(nm);
        if (!v[n].name)
            break;
        v[n].size = (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_ent);
    size_t k = 0;                  /* drop duplicates (see the claim repair above) */
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(v[k - 1].name, v[i].name)) {
            free(v[i].name);
            continue;
        }
        v[k++] = v[i];
    }
    n = k;
    *out = v;
    *nout = n;
    return 0;
}

/* "<ns>-<pid>-<seq>-<spans>.<ext>" → spans and encoding. */
static int parse_name(const char *nm, size_t *nspans, enum xv_exp_otlp_proto *proto)
{
    const char *dot = strstr(nm, ".otlp-");  /* the extension itself has a '-' */
    const char *dash = NULL;
    for (const char *p = nm; dot && p < dot; p++)
        if (*p == '-')
            dash = p;
    if (!dot || !dash)
        return -1;
    *nspans = (size_t)strtoull(dash + 1, NULL, 10);
    if (!strcmp(dot + 1, XV_OTLP_EXT_PB))
        *proto = XV_OTLP_PROTOBUF;
    else if (!strcmp(dot + 1, XV_OTLP_EXT_JSON))
        *proto = XV_OTLP_JSON;
    else
        return -1;
    return 0;
}

/* Remove the oldest files beyond the caps. */
static void enforce_caps(const char *dir, uint64_t max_bytes, uint64_t *dropped_spans)
{
    struct ent *v;
    size_t n;
    if (list_ready(dir, &v, &n) < 0)
        return;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].size;
    char p[4096];
    for (size_t i = 0; i < n && (total > max_bytes || n - i > XV_OTLP_SPOOL_FILES_MAX); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, v[i].name);
        if (unlink(p) == 0) {      /* fails harmlessly when someone claimed it */
            size_t ns = 0;
            enum xv_exp_otlp_proto pr;
            if (parse_name(v[i].name, &ns, &pr) == 0 && dropped_spans)
                *dropped_spans += ns;
        }
        total -= v[i].size;
    }
    free_ents(v, n);
}

static int write_all(int fd, const char *p, size_t n)
{
    return xv_write_all(fd, p, n);   /* common/bytes.c */
}

int xv_exp_otlp_spool_write(const char *dir, enum xv_exp_otlp_proto proto, const char *body, size_t len,
                        size_t nspans, uint64_t max_bytes, uint64_t *dropped_spans)
{
    if (!dir)
        return XV_E_CONFIG;
    if (len > max_bytes)
        return XV_E_LIMIT;
    char tmp[4096], fin[4096];
    unsigned seq = atomic_fetch_add(&g_seq, 1);
    long pid = (long)getpid();
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%u", dir, pid, seq) >= sizeof tmp)
        return XV_E_LIMIT;
    snprintf(fin, sizeof fin, "%s/%020llu-%ld-%u-%zu.%s", dir,
             (unsigned long long)xv_now_wall_ns(), pid, seq, nspans,
             proto == XV_OTLP_JSON ? XV_OTLP_EXT_JSON : XV_OTLP_EXT_PB);
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0 && errno == ENOENT && attempt == 0) {
            int rc = xv_exp_file_mkdirs(tmp);     /* makes `dir`, 0700 */
            if (rc < 0)
                return rc;
        } else if (fd < 0) {
            return -errno;
        }
    }
    if (fd < 0)
        return -ENOENT;
    fchmod(fd, 0600);              /* whatever the umask */
    int rc = write_all(fd, body, len);
    if (XV_REAL(close)(fd) < 0 && rc == 0 && errno != EINTR)
        rc = -errno;
    if (rc == 0 && rename(tmp, fin) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    /* The cap check lists the directory: do it for every 16th file or a
     * big one, so a burst of one-record files (the direct path while the
     * exporter thread is busy) does not rescan the spool each time. The
     * cap may be exceeded by at most 15 small files per process. */
    if (seq % 16 == 0 || len >= ((size_t)64 << 10) || max_bytes < ((uint64_t)16 << 20))
        enforce_caps(dir, max_bytes, dropped_spans);
    return 0;
}

int xv_exp_otlp_spool_claim_many(const char *dir, struct xv_exp_otlp_claim *cl, size_t max)
{
    if (!dir || !max)
        return 0;
    struct ent *v;
    size_t n;
    int rc = list_ready(dir, &v, &n);
    if (rc < 0)
        return rc;
    size_t got = 0;
    for (size_t i = 0; i < n && got < max; i++) {
        struct xv_exp_otlp_claim *c = &cl[got];
        size_t ns;
        enum xv_exp_otlp_proto pr;
        if (parse_name(v[i].name, &ns, &pr) < 0)
            continue;
        if ((size_t)snprintf(c->orig, sizeof c->orig, "%s/%s", dir, v[i].name) >= sizeof c->orig ||
            (size_t)snprintf(c->path, sizeof c->path, "%s.claim-%ld", c->orig,
                             (long)getpid()) >= sizeof c->path)
            continue;
        if (rename(c->orig, c->path) == 0) {
            c->nspans = ns;
            c->proto = pr;
            got++;
        }
        /* ENOENT: another process claimed it (or the cap removed it) first. */
    }
    free_ents(v, n);
    return (int)got;
}

int xv_exp_otlp_spool_claim(const char *dir, struct xv_exp_otlp_claim *cl)
{
    return xv_exp_otlp_spool_claim_many(dir, cl, 1);
}

int xv_exp_otlp_spool_read(const struct xv_exp_otlp_claim *cl, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(cl->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        XV_REAL(close)(fd);
        return XV_E_LIMIT;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        XV_REAL(close)(fd);
        return XV_E_NOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = XV_REAL(read)(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    XV_REAL(close)(fd);
    if (got != n) {
        free(buf);
        return XV_E_IO;
    }
    *out = buf;
    *len = n;
    return 0;
}

void xv_exp_otlp_spool_release(const struct xv_exp_otlp_claim *cl)
{
    rename(cl->path, cl->orig);
}

void xv_exp_otlp_spool_done(const struct xv_exp_otlp_claim *cl)
{
    unlink(cl->path);
}
