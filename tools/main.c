/*
 * main.c — the `xenovia` CLI: command dispatch, `--help` (which lists
 * every knob: variable, flag, accepted values) and the helpers shared by
 * the commands (knob table and checks, locating libxenovia.so).
 *
 * Knobs are declared once, in common/xv_knobs.def (shared with the agent):
 * a new row there is a `run` flag, a `--help` entry and a README row.
 * Single-threaded; nothing here is used by the preloaded library.
 */
#include "xv_tools.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define XV_TOOL_VERSION "0.1.0"

int xv_tool_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "xenovia %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

int xv_tool_knob_check(const struct xv_knob *k, const char *value, const char *cmd)
{
    if (xv_knob_check(k, value, NULL) == 0)
        return 0;
    char want[160];
    xv_knob_expect(k, want, sizeof want);
    if (k->kind == XV_KNOB_LINE)    /* may hold control bytes: not echoed */
        fprintf(stderr, "xenovia %s: --%s (%s) wants %s\n", cmd, xv_knob_flag(k), xv_knob_env(k), want);
    else
        fprintf(stderr, "xenovia %s: --%s (%s) wants %s, got \"%s\"\n", cmd, xv_knob_flag(k), xv_knob_env(k),
                want, value);
    return -1;
}

/* `s` without Markdown's backticks and "**" (for a terminal). */
static void print_plain(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (s[0] == '*' && s[1] == '*')
            s++;
        else if (*s != '`')
            fputc(*s, out);
    }
}

void xv_tool_print_knobs(FILE *out)
{
    for (size_t i = 0; i < XV_KNOB_COUNT; i++) {
        const struct xv_knob *k = &xv_knobs[i];
        char left[96], want[160], def[256];
        snprintf(left, sizeof left, "--%s %s", xv_knob_flag(k), xv_knob_arg(k));
        xv_knob_expect(k, want, sizeof want);
        xv_knob_default(k, def, sizeof def);
        fprintf(out, "  %-34s %s\n  %-34s   ", left, xv_knob_env(k), "");
        print_plain(out, xv_knob_help(k));
        fprintf(out, "\n  %-34s   ", "");
        if (k->kind == XV_KNOB_UINT || k->kind == XV_KNOB_LINE)
            fprintf(out, "%s; ", want);
        fputs("default: ", out);
        print_plain(out, def);
        fputc('\n', out);
    }
}

/* The README's knob table (Markdown), made from the same rows; the test
 * tools_knobs fails when README.md holds anything else. */
static void print_markdown(FILE *out)
{
    fprintf(out, "| variable (`xenovia run` flag) | values | default | meaning |\n"
                 "|---|---|---|---|\n");
    for (size_t i = 0; i < XV_KNOB_COUNT; i++) {
        const struct xv_knob *k = &xv_knobs[i];
        char def[256];
        xv_knob_default(k, def, sizeof def);
        fprintf(out, "| `%s` (`--%s`) | ", xv_knob_env(k), xv_knob_flag(k));
        switch (k->kind) {
        case XV_KNOB_UINT:
            fprintf(out, "%llu–%llu", (unsigned long long)k->min, (unsigned long long)k->max);
            break;
        case XV_KNOB_BOOL:
            fprintf(out, "`on`, `off`");
            break;
        case XV_KNOB_CHOICE:
            for (const char *p = xv_knob_choices(k); *p;) {
                size_t w = strcspn(p, "|");
                fprintf(out, "%s`%.*s`", p == xv_knob_choices(k) ? "" : ", ", (int)w, p);
                p += w + (p[w] == '|');
            }
            break;
        case XV_KNOB_LINE:
            fprintf(out, "%s, ≤ %llu bytes", xv_knob_arg(k), (unsigned long long)k->max);
            break;
        case XV_KNOB_TEXT:
            fprintf(out, "%s", xv_knob_arg(k));
            break;
        }
        fprintf(out, k->kind == XV_KNOB_TEXT || k->kind == XV_KNOB_LINE ? " | %s | %s |\n" : " | `%s` | %s |\n", def, xv_knob_doc(k));
    }
}

char *xv_tool_self_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return strdup(buf[0] ? buf : "/");
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

char *xv_tool_find_lib(const char *override, const char **why)
{
    static char tried[2 * PATH_MAX + 128];
    *why = NULL;
    const char *env = override && *override ? override : getenv("XENOVIA_LIB");
    if (env && *env) {
        char *abs = realpath(env, NULL);
        if (abs && is_file(abs))
            return abs;
        free(abs);
        snprintf(tried, sizeof tried, "%s=%s does not name a file", override ? "--lib" : "XENOVIA_LIB", env);
        *why = tried;
        return NULL;
    }
    char *dir = xv_tool_self_dir();
    if (!dir) {
        *why = "cannot read /proc/self/exe; set XENOVIA_LIB";
        return NULL;
    }
    /* Build tree first (build/tools/xenovia next to build/preload/), then
     * the installed layout (prefix/bin/xenovia, prefix/lib/). */
    static const char *const rel[] = { "/../preload/libxenovia.so", "/../lib/libxenovia.so" };
    char cand[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(cand, sizeof cand, "%s%s", dir, rel[i]);
        char *abs = realpath(cand, NULL);
        if (abs && is_file(abs)) {
            free(dir);
            return abs;
        }
        free(abs);
    }
    snprintf(tried, sizeof tried,
             "libxenovia.so not found (tried %s/../preload/ and %s/../lib/); set XENOVIA_LIB or --lib",
             dir, dir);
    free(dir);
    *why = tried;
    return NULL;
}

static void print_help(FILE *out)
{
    fprintf(out,
            "xenovia " XV_TOOL_VERSION " — govern and trace OpenAI API calls of unmodified programs\n"
            "\n"
            "Usage:\n"
            "  xenovia run [FLAGS] -- CMD [ARGS...]   run CMD with libxenovia.so preloaded\n"
            "  xenovia traces [FILE] [--session ID] [--follow] [--json]\n"
            "                                         show recorded calls by session and turn\n"
            "  xenovia doctor [-- CMD | BINARY]       can a program be covered, and why not\n"
            "  xenovia policy check|eval|test ...     compile, evaluate and test Rego policies\n"
            "  xenovia cassette ls|show|diff|prune ... inspect record/replay cassettes\n"
            "  xenovia observe [--pid P]... [-- CMD]  trace without preloading (eBPF uprobes; root)\n"
            "  xenovia help | --help | --version\n"
            "  xenovia help --markdown                the README's knob table\n"
            "\n"
            "Knobs. Each is an environment variable read by the agent and a flag of\n"
            "`xenovia run` that sets it for CMD (a flag wins over the variable). A bad\n"
            "value is refused by `run` and replaced by its default in the agent:\n\n");
    xv_tool_print_knobs(out);
    fprintf(out,
            "\n"
            "Without --trace-file/--otlp, traces go to $XENOVIA_TRACE_FILE, else\n"
            "$XDG_STATE_HOME/xenovia/traces.jsonl, else ~/.local/state/xenovia/traces.jsonl.\n"
            "Run `xenovia <command> --help` for a command's own options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if ((!strcmp(cmd, "help") || !strcmp(cmd, "--help")) && argc > 2 &&
        !strcmp(argv[2], "--markdown")) {
        print_markdown(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("xenovia " XV_TOOL_VERSION "\n");
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return xv_tool_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "traces"))
        return xv_tool_traces(argc - 1, argv + 1);
    if (!strcmp(cmd, "doctor"))
        return xv_tool_doctor(argc - 1, argv + 1);
    if (!strcmp(cmd, "cassette"))
        return xv_tool_cassette(argc - 1, argv + 1);
    if (!strcmp(cmd, "observe"))
        return xv_tool_observe(argc - 1, argv + 1);
    if (!strcmp(cmd, "policy")) {
#ifdef XV_HAVE_POLICY
        return xv_tool_policy(argc - 1, argv + 1);
#else
        fprintf(stderr, "xenovia policy: not built into this xenovia (the policy module was "
                        "missing at build time)\n");
        return 1;
#endif
    }
    fprintf(stderr, "xenovia: unknown command \"%s\" (try `xenovia --help`)\n", cmd);
    return 2;
}
