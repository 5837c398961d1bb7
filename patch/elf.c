/*
 * elf.c — what an ELF file says about compiled-in OpenSSL: where its entry
 * points are (.dynsym first, then .symtab), whether it depends on a
 * dynamic libssl, whether it is Go or carries BoringSSL. Used by the
 * patcher at start-up and by `xenovia doctor`.
 *
 * Invariant: no offset, size or count from the file is trusted; the file
 * is read through a private read-only mapping that is unmapped before
 * return. Raw syscalls for open/close, so it may run inside the agent's
 * init without re-entering its hooks. Thread safety: reentrant.
 */
#include "xv_patch.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

struct view {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
};

static int in_range(const struct view *v, uint64_t off, uint64_t len)
{
    return off <= v->size && len <= v->size - off;
}

static const char *sec_name(const struct view *v, const Elf64_Shdr *s)
{
    if (v->eh->e_shstrndx >= v->eh->e_shnum)
        return "";
    const Elf64_Shdr *strs = &v->sh[v->eh->e_shstrndx];
    if (!in_range(v, strs->sh_offset, strs->sh_size) || s->sh_name >= strs->sh_size)
        return "";
    const char *p = (const char *)v->base + strs->sh_offset + s->sh_name;
    return memchr(p, '\0', strs->sh_size - s->sh_name) ? p : "";
}

/* File offset of virtual address `va` through the section that holds it. */
static uint64_t va_to_off(const struct view *v, uint64_t va)
{
    for (unsigned i = 0; i < v->eh->e_shnum; i++) {
        const Elf64_Shdr *s = &v->sh[i];
        if (s->sh_type != SHT_PROGBITS || !(s->sh_flags & SHF_EXECINSTR))
            continue;
        if (va >= s->sh_addr && va - s->sh_addr < s->sh_size)
            return s->sh_offset + (va - s->sh_addr);
    }
    return 0;
}

static void scan_syms(const struct view *v, const Elf64_Shdr *tab, int dynamic, struct xv_patch_elf *out)
{
    if (tab->sh_link >= v->eh->e_shnum || tab->sh_entsize != sizeof(Elf64_Sym))
        return;
    const Elf64_Shdr *strs = &v->sh[tab->sh_link];
    if (!in_range(v, tab->sh_offset, tab->sh_size) || !in_range(v, strs->sh_offset, strs->sh_size))
        return;
    const Elf64_Sym *sym = (const void *)(v->base + tab->sh_offset);
    size_t n = tab->sh_size / sizeof *sym;
    const char *str = (const char *)v->base + strs->sh_offset;
    for (size_t i = 0; i < n; i++) {
        if (sym[i].st_shndx == SHN_UNDEF || sym[i].st_name >= strs->sh_size || !sym[i].st_value)
            continue;
        const char *name = str + sym[i].st_name;
        size_t room = strs->sh_size - sym[i].st_name;
        if (room < 8)
            continue;
        /* first-byte filters keep this cheap on node's ~100k exports */
        if ((name[0] == 'B' && strncmp(name, "BORINGSSL_", 10) == 0) ||
            (name[0] == 'r' && strncmp(name, "rustls_", 7) == 0))
            out->boringssl = 1;
        if ((name[0] != 'S' && name[0] != 'X') || !memchr(name, '\0', room))
            continue;
        if (strncmp(name, "SSL_", 4) != 0 && strcmp(name, "X509_verify_cert") != 0)
            continue;
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC)
            continue;
        for (int k = 0; k < XV_PATCH_NAMES; k++) {
            if (out->sym[k].value || strcmp(name, xv_patch_names[k]) != 0)
                continue;
            out->sym[k].value = sym[i].st_value;
            out->sym[k].size = sym[i].st_size;
            out->sym[k].offset = va_to_off(v, sym[i].st_value);
            out->sym[k].dynamic = dynamic;
        }
    }
}

static int needs_libssl(const struct view *v, const Elf64_Shdr *dyn)
{
    if (dyn->sh_link >= v->eh->e_shnum)
        return 0;
    const Elf64_Shdr *strs = &v->sh[dyn->sh_link];
    if (!in_range(v, dyn->sh_offset, dyn->sh_size) || !in_range(v, strs->sh_offset, strs->sh_size))
        return 0;
    const Elf64_Dyn *d = (const void *)(v->base + dyn->sh_offset);
    size_t n = dyn->sh_size / sizeof *d;
    for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
        if (d[i].d_tag != DT_NEEDED || d[i].d_un.d_val >= strs->sh_size)
            continue;
        const char *name = (const char *)v->base + strs->sh_offset + d[i].d_un.d_val;
        if (strncmp(name, "libssl", 6) == 0 && memchr(name, '\0', strs->sh_size - d[i].d_un.d_val))
            return 1;
    }
    return 0;
}

static void *map_file(const char *path, size_t *size)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *map = NULL;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            map = NULL;
        *size = (size_t)st.st_size;
    }
    syscall(SYS_close, fd);
    return map;
}

int xv_patch_elf_read(const char *path, struct xv_patch_elf *out)
{
    memset(out, 0, sizeof *out);
    size_t size = 0;
    void *map = map_file(path, &size);
    if (!map)
        return -1;
    struct view v = { map, size, map, NULL };
    int rc = -1;
    if (memcmp(v.eh->e_ident, ELFMAG, SELFMAG) != 0)
        goto out;
    rc = 0;
    out->machine = v.eh->e_ident[EI_CLASS] == ELFCLASS64 ? v.eh->e_machine : -1;
    out->type = v.eh->e_type;
    if (v.eh->e_ident[EI_CLASS] != ELFCLASS64 || v.eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        v.eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_range(&v, v.eh->e_shoff, (uint64_t)v.eh->e_shnum * sizeof(Elf64_Shdr)))
        goto out;
    out->is_elf64_x86_64 = v.eh->e_machine == EM_X86_64;
    v.sh = (const void *)(v.base + v.eh->e_shoff);
    /* .dynsym first: it survives strip and is what the program exports */
    for (unsigned i = 0; i < v.eh->e_shnum; i++)
        if (v.sh[i].sh_type == SHT_DYNSYM)
            scan_syms(&v, &v.sh[i], 1, out);
    /* .symtab only when the exports did not show OpenSSL (a program
     * linked against libssl.a without -rdynamic); node's is huge. */
    int exported = xv_patch_elf_has_ssl(out);
    for (unsigned i = 0; i < v.eh->e_shnum; i++) {
        const Elf64_Shdr *s = &v.sh[i];
        if (s->sh_type == SHT_SYMTAB) {
            out->has_symtab = 1;
            if (!exported)
                scan_syms(&v, s, 0, out);
        } else if (s->sh_type == SHT_DYNAMIC) {
            out->needs_libssl |= needs_libssl(&v, s);
        }
        if (strcmp(sec_name(&v, s), ".go.buildinfo") == 0)
            out->go = 1;
    }
    if (!xv_patch_elf_has_ssl(out) && !out->needs_libssl && !out->has_symtab) {
        /* Stripped with nothing exported: OpenSSL 3 keeps its source paths in
         * .rodata for its error queue ("../ssl/statem/statem_clnt.c"). */
        static const char marker[] = "ssl/statem/statem_clnt.c";
        for (unsigned i = 0; i < v.eh->e_shnum && !out->openssl_marker; i++) {
            const Elf64_Shdr *s = &v.sh[i];
            if (s->sh_type == SHT_PROGBITS && strcmp(sec_name(&v, s), ".rodata") == 0 &&
                in_range(&v, s->sh_offset, s->sh_size))
                out->openssl_marker =
                    memmem(v.base + s->sh_offset, s->sh_size, marker, sizeof marker - 1) != NULL;
        }
    }
out:
    munmap(map, size);
    return rc;
}

int xv_patch_elf_has_ssl(const struct xv_patch_elf *e)
{
    return e->sym[0].value || e->sym[1].value || e->sym[2].value || e->sym[3].value;
}

int xv_patch_file_bytes(const char *path, uint64_t off, unsigned char *buf, size_t len)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = (ssize_t)syscall(SYS_pread64, fd, buf, len, (off_t)off);
    syscall(SYS_close, fd);
    return n == (ssize_t)len ? 0 : -1;
}
