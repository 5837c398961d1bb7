/*
 * cmd_observe.c — `xenovia observe [--pid P]... [--trace-file PATH]
 * [--verbose] [-- CMD ARGS...]`: trace OpenAI calls of programs the agent
 * cannot be preloaded into, with eBPF uprobes (observe/, docs/observe.md).
 * Observe only: no header stamping, no policy, no rerouting, no cassette.
 *
 * Without the observe module built in (XV_BPF), the command says so and
 * exits 2. Single-threaded.
 */
#include "xv_tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#ifdef XV_HAVE_OBSERVE
#include "xv_observe.h"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: xenovia observe [--pid P]... [--trace-file PATH] [--verbose] [-- CMD ARGS...]\n"
            "  Attach eBPF uprobes to OpenSSL (SSL_write/SSL_read, their _ex forms) in the\n"
            "  given processes and/or in CMD, and record their OpenAI calls like the preload\n"
            "  does (records marked capture: \"uprobe\"). Observe only: nothing is stamped,\n"
            "  enforced or rerouted. Needs root (CAP_SYS_ADMIN) and kernel BTF.\n"
            "  Ends when every target exited, or on SIGINT/SIGTERM (detaching; targets keep\n"
            "  running). Exit status: CMD's, else 0; 2 when BPF cannot be used.\n"
            "  Other knobs are read from the environment as by the agent: XENOVIA_HOSTS,\n"
            "  XENOVIA_CAPTURE_CONTENT, XENOVIA_CAPTURE_MAX_BYTES, XENOVIA_TRACE_FILE, OTEL_*;\n"
            "  XENOVIA_OBSERVE_RING_KB sets the ring buffer size (default 65536). docs/observe.md\n");
}

int xv_tool_observe(int argc, char **argv)
{
    pid_t pids[64];
    size_t npids = 0;
    const char *trace_file = NULL;
    int verbose = 0;
    char **cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            cmd = argv + i + 1;
            break;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = 1;
        } else if ((!strcmp(a, "--pid") || !strcmp(a, "--trace-file")) && i + 1 < argc) {
            if (a[2] == 'p') {
                char *end = NULL;
                long v = strtol(argv[++i], &end, 10);
                if (!*argv[i] || *end || v <= 0 || npids == sizeof pids / sizeof pids[0])
                    return xv_tool_usage_error("observe", "--pid wants a process id, got \"%s\"",
                                               argv[i]);
                pids[npids++] = (pid_t)v;
            } else {
                trace_file = argv[++i];
            }
        } else {
            return xv_tool_usage_error("observe", "unknown argument \"%s\" (try --help)", a);
        }
    }
    if (!npids && (!cmd || !cmd[0]))
        return xv_tool_usage_error("observe", "give --pid P and/or -- CMD (try --help)");
#ifdef XV_HAVE_OBSERVE
    struct xv_observe_opts o = { .pids = pids, .npids = npids, .cmd = cmd,
                                 .trace_file = trace_file, .verbose = verbose };
    return xv_observe_run(&o);
#else
    (void)verbose;
    (void)trace_file;
    fprintf(stderr, "xenovia observe: not built into this xenovia (build with libbpf-dev, "
                    "bpftool and clang installed, -DXV_BPF=ON)\n");
    return 2;
#endif
}
