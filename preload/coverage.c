/*
 * coverage.c — can the agent see this program's TLS? A program whose
 * OpenSSL is linked in statically calls it directly, not through the
 * dynamic linker, so our SSL_* hooks never run; a Go program uses its own
 * crypto/tls. Both are detected from the main executable's ELF file:
 * OpenSSL's SSL_write/SSL_read defined in the executable's own symbol
 * tables (.dynsym or, when not stripped, .symtab) with no libssl among its
 * DT_NEEDED libraries; Go by its .go.buildinfo section.
 *
 * A program whose OpenSSL symbols are there is covered by patch/ (its entry
 * points redirected) and init.c does not call this; what reaches the
 * static-OpenSSL verdict here is a stripped binary exporting nothing,
 * recognised by OpenSSL's source paths in .rodata.
 *
 * Runs once at init; reads the file through a private read-only mapping.
 */
#include "xv_preload.h"

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct elf_view {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
};

static int in_range(const struct elf_view *v, uint64_t off, uint64_t len)
{
    return off <= v->size && len <= v->size - off;
}

static const char *sec_name(const struct elf_view *v, const Elf64_Shdr *s)
{
    if (v->eh->e_shstrndx >= v->eh->e_shnum)
        return "";
    const Elf64_Shdr *strs = &v->sh[v->eh->e_shstrndx];
    if (!in_range(v, strs->sh_offset, strs->sh_size) || s->sh_name >= strs->sh_size)
        return "";
    const char *p = (const char *)v->base + strs->sh_offset + s->sh_name;
    if (!memchr(p, '\0', strs->sh_size - s->sh_name))
        return "";
    return p;
}

/* Does a symbol table section define one of the OpenSSL I/O functions? */
static int defines_ssl(const struct elf_view *v, const Elf64_Shdr *symtab)
{
    if (symtab->sh_link >= v->eh->e_shnum || symtab->sh_entsize != sizeof(Elf64_Sym))
        return 0;
    const Elf64_Shdr *strs = &v->sh[symtab->sh_link];
    if (!in_range(v, symtab->sh_offset, symtab->sh_size) ||
        !in_range(v, strs->sh_offset, strs->sh_size))
        return 0;
    const Elf64_Sym *sym = (const void *)(v->base + symtab->sh_offset);
    size_t n = symtab->sh_size / sizeof *sym;
    const char *str = (const char *)v->base + strs->sh_offset;
    for (size_t i = 0; i < n; i++) {
        if (sym[i].st_shndx == SHN_UNDEF || sym[i].st_name >= strs->sh_size)
            continue;
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC)
            continue;
        const char *name = str + sym[i].st_name;
        size_t room = strs->sh_size - sym[i].st_name;
        if (room > 12 && (strcmp(name, "SSL_write") == 0 || strcmp(name, "SSL_read") == 0 ||
                          strcmp(name, "SSL_write_ex") == 0))
            return 1;
    }
    return 0;
}

/* Is libssl among DT_NEEDED? */
static int needs_libssl(const struct elf_view *v, const Elf64_Shdr *dyn)
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
        if (strncmp(name, "libssl", 6) == 0)
            return 1;
    }
    return 0;
}

int xv_coverage_check(const char *exe_path, char *why, size_t cap)
{
    /* raw syscalls: this runs inside init, hooks must not be re-entered */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, exe_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int verdict = 0;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        syscall(SYS_close, fd);
        return 0;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    syscall(SYS_close, fd);
    if (map == MAP_FAILED)
        return 0;
    struct elf_view v = { map, (size_t)st.st_size, map, NULL };
    if (memcmp(v.eh->e_ident, ELFMAG, SELFMAG) != 0 || v.eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        v.eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_range(&v, v.eh->e_shoff, (uint64_t)v.eh->e_shnum * sizeof(Elf64_Shdr)))
        goto out;
    v.sh = (const void *)(v.base + v.eh->e_shoff);
    int has_ssl = 0, needs = 0, go = 0, symtab = 0;
    for (unsigned i = 0; i < v.eh->e_shnum; i++) {
        const Elf64_Shdr *s = &v.sh[i];
        symtab |= s->sh_type == SHT_SYMTAB;
        if (s->sh_type == SHT_DYNSYM || s->sh_type == SHT_SYMTAB)
            has_ssl |= defines_ssl(&v, s);
        else if (s->sh_type == SHT_DYNAMIC)
            needs |= needs_libssl(&v, s);
        if (strcmp(sec_name(&v, s), ".go.buildinfo") == 0)
            go = 1;
    }
    if (!has_ssl && !needs && !symtab) {
        /* Stripped: look for libssl's own source paths, which OpenSSL 3
         * keeps in .rodata for its error queue ("../ssl/statem/statem_clnt.c"). */
        static const char marker[] = "ssl/statem/statem_clnt.c";
        for (unsigned i = 0; i < v.eh->e_shnum && !has_ssl; i++) {
            const Elf64_Shdr *s = &v.sh[i];
            if (s->sh_type != SHT_PROGBITS || strcmp(sec_name(&v, s), ".rodata") != 0 ||
                !in_range(&v, s->sh_offset, s->sh_size))
                continue;
            has_ssl = memmem(v.base + s->sh_offset, s->sh_size, marker, sizeof marker - 1) != NULL;
        }
    }
    if (go) {
        snprintf(why, cap, "%s is a Go program (its crypto/tls cannot be hooked; plain HTTP is inspected)",
                 exe_path);
        verdict = 1;
    } else if (has_ssl && !needs) {
        /* patch/ found nothing to patch (its OpenSSL symbols are gone) */
        snprintf(why, cap, "%s has OpenSSL compiled in without symbols to patch (stripped, "
                 "nothing exported): its TLS traffic cannot be hooked; plain HTTP is inspected",
                 exe_path);
        verdict = 1;
    }
out:
    munmap(map, (size_t)st.st_size);
    return verdict;
}
