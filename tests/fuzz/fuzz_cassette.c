/* link: xv_cassette xv_session xv_common */
/*
 * fuzz_cassette.c — libFuzzer target for cassette/: a recording file is
 * untrusted input (cassettes live in git and are edited by hand).
 *
 * Input: a recording's JSON text. It is parsed and its response turned into
 * the bytes a replay would hand the app; its request body is compared with
 * itself and with a fixed body. Checks besides ASan/UBSan: a replayed head
 * never carries a header line the recording smuggled in (every line of the
 * built head before the blank line has a name and a colon), and a text
 * compared with itself has no difference.
 *
 * Thread safety: single-threaded, as libFuzzer calls it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cassette_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    if (!doc)
        return 0;
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(doc, "response");
    struct xv_buf out;
    xv_buf_init(&out, 1 << 22);
    if (cJSON_IsObject(resp) && xv_cassette_build_answer(resp, "X-Stamp: 1\r\n", (int)(size & 1), &out, NULL) == 0) {
        const char *end = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
        if (!end)
            abort(); /* a built answer always has a complete head */
        const char *line = strstr(out.data, "\r\n") + 2;
        while (line < end + 2) {
            const char *eol = strstr(line, "\r\n");
            const char *colon = memchr(line, ':', (size_t)(eol - line));
            if (!colon || colon == line)
                abort(); /* every header line is "name: value" */
            line = eol + 2;
        }
    }
    xv_buf_free(&out);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(doc, "request");
    size_t bl;
    char *body = cJSON_IsObject(req) ? xv_cassette_get_body(req, &bl) : NULL;
    if (body) {
        char path[256];
        struct xv_buf w, n;
        xv_buf_init(&w, 256);
        xv_buf_init(&n, 256);
        if (xv_cassette_diff_text(body, bl, body, bl, path, sizeof path, &w, &n) != 0)
            abort(); /* a body does not differ from itself */
        xv_cassette_diff_text(body, bl, "{\"model\":\"m\",\"messages\":[]}", 27, path, sizeof path,
                              &w, &n);
        xv_buf_free(&w);
        xv_buf_free(&n);
        free(body);
    }
    cJSON_Delete(doc);
    return 0;
}
