/*
 * preload — the shared object's life: constructor and once-init, the
 * configuration read from the environment (SPEC §10: every bad value gets
 * one stderr line naming the variable and the fix, the host runs on),
 * coverage detection, fork handlers and the exit path.
 */
#ifndef XV_PRELOAD_H
#define XV_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

struct xv_session_props;
struct xv_cassette;

/* Everything the agent reads from the environment, parsed once. Strings
 * are private copies that live as long as the process. */
struct xv_config {
    int disabled;              /* XENOVIA_DISABLE=1 */
    const char *trace_file;    /* XENOVIA_TRACE_FILE (NULL: exporter default) */
    const char *hosts;         /* XENOVIA_HOSTS */
    size_t capture_max;        /* XENOVIA_CAPTURE_MAX_BYTES (16384) */
    int capture_content;       /* XENOVIA_CAPTURE_CONTENT on|off (on) */
    size_t body_max;           /* XENOVIA_BODY_MAX_BYTES (33554432) */
    uint64_t inflate_max;      /* XENOVIA_INFLATE_MAX_BYTES (67108864; 0 = no bound) */
    unsigned inflate_ratio;    /* XENOVIA_INFLATE_MAX_RATIO (200; 0 = no bound) */
    uint64_t export_timeout_ms;/* XENOVIA_EXPORT_TIMEOUT_MS (2000) */
    int log_level;             /* XENOVIA_LOG_LEVEL error|warn|info|debug (warn) */
    const char *agent_id;      /* XENOVIA_AGENT_ID */
    const char *org_id;        /* XENOVIA_ORG_ID */
    int stamp;                 /* XENOVIA_STAMP on|off (on) */
    const char *session_id;    /* XENOVIA_SESSION_ID (NULL when unset or invalid) */
    const char *session_path;  /* XENOVIA_SESSION_PATH */
    const char *flow_id;       /* XENOVIA_FLOW_ID */
    const char *parent_trace_id; /* XENOVIA_PARENT_TRACE_ID */
    struct xv_session_props *props; /* XENOVIA_PROPERTIES (NULL when unset or invalid) */
    const char **inject_lines; /* header lines for every inspected request, NULL-terminated */
    size_t session_max;        /* XENOVIA_SESSION_MAX (10000) */
    const char *policy_path;   /* XENOVIA_POLICY (.rego file or directory) */
    int policy_monitor;        /* XENOVIA_POLICY_MODE=monitor (default enforce) */
    int fail_open;             /* XENOVIA_FAIL_MODE=open (default closed) */
    uint64_t policy_timeout_ms;/* XENOVIA_POLICY_TIMEOUT_MS (200) */
    int stream_buffer;         /* XENOVIA_STREAM_POLICY=buffer (default observe) */
    struct xv_cassette *cassette; /* XENOVIA_CASSETTE opened (SPEC §8.1), or NULL */
};

/* Parse the environment into cfg (defaults first). Reports every bad value
 * on stderr and keeps the default for it. Returns the number of bad values. */
int xv_config_load(struct xv_config *cfg);

/* Is the main program's TLS out of our reach, by the facts read from its
 * file (patch/)? Writes a reason into why and returns 1 when not covered
 * (statically linked OpenSSL, Go ...). */
struct xv_patch_elf;
int xv_coverage_verdict(const char *exe_path, const struct xv_patch_elf *e, char *why, size_t cap);

#endif
