/*
 * redact.c — pattern redaction for SPEC §5 (see xv_redact.h).
 *
 * Labels are applied one after the other in a fixed order (url, email,
 * creditcard, ssn, phone, ip), each over the previous one's output, so a
 * URL containing an address is one [REDACTED:url] and a card number is not
 * later taken for a phone number. Card candidates must pass the Luhn check.
 * The replacement text contains no character any pattern matches again.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "xv_redact.h"

#include <stdlib.h>

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    unsigned bit;
    const char *name;
    const char *re;
} g_pat[] = {
    /* a URL does not end in the punctuation of the sentence around it */
    { XV_REDACT_URL, "url", "\\b(?:https?|ftp)://[^\\s\"'<>\\\\]*[^\\s\"'<>\\\\.,;:!?)\\]]" },
    { XV_REDACT_EMAIL, "email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}" },
    { XV_REDACT_CREDITCARD, "creditcard", "\\b\\d(?:[ -]?\\d){12,18}\\b" },
    { XV_REDACT_SSN, "ssn", "\\b\\d{3}-\\d{2}-\\d{4}\\b" },
    { XV_REDACT_PHONE, "phone",
      "(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{3}\\)|\\b\\d{3})[ .-]?\\d{3}[ .-]\\d{4}\\b" },
    { XV_REDACT_IP, "ip",
      "\\b(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\b"
      "|\\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\\b" },
};
#define NPAT (sizeof g_pat / sizeof g_pat[0])

/* Compiled patterns; written once under g_once. */
static struct {
    pthread_once_t once;
    pcre2_code *code[NPAT];
} g = { .once = PTHREAD_ONCE_INIT };

static void compile_all(void)
{
    for (size_t i = 0; i < NPAT; i++) {
        int err;
        PCRE2_SIZE off;
        g.code[i] = pcre2_compile((PCRE2_SPTR)g_pat[i].re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                  &err, &off, NULL);
        if (!g.code[i])
            xv_log(XV_LOG_ERROR, "internal: redaction pattern %s does not compile", g_pat[i].name);
    }
}

unsigned xv_redact_labels_from(char *const *names, size_t n)
{
    unsigned m = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < NPAT; k++)
            if (names[i] && !strcasecmp(names[i], g_pat[k].name))
                m |= g_pat[k].bit;
    return m;
}

static int luhn_ok(const char *p, size_t n)
{
    int sum = 0, dbl = 0, digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (p[i] < '0' || p[i] > '9')
            continue;
        int d = p[i] - '0';
        if (dbl && (d *= 2) > 9)
            d -= 9;
        sum += d;
        dbl = !dbl;
        digits++;
    }
    return digits >= 13 && digits <= 19 && sum % 10 == 0;
}

/* One label over src -> dst. */
static int apply(size_t k, const char *src, size_t n, struct xv_buf *dst, int *changed)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(g.code[k], NULL);
    if (!md)
        return XV_E_NOMEM;
    size_t pos = 0, copied = 0;
    int rc = 0;
    char repl[40];
    int rl = snprintf(repl, sizeof repl, "[REDACTED:%s]", g_pat[k].name);
    while (pos <= n) {
        int m = pcre2_match(g.code[k], (PCRE2_SPTR)src, n, pos, 0, md, NULL);
        if (m < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {
            pos = e + 1;
            continue;
        }
        if (g_pat[k].bit == XV_REDACT_CREDITCARD && !luhn_ok(src + s, e - s)) {
            pos = e;
            continue;
        }
        if ((rc = xv_buf_append(dst, src + copied, s - copied)) != 0 ||
            (rc = xv_buf_append(dst, repl, (size_t)rl)) != 0)
            break;
        copied = e;
        pos = e;
        *changed = 1;
    }
    if (!rc)
        rc = xv_buf_append(dst, src + copied, n - copied);
    pcre2_match_data_free(md);
    return rc;
}

int xv_redact_text(unsigned labels, const char *text, size_t n, struct xv_buf *out, int *changed)
{
    pthread_once(&g.once, compile_all);
    struct xv_buf a, b;
    xv_buf_init(&a, out->max);
    xv_buf_init(&b, out->max);
    int rc = xv_buf_append(&a, text, n);
    for (size_t k = 0; k < NPAT && !rc; k++) {
        if (!(labels & g_pat[k].bit) || !g.code[k])
            continue;
        xv_buf_reset(&b);
        rc = apply(k, a.data ? a.data : "", a.len, &b, changed);
        struct xv_buf t = a;
        a = b;
        b = t;
    }
    if (!rc)
        rc = xv_buf_append(out, a.data ? a.data : "", a.len);
    xv_buf_free(&a);
    xv_buf_free(&b);
    return rc;
}

/* ---- JSON helpers --------------------------------------------------------- */

void xv_redact_json_text(cJSON *item, unsigned labels, int *changed)
{
    if (!cJSON_IsString(item) || !item->valuestring)
        return;
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 30);
    int ch = 0;
    if (xv_redact_text(labels, item->valuestring, strlen(item->valuestring), &b, &ch) == 0 && ch) {
        cJSON_SetValuestring(item, b.data ? b.data : "");
        *changed = 1;
    }
    xv_buf_free(&b);
}

void xv_redact_json_content(cJSON *content, unsigned labels, int *changed)
{
    if (cJSON_IsString(content)) {
        xv_redact_json_text(content, labels, changed);
    } else if (cJSON_IsArray(content)) {
        for (cJSON *part = content->child; part; part = part->next) {
            xv_redact_json_text(cJSON_GetObjectItemCaseSensitive(part, "text"), labels, changed);
            xv_redact_json_content(cJSON_GetObjectItemCaseSensitive(part, "content"), labels, changed);
        }
    }
}

