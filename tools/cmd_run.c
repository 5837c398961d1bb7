/*
 * cmd_run.c — `xenovia run [FLAGS] -- CMD…`: turn flags into the agent's
 * environment variables, put libxenovia.so first in LD_PRELOAD, exec CMD.
 *
 * Invariant: nothing is exec'd unless every flag parsed and validated and
 * the library exists — a typo never silently runs the program unguarded.
 * Exit status: CMD's own (we exec), 2 usage error, 1 library not found,
 * 126 CMD found but not executable, 127 CMD not found.
 * Single-threaded.
 */
#include "xv_common.h"
#include "xv_session.h"
#include "xv_tools.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* SPEC §3's property limits, as the agent states them (session/). */
#define XV_RUN_MAX_PROPS XV_SESSION_PROP_MAX
#define XV_RUN_PROP_KEY_MAX XV_SESSION_PROP_KEY_MAX

static void run_help(void)
{
    printf("Usage: xenovia run [FLAGS] [--] CMD [ARGS...]\n"
           "Runs CMD with libxenovia.so preloaded and the agent configured by FLAGS.\n"
           "Every knob is a flag: --flag VALUE or --flag=VALUE. --property K=V may be\n"
           "repeated; it adds to (and per key overrides) the properties already in\n"
           "$XENOVIA_PROPERTIES. --replay DIR is --record DIR with record mode none\n"
           "(unless --record-mode is given).\n"
           "Exit status: CMD's, or 2 (bad flag), 1 (library not found), 126/127 (CMD not\n"
           "executable / not found).\n\nFlags:\n");
    xv_tool_print_knobs(stdout);
}

/* The flags: one per knob (common/xv_knobs.def), plus --replay DIR, which
 * sets XENOVIA_CASSETTE like --record and, unless --record-mode says
 * otherwise, XENOVIA_RECORD_MODE=none. */
static const struct xv_knob *knob_by_flag(const char *name, size_t len, int *replay)
{
    *replay = len == 6 && strncmp(name, "replay", 6) == 0;
    if (*replay)
        return &xv_knobs[XV_KNOB_CASSETTE];
    return xv_knob_by_flag(name, len);
}

static int is_uuid(const char *s)
{
    /* the agent's own check of XENOVIA_SESSION_ID (session/props.c) */
    return xv_session_env_id_check(s, NULL, 0) == 0;
}

/* Property keys become header names (X-Xenovia-Property-<key>): the
 * agent's rule (session/props.c), [A-Za-z0-9_-]. */
static int prop_key_ok(const char *k, size_t n)
{
    if (n == 0 || n > XV_RUN_PROP_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '-' && k[i] != '_')
            return 0;
    return 1;
}

/* Append `v` percent-encoded (RFC 3986 unreserved characters kept, as
 * OTEL_RESOURCE_ATTRIBUTES does) to out; out has room (3 * len + 1). */
static void pct_encode(char *out, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = out + strlen(out);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
}

/* One property, either from a flag ("k=v", value raw) or kept from the
 * inherited variable (entry already encoded). */
struct prop {
    const char *key;     /* borrowed from argv or `inherited` */
    size_t key_len;
    char *encoded;       /* "k=v" as it goes into the variable; owned */
};

/*
 * Build XENOVIA_PROPERTIES: inherited entries whose key no flag names,
 * then the flags in order (a repeated key: the last flag wins). Returns
 * the joined value (caller frees) or NULL after printing the error.
 */
static char *build_properties(char **flags, size_t nflags)
{
    struct prop props[XV_RUN_MAX_PROPS * 2];
    size_t n = 0;
    char *inherited = NULL;
    char *result = NULL;
    int ok = 1;

    /* Validate and encode the flags first: they decide what survives. */
    struct prop fl[XV_RUN_MAX_PROPS + 1];
    size_t nfl = 0;
    for (size_t i = 0; i < nflags && ok; i++) {
        const char *eq = strchr(flags[i], '=');
        size_t klen = eq ? (size_t)(eq - flags[i]) : 0;
        if (!eq || !prop_key_ok(flags[i], klen)) {
            fprintf(stderr, "xenovia run: --property \"%s\": want KEY=VALUE with a key of 1-%d "
                    "characters from [A-Za-z0-9_-]\n", flags[i], XV_RUN_PROP_KEY_MAX);
            ok = 0;
            break;
        }
        if (strncasecmp(flags[i], "policy_", 7) == 0) {
            fprintf(stderr, "xenovia run: --property \"%.*s\": keys starting with policy_ are "
                    "reserved; rename the property\n", (int)klen, flags[i]);
            ok = 0;
            break;
        }
        /* A repeated key replaces the earlier flag. */
        size_t at = nfl;
        for (size_t j = 0; j < nfl; j++)
            if (fl[j].key_len == klen && strncmp(fl[j].key, flags[i], klen) == 0)
                at = j;
        if (at == nfl) {
            if (nfl == XV_RUN_MAX_PROPS) {
                fprintf(stderr, "xenovia run: more than %d --property flags (the runtime "
                        "accepts at most %d properties per request)\n", XV_RUN_MAX_PROPS,
                        XV_RUN_MAX_PROPS);
                ok = 0;
                break;
            }
            nfl++;
        } else {
            free(fl[at].encoded);
        }
        fl[at] = (struct prop){ flags[i], klen, NULL };   /* freed below, even on failure */
        char *enc = malloc(klen + 1 + 3 * strlen(eq + 1) + 1);
        if (!enc) {
            ok = 0;
            break;
        }
        memcpy(enc, flags[i], klen + 1);   /* "key=" */
        enc[klen + 1] = '\0';
        pct_encode(enc, eq + 1);
        /* The rest (value length in characters, UTF-8, control characters)
         * is judged by the agent's own parser, so `run` refuses exactly
         * what the agent would. */
        struct xv_session_props one;
        char why[320];
        if (xv_session_props_parse(enc, &one, why, sizeof why) != 0) {
            fprintf(stderr, "xenovia run: --property %.*s: %s\n", (int)klen, flags[i], why);
            free(enc);
            ok = 0;
            break;
        }
        xv_session_props_free(&one);
        fl[at] = (struct prop){ flags[i], klen, enc };
    }

    /* Inherited entries are passed through as they are (already encoded);
     * the agent validates them, as it would without the CLI. */
    const char *env = getenv("XENOVIA_PROPERTIES");
    if (ok && env && *env) {
        inherited = strdup(env);
        if (!inherited)
            ok = 0;
        for (char *save = NULL, *tok = ok ? strtok_r(inherited, ",", &save) : NULL; tok;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            const char *eq = strchr(tok, '=');
            size_t klen = eq ? (size_t)(eq - tok) : strlen(tok);
            int overridden = 0;
            for (size_t j = 0; j < nfl; j++)
                if (fl[j].key_len == klen && strncmp(fl[j].key, tok, klen) == 0)
                    overridden = 1;
            if (!overridden && n < XV_RUN_MAX_PROPS * 2)
                props[n++] = (struct prop){ tok, klen, NULL };
        }
    }
    if (ok && n + nfl > XV_RUN_MAX_PROPS) {
        fprintf(stderr, "xenovia run: %zu properties (%zu from XENOVIA_PROPERTIES, %zu from "
                "--property); at most %d are allowed\n", n + nfl, n, nfl, XV_RUN_MAX_PROPS);
        ok = 0;
    }
    if (ok) {
        size_t total = 1;
        for (size_t i = 0; i < n; i++)
            total += strlen(props[i].key) + 1;
        for (size_t i = 0; i < nfl; i++)
            total += strlen(fl[i].encoded) + 1;
        result = malloc(total);
        if (result) {
            result[0] = '\0';
            for (size_t i = 0; i < n; i++) {
                if (result[0])
                    strcat(result, ",");
                strcat(result, props[i].key);   /* the whole inherited "k=v" token */
            }
            for (size_t i = 0; i < nfl; i++) {
                if (result[0])
                    strcat(result, ",");
                strcat(result, fl[i].encoded);
            }
        }
    }
    for (size_t i = 0; i < nfl; i++)
        free(fl[i].encoded);
    free(inherited);
    return result;
}

/* LD_PRELOAD with `lib` first and any other libxenovia.so removed (two
 * copies of the agent in one process would hook each other). Entries are
 * separated by ':' or spaces, as ld.so accepts. Caller frees. */
static char *build_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    size_t cap = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    strcpy(out, lib);
    if (!old)
        return out;
    char *copy = strdup(old);
    if (!copy) {
        free(out);
        return NULL;
    }
    for (char *save = NULL, *tok = strtok_r(copy, ": ", &save); tok;
         tok = strtok_r(NULL, ": ", &save)) {
        const char *base = strrchr(tok, '/');
        base = base ? base + 1 : tok;
        if (strcmp(base, "libxenovia.so") == 0)
            continue;
        strcat(out, ":");
        strcat(out, tok);
    }
    free(copy);
    return out;
}

int xv_tool_run(int argc, char **argv)
{
    char **props = calloc((size_t)argc + 1, sizeof *props);
    size_t nprops = 0;
    const char *lib_flag = NULL;
    int i = 1;
    /* Flag values are applied with setenv only after every flag checked. */
    const char **set_env = calloc((size_t)argc + 1, sizeof *set_env);
    const char **set_val = calloc((size_t)argc + 1, sizeof *set_val);
    size_t nset = 0;
    int rc = 0;
    int replay_flag = 0, mode_flag = 0;
    if (!props || !set_env || !set_val) {
        fprintf(stderr, "xenovia run: out of memory\n");
        return 1;
    }

    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')       /* first non-flag word starts CMD */
            break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            run_help();
            goto out;
        }
        if (strncmp(a, "--", 2) != 0) {
            rc = xv_tool_usage_error("run", "unknown flag \"%s\" (flags are --long; see xenovia --help)", a);
            goto out;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int is_replay;
        const struct xv_knob *k = knob_by_flag(name, nlen, &is_replay);
        if (!k) {
            rc = xv_tool_usage_error("run", "unknown flag \"--%.*s\" (see xenovia --help)", (int)nlen, name);
            goto out;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc && strcmp(argv[i + 1], "--") != 0) {
            val = argv[++i];
        } else {
            rc = xv_tool_usage_error("run", "--%.*s needs a value (%s)", (int)nlen, name, xv_knob_arg(k));
            goto out;
        }
        if (xv_tool_knob_check(k, val, "run") < 0) {
            rc = 2;
            goto out;
        }
        if (strcmp(xv_knob_flag(k), "property") == 0) {
            props[nprops++] = (char *)val;
            continue;
        }
        if (strcmp(xv_knob_flag(k), "session") == 0 && !is_uuid(val)) {
            rc = xv_tool_usage_error("run", "--session \"%s\" is not a UUID "
                                     "(8-4-4-4-12 hex digits, e.g. from uuidgen)", val);
            goto out;
        }
        if (strcmp(xv_knob_flag(k), "lib") == 0)
            lib_flag = val;
        if (is_replay)
            replay_flag = 1;
        if (strcmp(xv_knob_flag(k), "record-mode") == 0)
            mode_flag = 1;
        set_env[nset] = xv_knob_env(k);
        set_val[nset++] = val;
    }
    if (i >= argc) {
        rc = xv_tool_usage_error("run", "no command given: xenovia run [FLAGS] -- CMD [ARGS...]");
        goto out;
    }

    const char *why = NULL;
    char *lib = xv_tool_find_lib(lib_flag, &why);
    if (!lib) {
        fprintf(stderr, "xenovia run: %s\n", why);
        rc = 1;
        goto out;
    }
    if (nprops) {
        char *joined = build_properties(props, nprops);
        if (!joined) {
            free(lib);
            rc = 2;
            goto out;
        }
        setenv("XENOVIA_PROPERTIES", joined, 1);
        free(joined);
    }
    for (size_t j = 0; j < nset; j++)
        setenv(set_env[j], set_val[j], 1);
    if (replay_flag && !mode_flag)
        setenv("XENOVIA_RECORD_MODE", "none", 1); /* --replay: never the network */
    char *preload = build_preload(lib);
    free(lib);
    if (!preload) {
        fprintf(stderr, "xenovia run: out of memory\n");
        rc = 1;
        goto out;
    }
    setenv("LD_PRELOAD", preload, 1);
    free(preload);

    /* The agent cannot speak for programs it never gets loaded into or
     * whose traffic it never sees (static, Go, setuid, other arch): say it
     * here, once, and run anyway. A program it is loaded into but whose
     * TLS it cannot hook (node's built-in OpenSSL) is reported by the
     * agent itself (SPEC §2), so not here: no duplicate line. */
    char reason[600];
    if (xv_tool_doctor_quick(argv[i], reason, sizeof reason) == 3)
        fprintf(stderr, "xenovia: not covered: %s: %s (see `xenovia doctor %s`)\n", argv[i],
                reason, argv[i]);

    execvp(argv[i], argv + i);
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
        fprintf(stderr, "xenovia run: %s: command not found\n", argv[i]);
        rc = 127;
    } else {
        fprintf(stderr, "xenovia run: %s: cannot execute: %s\n", argv[i], strerror(err));
        rc = 126;
    }
out:
    free(props);
    free(set_env);
    free(set_val);
    return rc;
}
