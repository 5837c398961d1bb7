/*
 * conformance.c — runs OPA's v1 conformance cases (shared/opa-conformance/
 * v1-cases.jsonl) through xv_policy the way OPA's own runner reads them
 * (README §2): modules named test-N.rego, data as the base document,
 * input_term parsed as a Rego term, strict_error, results compared as a set
 * of rows after converting sets to arrays (sort_bindings sorts arrays).
 *
 * Prints `N passed, N failed` per folder, per stage (from folders.tsv) and
 * for the whole suite; writes the failing cases with reasons to a file; and
 * fails when a stage falls below its floor (tests/policy/floors.txt).
 * Each case runs in a forked child with a time limit, so a crash or a hang
 * costs one case, not the run.
 *
 * Usage: policy_conformance DIR FLOORS FAILURES [FILTER]
 *   exit 0 ok, 1 below a floor, 77 when DIR is missing (ctest SKIP).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xv_policy.h"

#define MAXFOLDERS 400

struct folder {
    char name[96];  /* folder */
    int stage;      /* 1, 2 or 3 */
    int pass, fail; /* counts */
};

static struct folder g_folders[MAXFOLDERS];
static int g_nfolders;

static struct folder *folder_get(const char *name)
{
    for (int i = 0; i < g_nfolders; i++)
        if (!strcmp(g_folders[i].name, name))
            return &g_folders[i];
    if (g_nfolders == MAXFOLDERS)
        return &g_folders[MAXFOLDERS - 1];
    struct folder *f = &g_folders[g_nfolders++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->stage = 3;
    return f;
}

static struct xv_value *field(struct xv_value *o, const char *k)
{
    long i = xv_val_object_find_str(o, k, strlen(k));
    return i < 0 ? NULL : XV_OBJ_VAL(o, i);
}

/* Sets become arrays (canonical order); with sort, arrays are sorted. */
static struct xv_value *normalise(struct xv_value *v, int sort_top)
{
    size_t i;
    struct xv_value *r;
    switch (v->type) {
    case XV_T_SET:
    case XV_T_ARRAY:
        r = xv_val_array_new(XV_ARR_LEN(v));
        for (i = 0; i < XV_ARR_LEN(v); i++) {
            struct xv_value *e = normalise(XV_ARR_ITEM(v, i), 0);
            xv_val_array_push(r, e);
            xv_val_decref(e);
        }
        if (sort_top && XV_ARR_LEN(r) > 1) {
            for (size_t a = 1; a < XV_ARR_LEN(r); a++) {
                struct xv_value *x = XV_ARR_ITEM(r, a);
                size_t b = a;
                while (b > 0 && xv_val_compare(XV_ARR_ITEM(r, b - 1), x) > 0) {
                    XV_ARR_ITEM(r, b) = XV_ARR_ITEM(r, b - 1);
                    b--;
                }
                XV_ARR_ITEM(r, b) = x;
            }
        }
        return r;
    case XV_T_OBJECT:
        r = xv_val_object_new(XV_OBJ_LEN(v));
        for (i = 0; i < XV_OBJ_LEN(v); i++) {
            struct xv_value *k = XV_OBJ_KEY(v, i);
            struct xv_value *nk;
            if (k->type == XV_T_STRING) {
                nk = xv_val_incref(k);
            } else {
                char *t = xv_val_json_dump(k, 0);
                nk = xv_val_cstring(t ? t : "");
                free(t);
            }
            struct xv_value *e = normalise(XV_OBJ_VAL(v, i), 0);
            xv_val_object_set(r, nk, e);
            xv_val_decref(nk);
            xv_val_decref(e);
        }
        return r;
    default:
        return xv_val_incref(v);
    }
}

/* Rows as a sorted, de-duplicated set (each value normalised). */
static struct xv_value *row_set(struct xv_value *rows, int sort)
{
    struct xv_value *s = xv_val_set_new(0);
    for (size_t i = 0; rows && i < XV_ARR_LEN(rows); i++) {
        struct xv_value *row = XV_ARR_ITEM(rows, i);
        struct xv_value *nr = xv_val_object_new(XV_OBJ_LEN(row));
        for (size_t j = 0; j < XV_OBJ_LEN(row); j++) {
            struct xv_value *e = normalise(XV_OBJ_VAL(row, j), sort);
            xv_val_object_set(nr, XV_OBJ_KEY(row, j), e);
            xv_val_decref(e);
        }
        xv_val_set_add(s, nr);
        xv_val_decref(nr);
    }
    return s;
}

/* Run one case; returns 0 pass, 1 fail with reason. */
static int run_case(struct xv_value *c, char *reason, size_t rlen)
{
    struct xv_policy *p = xv_policy_new();
    char err[2048] = "";
    struct xv_value *mods = field(c, "modules");
    int rc;
    for (size_t i = 0; mods && i < XV_ARR_LEN(mods); i++) {
        struct xv_value *m = XV_ARR_ITEM(mods, i);
        char name[32];
        snprintf(name, sizeof name, "test-%zu.rego", i);
        if (xv_policy_add_module(p, name, XV_STR(m), XV_STRLEN(m), XV_REGO_VERSION_V1, err,
                                 sizeof err)) {
            snprintf(reason, rlen, "parse: %s", err);
            xv_policy_free(p);
            return 1;
        }
    }
    struct xv_value *data = field(c, "data");
    if (data)
        xv_policy_set_data(p, data);
    if (xv_policy_compile(p, err, sizeof err)) {
        snprintf(reason, rlen, "compile: %s", err);
        xv_policy_free(p);
        return 1;
    }
    struct xv_value *input = NULL;
    struct xv_value *it = field(c, "input_term");
    if (it) {
        if (xv_policy_parse_term(XV_STR(it), XV_STRLEN(it), &input, err, sizeof err)) {
            snprintf(reason, rlen, "input_term: %s", err);
            xv_policy_free(p);
            return 1;
        }
    } else if (field(c, "input")) {
        input = xv_val_incref(field(c, "input"));
    }
    struct xv_value *strict = field(c, "strict_error");
    struct xv_policy_opts opts = {strict && strict->type == XV_T_BOOL && XV_BOOLV(strict), 0, 0, NULL};
    struct xv_value *rows = NULL;
    struct xv_value *q = field(c, "query");
    rc = xv_policy_query(p, XV_STR(q), input, &opts, &rows, err, sizeof err);
    struct xv_value *wcode = field(c, "want_error_code");
    struct xv_value *werr = field(c, "want_error");
    struct xv_value *wres = field(c, "want_result");
    int fail = 0;
    if (rc == XV_E_PARSE) {
        snprintf(reason, rlen, "query compile: %s", err);
        fail = 1;
    } else if (wcode || werr) {
        if (rc == 0) {
            snprintf(reason, rlen, "expected error, got %s", rows ? xv_val_json_dump(rows, 0) : "?");
            fail = 1;
        } else {
            if (wcode) {
                char pat[80];
                snprintf(pat, sizeof pat, " %s:", XV_STR(wcode));
                if (!strstr(err, pat)) {
                    snprintf(reason, rlen, "want code %s, got: %s", XV_STR(wcode), err);
                    fail = 1;
                }
            }
            if (!fail && werr && !strstr(err, XV_STR(werr))) {
                snprintf(reason, rlen, "want error containing \"%s\", got: %s", XV_STR(werr), err);
                fail = 1;
            }
        }
    } else if (rc) {
        snprintf(reason, rlen, "error: %s", err);
        fail = 1;
    }
    if (!fail && wres && rc == 0) {
        struct xv_value *sb = field(c, "sort_bindings");
        int sort = sb && sb->type == XV_T_BOOL && XV_BOOLV(sb);
        struct xv_value *ign = field(c, "ignore_generated_vars");
        (void)ign;
        struct xv_value *a = row_set(rows, sort), *w = row_set(wres, 0);
        if (xv_val_compare(a, w) != 0) {
            char *as = xv_val_json_dump(a, 0), *ws = xv_val_json_dump(w, 0);
            snprintf(reason, rlen, "want %.900s got %.900s", ws ? ws : "?", as ? as : "?");
            free(as);
            free(ws);
            fail = 1;
        }
        xv_val_decref(a);
        xv_val_decref(w);
    }
    xv_val_decref(rows);
    xv_val_decref(input);
    xv_policy_free(p);
    return fail;
}

static void load_stages(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/folders.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char name[128], stage[16];
        int files, cases;
        if (sscanf(line, "%127s %d %d %15s", name, &files, &cases, stage) == 4)
            folder_get(name)->stage = stage[0] - '0';
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s DIR FLOORS FAILURES [FILTER]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *filter = argc > 4 ? argv[4] : NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/v1-cases.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("SKIP: %s not found (shared/opa-conformance must sit beside the clone)\n", path);
        return 77;
    }
    load_stages(dir);
    FILE *out = fopen(argv[3], "w");
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    int total_pass = 0, total_fail = 0;
    ssize_t n;
    size_t lcap = cap;
    while ((n = getline(&line, &lcap, f)) > 0) {
        struct xv_value *c = NULL;
        char msg[200];
        if (xv_val_json_parse(line, (size_t)n, &c, msg, sizeof msg))
            continue;
        const char *file = XV_STR(field(c, "file"));
        char fold[96] = "";
        const char *s = strchr(file, '/');
        if (s) {
            const char *e = strchr(s + 1, '/');
            snprintf(fold, sizeof fold, "%.*s", e ? (int)(e - s - 1) : 0, s + 1);
        }
        if (filter && !strstr(file, filter) && !strstr(XV_STR(field(c, "note")), filter)) {
            xv_val_decref(c);
            continue;
        }
        struct folder *fo = folder_get(fold);
        int pipefd[2];
        char reason[4096] = "";
        int failed = 1;
        if (pipe(pipefd) == 0) {
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                close(pipefd[0]);
                if (!getenv("XV_CONFORMANCE_VERBOSE"))
                    freopen("/dev/null", "w", stderr);
                alarm(10);
                char r[4096] = "";
                int rc = run_case(c, r, sizeof r);
                if (write(pipefd[1], r, strlen(r)) < 0)
                    _exit(3);
                _exit(rc);
            }
            close(pipefd[1]);
            ssize_t got = 0, k;
            while ((k = read(pipefd[0], reason + got, sizeof reason - 1 - (size_t)got)) > 0)
                got += k;
            reason[got > 0 ? got : 0] = 0;
            close(pipefd[0]);
            int st = 0;
            waitpid(pid, &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                failed = 0;
            else if (WIFSIGNALED(st))
                snprintf(reason, sizeof reason, "crashed/timeout (signal %d)", WTERMSIG(st));
        }
        if (failed) {
            fo->fail++;
            total_fail++;
            if (out)
                fprintf(out, "%s#%lld [%s] %s\n", file,
                        (long long)xv_val_number_get_double(field(c, "index")),
                        XV_STR(field(c, "note")), reason);
        } else {
            fo->pass++;
            total_pass++;
        }
        xv_val_decref(c);
    }
    free(line);
    fclose(f);
    if (out)
        fclose(out);
    int sp[4] = {0}, sf[4] = {0};
    for (int i = 0; i < g_nfolders; i++) {
        struct folder *fo = &g_folders[i];
        if (fo->pass + fo->fail == 0)
            continue;
        printf("folder %-32s stage %d: %d passed, %d failed\n", fo->name, fo->stage, fo->pass,
               fo->fail);
        int st = fo->stage >= 1 && fo->stage <= 3 ? fo->stage : 3;
        sp[st] += fo->pass;
        sf[st] += fo->fail;
    }
    for (int s = 1; s <= 3; s++)
        printf("stage %d: %d passed, %d failed\n", s, sp[s], sf[s]);
    /* floors */
    int below = 0;
    FILE *fl = fopen(argv[2], "r");
    if (fl && !filter) {
        char l[256];
        while (fgets(l, sizeof l, fl)) {
            char what[32];
            int floor;
            if (l[0] == '#' || sscanf(l, "%31s %d", what, &floor) != 2)
                continue;
            int have = -1;
            if (!strcmp(what, "stage1")) have = sp[1];
            else if (!strcmp(what, "stage2")) have = sp[2];
            else if (!strcmp(what, "stage3")) have = sp[3];
            else if (!strcmp(what, "all")) have = total_pass;
            if (have >= 0 && have < floor) {
                printf("BELOW FLOOR: %s has %d passing, floor %d\n", what, have, floor);
                below = 1;
            }
        }
        fclose(fl);
    }
    printf("failures written to %s\n", argv[3]);
    printf("all: %d passed, %d failed\n", total_pass, total_fail);
    return below ? 1 : 0;
}
