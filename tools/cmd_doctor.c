/*
 * cmd_doctor.c — `xenovia doctor [-- CMD … | BINARY]`: can libxenovia see
 * a program's OpenAI traffic, and if not, why not. Without arguments it
 * checks the agent's own setup (library found, trace file writable, knob
 * values valid).
 *
 * The verdict comes from reading the program's ELF file with the agent's
 * own reader and verdict (patch/elf.c, patch/coverage.c: what the agent
 * would say at start, doctor says too), plus what only the file on disk
 * shows (architecture, setuid, static linking, the libraries it needs),
 * never from running it: the dynamic loader must be involved (no static
 * binaries), the program must not do its own system calls (Go), and its
 * TLS must go through the libssl.so.3 the agent hooks — found among the
 * DT_NEEDED libraries, followed transitively the way ld.so searches
 * (RPATH/RUNPATH with $ORIGIN, LD_LIBRARY_PATH, /etc/ld.so.conf, default
 * dirs). Interpreters that load TLS later are special-cased where the file
 * layout says how (CPython's _ssl extension module).
 *
 * Exit status: 0 covered (HTTPS and plain HTTP), 1 partly (plain HTTP
 * only, or cannot tell), 3 not covered, 2 usage error / unreadable file.
 * Single-threaded.
 */
#include "doctor_int.h"
#include "xv_tools.h"

#include "xv_exporter.h"
#include "xv_patch.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum verdict { V_COVERED = 0, V_PARTIAL = 1, V_NOT = 3 };

#define DOC_MAX_LIBS 256      /* libraries visited per program */
#define DOC_MAX_DIRS 64       /* library search directories */

/* TLS implementations we recognise by soname prefix. */
static const struct {
    const char *prefix;   /* soname starts with this */
    const char *name;     /* for humans */
    int hooked;           /* the agent hooks it */
} tls_libs[] = {
    { "libssl.so.3", "OpenSSL 3", 1 },
    { "libssl.so.", "OpenSSL 1.x (the agent hooks OpenSSL 3 only)", 0 },
    { "libgnutls.so.", "GnuTLS", 0 },
    { "libssl3.so", "NSS", 0 },
    { "libnss3.so", "NSS", 0 },
    { "libmbedtls.so.", "mbed TLS", 0 },
    { "libwolfssl.so.", "wolfSSL", 0 },
};
#define N_TLS (sizeof tls_libs / sizeof tls_libs[0])

/* What one analysis found. */
struct report {
    int tls_found[N_TLS];             /* index into tls_libs: found */
    char tls_via[N_TLS][128];         /* which object needed it first */
    char tls_path[N_TLS][PATH_MAX];   /* where it was found ("" if not on disk) */
    char tls_soname[N_TLS][64];       /* the DT_NEEDED name that matched */
    struct xv_patch_elf facts;        /* the program file's TLS facts (patch/coverage.c) */
    char missing[512];                /* needed libraries not found on disk */
    char python_ssl[PATH_MAX];        /* CPython _ssl module examined */
    char vendored[PATH_MAX];          /* a dependency with OpenSSL compiled in ("" none) */
};

/* ---- library search ---- */

struct search {
    char *dirs[DOC_MAX_DIRS];   /* owned */
    size_t ndirs;
    char *seen[DOC_MAX_LIBS];   /* sonames visited, owned */
    size_t nseen;
    uint16_t machine;           /* the program's, to skip foreign libraries */
    int is64;
};

static void add_dir(struct search *s, const char *d, size_t n)
{
    if (!n || s->ndirs >= DOC_MAX_DIRS)
        return;
    for (size_t i = 0; i < s->ndirs; i++)
        if (strlen(s->dirs[i]) == n && !strncmp(s->dirs[i], d, n))
            return;
    s->dirs[s->ndirs] = strndup(d, n);
    if (s->dirs[s->ndirs])
        s->ndirs++;
}

/* "a:b:c" with $ORIGIN (or ${ORIGIN}) replaced by `origin`. */
static void add_path_list(struct search *s, const char *list, const char *origin)
{
    if (!list)
        return;
    char buf[PATH_MAX];
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ":;");
        if (n) {
            char item[PATH_MAX];
            snprintf(item, sizeof item, "%.*s", (int)n, p);
            char *o = strstr(item, "$ORIGIN");
            size_t olen = 7;
            if (!o && (o = strstr(item, "${ORIGIN}")))
                olen = 9;
            if (o && origin) {
                snprintf(buf, sizeof buf, "%.*s%s%s", (int)(o - item), item, origin, o + olen);
                add_dir(s, buf, strlen(buf));
            } else if (!o) {
                add_dir(s, item, strlen(item));
            }
        }
        p += n;
        if (*p)
            p++;
    }
}

static void read_ld_conf(struct search *s, const char *file, int depth)
{
    if (depth > 4)
        return;
    FILE *f = fopen(file, "re");
    if (!f)
        return;
    char line[PATH_MAX];
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        p[strcspn(p, "#\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            p[--n] = '\0';
        if (!n)
            continue;
        if (!strncmp(p, "include", 7) && (p[7] == ' ' || p[7] == '\t')) {
            p += 8;
            while (*p == ' ' || *p == '\t')
                p++;
            glob_t g;
            if (glob(p, 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc; i++)
                    read_ld_conf(s, g.gl_pathv[i], depth + 1);
                globfree(&g);
            }
        } else if (p[0] == '/') {
            add_dir(s, p, n);
        }
    }
    fclose(f);
}

static int seen_before(struct search *s, const char *soname)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (!strcmp(s->seen[i], soname))
            return 1;
    if (s->nseen < DOC_MAX_LIBS && (s->seen[s->nseen] = strdup(soname)))
        s->nseen++;
    return 0;
}

/* Where ld.so would find `soname` for an object whose own dirs come first. */
static int find_lib(const struct search *s, const char *const *first, size_t nfirst,
                    const char *soname, char *out, size_t outn)
{
    if (strchr(soname, '/')) {
        snprintf(out, outn, "%s", soname);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n = pass ? s->ndirs : nfirst;
        for (size_t i = 0; i < n; i++) {
            const char *d = pass ? s->dirs[i] : first[i];
            snprintf(out, outn, "%s/%s", d, soname);
            struct xv_patch_elf_file e;
            if (xv_patch_elf_open(out, &e) != 0)
                continue;
            int match = e.machine == s->machine && e.is64 == s->is64;
            xv_patch_elf_close(&e);
            if (match)
                return 0;
        }
    }
    return -1;
}

static void dirname_of(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    else
        snprintf(out, n, ".");
}

/* Names read from a file may hold any byte: keep them printable. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static void append_list(char *list, size_t n, const char *item)
{
    size_t len = strlen(list);
    snprintf(list + len, n - len, "%s%s", len ? ", " : "", item);
    printable(list + len);
}

/* Note the TLS library `soname` (needed by `via`) if it is one. */
static void note_tls(struct report *r, const char *soname, const char *via, const char *path)
{
    for (size_t t = 0; t < N_TLS; t++) {
        if (strncmp(soname, tls_libs[t].prefix, strlen(tls_libs[t].prefix)) != 0)
            continue;
        if (!r->tls_found[t]) {
            r->tls_found[t] = 1;
            snprintf(r->tls_via[t], sizeof r->tls_via[t], "%s", via);
            snprintf(r->tls_soname[t], sizeof r->tls_soname[t], "%s", soname);
            printable(r->tls_soname[t]);
            printable(r->tls_via[t]);
            snprintf(r->tls_path[t], sizeof r->tls_path[t], "%s", path ? path : "");
            printable(r->tls_path[t]);
        }
        return;   /* first matching prefix only: libssl.so.3 before libssl.so. */
    }
}

/* Breadth-first over DT_NEEDED from the object at `root_path`. */
static void walk_needed(struct search *s, struct report *r, const char *root_path,
                        const char *root_label)
{
    struct item {
        char path[PATH_MAX];
        char label[128];
    };
    struct item *q = calloc(DOC_MAX_LIBS + 1, sizeof *q);
    if (!q)
        return;
    size_t head = 0, tail = 0;
    snprintf(q[tail].path, sizeof q[0].path, "%s", root_path);
    snprintf(q[tail++].label, sizeof q[0].label, "%s", root_label);
    while (head < tail) {
        struct item *it = &q[head++];
        struct xv_patch_elf_file e;
        if (xv_patch_elf_open(it->path, &e) != 0)
            continue;
        if (head > 1 && !r->vendored[0]) {
            /* a library carrying OpenSSL inside (a vendor SDK): the agent
             * patches it at start like a program's own (patch/) */
            struct xv_patch_elf pe;
            if (xv_patch_elf_read(it->path, &pe) == 0 && xv_patch_elf_has_ssl(&pe) &&
                !pe.needs_libssl)
                snprintf(r->vendored, sizeof r->vendored, "%s", it->path);
        }
        char origin[PATH_MAX];
        char real[PATH_MAX];
        dirname_of(realpath(it->path, real) ? real : it->path, origin, sizeof origin);
        /* ld.so order: DT_RPATH (only without DT_RUNPATH), LD_LIBRARY_PATH,
         * DT_RUNPATH, then the cache/default dirs (s->dirs). */
        struct search own = { .machine = s->machine, .is64 = s->is64 };
        if (e.rpath && !e.runpath)
            add_path_list(&own, e.rpath, origin);
        add_path_list(&own, getenv("LD_LIBRARY_PATH"), NULL);
        if (e.runpath)
            add_path_list(&own, e.runpath, origin);
        for (size_t i = 0; i < e.nneeded; i++) {
            const char *so = e.needed[i];
            if (seen_before(s, so))
                continue;
            char found[PATH_MAX];
            int ok = find_lib(s, (const char *const *)own.dirs, own.ndirs, so, found, sizeof found);
            note_tls(r, so, it->label, ok == 0 ? found : NULL);
            if (ok != 0) {
                append_list(r->missing, sizeof r->missing, so);
                continue;
            }
            if (tail < DOC_MAX_LIBS) {
                snprintf(q[tail].path, sizeof q[0].path, "%s", found);
                snprintf(q[tail++].label, sizeof q[0].label, "%s", so);
            }
        }
        for (size_t i = 0; i < own.ndirs; i++)
            free(own.dirs[i]);
        xv_patch_elf_close(&e);
    }
    free(q);
}

/* ---- CPython: TLS arrives with the _ssl extension at `import ssl` ---- */

static void python_ssl_module(const char *real, char *out, size_t n)
{
    out[0] = '\0';
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    if (strncmp(base, "python", 6) != 0)
        return;
    char ver[32] = "3*";
    if (!strncmp(base, "python3.", 8))
        snprintf(ver, sizeof ver, "%s", base + 6);
    char prefix[PATH_MAX], bindir[PATH_MAX];
    dirname_of(real, bindir, sizeof bindir);
    dirname_of(bindir, prefix, sizeof prefix);
    const char *prefixes[] = { prefix, "/usr", "/usr/local" };
    for (size_t i = 0; i < 3; i++) {
        char pat[PATH_MAX];
        snprintf(pat, sizeof pat, "%s/lib/python%s/lib-dynload/_ssl*.so", prefixes[i], ver);
        glob_t g;
        if (glob(pat, 0, NULL, &g) == 0) {
            if (g.gl_pathc)
                snprintf(out, n, "%s", g.gl_pathv[0]);
            globfree(&g);
            if (out[0])
                return;
        }
    }
}

/* ---- resolving what to examine ---- */

/* `name` through PATH as execvp would; a name with '/' is taken as is.
 * Caller frees. */
static char *resolve_cmd(const char *name)
{
    if (strchr(name, '/'))
        return access(name, F_OK) == 0 ? strdup(name) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", name);
        struct stat st;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
            return strdup(buf);
        if (!p[n])
            break;
        p += n + 1;
    }
    /* Not on PATH: a file of that name here (xenovia doctor ./tool). */
    if (access(name, R_OK) == 0)
        return strdup(name);
    return NULL;
}

/* For "#!interp [arg]" scripts, the program that really runs (following
 * `/usr/bin/env NAME`). Caller frees; NULL if not a script. */
static char *shebang_target(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char line[512];
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (!got || strncmp(line, "#!", 2) != 0)
        return NULL;
    char *save = NULL;
    char *interp = strtok_r(line + 2, " \t\r\n", &save);
    if (!interp)
        return NULL;
    const char *base = strrchr(interp, '/');
    base = base ? base + 1 : interp;
    if (!strcmp(base, "env")) {
        char *arg;
        while ((arg = strtok_r(NULL, " \t\r\n", &save)))
            if (arg[0] != '-' && !strchr(arg, '='))
                return resolve_cmd(arg);
        return NULL;
    }
    return strdup(interp);
}

static void print_verdict(enum verdict v, const char *why)
{
    static const char *const word[] = { "covered", "partly covered", "", "NOT covered" };
    printf("  verdict: %s — %s\n", word[v], why);
}

/*
 * The verdicts that need only the program file itself (no library walk):
 * wrong architecture, secure-execution, Go, no dynamic loader, TLS compiled
 * in. Returns the verdict with `why` filled, or -1 when the dependencies
 * have to decide.
 */
static int decide_from_program(const char *path, const struct xv_patch_elf_file *e,
                               const struct report *r, char *why, size_t n, int quick)
{
    char mbuf[32], hbuf[32];
    const char *mine = xv_patch_elf_machine_name(e->machine, mbuf, sizeof mbuf);
    /* The agent's own architecture: it is built like this binary. */
    struct xv_patch_elf_file self;
    int self_ok = xv_patch_elf_open("/proc/self/exe", &self) == 0;
    int arch_ok = !self_ok || (self.machine == e->machine && self.is64 == e->is64);
    const char *host = self_ok ? xv_patch_elf_machine_name(self.machine, hbuf, sizeof hbuf) : "?";
    int host64 = self_ok ? self.is64 : 1;
    if (self_ok)
        xv_patch_elf_close(&self);
    struct stat st;
    int secure = stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID));
    int fcaps = getxattr(path, "security.capability", NULL, 0) > 0;

    if (!arch_ok) {
        snprintf(why, n, "built for %d-bit %s; libxenovia.so is %d-bit %s (ld.so will ignore it)",
                 e->is64 ? 64 : 32, mine, host64 ? 64 : 32, host);
        return V_NOT;
    }
    if (secure || fcaps) {
        snprintf(why, n, "%s: the loader runs it in secure-execution mode and the agent "
                 "stays inert (by design)", fcaps ? "has file capabilities" : "setuid/setgid");
        return V_NOT;
    }
    const struct xv_patch_elf *f = &r->facts;
    int own_tls = xv_patch_elf_has_ssl(f) || f->openssl_marker || f->boringssl || f->rustls ||
                  f->other_tls;
    if (!e->has_interp && (e->type == 2 || !e->has_dynamic)) {
        snprintf(why, n, "statically linked: no dynamic loader runs, so LD_PRELOAD is "
                 "ignored entirely%s", own_tls ? " (it also carries its own TLS library)" : "");
        return V_NOT;
    }
    if (!e->has_interp && e->pie) {
        snprintf(why, n, "static-pie: no dynamic loader runs, so LD_PRELOAD is ignored");
        return V_NOT;
    }
    /* Go, and TLS compiled in: the agent's own verdict (patch/coverage.c),
     * with the patch planner's dry run standing in for the patching the
     * agent would do at start. */
    char pw[400] = "";
    if (quick) {
        /* `xenovia run` wants "not covered at all" only: no dry run (it
         * prints, and loads the decoder) */
        return xv_patch_coverage(f, 0, "", why, n) == XV_PATCH_NOT_COVERED ? V_NOT : -1;
    }
    int patched = xv_patch_elf_has_ssl(f) && !f->needs_libssl && !f->go &&
                  xv_tool_doctor_patch(path, pw, sizeof pw);
    int v = xv_patch_coverage(f, patched, pw, why, n);
    if (v == XV_PATCH_NOT_COVERED)
        return V_NOT;
    if (v == XV_PATCH_PARTLY)
        return V_PARTIAL;
    if (v == XV_PATCH_COVERED)
        return V_COVERED;
    return -1;
}

/* The program a command name runs: resolved on PATH, #! followed (each
 * hop printed when `show`). Caller frees; NULL when not found. */
static char *program_of(const char *what, int show)
{
    char *path = resolve_cmd(what);
    for (int depth = 0; path && depth < 4; depth++) {
        char *next = shebang_target(path);
        if (!next)
            break;
        if (show)
            printf("  script: runs %s\n", next);
        free(path);
        path = next;
    }
    return path;
}

int xv_tool_doctor_quick(const char *cmd, char *why, size_t n)
{
    char *path = program_of(cmd, 0);
    if (!path)
        return 0;
    struct xv_patch_elf_file e;
    int v = -1;
    if (xv_patch_elf_open(path, &e) == 0) {
        /* The agent's facts (no whole-file byte scan: cheap enough for
         * every `xenovia run`, as they are for every agent start). */
        struct report r;
        memset(&r, 0, sizeof r);
        xv_patch_elf_facts(&e, &r.facts);
        v = decide_from_program(path, &e, &r, why, n, 1);
        xv_patch_elf_close(&e);
    }
    free(path);
    return v < 0 ? 0 : v;
}

/* Examine one program file; prints the report and returns the verdict. */
static int examine(const char *what)
{
    char *resolved = resolve_cmd(what);
    if (!resolved) {
        fprintf(stderr, "xenovia doctor: %s: not found (not a file, not on PATH)\n", what);
        return 2;
    }
    printf("%s", what);
    if (strcmp(resolved, what))
        printf(" (%s)", resolved);
    putchar('\n');
    free(resolved);
    /* Scripts: the interpreter is what the agent lives in. */
    char *path = program_of(what, 1);
    if (!path) {
        printf("  interpreter not found\n");
        print_verdict(V_PARTIAL, "cannot tell: the #! interpreter is not on PATH");
        return V_PARTIAL;
    }

    struct xv_patch_elf_file e;
    int rc = xv_patch_elf_open(path, &e);
    if (rc == -ENOEXEC) {
        printf("  not an ELF program\n");
        print_verdict(V_PARTIAL, "cannot tell: doctor reads ELF executables and #! scripts only");
        free(path);
        return V_PARTIAL;
    }
    if (rc < 0) {
        fprintf(stderr, "xenovia doctor: %s: %s\n", path, strerror(-rc));
        free(path);
        return 2;
    }
    char mbuf[32];
    printf("  ELF %d-bit %s %s, %s\n", e.is64 ? 64 : 32,
           xv_patch_elf_machine_name(e.machine, mbuf, sizeof mbuf),
           e.type == 2 ? "executable" : e.has_interp || e.pie ? "PIE executable" : "shared object",
           e.has_interp ? "dynamically linked" : e.has_dynamic ? "static-pie / no loader" : "statically linked");

    struct report r;
    memset(&r, 0, sizeof r);
    xv_patch_elf_facts(&e, &r.facts);
    char why[600];
    int early = decide_from_program(path, &e, &r, why, sizeof why, 0);
    enum verdict v;
    if (early == V_NOT) {
        v = V_NOT;
    } else {
        struct search s = { .machine = e.machine, .is64 = e.is64 };
        read_ld_conf(&s, "/etc/ld.so.conf", 0);
        static const char *const defaults[] = { "/lib64", "/usr/lib64", "/lib", "/usr/lib" };
        for (size_t i = 0; i < 4; i++)
            add_dir(&s, defaults[i], strlen(defaults[i]));
        walk_needed(&s, &r, path, "the program");
        char real[PATH_MAX];
        python_ssl_module(realpath(path, real) ? real : path, r.python_ssl, sizeof r.python_ssl);
        if (r.python_ssl[0] && !r.tls_found[0])
            walk_needed(&s, &r, r.python_ssl, "CPython's _ssl module (loaded at `import ssl`)");
        for (size_t i = 0; i < s.ndirs; i++)
            free(s.dirs[i]);
        for (size_t i = 0; i < s.nseen; i++)
            free(s.seen[i]);

        for (size_t t = 0; t < N_TLS; t++)
            if (r.tls_found[t])
                printf("  TLS: %s — %s, needed by %s%s%s\n", r.tls_soname[t], tls_libs[t].name,
                       r.tls_via[t], r.tls_path[t][0] ? ", at " : " (not found on disk)",
                       r.tls_path[t]);
        if (r.missing[0])
            printf("  libraries not found on disk: %s\n", r.missing);

        int other = 0;
        for (size_t t = 1; t < N_TLS; t++)
            other |= r.tls_found[t];
        if (early == V_PARTIAL || early == V_COVERED) {
            v = early;       /* TLS compiled in: `why` already says so */
        } else if (!r.tls_found[0] && r.vendored[0]) {
            char pw[400];
            printf("  TLS: OpenSSL compiled into %s\n", r.vendored);
            if (xv_tool_doctor_patch(r.vendored, pw, sizeof pw)) {
                v = V_COVERED;
                snprintf(why, sizeof why, "OpenSSL compiled into a library it loads; entry points "
                         "patched at start (%s)", pw);
            } else {
                v = V_PARTIAL;
                snprintf(why, sizeof why, "OpenSSL compiled into a library it loads, but its entry "
                         "points cannot be patched safely (%s): HTTPS is not covered", pw);
            }
        } else if (r.tls_found[0]) {
            v = V_COVERED;
            snprintf(why, sizeof why, "HTTPS through libssl.so.3 (OpenSSL 3) and plain HTTP%s",
                     other ? "; calls made through the other TLS library listed are not" : "");
        } else {
            v = V_PARTIAL;
            snprintf(why, sizeof why, "%s",
                     other ? "it uses a TLS library the agent does not hook: plain HTTP only"
                           : "no TLS library linked: plain HTTP is covered; HTTPS only if the "
                             "program loads libssl.so.3 at run time (dlopen)");
        }
    }
    print_verdict(v, why);
    if (v != V_COVERED && (xv_patch_elf_has_ssl(&r.facts) || r.tls_found[0]))   /* OpenSSL found by symbol */
        printf("  observe: `xenovia observe -- CMD` or `--pid P` (eBPF uprobes, root; records "
               "only, no stamping or policy) can record its HTTPS calls\n");
    xv_patch_elf_close(&e);
    free(path);
    return v;
}

/* ---- without arguments: the agent's own setup ---- */

static int check_setup(void)
{
    int bad = 0;
    const char *why = NULL;
    char *lib = xv_tool_find_lib(NULL, &why);
    if (lib)
        printf("library:     %s\n", lib);
    else
        printf("library:     NOT FOUND — %s\n", why);
    bad |= !lib;
    if (lib) {
        /* The Rego engine is a private object next to the library, loaded
         * only when a policy is set (issue 9). */
        char eng[PATH_MAX];
        const char *slash = strrchr(lib, '/');
        int dl = slash ? (int)(slash - lib) : 1;
        snprintf(eng, sizeof eng, "%.*s/libxenovia-policy.so", dl, slash ? lib : ".");
        const char *pol = getenv("XENOVIA_POLICY");
        int have = access(eng, R_OK) == 0;
        printf("engine:      %s%s\n", eng,
               have ? "" : (pol && *pol) ? " (NOT FOUND: policies cannot load)"
                                        : " (not found; needed only with XENOVIA_POLICY)");
        bad |= !have && pol && *pol;
    }
    free(lib);

    char *trace = xv_exp_default_path(NULL);
    if (!trace) {
        printf("trace file:  NONE — HOME is unknown; set XENOVIA_TRACE_FILE\n");
        bad = 1;
    } else {
        char dir[PATH_MAX];
        dirname_of(trace, dir, sizeof dir);
        /* Nearest existing ancestor decides whether the dirs can be made. */
        char probe[PATH_MAX];
        snprintf(probe, sizeof probe, "%s", dir);
        while (access(probe, F_OK) != 0 && strcmp(probe, "/") && strcmp(probe, ".")) {
            char up[PATH_MAX];
            dirname_of(probe, up, sizeof up);
            snprintf(probe, sizeof probe, "%s", up);
        }
        if (access(trace, F_OK) == 0)
            printf("trace file:  %s (%s)\n", trace, access(trace, W_OK) == 0 ? "writable" : "NOT writable");
        else if (access(probe, W_OK) == 0)
            printf("trace file:  %s (will be created, directories mode 0700)\n", trace);
        else
            printf("trace file:  %s (NOT creatable: %s is not writable)\n", trace, probe);
        bad |= access(trace, F_OK) == 0 ? access(trace, W_OK) != 0 : access(probe, W_OK) != 0;
        free(trace);
    }
    const char *otlp = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if (!otlp || !*otlp)
        otlp = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    printf("OTLP export: %s\n", otlp && *otlp ? otlp : "off (no OTEL_EXPORTER_OTLP_ENDPOINT)");
    const char *pol = getenv("XENOVIA_POLICY");
    if (pol && *pol) {
        struct stat st;
        int ok = stat(pol, &st) == 0;
        printf("policy:      %s%s\n", pol, ok ? "" : " (NOT FOUND)");
        bad |= !ok;
    } else {
        printf("policy:      none (XENOVIA_POLICY unset)\n");
    }
    printf("settings:\n");
    int any = 0;
    for (size_t i = 0; i < XV_KNOB_COUNT; i++) {
        const struct xv_knob *k = &xv_knobs[i];
        const char *v = getenv(xv_knob_env(k));
        if (!v)
            continue;
        any = 1;
        /* credentials: the gateway key, OTLP headers (Authorization) */
        int secret = strstr(xv_knob_env(k), "API_KEY") || strstr(xv_knob_env(k), "_HEADERS");
        printf("  %s=%s\n", xv_knob_env(k), secret ? "(set, hidden)" : v);
        if (xv_tool_knob_check(k, v, "doctor") < 0)
            bad = 1;
    }
    if (!any)
        printf("  (no XENOVIA_* or OTEL_* variables set)\n");
    return bad ? 1 : 0;
}

int xv_tool_doctor(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: xenovia doctor [-- CMD [ARGS...] | BINARY...]\n"
               "Says whether libxenovia can see a program's OpenAI traffic, and why not.\n"
               "Without arguments, checks the agent's own setup.\n"
               "Exit: 0 covered, 1 partly (plain HTTP only / cannot tell), 3 not covered,\n"
               "2 usage error or unreadable file.\n");
        return 0;
    }
    if (argc < 2)
        return check_setup();
    if (!strcmp(argv[1], "--")) {
        if (argc < 3)
            return xv_tool_usage_error("doctor", "nothing after --: xenovia doctor -- CMD [ARGS...]");
        /* `env VAR=x prog`: the program env runs is the one that matters. */
        int i = 2;
        const char *base = strrchr(argv[i], '/');
        if (!strcmp(base ? base + 1 : argv[i], "env"))
            for (i++; i < argc && (argv[i][0] == '-' || strchr(argv[i], '=')); i++) {
            }
        if (i >= argc)
            return xv_tool_usage_error("doctor", "no program after env");
        return examine(argv[i]);
    }
    int worst = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            return xv_tool_usage_error("doctor", "unknown flag \"%s\" (see xenovia doctor --help)", argv[i]);
        int v = examine(argv[i]);
        if (v > worst)
            worst = v;
        if (i + 1 < argc)
            putchar('\n');
    }
    return worst;
}
