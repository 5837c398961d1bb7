/* link: xv_session xv_common */
/*
 * fuzz_session.c — libFuzzer target for session/: the XENOVIA_PROPERTIES
 * parser, the X-Xenovia-Property-* header check, canonical JSON of arbitrary
 * JSON and the conversation fingerprints, and a store fed the input as a
 * request body (resolve, record the response, match tool results).
 *
 * Input: byte 0 is a control byte, the rest is the text.
 *   bits 0-1  request type for the JSON half (chat, responses, embeddings,
 *             completions)
 *   bit 2     canonical_messages drops the last message
 * The whole text goes to the properties parser and (split at the first ':')
 * to the header check; when it parses as JSON it is canonicalised, and the
 * store sees it as a request body and as the assistant reply.
 * Besides memory errors (ASan/UBSan), the target checks the module's
 * invariants and aborts on a violation:
 *   - a parsed property set is within every limit (≤ 20, key 1–64 of
 *     [A-Za-z0-9_-] not starting policy_, value ≤ 512 code points, no
 *     control characters), and a refusal comes with a non-empty message
 *     naming XENOVIA_PROPERTIES and an empty set;
 *   - canonical JSON is a fixed point: canonicalising the parse of the
 *     canonical text gives the same text, and it has no '\n' outside strings
 *     (it has none at all: newlines inside strings are escaped);
 *   - fingerprints are deterministic; resolve never fails on a body
 *     without a header; the store stays within its session and tool bounds.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_session.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_session: invariant violated: %s\n", what);
        abort();
    }
}

static void check_props(const struct xv_session_props *p)
{
    check(p->n <= XV_SESSION_PROP_MAX, "at most 20 properties");
    for (size_t i = 0; i < p->n; i++) {
        size_t kn = strlen(p->p[i].key);
        check(kn >= 1 && kn <= XV_SESSION_PROP_KEY_MAX, "key length");
        check(strncasecmp(p->p[i].key, "policy_", 7) != 0, "policy_ reserved");
        for (size_t j = 0; j < kn; j++) {
            char c = p->p[i].key[j];
            check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_',
                  "key charset");
        }
        size_t cps = 0;
        check(strlen(p->p[i].value) == p->p[i].value_len, "value has no NUL");
        for (size_t j = 0; j < p->p[i].value_len; j++) {
            unsigned char c = (unsigned char)p->p[i].value[j];
            check(c >= 0x20 || c == '\t', "no control characters");
            check(c != 0x7f, "no DEL");
            if ((c & 0xC0) != 0x80)
                cps++;
        }
        check(cps <= XV_SESSION_PROP_VALUE_MAX, "value length");
    }
}

static struct xv_session_store *g_store; /* one store across inputs, as in a process */
static uint64_t g_clock;

static uint64_t fuzz_clock(void *arg)
{
    (void)arg;
    return g_clock += 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int type = (data[0] & 3) + 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    if (!s)
        return 0;
    memcpy(s, text, n);
    s[n] = '\0';

    /* Properties from the environment. */
    struct xv_session_props p;
    char err[256];
    int rc = xv_session_props_parse(s, &p, err, sizeof err);
    if (rc == 0) {
        check_props(&p);
    } else {
        check(rc == XV_E_CONFIG || rc == XV_E_NOMEM, "parse error code");
        check(p.n == 0, "empty set on error");
        if (rc == XV_E_CONFIG)
            check(strstr(err, "XENOVIA_PROPERTIES") != NULL && !strchr(err, '\n'),
                  "error line names the variable");
    }
    /* The same text as an app header "name: value". */
    const char *colon = memchr(text, ':', n);
    if (colon) {
        size_t nl = (size_t)(colon - text);
        xv_session_props_add_header(&p, text, nl, colon + 1, n - nl - 1);
        check_props(&p);
    }
    xv_session_props_free(&p);
    char e2[200];
    xv_session_env_id_check(s, e2, sizeof e2);

    /* JSON: canonical form is a fixed point. */
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (j) {
        struct xv_buf a, b;
        xv_buf_init(&a, 1 << 22);
        xv_buf_init(&b, 1 << 22);
        if (xv_session_canonical_json(j, &a) == 0) {
            check(a.data && !memchr(a.data, '\n', a.len), "no raw newline");
            cJSON *k = cJSON_ParseWithLength(a.data, a.len);
            check(k != NULL, "canonical JSON parses");
            check(xv_session_canonical_json(k, &b) == 0, "re-canonicalises");
            check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "fixed point");
            cJSON_Delete(k);
        }
        xv_buf_reset(&a);
        xv_session_canonical_messages(type, j, data[0] & 4, &a);
        uint8_t d1[XV_SESSION_DIGEST_LEN], d2[XV_SESSION_DIGEST_LEN];
        int r1 = xv_session_fingerprint(type, j, d1), r2 = xv_session_fingerprint(type, j, d2);
        check(r1 == r2 && memcmp(d1, d2, sizeof d1) == 0, "fingerprint is deterministic");
        xv_buf_free(&a);
        xv_buf_free(&b);

        /* The store: the body as a request, itself as the reply. */
        if (!g_store) {
            struct xv_session_config c = { .max_sessions = 8, .tool_max = 16,
                                           .keep_tool_args = 1, .clock = fuzz_clock };
            g_store = xv_session_store_new(&c);
        }
        if (g_store) {
            struct xv_session_request rq = { .type = type, .body = j };
            struct xv_session_resolved r;
            check(xv_session_store_resolve(g_store, &rq, &r) == 0, "resolve never fails");
            struct xv_session_tool_step *steps;
            size_t ns;
            if (xv_session_store_match_tools(g_store, r.id, type, j, 64, &steps, &ns) == 0)
                xv_session_tool_steps_free(steps, ns);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
            struct xv_session_response rs = { .session_id = r.id, .turn = r.turn, .type = type,
                                              .request = j, .reply = j,
                                              .response_id = cJSON_IsString(id) ? id->valuestring
                                                                                : NULL };
            xv_session_store_record_response(g_store, &rs);
            struct xv_session_stats st;
            xv_session_store_get_stats(g_store, &st);
            check(st.sessions <= 8 && st.tools <= 16, "store bounds");
        }
        cJSON_Delete(j);
    }
    free(s);
    return 0;
}
