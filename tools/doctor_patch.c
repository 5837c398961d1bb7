/*
 * doctor_patch.c — `xenovia doctor` for a program with OpenSSL compiled in:
 * runs the agent's own patch planner (patch/) on the file's bytes, so the
 * verdict is the one the agent reaches at start-up (same symbol lookup,
 * same decoder, same refusals). The trampoline address of the dry run is a
 * plausible one near the code; the agent's real one is also within ±1 GiB.
 * Single-threaded.
 */
#include "doctor_int.h"

#include <stdio.h>
#include <string.h>

#include "xv_patch.h"

int xv_tool_doctor_patch(const char *path, char *why, size_t n)
{
    struct xv_patch_elf e;
    why[0] = '\0';
    if (xv_patch_elf_read(path, &e) != 0) {
        snprintf(why, n, "cannot read its symbols");
        return 0;
    }
    char found[400] = "";
    for (int i = 0; i < XV_PATCH_NAMES; i++) {
        if (!e.sym[i].value || !xv_patch_hooked[i])
            continue;
        size_t l = strlen(found);
        snprintf(found + l, sizeof found - l, "%s%s", l ? " " : "", xv_patch_names[i]);
    }
    printf("  OpenSSL compiled in: %s (from %s)\n", found[0] ? found : "no entry points found",
           e.sym[0].dynamic || e.sym[2].dynamic ? ".dynsym" : ".symtab");
    if (!e.is_elf64_x86_64) {
        snprintf(why, n, "entry points can be patched on x86-64 only");
        return 0;
    }
    if (e.go || e.boringssl || e.rustls) {
        snprintf(why, n, "%s", e.go ? "Go TLS" : "BoringSSL/rustls, not OpenSSL");
        return 0;
    }
    char dw[160];
    if (xv_patch_decoder_load(dw, sizeof dw) != 0) {
        snprintf(why, n, "%s", dw);
        return 0;
    }
    char list[400] = "";
    for (int i = 0; i < XV_PATCH_NAMES; i++) {
        if (!e.sym[i].value || !xv_patch_hooked[i])
            continue;
        unsigned char code[4096 + 32];
        size_t want = e.sym[i].size + 16;
        if (want > sizeof code)
            want = sizeof code;
        char pw[160] = "";
        struct xv_patch_plan plan;
        /* a symbol past the file's end or outside a code section cannot be read */
        int ok = e.sym[i].offset && xv_patch_file_bytes(path, e.sym[i].offset, code, want) == 0 &&
                 xv_patch_plan(code, want, e.sym[i].value,
                               e.sym[i].size > want ? want : e.sym[i].size,
                               e.sym[i].value + 0x10000000u, &plan, pw, sizeof pw) == 0;
        if (!ok && !pw[0])
            snprintf(pw, sizeof pw, "its code cannot be read from the file");
        if (!ok && xv_patch_essential[i]) {
            snprintf(why, n, "%s: %s", xv_patch_names[i], pw);
            return 0;
        }
        if (!ok)
            printf("  left alone (not essential): %s: %s\n", xv_patch_names[i], pw);
        else {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", xv_patch_names[i]);
        }
    }
    snprintf(why, n, "%s", list);
    return list[0] != '\0';
}
