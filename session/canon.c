/*
 * canon.c — canonical JSON and the conversation fingerprints (SPEC §4
 * strategy 4).
 *
 * Canonical JSON of a value (the definition docs/session.md repeats):
 *   - no whitespace anywhere outside strings;
 *   - null, true, false as those literals;
 *   - a number that is integral with |n| < 2^53 as a plain decimal integer
 *     ("-0" prints "0"), any other finite number as printf "%.17g" with a '.'
 *     decimal point whatever the locale, a non-finite one as null;
 *   - a string between '"' with exactly these escapes: \" \\ \b \f \n \r \t,
 *     other bytes below 0x20 as \u00xx (lower-case hex); every other byte
 *     (including '/', DEL and UTF-8 sequences) as is;
 *   - an array as '[' elements joined by ',' ']';
 *   - an object as '{' "key":value joined by ',' '}', members sorted by key
 *     bytewise (unsigned, a prefix before its extensions); duplicate keys kept
 *     in their original order;
 *   - nesting deeper than 64 arrays/objects is an error (XV_E_LIMIT).
 *
 * A conversation is canonicalised as an array of normalised messages, each an
 * object with at most these members (absent ones omitted):
 *   content       string — a string content as is; an array content whose parts
 *                 are all text (strings, {"type":"text"|"input_text"|
 *                 "output_text","text":…}, {"type":"refusal","refusal":…}) as
 *                 the concatenation of their texts; "" / null / [] omitted;
 *                 any other array as an array of parts, text parts reduced to
 *                 {"text":…,"type":"text"} and the rest canonical as is
 *   role          string
 *   tool_call_id  string (non-empty)
 *   tool_calls    non-empty array of {"arguments":…,"id":…,"name":…} taken from
 *                 {id, function:{name, arguments}} (arguments: string as sent)
 * Chat messages map member for member (everything else — name, refusal,
 * annotations, audio, type — is ignored, so an echoed assistant message with
 * extra null fields fingerprints like the reply it came from). Responses
 * `input` items: "message" (or untyped) items → {content, role};
 * function_call / custom_tool_call → {"role":"assistant","tool_calls":[one]};
 * function_call_output / custom_tool_call_output → {content: output,
 * "role":"tool", tool_call_id: call_id}; other items (reasoning, references,
 * built-in tool calls) are skipped. A string `input` is one user message.
 *
 * Everything streams into SHA-256 (nettle) or a bounded buffer; the only
 * allocation is the member order of an object with more than 16 members.
 *
 * Thread safety: no state; reentrant.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "session_int.h"
#include "xv_word.h"

#define CANON_MAX_DEPTH 64

/* ------------------------------------------------------------ sink output */

static void put(struct xv_session_sink *k, const char *p, size_t n)
{
    if (k->err || n == 0)
        return;
    if (k->sha) {
        /* many small pieces (keys, quotes, commas): gathered first; each
         * handed to SHA-256 alone cost more than the piece itself */
        if (k->staged + n > sizeof k->stage)
            xv_session_sink_flush(k);
        if (n >= sizeof k->stage) {
            if (k->fpc)
                xv_fpc_put(k->fpc, p, n);
            else
                sha256_update(k->sha, n, (const uint8_t *)p);
        } else if (n <= 8) {
            for (size_t i = 0; i < n; i++)
                k->stage[k->staged + i] = (unsigned char)p[i];
            k->staged += n;
        } else {
            memcpy(k->stage + k->staged, p, n);
            k->staged += n;
        }
    }
    if (k->buf && xv_buf_append(k->buf, p, n) != 0)
        k->err = XV_E_LIMIT;
}

void xv_session_sink_flush(struct xv_session_sink *k)
{
    if (!k->staged)
        return;
    if (k->fpc)
        xv_fpc_put(k->fpc, k->stage, k->staged);
    else if (k->sha)
        sha256_update(k->sha, k->staged, k->stage);
    k->staged = 0;
}

static void put_s(struct xv_session_sink *k, const char *s)
{
    put(k, s, strlen(s));
}

/* Bytes from i on that need no escape (xv_word.h's scan). */
static inline size_t plain_run(const char *s, size_t i, size_t n)
{
    return i + xv_json_plain_len(s + i, n - i, 0);
}

/* String body bytes, escaped (no quotes): stateless per byte, so a string
 * may be emitted in pieces (concatenated text parts). Runs of plain bytes
 * go out in one put. */
static void put_escaped(struct xv_session_sink *k, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; (i = plain_run(s, i, n)) < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc)
            continue;
        put(k, s + run, i - run);
        put_s(k, esc);
        run = i + 1;
    }
    put(k, s + run, n - run);
}

static void put_string(struct xv_session_sink *k, const char *s)
{
    put(k, "\"", 1);
    if (s)
        put_escaped(k, s, strlen(s));
    put(k, "\"", 1);
}

static void put_number(struct xv_session_sink *k, double d)
{
    char b[40];
    if (!isfinite(d)) {
        put_s(k, "null");
        return;
    }
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d) {
        /* %lld never groups digits, so this part is locale-proof. */
        snprintf(b, sizeof b, "%lld", (long long)d);
        put_s(k, b);
        return;
    }
    snprintf(b, sizeof b, "%.17g", d);
    /* A host that called setlocale(LC_NUMERIC, "de_DE") would print a
     * comma: anything that is not a digit, sign or exponent is the point. */
    for (char *p = b; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e' || *p == 'E'))
            *p = '.';
    put_s(k, b);
}

/* ------------------------------------------------------- generic values */

struct member {
    const cJSON *m;   /* the member (its key is m->string) */
    size_t pos; /* original position: keeps duplicate keys stable */
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->m->string ? x->m->string : "", y->m->string ? y->m->string : "");
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void canon_object(struct xv_session_sink *k, const cJSON *v, int depth)
{
    struct member small[16], *ms = small;
    size_t n = 0;
    const cJSON *c;
    for (c = v->child; c; c = c->next)
        n++;
    if (n > 16) {
        ms = malloc(n * sizeof *ms);
        if (!ms) {
            k->err = XV_E_NOMEM;
            return;
        }
    }
    size_t i = 0;
    for (c = v->child; c; c = c->next, i++) {
        ms[i].m = c;
        ms[i].pos = i;
    }
    qsort(ms, n, sizeof *ms, member_cmp);
    put(k, "{", 1);
    for (i = 0; i < n && !k->err; i++) {
        if (i)
            put(k, ",", 1);
        put_string(k, ms[i].m->string);
        put(k, ":", 1);
        xv_session_canon_value(k, ms[i].m, depth + 1);
    }
    put(k, "}", 1);
    if (ms != small)
        free(ms);
}

void xv_session_canon_value(struct xv_session_sink *k, const cJSON *v, int depth)
{
    if (k->err)
        return;
    if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v) || cJSON_IsRaw(v)) {
        put_s(k, "null");
    } else if (cJSON_IsTrue(v)) {
        put_s(k, "true");
    } else if (cJSON_IsFalse(v)) {
        put_s(k, "false");
    } else if (cJSON_IsNumber(v)) {
        put_number(k, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        put_string(k, v->valuestring);
    } else if (depth >= CANON_MAX_DEPTH) {
        k->err = XV_E_LIMIT;
    } else if (cJSON_IsArray(v)) {
        put(k, "[", 1);
        int first = 1;
        for (const cJSON *c = v->child; c && !k->err; c = c->next) {
            if (!first)
                put(k, ",", 1);
            first = 0;
            xv_session_canon_value(k, c, depth + 1);
        }
        put(k, "]", 1);
    } else {
        canon_object(k, v, depth);
    }
}

int xv_session_canonical_json(const cJSON *v, struct xv_buf *out)
{
    struct xv_session_sink k = { .buf = out };
    xv_session_canon_value(&k, v, 0);
    return k.err;
}

/* --------------------------------------------------------------- messages */

static const char *get_str(const cJSON *o, const char *name)
{
    return xv_json_str(xv_json_get(o, name));
}

/* The text of a text part, or NULL when the part is something else. */
static const char *part_text(const cJSON *p)
{
    if (cJSON_IsString(p))
        return p->valuestring;
    if (!cJSON_IsObject(p))
        return NULL;
    const char *type = get_str(p, "type");
    if (!type)
        return NULL;
    if (!strcmp(type, "text") || !strcmp(type, "input_text") || !strcmp(type, "output_text"))
        return get_str(p, "text");
    if (!strcmp(type, "refusal"))
        return get_str(p, "refusal");
    return NULL;
}

enum { CONTENT_NONE, CONTENT_STRING, CONTENT_TEXTS, CONTENT_PARTS, CONTENT_OTHER };

/* How a content value canonicalises (see the file comment). */
static int content_kind(const cJSON *c)
{
    if (!c || cJSON_IsNull(c))
        return CONTENT_NONE;
    if (cJSON_IsString(c))
        return c->valuestring[0] ? CONTENT_STRING : CONTENT_NONE;
    if (!cJSON_IsArray(c))
        return CONTENT_OTHER;
    if (!c->child)
        return CONTENT_NONE;
    size_t total = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const char *t = part_text(p);
        if (!t)
            return CONTENT_PARTS;
        total += strlen(t);
    }
    return total ? CONTENT_TEXTS : CONTENT_NONE;
}

static void put_content(struct xv_session_sink *k, const cJSON *c, int kind, int depth)
{
    switch (kind) {
    case CONTENT_STRING:
        put_string(k, c->valuestring);
        break;
    case CONTENT_TEXTS:
        put(k, "\"", 1);
        for (const cJSON *p = c->child; p; p = p->next) {
            const char *t = part_text(p);
            put_escaped(k, t, strlen(t));
        }
        put(k, "\"", 1);
        break;
    case CONTENT_PARTS: {
        put(k, "[", 1);
        for (const cJSON *p = c->child; p && !k->err; p = p->next) {
            if (p != c->child)
                put(k, ",", 1);
            const char *t = part_text(p);
            if (t) {
                put_s(k, "{\"text\":");
                put_string(k, t);
                put_s(k, ",\"type\":\"text\"}");
            } else {
                xv_session_canon_value(k, p, depth + 1);
            }
        }
        put(k, "]", 1);
        break;
    }
    default:
        xv_session_canon_value(k, c, depth);
    }
}

/* One member `"name":` with its comma. */
static void put_key(struct xv_session_sink *k, int *first, const char *name)
{
    if (!*first)
        put(k, ",", 1);
    *first = 0;
    put(k, "\"", 1);
    put_s(k, name);
    put_s(k, "\":");
}

/* {"arguments":…,"id":…,"name":…} from the pieces (each may be NULL). */
static void put_call(struct xv_session_sink *k, const cJSON *args, const char *id,
                     const char *name, int depth)
{
    int first = 1;
    put(k, "{", 1);
    if (args) {
        put_key(k, &first, "arguments");
        xv_session_canon_value(k, args, depth + 1);
    }
    if (id) {
        put_key(k, &first, "id");
        put_string(k, id);
    }
    if (name) {
        put_key(k, &first, "name");
        put_string(k, name);
    }
    put(k, "}", 1);
}

/* A normalised message from its parts; tool_calls is a chat array, or
 * `one_call` a single Responses item (with call_id/name/args member names). */
struct nmsg {
    const cJSON *content;       /* content value as sent (normalised on output); NULL none */
    const char *role;           /* NULL when absent */
    const char *tool_call_id;   /* tool results: the call answered; NULL otherwise */
    const cJSON *tool_calls;    /* chat tool_calls array */
    const cJSON *one_call;      /* Responses function_call item */
    const char *args_member;    /* "arguments" or "input" (custom tools) */
};

static void put_nmsg(struct xv_session_sink *k, const struct nmsg *m, int depth)
{
    int first = 1;
    put(k, "{", 1);
    int kind = content_kind(m->content);
    if (kind != CONTENT_NONE) {
        put_key(k, &first, "content");
        put_content(k, m->content, kind, depth + 1);
    }
    if (m->role) {
        put_key(k, &first, "role");
        put_string(k, m->role);
    }
    if (m->tool_call_id && m->tool_call_id[0]) {
        put_key(k, &first, "tool_call_id");
        put_string(k, m->tool_call_id);
    }
    if (m->one_call) {
        put_key(k, &first, "tool_calls");
        put(k, "[", 1);
        put_call(k, xv_json_get(m->one_call, m->args_member),
                 get_str(m->one_call, "call_id"), get_str(m->one_call, "name"), depth + 2);
        put(k, "]", 1);
    } else if (cJSON_IsArray(m->tool_calls) && m->tool_calls->child) {
        put_key(k, &first, "tool_calls");
        put(k, "[", 1);
        for (const cJSON *c = m->tool_calls->child; c && !k->err; c = c->next) {
            if (c != m->tool_calls->child)
                put(k, ",", 1);
            if (!cJSON_IsObject(c)) {
                xv_session_canon_value(k, c, depth + 2);
                continue;
            }
            const cJSON *fn = xv_json_get(c, "function");
            put_call(k, xv_json_get(fn, "arguments"), get_str(c, "id"),
                     get_str(fn, "name"), depth + 2);
        }
        put(k, "]", 1);
    }
    put(k, "}", 1);
}

/* Normalise one element of the message list. Returns 1 when it is a
 * message (filled *m; *raw set when it must be emitted as a generic value),
 * 0 when the item is skipped. */
static int normalise(int type, const cJSON *item, struct nmsg *m, int *raw)
{
    memset(m, 0, sizeof *m);
    *raw = 0;
    if (type == XV_SESSION_REQ_CHAT) {
        if (!cJSON_IsObject(item)) {
            *raw = 1;
            return 1;
        }
        static const char *const names[] = { "content", "role", "tool_call_id", "tool_calls" };
        const cJSON *v[4];
        xv_json_pick(item, names, 4, v); /* one pass over the message's members */
        m->content = v[0];
        m->role = xv_json_str(v[1]);
        m->tool_call_id = xv_json_str(v[2]);
        m->tool_calls = v[3];
        return 1;
    }
    /* Responses input items. */
    if (!cJSON_IsObject(item))
        return 0;
    const char *t = get_str(item, "type");
    if (!t || !strcmp(t, "message")) {
        m->content = xv_json_get(item, "content");
        m->role = get_str(item, "role");
        return 1;
    }
    if (!strcmp(t, "function_call") || !strcmp(t, "custom_tool_call")) {
        m->role = "assistant";
        m->one_call = item;
        m->args_member = t[0] == 'f' ? "arguments" : "input";
        return 1;
    }
    if (!strcmp(t, "function_call_output") || !strcmp(t, "custom_tool_call_output")) {
        m->role = "tool";
        m->content = xv_json_get(item, "output");
        m->tool_call_id = get_str(item, "call_id");
        return 1;
    }
    return 0;
}

const cJSON *xv_session_messages_of(int type, const cJSON *body, const char **input_str)
{
    *input_str = NULL;
    if (!cJSON_IsObject(body))
        return NULL;
    if (type == XV_SESSION_REQ_CHAT) {
        const cJSON *m = xv_json_get(body, "messages");
        return cJSON_IsArray(m) ? m : NULL;
    }
    if (type == XV_SESSION_REQ_RESPONSES) {
        const cJSON *in = xv_json_get(body, "input");
        if (cJSON_IsString(in)) {
            *input_str = in->valuestring;
            return NULL;
        }
        return cJSON_IsArray(in) ? in : NULL;
    }
    return NULL;
}

/*
 * The message list of a request, walked: counts messages, remembers the last
 * assistant one, and (with a sink) emits messages [0, upto) each preceded by
 * a comma when not the first of the array (`*first` carries that across
 * calls). After message number snap_at[i] (1-based count) has been emitted,
 * the SHA-256 context is copied into snap[i] (prefix digests in one pass).
 */
struct walk {
    size_t n;              /* messages seen */
    size_t last_asst;      /* 1-based count of the last assistant message; 0 none */
    size_t upto;           /* emit messages while count < upto (SIZE_MAX: all) */
    size_t snap_at[2];     /* 0: no snapshot */
    struct sha256_ctx snap[2];
};

/* After message number w->n: the states snap_at asks for. */
static void snapshot(struct xv_session_sink *k, struct walk *w)
{
    for (int i = 0; i < 2; i++)
        if (k && k->sha && w->snap_at[i] == w->n) {
            xv_session_sink_flush(k);
            if (k->fpc)
                xv_fpc_mark(k->fpc);
            w->snap[i] = *k->sha;
        }
}

static void emit_one(struct xv_session_sink *k, int *first, int type, const cJSON *item,
                     const struct nmsg *m, int raw)
{
    if (!*first)
        put(k, ",", 1);
    *first = 0;
    if (raw)
        xv_session_canon_value(k, item, 1);
    else
        put_nmsg(k, m, 1);
}

static void walk_request(struct xv_session_sink *k, int *first, int type, const cJSON *body,
                         struct walk *w)
{
    const char *s;
    const cJSON *list = xv_session_messages_of(type, body, &s);
    struct nmsg m;
    int raw;
    if (s) {
        /* Responses `input` as a string: one user message. */
        cJSON tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.type = cJSON_String;
        tmp.valuestring = (char *)s;
        memset(&m, 0, sizeof m);
        m.content = &tmp;
        m.role = "user";
        if (k && w->n < w->upto)
            emit_one(k, first, type, NULL, &m, 0);
        w->n++;
        snapshot(k, w);
        return;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        if (!normalise(type, item, &m, &raw))
            continue;
        if (k && w->n < w->upto)
            emit_one(k, first, type, item, &m, raw);
        w->n++;
        if (!raw && m.role && !strcmp(m.role, "assistant"))
            w->last_asst = w->n;
        snapshot(k, w);
    }
}

/* The reply (see xv_session.h) as messages of the request's API. */
static void emit_reply(struct xv_session_sink *k, int *first, int type, const cJSON *reply,
                       size_t *count)
{
    struct nmsg m;
    if (!cJSON_IsObject(reply))
        return;
    if (type == XV_SESSION_REQ_CHAT) {
        int raw;
        normalise(type, reply, &m, &raw);
        if (!m.role)
            m.role = "assistant";
        emit_one(k, first, type, reply, &m, 0);
        (*count)++;
        return;
    }
    /* Responses: an assistant message with the text, then one function_call
     * item per tool call — the shape of `output` as apps echo it back. */
    const cJSON *content = xv_json_get(reply, "content");
    if (content_kind(content) != CONTENT_NONE) {
        memset(&m, 0, sizeof m);
        m.role = "assistant";
        m.content = content;
        emit_one(k, first, type, NULL, &m, 0);
        (*count)++;
    }
    const cJSON *calls = xv_json_get(reply, "tool_calls"), *c;
    if (!cJSON_IsArray(calls))
        calls = NULL;
    cJSON_ArrayForEach(c, calls) {
        if (!cJSON_IsObject(c))
            continue;
        const cJSON *fn = xv_json_get(c, "function");
        if (!*first)
            put(k, ",", 1);
        *first = 0;
        put_s(k, "{\"role\":\"assistant\",\"tool_calls\":[");
        put_call(k, xv_json_get(fn, "arguments"), get_str(c, "id"),
                 get_str(fn, "name"), 3);
        put_s(k, "]}");
        (*count)++;
    }
}

static void finish(struct sha256_ctx *ctx, uint8_t digest[XV_SESSION_DIGEST_LEN])
{
    sha256_update(ctx, 1, (const uint8_t *)"]");
    sha256_digest(ctx, XV_SESSION_DIGEST_LEN, digest);
}

int xv_session_canonical_messages(int type, const cJSON *body, int drop_last,
                                  struct xv_buf *out)
{
    struct walk w = { .upto = SIZE_MAX };
    walk_request(NULL, NULL, type, body, &w); /* count only */
    if (drop_last && w.n)
        w.upto = w.n - 1;
    w.n = 0;
    struct xv_session_sink k = { .buf = out };
    int first = 1;
    put(&k, "[", 1);
    walk_request(&k, &first, type, body, &w);
    put(&k, "]", 1);
    return k.err;
}

int xv_session_request_fps(int type, const cJSON *body, struct xv_session_fps *out,
                           struct xv_session_convo *convo)
{
    memset(out, 0, sizeof *out);
    if (convo)
        convo->valid = 0;
    if (type != XV_SESSION_REQ_CHAT && type != XV_SESSION_REQ_RESPONSES)
        return XV_E_PARSE;
    struct walk w = { .upto = SIZE_MAX };
    walk_request(NULL, NULL, type, body, &w);
    /* A single message keys nothing here, but its state still saves the
     * response side a walk. */
    if (w.n < 2 && !(convo && w.n == 1))
        return XV_E_PARSE;
    size_t n_last = w.n - 1, n_asst = 0;
    /* The last assistant message before the final one (none for a single
     * message: its state only, below). */
    if (w.n >= 2 && w.last_asst == w.n) {
        /* The final message is itself an assistant one (a prefill): find the
         * one before it with a counting walk over the prefix. */
        struct walk w2 = { .upto = SIZE_MAX };
        const char *s;
        const cJSON *list = xv_session_messages_of(type, body, &s), *item;
        struct nmsg m;
        int raw;
        cJSON_ArrayForEach(item, list) {
            if (!normalise(type, item, &m, &raw))
                continue;
            if (++w2.n >= w.n)
                break;
            if (!raw && m.role && !strcmp(m.role, "assistant"))
                n_asst = w2.n;
        }
    } else if (w.n >= 2) {
        n_asst = w.last_asst;
    }
    struct sha256_ctx ctx;
    /* With convo the whole history is hashed: against the thread's last one
     * (fpcache.c), so a conversation's next request hashes what it adds. */
    struct xv_fpc_run run;
    struct xv_session_sink k = { .sha = &ctx, .fpc = convo ? &run : NULL };
    if (convo)
        xv_fpc_begin(&run, &ctx);
    else
        sha256_init(&ctx);
    int first = 1;
    put(&k, "[", 1);
    /* snap_at 0 takes no snapshot (a single message: n_last is 0) */
    struct walk e = { .upto = convo ? SIZE_MAX : n_last,
                      .snap_at = { n_last, n_asst != n_last ? n_asst : 0 } };
    walk_request(&k, &first, type, body, &e);
    xv_session_sink_flush(&k);
    if (convo)
        xv_fpc_end(&run, !k.err); /* ctx: the state after every message */
    if (k.err)
        return k.err;
    if (convo) {
        convo->ctx = ctx;
        convo->n = e.n;
        convo->valid = 1;
    }
    if (w.n < 2)
        return XV_E_PARSE;
    finish(&e.snap[0], out->last);
    out->has_last = 1;
    if (e.snap_at[1]) {
        finish(&e.snap[1], out->asst);
        out->has_asst = 1;
    }
    return 0;
}

int xv_session_fingerprint(int type, const cJSON *body, uint8_t digest[XV_SESSION_DIGEST_LEN])
{
    struct xv_session_fps f;
    int rc = xv_session_request_fps(type, body, &f, NULL);
    memset(digest, 0, XV_SESSION_DIGEST_LEN);
    if (rc == 0)
        memcpy(digest, f.last, XV_SESSION_DIGEST_LEN);
    return rc;
}

int xv_session_next_fp(int type, const cJSON *body, const cJSON *reply,
                       const struct xv_session_convo *convo,
                       uint8_t digest[XV_SESSION_DIGEST_LEN])
{
    memset(digest, 0, XV_SESSION_DIGEST_LEN);
    if (type != XV_SESSION_REQ_CHAT && type != XV_SESSION_REQ_RESPONSES)
        return XV_E_PARSE;
    struct sha256_ctx ctx;
    struct xv_session_sink k = { .sha = &ctx };
    struct walk w = { .upto = SIZE_MAX };
    int first = 1;
    if (convo && convo->valid) {
        /* "[" and the request's messages are already in it */
        ctx = convo->ctx;
        w.n = convo->n;
        first = w.n == 0;
    } else {
        sha256_init(&ctx);
        put(&k, "[", 1);
        walk_request(&k, &first, type, body, &w);
    }
    size_t nreply = 0;
    emit_reply(&k, &first, type, reply, &nreply);
    xv_session_sink_flush(&k);
    if (k.err)
        return k.err;
    /* Only a key that ends with the assistant's reply can ever be presented
     * as some later request's messages[:-1]; an empty reply keys nothing. */
    if (nreply == 0 || w.n == 0)
        return XV_E_PARSE;
    finish(&ctx, digest);
    return 0;
}

void xv_session_digest_str(char tag, const char *s, size_t n,
                           uint8_t digest[XV_SESSION_DIGEST_LEN])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, 1, (const uint8_t *)&tag);
    sha256_update(&ctx, n, (const uint8_t *)s);
    sha256_digest(&ctx, XV_SESSION_DIGEST_LEN, digest);
}

/* The credential scope's HMAC, keyed once per process with a random key
 * (the keyed state is copied per use: two compression blocks saved per
 * call). A child keeps its parent's (it continues the parent's sessions). */
static struct {
    pthread_once_t once;
    struct hmac_sha256_ctx keyed;
} g_scope XV_CALL_DATA = { .once = PTHREAD_ONCE_INIT };

static void scope_key(void)
{
    uint8_t key[32];
    xv_uuid_v4_bytes(key); /* getrandom-seeded generator */
    xv_uuid_v4_bytes(key + 16);
    hmac_sha256_set_key(&g_scope.keyed, sizeof key, key);
    memset(key, 0, sizeof key);
}

void xv_session_scope_digest(const char *cred, size_t n, uint8_t out[XV_SESSION_DIGEST_LEN])
{
    pthread_once(&g_scope.once, scope_key);
    struct hmac_sha256_ctx h = g_scope.keyed;
    hmac_sha256_update(&h, n, (const uint8_t *)cred);
    hmac_sha256_digest(&h, XV_SESSION_DIGEST_LEN, out);
}

int xv_session_content_text(const cJSON *content, struct xv_buf *out)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content))
        return xv_buf_append(out, content->valuestring, strlen(content->valuestring));
    if (cJSON_IsArray(content)) {
        int n = 0, rc = 0;
        for (const cJSON *p = content->child; p && rc == 0; p = p->next) {
            const char *t = part_text(p);
            if (!t)
                continue;
            if (n++)
                rc = xv_buf_append(out, "\n", 1);
            if (rc == 0)
                rc = xv_buf_append(out, t, strlen(t));
        }
        return rc;
    }
    return xv_session_canonical_json(content, out);
}
