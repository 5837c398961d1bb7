/*
 * cmd_traces.c — `xenovia traces [FILE] [--session ID] [--follow] [--json]`:
 * read the JSON Lines trace file and show the calls.
 *
 * Default (table): every record is read, grouped by session (sessions in
 * order of their first record), ordered by turn inside a session (file
 * order breaks ties), and printed as one table per session with column
 * widths fitted to the content. --json prints the selected records as one
 * JSON array (file order). --follow prints a flat table (or, with --json,
 * one record per line) and keeps reading appended lines until interrupted,
 * following truncation and rotation of the file.
 *
 * Lines that are not a JSON object are skipped and counted in the footer
 * (stderr with --json, so stdout stays valid JSON); blank lines are
 * ignored. A line longer than XV_TRACES_LINE_MAX counts as malformed.
 * Single-threaded.
 */
#include "xv_tools.h"

#include "xv_exporter.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XV_TRACES_LINE_MAX ((size_t)64 << 20)   /* longest line we parse */
#define XV_TRACES_POLL_MS 200                   /* --follow poll interval */
#define XV_TRACES_TOOLS_MAX 40                  /* tool-names cell width cap */

/* Set by SIGINT/SIGTERM during --follow: stop and print the footer. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- reading lines ---- */

/* Splits a file into lines; keeps a partial last line until its newline
 * arrives (a writer may be in the middle of it while we --follow). */
struct line_reader {
    int fd;            /* the trace file, O_RDONLY|O_CLOEXEC */
    char *buf;         /* bytes read, not yet returned; owned */
    size_t len;        /* bytes in buf */
    size_t cap;        /* allocated size of buf */
    size_t start;      /* first unreturned byte */
    int skipping;      /* discarding the rest of an over-long line */
    off_t offset;      /* bytes consumed from the file (for truncation checks) */
};

/* Next complete line (NUL-terminated, newline stripped) or NULL when no
 * complete line is buffered and nothing more can be read now. *too_long
 * is set when an over-long line was dropped. Borrowed until the next call. */
static char *lr_next(struct line_reader *r, int at_eof_final, int *too_long, size_t *len)
{
    for (;;) {
        char *nl = r->buf ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
        if (nl) {
            char *line = r->buf + r->start;
            *nl = '\0';
            r->start = (size_t)(nl - r->buf) + 1;
            if (r->skipping) {           /* tail of a dropped line */
                r->skipping = 0;
                continue;
            }
            *len = (size_t)(nl - line);
            return line;
        }
        /* Compact, then read more. */
        if (r->start) {
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        if (r->len >= XV_TRACES_LINE_MAX) {
            r->len = 0;
            if (!r->skipping)
                *too_long = 1;
            r->skipping = 1;
        }
        if (r->cap - r->len < 65536) {
            size_t ncap = r->cap ? r->cap * 2 : 131072;
            char *nb = realloc(r->buf, ncap);
            if (!nb)
                return NULL;
            r->buf = nb;
            r->cap = ncap;
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
        if (n < 0 && errno == EINTR && !g_stop)
            continue;
        if (n <= 0) {
            /* End of file: a last line without newline counts only when
             * nobody can still be writing it (not following). */
            if (at_eof_final && r->len && !r->skipping) {
                r->buf[r->len] = '\0';
                *len = r->len;
                r->len = 0;
                r->start = 0;
                return r->buf;
            }
            return NULL;
        }
        r->offset += n;
        r->len += (size_t)n;
    }
}

/* ---- record fields ---- */

static const char *str_of(const cJSON *rec, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* A number as text: integers without decimals, others with one (two below 10); "-" when
 * absent or not a number (absent tokens are not zero: SPEC §6). */
static void num_cell(char *out, size_t n, const cJSON *rec, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    if (!cJSON_IsNumber(v)) {
        snprintf(out, n, "-");
        return;
    }
    double d = v->valuedouble;
    if (d == (double)(long long)d)
        snprintf(out, n, "%lld", (long long)d);
    else if (d < 10 && d > -10)
        snprintf(out, n, "%.2f", d);   /* loopback latencies are sub-ms */
    else
        snprintf(out, n, "%.1f", d);
}

/* "YYYY-MM-DD HH:MM:SS" from an RFC 3339 string (as written, no zone
 * conversion) or from epoch seconds/milliseconds. */
static void time_cell(char *out, size_t n, const cJSON *rec)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "start_time");
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (strlen(s) >= 19 && (s[10] == 'T' || s[10] == ' ' || s[10] == 't'))
            snprintf(out, n, "%.10s %.8s", s, s + 11);
        else
            snprintf(out, n, "%s", s[0] ? s : "-");
        return;
    }
    if (cJSON_IsNumber(v) && v->valuedouble > 0) {
        double d = v->valuedouble;
        time_t t = (time_t)(d > 1e12 ? d / 1000 : d);
        struct tm tm;
        if (gmtime_r(&t, &tm)) {
            strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
            return;
        }
    }
    snprintf(out, n, "-");
}

static void tools_cell(char *out, size_t n, const cJSON *rec)
{
    out[0] = '\0';
    const char *step = str_of(rec, "tool_name");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(rec, "tool_calls");
    size_t len = 0;
    if (step) {
        snprintf(out, n, "%s", step);
        len = strlen(out);
    } else if (cJSON_IsArray(calls)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            const char *name = str_of(c, "name");
            if (!name) {   /* OpenAI wire shape: {function: {name}} */
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
                name = str_of(fn, "name");
            }
            int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", name ? name : "?");
            if (w < 0 || (size_t)w >= n - len) {
                len = n - 1;
                break;
            }
            len += (size_t)w;
        }
    }
    if (len > XV_TRACES_TOOLS_MAX && n > XV_TRACES_TOOLS_MAX) {
        strcpy(out + XV_TRACES_TOOLS_MAX - 3, "...");
        len = XV_TRACES_TOOLS_MAX;
    }
    if (!len)
        snprintf(out, n, "-");
}

/* ---- table ---- */

enum { C_SESSION, C_TURN, C_TIME, C_MODEL, C_TYPE, C_STREAM, C_STATUS, C_IN, C_OUT,
       C_LAT, C_TTFT, C_POLICY, C_TOOLS, C_TRACE, C_COUNT };

static const char *const col_title[C_COUNT] = {
    "SESSION", "TURN", "TIME", "MODEL", "TYPE", "STREAM", "STATUS", "IN", "OUT",
    "LAT_MS", "TTFT_MS", "POLICY", "TOOLS", "TRACE",
};
/* Right-aligned (numeric) columns. */
static const int col_right[C_COUNT] = { 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 };

struct row {
    char cell[C_COUNT][96];   /* printable cells */
};

static void make_row(struct row *r, const cJSON *rec)
{
    const char *sid = str_of(rec, "session_id");
    snprintf(r->cell[C_SESSION], sizeof r->cell[0], "%.8s", sid ? sid : "-");
    num_cell(r->cell[C_TURN], sizeof r->cell[0], rec, "session_turn");
    time_cell(r->cell[C_TIME], sizeof r->cell[0], rec);
    const char *model = str_of(rec, "model");
    if (!model)
        model = str_of(rec, "response_model");
    snprintf(r->cell[C_MODEL], sizeof r->cell[0], "%s", model ? model : "-");
    const char *type = str_of(rec, "request_type");
    const char *step = str_of(rec, "step_type");
    if (step)   /* a tool step: marked as a child of the call above it */
        snprintf(r->cell[C_TYPE], sizeof r->cell[0], "> %s", step);
    else
        snprintf(r->cell[C_TYPE], sizeof r->cell[0], "%s", type ? type : "-");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "stream");
    snprintf(r->cell[C_STREAM], sizeof r->cell[0], "%s",
             cJSON_IsBool(st) ? (cJSON_IsTrue(st) ? "yes" : "no") : "-");
    /* The status the app read; "(agent)" when the agent answered itself,
     * "(upNNN)" when it replaced an upstream answer of another status. */
    num_cell(r->cell[C_STATUS], sizeof r->cell[0], rec, "status_code");
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(rec, "upstream_status_code");
    size_t sl = strlen(r->cell[C_STATUS]);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "synthetic_response")))
        snprintf(r->cell[C_STATUS] + sl, sizeof r->cell[0] - sl, "(agent)");
    else if (cJSON_IsNumber(up))
        snprintf(r->cell[C_STATUS] + sl, sizeof r->cell[0] - sl, "(up%d)", up->valueint);
    if (!strcmp(r->cell[C_STATUS], "-")) {
        const char *s = str_of(rec, "status");     /* tool steps */
        if (s)
            snprintf(r->cell[C_STATUS], sizeof r->cell[0], "%s", s);
    }
    if (str_of(rec, "error"))
        strncat(r->cell[C_STATUS], "!", sizeof r->cell[0] - strlen(r->cell[C_STATUS]) - 1);
    num_cell(r->cell[C_IN], sizeof r->cell[0], rec, "tokens_in");
    num_cell(r->cell[C_OUT], sizeof r->cell[0], rec, "tokens_out");
    num_cell(r->cell[C_LAT], sizeof r->cell[0], rec, "latency_ms");
    num_cell(r->cell[C_TTFT], sizeof r->cell[0], rec, "ttft_ms");
    const char *pol = str_of(rec, "policy_outcome"), *rule = str_of(rec, "policy_rule_id");
    if (pol && rule)
        snprintf(r->cell[C_POLICY], sizeof r->cell[0], "%s(%s)", pol, rule);
    else
        snprintf(r->cell[C_POLICY], sizeof r->cell[0], "%s", pol ? pol : "-");
    tools_cell(r->cell[C_TOOLS], sizeof r->cell[0], rec);
    const char *tid = str_of(rec, "trace_id");
    snprintf(r->cell[C_TRACE], sizeof r->cell[0], "%.8s", tid ? tid : "-");
}

static void print_row(const char *const *cells, const int *width, int first_col)
{
    for (int c = first_col; c < C_COUNT; c++) {
        int last = c == C_COUNT - 1;
        if (col_right[c])
            printf("%*s", width[c], cells[c]);
        else if (last)
            printf("%s", cells[c]);
        else
            printf("%-*s", width[c], cells[c]);
        fputs(last ? "\n" : "  ", stdout);
    }
}

static void print_title(const int *width, int first_col)
{
    print_row(col_title, width, first_col);
}

static void print_record_row(const struct row *r, const int *width, int first_col,
                             const cJSON *rec)
{
    const char *cells[C_COUNT];
    for (int c = 0; c < C_COUNT; c++)
        cells[c] = r->cell[c];
    print_row(cells, width, first_col);
    const char *err = str_of(rec, "error");
    if (err)
        printf("    ! %.200s\n", err);
}

/* ---- collected mode ---- */

struct entry {
    cJSON *rec;            /* owned */
    size_t seq;            /* position in the file */
    const char *session;   /* borrowed from rec; "" when absent */
    size_t group;          /* seq of the session's first record */
    double turn;           /* session_turn, or a huge value when absent */
};

static int by_session_then_seq(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->session, y->session);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_group_turn_seq(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->turn != y->turn)
        return x->turn < y->turn ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Parse one line of `len` bytes: the record (caller deletes) or NULL;
 * *malformed is bumped for non-blank lines that are not a JSON object
 * (a NUL byte inside the line makes it malformed too). */
static cJSON *parse_line(const char *line, size_t len, size_t *malformed)
{
    if (strlen(line) != len) {
        (*malformed)++;
        return NULL;
    }
    const char *p = line;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (!*p)
        return NULL;
    cJSON *rec = cJSON_Parse(p);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        (*malformed)++;
        return NULL;
    }
    return rec;
}

static int session_matches(const cJSON *rec, const char *want)
{
    if (!want)
        return 1;
    const char *sid = str_of(rec, "session_id");
    return sid && strcmp(sid, want) == 0;
}

/* Tool-step child records (SPEC §6: step_type tool_call|tool_result) are
 * shown under their calls but counted apart: they are not API calls. */
static int is_step(const cJSON *rec)
{
    return str_of(rec, "step_type") != NULL;
}

/* "N calls" or "N calls, K tool steps". */
static void print_counts(FILE *out, size_t calls, size_t steps)
{
    fprintf(out, "%zu call%s", calls, calls == 1 ? "" : "s");
    if (steps)
        fprintf(out, ", %zu tool step%s", steps, steps == 1 ? "" : "s");
}

static void print_footer(FILE *out, size_t calls, size_t steps, size_t sessions,
                         size_t malformed, const char *want)
{
    if (calls + steps == 0 && want) {
        fprintf(out, "no calls for session %s", want);
    } else {
        print_counts(out, calls, steps);
        if (sessions)
            fprintf(out, " in %zu session%s", sessions, sessions == 1 ? "" : "s");
    }
    if (malformed)
        fprintf(out, "; %zu malformed line%s skipped", malformed, malformed == 1 ? "" : "s");
    fputc('\n', out);
}

static int show_collected(struct line_reader *lr, const char *want, int json)
{
    struct entry *ents = NULL;
    size_t n = 0, cap = 0, malformed = 0, seq = 0, nsteps = 0;
    char *line;
    size_t llen = 0;
    int too_long = 0;
    while ((line = lr_next(lr, 1, &too_long, &llen)) || too_long) {
        if (too_long) {
            malformed++;
            too_long = 0;
            if (!line)
                continue;
        }
        cJSON *rec = parse_line(line, llen, &malformed);
        seq++;
        if (!rec)
            continue;
        if (!session_matches(rec, want)) {
            cJSON_Delete(rec);
            continue;
        }
        if (!json) {
            /* The table never shows content: free it now, keep memory
             * proportional to the number of calls, not their size. */
            cJSON_DeleteItemFromObjectCaseSensitive(rec, "messages");
            cJSON_DeleteItemFromObjectCaseSensitive(rec, "response_content");
            cJSON_DeleteItemFromObjectCaseSensitive(rec, "tools");
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct entry *ne = realloc(ents, ncap * sizeof *ne);
            if (!ne) {
                cJSON_Delete(rec);
                fprintf(stderr, "xenovia traces: out of memory after %zu records\n", n);
                break;
            }
            ents = ne;
            cap = ncap;
        }
        const char *sid = str_of(rec, "session_id");
        const cJSON *turn = cJSON_GetObjectItemCaseSensitive(rec, "session_turn");
        ents[n] = (struct entry){ rec, seq, sid ? sid : "", 0,
                                  cJSON_IsNumber(turn) ? turn->valuedouble : 1e300 };
        n++;
        nsteps += (size_t)is_step(rec);
    }

    if (json) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            char *s = cJSON_PrintUnformatted(ents[i].rec);
            printf("%s\n%s", i ? "," : "", s ? s : "null");
            free(s);
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
        if (malformed)
            print_footer(stderr, n - nsteps, nsteps, 0, malformed, NULL);
    } else {
        /* Group: first sort by session to find each one's first record,
         * then by (that first record, turn, file order). */
        if (n)   /* ents may be NULL: qsort's pointer must not be */
            qsort(ents, n, sizeof *ents, by_session_then_seq);
        size_t sessions = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || strcmp(ents[i].session, ents[i - 1].session) != 0) {
                ents[i].group = ents[i].seq;
                sessions++;
            } else {
                ents[i].group = ents[i - 1].group;
            }
        }
        if (n)
            qsort(ents, n, sizeof *ents, by_group_turn_seq);

        struct row *rows = calloc(n ? n : 1, sizeof *rows);
        if (!rows) {
            fprintf(stderr, "xenovia traces: out of memory\n");
            n = 0;
        }
        int width[C_COUNT];
        for (int c = 0; c < C_COUNT; c++)
            width[c] = (int)strlen(col_title[c]);
        for (size_t i = 0; i < n; i++) {
            make_row(&rows[i], ents[i].rec);
            for (int c = 0; c < C_COUNT; c++) {
                int w = (int)strlen(rows[i].cell[c]);
                if (w > width[c])
                    width[c] = w;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || ents[i].group != ents[i - 1].group) {
                size_t count = 0, gsteps = 0;
                for (size_t j = i; j < n && ents[j].group == ents[i].group; j++) {
                    count++;
                    gsteps += (size_t)is_step(ents[j].rec);
                }
                /* Path and flow: from whichever record of the session has them. */
                const char *path = NULL, *flow = NULL;
                for (size_t j = i; j < i + count; j++) {
                    if (!path)
                        path = str_of(ents[j].rec, "session_path");
                    if (!flow)
                        flow = str_of(ents[j].rec, "flow_id");
                }
                printf("%ssession %s  (", i ? "\n" : "",
                       ents[i].session[0] ? ents[i].session : "(none)");
                print_counts(stdout, count - gsteps, gsteps);
                printf("%s%s%s%s)\n", path ? ", path " : "", path ? path : "",
                       flow ? ", flow " : "", flow ? flow : "");
                print_title(width, C_TURN);
            }
            print_record_row(&rows[i], width, C_TURN, ents[i].rec);
        }
        free(rows);
        if (n)
            fputc('\n', stdout);
        print_footer(stdout, n - nsteps, nsteps, sessions, malformed, want);
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(ents[i].rec);
    /* Entries dropped by an allocation failure were deleted above. */
    free(ents);
    return 0;
}

/* ---- follow mode ---- */

static int open_trace(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, st) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int show_follow(const char *path, struct line_reader *lr, struct stat *st,
                       const char *want, int json)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Fixed widths: future rows are unknown. */
    static const int fixed[C_COUNT] = { 8, 4, 19, 18, 16, 6, 6, 6, 6, 7, 7, 12, 20, 8 };
    if (!json)
        print_title(fixed, C_SESSION);
    size_t calls = 0, steps = 0, malformed = 0, llen = 0;
    int too_long = 0;
    while (!g_stop) {
        char *line;
        while (!g_stop && ((line = lr_next(lr, 0, &too_long, &llen)) || too_long)) {
            if (too_long) {
                malformed++;
                too_long = 0;
                if (!line)
                    continue;
            }
            cJSON *rec = parse_line(line, llen, &malformed);
            if (!rec || !session_matches(rec, want)) {
                cJSON_Delete(rec);
                continue;
            }
            if (is_step(rec))
                steps++;
            else
                calls++;
            if (json) {
                char *s = cJSON_PrintUnformatted(rec);
                if (s)
                    puts(s);
                free(s);
            } else {
                struct row r;
                make_row(&r, rec);
                print_record_row(&r, fixed, C_SESSION, rec);
            }
            cJSON_Delete(rec);
        }
        if (g_stop)
            break;
        sleep_ms(XV_TRACES_POLL_MS);
        /* Rotation (a new file at the path) or truncation: start over at
         * the beginning of whatever is there now. */
        struct stat now;
        int moved = stat(path, &now) == 0 &&
                    (now.st_ino != st->st_ino || now.st_dev != st->st_dev || now.st_size < lr->offset);
        if (lr->fd < 0 || moved) {
            int fd = open_trace(path, &now);
            if (fd >= 0) {
                if (lr->fd >= 0)
                    close(lr->fd);
                lr->fd = fd;
                *st = now;
                lr->len = lr->start = 0;
                lr->offset = 0;
                lr->skipping = 0;
            }
        }
    }
    print_footer(json ? stderr : stdout, calls, steps, 0, malformed, NULL);
    return 0;
}

/* ---- entry point ---- */

static void traces_help(void)
{
    printf("Usage: xenovia traces [FILE] [--session ID] [--follow|-f] [--json]\n"
           "Shows recorded calls grouped by session and turn. FILE defaults to\n"
           "$XENOVIA_TRACE_FILE, $XDG_STATE_HOME/xenovia/traces.jsonl or\n"
           "~/.local/state/xenovia/traces.jsonl.\n"
           "  --session ID  only that session\n"
           "  --json        the records as a JSON array (with --follow: one per line)\n"
           "  --follow      keep printing calls as they are appended (Ctrl-C to stop)\n"
           "Columns: TURN, TIME (start, as recorded), MODEL, TYPE, STREAM, STATUS (! = error,\n"
           "shown on the next line), IN/OUT tokens (- = not reported), LAT_MS, TTFT_MS,\n"
           "POLICY outcome(rule), TOOLS (tool calls), TRACE (trace id prefix).\n");
}

int xv_tool_traces(int argc, char **argv)
{
    const char *file = NULL, *want = NULL;
    int follow = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            traces_help();
            return 0;
        } else if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
            follow = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--session")) {
            if (i + 1 >= argc)
                return xv_tool_usage_error("traces", "--session needs a session id");
            want = argv[++i];
        } else if (!strncmp(a, "--session=", 10)) {
            want = a + 10;
        } else if (!strcmp(a, "--")) {
            if (i + 1 < argc && !file)
                file = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return xv_tool_usage_error("traces", "unknown flag \"%s\" (see xenovia traces --help)", a);
        } else if (!file) {
            file = a;
        } else {
            return xv_tool_usage_error("traces", "more than one FILE given (\"%s\", \"%s\")", file, a);
        }
    }
    char *path = xv_exp_default_path(file);
    if (!path) {
        fprintf(stderr, "xenovia traces: no trace file: HOME is unknown; pass FILE or set "
                "XENOVIA_TRACE_FILE\n");
        return 1;
    }
    struct line_reader lr = { .fd = -1 };
    struct stat st;
    memset(&st, 0, sizeof st);
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        lr.fd = 0;                       /* read records from stdin */
    } else {
        lr.fd = open_trace(path, &st);
        if (lr.fd < 0 && !(follow && errno == ENOENT)) {
            fprintf(stderr, "xenovia traces: cannot read %s: %s%s\n", path, strerror(errno),
                    errno == ENOENT ? " (no calls recorded yet? pass FILE or set XENOVIA_TRACE_FILE)"
                                    : "");
            free(path);
            return 1;
        }
    }
    if (follow)
        rc = show_follow(path, &lr, &st, want, json);
    else
        rc = show_collected(&lr, want, json);
    if (lr.fd > 0)
        close(lr.fd);
    free(lr.buf);
    free(path);
    return rc;
}
