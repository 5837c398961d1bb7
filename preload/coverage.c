/*
 * coverage.c — can the agent see this program's TLS? The verdict is
 * patch/'s xv_patch_coverage over the main executable's ELF facts (read
 * once at start by patch/apply.c, the same read patch/ uses to find
 * compiled-in OpenSSL), the very function `xenovia doctor` uses, so the
 * agent's "not covered" line and doctor's verdict agree by construction:
 *  - a Go program makes its own system calls: not covered at all;
 *  - TLS compiled in that patch/ did not redirect (BoringSSL, rustls,
 *    GnuTLS/mbed TLS/wolfSSL, a stripped OpenSSL): plain HTTP only.
 * A refusal by patch/ is reported by init.c with patch/'s reason. For a
 * stripped program whose symbols said nothing, init.c completes the facts
 * (the .rodata byte search) and asks for the verdict at its first connect.
 *
 * Thread safety: pure.
 */
#include "xv_preload.h"

#include <stdio.h>

#include "xv_patch.h"
#include "xv_place.h"

/* start-up code: a program with its symbols gets its verdict at start */
XV_START_FN int xv_coverage_verdict(const char *exe_path, const struct xv_patch_elf *e, char *why,
                                    size_t cap)
{
    /* Reached only when patch/ covered nothing: OpenSSL compiled into the
     * executable then was not patched (a dynamic libssl is loaded too). */
    char v[768];
    int c = xv_patch_coverage(e, 0, "a dynamic libssl is loaded as well; only it is hooked",
                              v, sizeof v);
    if (c != XV_PATCH_PARTLY && c != XV_PATCH_NOT_COVERED)
        return 0;
    snprintf(why, cap, "%s: %s", exe_path, v);
    return 1;
}
