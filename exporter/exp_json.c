/*
 * exp_json.c — a record (cJSON tree) as one line of JSON, byte for byte what
 * cJSON_PrintUnformatted prints, in one growing buffer.
 *
 * Why: cJSON's printer formats every non-integral number with sprintf and
 * then reads it back with sscanf to check the round trip, and copies strings
 * a byte at a time through its escaper; on the exporter thread that was
 * ~50,000 instructions per record (issue 9). The printing rules live in
 * common/jsonw.c (xv_jsonw.h), which also writes the agent's own records
 * as text without any tree; trees still come from tests and tools.
 *
 * Thread safety: none needed (pure function of its argument).
 */
#include "exp_internal.h"

#include <stdlib.h>

#include "xv_jsonw.h"

char *xv_exp_json_print(const cJSON *item)
{
    if (!item)
        return NULL;
    struct xv_jw w;
    xv_jw_init(&w, 1024);
    /* Strings were repaired by the exporter before (utf8_sanitize). */
    if (xv_jw_cjson(&w, item, 0) != 0) {
        xv_jw_free(&w);
        return NULL;
    }
    return xv_jw_steal(&w, NULL);
}
