/*
 * config.c — environment variables into struct xv_config (SPEC §10).
 * Runs once, inside once-init, before any hook is active; may allocate.
 */
#include "xv_preload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_common.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static const char *env_copy(const char *name)
{
    const char *v = env(name);
    return v ? strdup(v) : NULL;
}

/* Unsigned number with an upper bound; bad → default and one line. */
static int env_size(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = env(name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || n < min || n > max) {
        xv_log(XV_LOG_ERROR, "%s=%s is not a number between %llu and %llu; using %llu",
               name, v, (unsigned long long)min, (unsigned long long)max,
               (unsigned long long)def);
        return 1;
    }
    *out = n;
    return 0;
}

/* on/off switch; bad → default and one line. */
static int env_bool(const char *name, int def, int *out)
{
    const char *v = env(name);
    *out = def;
    if (!v)
        return 0;
    if (!strcasecmp(v, "on") || !strcasecmp(v, "1") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "off") || !strcasecmp(v, "0") || !strcasecmp(v, "false") ||
        !strcasecmp(v, "no")) {
        *out = 0;
        return 0;
    }
    xv_log(XV_LOG_ERROR, "%s=%s: expected on or off; using %s", name, v, def ? "on" : "off");
    return 1;
}

int xv_config_load(struct xv_config *cfg)
{
    int bad = 0;
    uint64_t n;
    memset(cfg, 0, sizeof *cfg);

    const char *lvl = env("XENOVIA_LOG_LEVEL");
    cfg->log_level = XV_LOG_WARN;
    if (lvl) {
        static const char *names[] = { "error", "warn", "info", "debug" };
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(lvl, names[i]))
                found = i;
        if (found < 0) {
            xv_log(XV_LOG_ERROR, "XENOVIA_LOG_LEVEL=%s: expected error, warn, info or debug; using warn", lvl);
            bad++;
        } else {
            cfg->log_level = found;
        }
    }
    xv_log_set_level(cfg->log_level);

    bad += env_bool("XENOVIA_DISABLE", 0, &cfg->disabled);
    cfg->trace_file = env_copy("XENOVIA_TRACE_FILE");
    cfg->hosts = env_copy("XENOVIA_HOSTS");
    bad += env_size("XENOVIA_CAPTURE_MAX_BYTES", 16384, 0, 1u << 30, &n);
    cfg->capture_max = (size_t)n;
    bad += env_bool("XENOVIA_CAPTURE_CONTENT", 1, &cfg->capture_content);
    bad += env_size("XENOVIA_BODY_MAX_BYTES", 32u << 20, 4096, 1u << 30, &n);
    cfg->body_max = (size_t)n;
    bad += env_size("XENOVIA_EXPORT_TIMEOUT_MS", 2000, 0, 600000, &n);
    cfg->export_timeout_ms = n;
    cfg->agent_id = env_copy("XENOVIA_AGENT_ID");
    cfg->org_id = env_copy("XENOVIA_ORG_ID");
    bad += env_bool("XENOVIA_STAMP", 1, &cfg->stamp);
    return bad;
}
