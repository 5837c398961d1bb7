/*
 * coverage.c — can the agent see this program's TLS? Decided from the main
 * executable's ELF facts (patch/elf.c reads them once at start, the same
 * read patch/ uses to find compiled-in OpenSSL):
 *  - a Go program (.go.buildinfo) uses its own crypto/tls: not covered;
 *  - OpenSSL compiled in with its symbols is covered by patch/ (its entry
 *    points redirected) and never reaches this verdict; what does is a
 *    stripped binary exporting nothing, recognised by OpenSSL's source paths
 *    in .rodata: not covered.
 * A refusal by patch/ is reported by init.c with patch/'s reason.
 *
 * Runs once at init. Thread safety: pure.
 */
#include "xv_preload.h"

#include <stdio.h>

#include "xv_patch.h"

int xv_coverage_verdict(const char *exe_path, const struct xv_patch_elf *e, char *why, size_t cap)
{
    if (e->go) {
        snprintf(why, cap, "%s is a Go program (its crypto/tls cannot be hooked; plain HTTP is inspected)",
                 exe_path);
        return 1;
    }
    if ((xv_patch_elf_has_ssl(e) || e->openssl_marker) && !e->needs_libssl) {
        snprintf(why, cap, "%s has OpenSSL compiled in without symbols to patch (stripped, "
                 "nothing exported): its TLS traffic cannot be hooked; plain HTTP is inspected",
                 exe_path);
        return 1;
    }
    return 0;
}

int xv_coverage_check(const char *exe_path, char *why, size_t cap)
{
    struct xv_patch_elf e;
    if (xv_patch_elf_read(exe_path, &e) != 0)
        return 0;
    return xv_coverage_verdict(exe_path, &e, why, cap);
}
