/*
 * coverage.c — what a program file says about its TLS, and the one
 * coverage verdict drawn from it. The agent decides from it at start
 * (patch/apply.c reads its executable once; preload/coverage.c reports),
 * and `xenovia doctor` decides from the very same facts and function, so
 * the two cannot disagree about a program (issue 10).
 *
 * Facts come from the one ELF reader (elf.c): where OpenSSL's entry points
 * are (.dynsym first, then .symtab), whether the file depends on a dynamic
 * libssl, whether it is Go, or carries BoringSSL, rustls, GnuTLS, mbed TLS
 * or wolfSSL compiled in. Kept cheap for every process start: .symtab is
 * skipped when .dynsym exports OpenSSL (node's holds ~100k names), and the
 * byte searches for a stripped binary's TLS run over .rodata only, and only
 * when no symbol and no libssl dependency said anything — and the agent
 * defers even those to the program's first connect (read_symbols/_rodata).
 *
 * Thread safety: reentrant (pure over the file's read-only mapping).
 */
#include "xv_patch.h"
#include "xv_place.h"

#include <stdio.h>
#include <string.h>

const char *const xv_patch_names[XV_PATCH_NAMES] = {
    "SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_peek",
    "SSL_peek_ex", "SSL_pending", "SSL_has_pending", "SSL_get_error",
    "SSL_shutdown", "SSL_free", "SSL_ctrl", "SSL_set_alpn_protos",
    "SSL_CTX_set_alpn_protos", "SSL_get_fd", "SSL_get_SSL_CTX", "SSL_get_shutdown",
    "SSL_is_init_finished", "SSL_do_handshake", "X509_verify_cert",
};

/* Without these the agent cannot do its job on a patched program: the data
 * path, the clean end of a stream the agent answered (get_error,
 * get_shutdown), the end of a connection (free) and the SNI host name
 * (ctrl). The others only refine (peek, pending, shutdown of an answered
 * stream, ALPN narrowing) and are skipped alone when refused. */
const unsigned char xv_patch_essential[XV_PATCH_NAMES] = {
    1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0,
};
const unsigned char xv_patch_hooked[XV_PATCH_NAMES] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1,
};

#define STT_FUNC_ 2
#define SHT_PROGBITS_ 1
#define SHF_EXECINSTR_ 4

struct scan {
    const struct xv_patch_elf_file *f;
    struct xv_patch_elf *out;
};

/* File offset of the entry at `va` through the code section holding it
 * (0 when none: the patcher then cannot read the function). */
static uint64_t code_offset(const struct xv_patch_elf_file *f, uint64_t va)
{
    struct xv_patch_elf_shdr s;
    for (size_t i = 0; i < xv_patch_elf_nsections(f); i++)
        if (xv_patch_elf_section(f, i, &s) == 0 && s.type == SHT_PROGBITS_ &&
            (s.flags & SHF_EXECINSTR_) && va >= s.addr && va - s.addr < s.size)
            return s.offset + (va - s.addr);
    return 0;
}

/* The first bytes of every name on_symbol looks at ('_': Rust's mangled
 * names, looked at in .symtab only; node's .dynsym is mostly "_Z…"). */
#define SCAN_FIRST_DYN "BrgmwSX"
#define SCAN_FIRST_SYMTAB "BrgmwSX_"

XV_START_FN static int on_symbol(void *ctx, const struct xv_patch_elf_sym *s)
{
    struct scan *sc = ctx;
    struct xv_patch_elf *out = sc->out;
    const char *name = s->name;
    if (s->shndx == 0 || !s->value)          /* imports say nothing about the file */
        return 0;
    /* first-byte filters keep this cheap on node's ~100k exports */
    switch (name[0]) {
    case 'B':
        out->boringssl |= xv_patch_starts(name, "BORINGSSL_");
        return 0;
    case 'r':
        out->rustls |= xv_patch_starts(name, "rustls_");
        out->go |= xv_patch_streq(name, "runtime.main") || xv_patch_streq(name, "runtime.goexit");
        return 0;
    case 'g':
        out->other_tls |= xv_patch_streq(name, "gnutls_record_send");
        return 0;
    case 'm':
        out->other_tls |= xv_patch_streq(name, "mbedtls_ssl_write");
        return 0;
    case 'w':
        out->other_tls |= xv_patch_streq(name, "wolfSSL_write");
        return 0;
    case '_':
        /* Rust's mangled names (_ZN6rustls…, _RN…6rustls): in .symtab only */
        if (!s->dynamic && (name[1] == 'Z' || name[1] == 'R') && strstr(name, "rustls"))
            out->rustls = 1;
        return 0;
    case 'S':
    case 'X':
        break;
    default:
        return 0;
    }
    if (!xv_patch_starts(name, "SSL_") && !xv_patch_streq(name, "X509_verify_cert"))
        return 0;
    if ((s->info & 0xf) != STT_FUNC_)
        return 0;
    for (int k = 0; k < XV_PATCH_NAMES; k++) {
        if (out->sym[k].value || !xv_patch_streq(name, xv_patch_names[k]))
            continue;
        out->sym[k].value = s->value;
        out->sym[k].size = s->size;
        out->sym[k].offset = code_offset(sc->f, s->value);
        out->sym[k].dynamic = s->dynamic;
    }
    return 0;
}

/* A stripped binary with nothing exported: its TLS library's own strings
 * in .rodata are the remaining hint (OpenSSL keeps its source paths for
 * its error queue, Rust its crates' paths for panics). */
static void scan_rodata(const struct xv_patch_elf_file *f, struct xv_patch_elf *out)
{
    struct xv_patch_elf_shdr s;
    if (xv_patch_elf_find_section(f, ".rodata", &s) != 0 || !s.in_file)
        return;
    static const char *const needles[] = { "ssl/statem/statem_clnt.c", "ssl/ssl_lib.c",
                                           "ssl/s3_lib.c", "BoringSSL", "/rustls-" };
    /* '/' and 'B' are rare in .rodata (~0.2 % of python's bytes each) */
    unsigned hit = xv_patch_elf_contains_any(f, s.offset, s.size, "/B", needles, 5);
    out->openssl_marker = (hit & 7u) != 0;
    out->boringssl |= (hit >> 3) & 1;
    out->rustls |= (hit >> 4) & 1;
}

/* A program that exports OpenSSL 3's provider API (node) carries OpenSSL,
 * not BoringSSL (which has no providers) and, sharing one namespace, no
 * second SSL_write: the names on_symbol wants are then looked up through
 * the GNU hash table (a few pages) instead of a scan of every export
 * (node's ~75k names: 109 page faults and ~8 ms of its start, issue 9).
 * The prefixes the scan also looks for (BORINGSSL_, rustls_) are not
 * asked: a program exporting both OpenSSL 3 and rustls-ffi is patched for
 * its OpenSSL. 0: no such export, or no usable hash table (scan instead). */
XV_START_FN static int exports_openssl3(const struct xv_patch_elf_file *f, struct scan *sc)
{
    struct xv_patch_elf_sym s;
    if (xv_patch_elf_dynsym_lookup(f, "OSSL_PROVIDER_load", &s) != 1)
        return 0;
    static const char *const markers[] = { "runtime.main", "runtime.goexit",
                                           "gnutls_record_send", "mbedtls_ssl_write",
                                           "wolfSSL_write" };
    for (int k = 0; k < XV_PATCH_NAMES; k++)
        if (xv_patch_elf_dynsym_lookup(f, xv_patch_names[k], &s) == 1)
            on_symbol(sc, &s);
    for (size_t k = 0; k < sizeof markers / sizeof markers[0]; k++)
        if (xv_patch_elf_dynsym_lookup(f, markers[k], &s) == 1)
            on_symbol(sc, &s);
    return 1;
}

/* 0, or 1 when f, read in pieces (xv_patch_elf_open_self), lacks what the
 * facts need: its .symtab (a program linked with OpenSSL and not stripped). */
XV_START_FN static int facts(const struct xv_patch_elf_file *f, struct xv_patch_elf *out, int search)
{
    memset(out, 0, sizeof *out);
    out->machine = f->machine;
    out->type = f->type;
    out->is_elf64_x86_64 = f->is64 && !f->be && f->machine == 62 && f->has_shdrs;
    out->has_symtab = f->has_symtab;
    for (size_t i = 0; i < f->nneeded; i++)
        out->needs_libssl |= xv_patch_starts(f->needed[i], "libssl");
    out->go = f->go_sections ||
              (!f->has_shdrs && xv_patch_elf_contains(f, 0, f->size, "\xff Go buildinf:", 14));
    struct scan sc = { f, out };
    /* .dynsym first: it survives strip and is what the program exports */
    if (!exports_openssl3(f, &sc))
        xv_patch_elf_symbols(f, XV_PATCH_SHT_DYNSYM, SCAN_FIRST_DYN, on_symbol, &sc);
    /* .symtab only when the exports did not show OpenSSL (a program linked
     * against libssl.a without -rdynamic); node's is huge. */
    if (!xv_patch_elf_has_ssl(out) && f->has_symtab && !f->data)
        return 1;
    if (!xv_patch_elf_has_ssl(out))
        xv_patch_elf_symbols(f, XV_PATCH_SHT_SYMTAB, SCAN_FIRST_SYMTAB, on_symbol, &sc);
    if (!xv_patch_elf_has_ssl(out) && !out->needs_libssl && !out->has_symtab && !out->go) {
        if (search && !f->data)
            return 1;
        if (search)
            scan_rodata(f, out);
        else
            out->rodata_pending = 1;
    }
    return 0;
}

int xv_patch_elf_facts(const struct xv_patch_elf_file *f, struct xv_patch_elf *out)
{
    return facts(f, out, 1);
}

XV_START_FN static int is_self_exe(const char *path)
{
    return xv_patch_streq(path, "/proc/self/exe");
}

/* The running program's own file is first read in pieces (its loaded image
 * and two small reads: no mapping, no page fault of its own at every
 * start, issue 9); whatever the pieces lack, and every other file, is read
 * from a whole mapping. */
XV_START_FN static int read_file(const char *path, struct xv_patch_elf *out, int search)
{
    struct xv_patch_elf_file f;
    if (is_self_exe(path)) {
        struct xv_patch_elf_sparse sp;
        if (xv_patch_elf_open_self(&f, &sp) == 0) {
            /* what the pieces lack: the file mapped under the same parse */
            int rc = facts(&f, out, search) == 0 || (xv_patch_elf_map_whole(&f, &sp) == 0 &&
                                                    facts(&f, out, search) == 0);
            xv_patch_elf_sparse_done(&sp);
            xv_patch_elf_close(&f);
            if (rc)
                return 0;
        }
    }
    if (xv_patch_elf_open(path, &f) != 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    facts(&f, out, search);
    xv_patch_elf_close(&f);
    return 0;
}

int xv_patch_elf_read(const char *path, struct xv_patch_elf *out)
{
    return read_file(path, out, 1);
}

XV_START_FN int xv_patch_elf_read_symbols(const char *path, struct xv_patch_elf *out)
{
    return read_file(path, out, 0);
}

int xv_patch_elf_read_rodata(const char *path, struct xv_patch_elf *out)
{
    struct xv_patch_elf_file f;
    if (!out->rodata_pending)
        return 0;
    out->rodata_pending = 0;
    if (xv_patch_elf_open(path, &f) != 0)
        return -1;
    scan_rodata(&f, out);
    xv_patch_elf_close(&f);
    return 0;
}

XV_START_FN int xv_patch_elf_has_ssl(const struct xv_patch_elf *e)
{
    return e->sym[0].value || e->sym[1].value || e->sym[2].value || e->sym[3].value;
}

XV_START_FN int xv_patch_coverage(const struct xv_patch_elf *e, int patched, const char *patch_why,
                      char *why, size_t n)
{
    if (e->go) {
        snprintf(why, n, "Go program: Go makes its own system calls and uses its own "
                 "crypto/tls, so LD_PRELOAD sees none of its network traffic");
        return XV_PATCH_NOT_COVERED;
    }
    int openssl = xv_patch_elf_has_ssl(e) && !e->needs_libssl;
    if (openssl && !e->boringssl && !e->other_tls && !e->rustls) {
        /* OpenSSL compiled in with its symbols: the agent patches it */
        if (patched) {
            snprintf(why, n, "OpenSSL compiled in; entry points patched at start (%s)", patch_why);
            return XV_PATCH_COVERED;
        }
        snprintf(why, n, "OpenSSL compiled in, but its entry points cannot be patched safely "
                 "(%s): HTTPS is not covered, plain-HTTP calls through libc sockets are",
                 patch_why);
        return XV_PATCH_PARTLY;
    }
    if (openssl || e->boringssl || e->other_tls || e->rustls || e->openssl_marker) {
        snprintf(why, n, "its TLS library is compiled into the program (%s); HTTPS is not "
                 "covered, plain-HTTP calls through libc sockets are",
                 e->boringssl ? "BoringSSL" : e->rustls ? "rustls"
                 : e->other_tls ? "GnuTLS/mbed TLS/wolfSSL"
                 : openssl ? "OpenSSL"
                 : "probably OpenSSL: stripped, found by its source file names");
        return XV_PATCH_PARTLY;
    }
    why[0] = '\0';
    return XV_PATCH_UNDECIDED;
}
