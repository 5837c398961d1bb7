/*
 * main.c — the `xenovia` CLI: command dispatch, `--help` (which lists
 * every knob: variable, flag, accepted values) and the helpers shared by
 * the commands (knob table and checks, locating libxenovia.so).
 *
 * The knob table below is the one place a knob is named for the CLI; when
 * the agent gains a knob, add a row and both `run` and `--help` know it.
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

/* Kinds, ranges and accepted spellings follow what the agent itself
 * accepts (preload/config.c), so `run` refuses exactly what the agent
 * would have reported and replaced by its default. */
#define T XV_KNOB_TEXT
#define U XV_KNOB_UINT
#define B XV_KNOB_BOOL
#define C XV_KNOB_CHOICE
const struct xv_tool_knob xv_tool_knobs[] = {
    /* flag, variable, metavariable, kind, choices, min, max, help */
    /* Policy (SPEC §5) */
    { "policy", "XENOVIA_POLICY", "PATH", T, NULL, 0, 0,
      ".rego file, or directory of .rego files (+ optional data.json)" },
    { "policy-mode", "XENOVIA_POLICY_MODE", "MODE", C, "enforce|monitor", 0, 0,
      "monitor records decisions without applying them (default enforce)" },
    { "stream-policy", "XENOVIA_STREAM_POLICY", "MODE", C, "observe|buffer", 0, 0,
      "response stage on streams: evaluate at the end, or hold the stream (default observe)" },
    { "fail-mode", "XENOVIA_FAIL_MODE", "MODE", C, "closed|open", 0, 0,
      "request stage when the policy fails: 403 policy_error, or let the call through (default closed)" },
    { "policy-timeout-ms", "XENOVIA_POLICY_TIMEOUT_MS", "MS", U, NULL, 0, 0,
      "bound on one policy evaluation (default 200)" },
    /* Sessions and metadata (SPEC §3, §4) */
    { "session", "XENOVIA_SESSION_ID", "UUID", T, NULL, 0, 0,
      "session id for every call (must be a UUID)" },
    { "session-path", "XENOVIA_SESSION_PATH", "PATH", T, NULL, 0, 0,
      "sent as X-Xenovia-Session-Path" },
    { "property", "XENOVIA_PROPERTIES", "K=V", T, NULL, 0, 0,
      "custom property, repeatable; joined as k=v,k2=v2 with values percent-encoded" },
    { "flow-id", "XENOVIA_FLOW_ID", "ID", T, NULL, 0, 0,
      "sent as X-Xenovia-Trace-Flow-Id (e.g. one per CI job)" },
    { "parent-trace-id", "XENOVIA_PARENT_TRACE_ID", "ID", T, NULL, 0, 0,
      "sent as X-Xenovia-Parent-Trace-Id" },
    { "agent-id", "XENOVIA_AGENT_ID", "ID", T, NULL, 0, 0, "input.agent_id for policies; on traces" },
    { "org-id", "XENOVIA_ORG_ID", "ID", T, NULL, 0, 0, "input.org_id for policies; on traces" },
    /* Which traffic and how (SPEC §2, §3, §8) */
    { "hosts", "XENOVIA_HOSTS", "LIST", T, NULL, 0, 0,
      "comma list of hosts to inspect (*.wildcards, optional :port); default: any host" },
    { "route", "XENOVIA_ROUTE", "RULES", T, NULL, 0, 0,
      "host[:port]=URL[,...]: send inspected calls for host to the gateway URL instead" },
    { "proxy-id", "XENOVIA_PROXY_ID", "ID", T, NULL, 0, 0,
      "Xenovia shorthand: without --route, api.openai.com goes to <runtime>/a/ID/openai" },
    { "runtime-url", "XENOVIA_RUNTIME_URL", "URL", T, NULL, 0, 0,
      "base of the Xenovia runtime for --proxy-id (default https://runtime.xenovia.io)" },
    { "api-key", "XENOVIA_API_KEY", "KEY", T, NULL, 0, 0,
      "the gateway's key: replaces the app's bearer token / api-key on rerouted calls" },
    { "ca-file", "XENOVIA_CA_FILE", "PATH", T, NULL, 0, 0,
      "CA bundle that verifies the gateway's certificate (default: the system CAs)" },
    /* Record and replay (SPEC §8.1, docs/cassette.md) */
    { "record", "XENOVIA_CASSETTE", "DIR", T, NULL, 0, 0,
      "record inspected calls into the cassette DIR (and replay what it holds, per --record-mode)" },
    { "replay", "XENOVIA_CASSETTE", "DIR", T, NULL, 0, 0,
      "replay calls from the cassette DIR; record mode none unless --record-mode says otherwise" },
    { "record-mode", "XENOVIA_RECORD_MODE", "MODE", C, "once|new_episodes|none|all", 0, 0,
      "VCR's modes (default once): once, new_episodes, none, all" },
    { "cassette-ignore", "XENOVIA_CASSETTE_IGNORE", "FIELDS", T, NULL, 0, 0,
      "request body fields left out of matching (default user,metadata,stream_options,seed,"
      "prompt_cache_key,safety_identifier)" },
    { "replay-timing", "XENOVIA_REPLAY_TIMING", "MODE", C, "fast|recorded", 0, 0,
      "fast: answers at once (default); recorded: stream events with their recorded delays" },
    { "stamp", "XENOVIA_STAMP", "on|off", B, NULL, 0, 0,
      "off: never add X-Xenovia-* headers to responses (default on)" },
    { "body-max-bytes", "XENOVIA_BODY_MAX_BYTES", "N", U, NULL, 4096, 1u << 30,
      "bodies kept for parsing; a larger one passes through uninspected (default 33554432)" },
    /* Traces and export (SPEC §6, §7) */
    { "trace-file", "XENOVIA_TRACE_FILE", "PATH", T, NULL, 0, 0,
      "JSON Lines trace file (default $XDG_STATE_HOME/xenovia/traces.jsonl)" },
    { "capture-content", "XENOVIA_CAPTURE_CONTENT", "on|off", B, NULL, 0, 0,
      "off drops messages, response content and tool arguments from traces (default on); "
      "on, given explicitly, also sends them to OTLP" },
    { "capture-max-bytes", "XENOVIA_CAPTURE_MAX_BYTES", "N", U, NULL, 0, 1u << 30,
      "truncate captured text per field (default 16384)" },
    { "export-timeout-ms", "XENOVIA_EXPORT_TIMEOUT_MS", "MS", U, NULL, 0, 600000,
      "longest the exit flush may block the process (default 2000)" },
    { "spool-dir", "XENOVIA_SPOOL_DIR", "DIR", T, NULL, 0, 0,
      "where records that cannot be exported wait for the next process" },
    { "spool-max-mb", "XENOVIA_SPOOL_MAX_MB", "MB", U, NULL, 1, 1u << 20,
      "spool size cap; the oldest files go first beyond it (default 64)" },
    { "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "URL", T, NULL, 0, 0,
      "export spans over OTLP/HTTP to this collector" },
    { "otlp-traces-endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "URL", T, NULL, 0, 0,
      "full URL for traces (overrides --otlp for traces)" },
    { "otlp-protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "P", C, "http/protobuf|http/json", 0, 0,
      "OTLP encoding (default http/protobuf)" },
    { "otlp-headers", "OTEL_EXPORTER_OTLP_HEADERS", "K=V,...", T, NULL, 0, 0,
      "extra headers on OTLP requests" },
    { "otlp-compression", "OTEL_EXPORTER_OTLP_COMPRESSION", "C", C, "gzip|none", 0, 0,
      "OTLP request compression" },
    { "otlp-timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", "MS", U, NULL, 0, 0, "OTLP request timeout" },
    { "otlp-capture-content", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "B", C,
      "true|false", 0, 0, "true: message content in the spans' gen_ai.* content attributes "
      "(default false)" },
    { "service-name", "OTEL_SERVICE_NAME", "NAME", T, NULL, 0, 0, "service.name resource attribute" },
    { "resource-attributes", "OTEL_RESOURCE_ATTRIBUTES", "K=V,...", T, NULL, 0, 0,
      "extra OTLP resource attributes" },
    /* The agent itself */
    { "log-level", "XENOVIA_LOG_LEVEL", "LEVEL", C, "error|warn|info|debug", 0, 0,
      "agent lines on stderr, prefixed xenovia: (default warn)" },
    { "disable", "XENOVIA_DISABLE", "on|off", B, NULL, 0, 0,
      "on: the library stays inert (default off)" },
    { "lib", "XENOVIA_LIB", "PATH", T, NULL, 0, 0,
      "libxenovia.so to preload (default: found next to this binary)" },
    { NULL, NULL, NULL, T, NULL, 0, 0, NULL },
};
#undef T
#undef U
#undef B
#undef C

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

/* Does `value` equal one of the '|'-separated words (case-insensitive)? */
static int one_of(const char *words, const char *value)
{
    size_t vl = strlen(value);
    for (const char *p = words; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && strncasecmp(p, value, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

int xv_tool_knob_check(const struct xv_tool_knob *k, const char *value, const char *cmd)
{
    switch (k->kind) {
    case XV_KNOB_UINT: {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || errno || value[0] == '-' || v < k->min || (k->max && v > k->max)) {
            if (k->max)
                fprintf(stderr, "xenovia %s: --%s (%s) wants a whole number from %llu to %llu, "
                        "got \"%s\"\n", cmd, k->flag, k->env, (unsigned long long)k->min,
                        (unsigned long long)k->max, value);
            else
                fprintf(stderr, "xenovia %s: --%s (%s) wants a non-negative whole number, "
                        "got \"%s\"\n", cmd, k->flag, k->env, value);
            return -1;
        }
        return 0;
    }
    case XV_KNOB_BOOL:
        /* The agent's spellings (preload/config.c env_bool). */
        if (one_of("on|off|1|0|true|false|yes|no", value))
            return 0;
        fprintf(stderr, "xenovia %s: --%s (%s) must be on or off, got \"%s\"\n", cmd, k->flag,
                k->env, value);
        return -1;
    case XV_KNOB_CHOICE:
        if (one_of(k->choices, value))
            return 0;
        fprintf(stderr, "xenovia %s: --%s (%s) must be one of %s, got \"%s\"\n", cmd, k->flag,
                k->env, k->choices, value);
        return -1;
    case XV_KNOB_TEXT:
        break;
    }
    return 0;
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
            "\n"
            "Knobs. Each is an environment variable read by the agent and a flag of\n"
            "`xenovia run` that sets it for CMD (a flag wins over the variable):\n\n");
    for (const struct xv_tool_knob *k = xv_tool_knobs; k->flag; k++) {
        char left[96];
        snprintf(left, sizeof left, "--%s %s", k->flag,
                 k->kind == XV_KNOB_CHOICE ? k->choices : k->arg);
        fprintf(out, "  %-34s %s\n  %-34s   %s\n", left, k->env, "", k->help);
    }
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
