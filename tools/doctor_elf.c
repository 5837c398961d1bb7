/*
 * doctor_elf.c — a minimal, bounds-checked ELF reader for `xenovia doctor`
 * (see doctor_int.h). Reads ELF32/ELF64 of either byte order; never
 * trusts an offset, size or count from the file.
 * Single-threaded.
 */
#include "doctor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PT_LOAD_ 1
#define PT_DYNAMIC_ 2
#define PT_INTERP_ 3
#define DT_NULL_ 0
#define DT_NEEDED_ 1
#define DT_STRTAB_ 5
#define DT_STRSZ_ 10
#define DT_RPATH_ 15
#define DT_RUNPATH_ 29
#define DT_FLAGS_1_ 0x6ffffffb
#define DF_1_PIE_ 0x08000000
#define SHT_SYMTAB_ 2
#define SHT_DYNSYM_ 11

static uint64_t rd(const struct xv_elf *e, size_t off, int width)
{
    if (off > e->size || (size_t)width > e->size - off)
        return 0;
    const unsigned char *p = e->data + off;
    uint64_t v = 0;
    for (int i = 0; i < width; i++) {
        int shift = e->be ? (width - 1 - i) * 8 : i * 8;
        v |= (uint64_t)p[i] << shift;
    }
    return v;
}

/* Address-sized field (4 or 8 bytes by class). */
static uint64_t rda(const struct xv_elf *e, size_t off)
{
    return rd(e, off, e->is64 ? 8 : 4);
}

static int in_file(const struct xv_elf *e, uint64_t off, uint64_t len)
{
    return off <= e->size && len <= e->size - off;
}

/* A NUL-terminated string at `off` that lies wholly inside [lo, hi). */
static const char *str_at(const struct xv_elf *e, uint64_t lo, uint64_t hi, uint64_t off)
{
    if (hi > e->size)
        hi = e->size;
    if (off < lo || off >= hi)
        return NULL;
    const char *s = (const char *)e->data + off;
    return memchr(s, '\0', hi - off) ? s : NULL;
}

struct phdr {
    uint32_t type;
    uint64_t offset, vaddr, filesz;
};

static int phdr_get(const struct xv_elf *e, size_t i, struct phdr *ph)
{
    uint64_t phoff = e->is64 ? rd(e, 32, 8) : rd(e, 28, 4);
    uint16_t entsz = (uint16_t)rd(e, e->is64 ? 54 : 42, 2);
    if (entsz < (e->is64 ? 56 : 32) || !in_file(e, phoff + (uint64_t)i * entsz, entsz))
        return -1;
    size_t o = (size_t)(phoff + (uint64_t)i * entsz);
    ph->type = (uint32_t)rd(e, o, 4);
    if (e->is64) {
        ph->offset = rd(e, o + 8, 8);
        ph->vaddr = rd(e, o + 16, 8);
        ph->filesz = rd(e, o + 32, 8);
    } else {
        ph->offset = rd(e, o + 4, 4);
        ph->vaddr = rd(e, o + 8, 4);
        ph->filesz = rd(e, o + 16, 4);
    }
    return 0;
}

static size_t phnum(const struct xv_elf *e)
{
    return (size_t)rd(e, e->is64 ? 56 : 44, 2);
}

/* File offset of a virtual address, through the PT_LOAD segments. */
static int vaddr_to_off(const struct xv_elf *e, uint64_t va, uint64_t *off)
{
    struct phdr ph;
    for (size_t i = 0; i < phnum(e); i++)
        if (phdr_get(e, i, &ph) == 0 && ph.type == PT_LOAD_ && va >= ph.vaddr &&
            va - ph.vaddr < ph.filesz) {
            *off = ph.offset + (va - ph.vaddr);
            return 0;
        }
    return -1;
}

static void parse_dynamic(struct xv_elf *e, const struct phdr *dyn)
{
    size_t entsz = e->is64 ? 16 : 8;
    if (!in_file(e, dyn->offset, dyn->filesz))
        return;
    uint64_t strtab_va = 0, strsz = 0;
    size_t n = (size_t)(dyn->filesz / entsz);
    /* First pass: where the string table is. */
    for (size_t i = 0; i < n; i++) {
        size_t o = (size_t)dyn->offset + i * entsz;
        int64_t tag = (int64_t)(e->is64 ? rd(e, o, 8) : (uint64_t)(int32_t)rd(e, o, 4));
        uint64_t val = rda(e, o + entsz / 2);
        if (tag == DT_NULL_)
            break;
        if (tag == DT_STRTAB_)
            strtab_va = val;
        else if (tag == DT_STRSZ_)
            strsz = val;
        else if (tag == DT_FLAGS_1_ && (val & DF_1_PIE_))
            e->pie = 1;
    }
    uint64_t stroff;
    if (!strtab_va || vaddr_to_off(e, strtab_va, &stroff) < 0)
        return;
    uint64_t strend = strsz && stroff + strsz <= e->size ? stroff + strsz : e->size;
    for (size_t i = 0; i < n; i++) {
        size_t o = (size_t)dyn->offset + i * entsz;
        int64_t tag = (int64_t)(e->is64 ? rd(e, o, 8) : (uint64_t)(int32_t)rd(e, o, 4));
        uint64_t val = rda(e, o + entsz / 2);
        if (tag == DT_NULL_)
            break;
        const char *s = NULL;
        if (tag == DT_NEEDED_ || tag == DT_RPATH_ || tag == DT_RUNPATH_)
            s = str_at(e, stroff, strend, stroff + val);
        if (!s)
            continue;
        if (tag == DT_NEEDED_ && e->nneeded < XV_ELF_MAX_NEEDED)
            e->needed[e->nneeded++] = s;
        else if (tag == DT_RPATH_)
            e->rpath = s;
        else if (tag == DT_RUNPATH_)
            e->runpath = s;
    }
}

int xv_tool_elf_open(const char *path, struct xv_elf *e)
{
    memset(e, 0, sizeof *e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 52) {
        close(fd);
        return -ENOEXEC;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -errno;
    e->data = p;
    e->size = (size_t)st.st_size;
    const unsigned char *d = e->data;
    if (memcmp(d, "\177ELF", 4) != 0 || (d[4] != 1 && d[4] != 2) || (d[5] != 1 && d[5] != 2)) {
        xv_tool_elf_close(e);
        return -ENOEXEC;
    }
    e->is64 = d[4] == 2;
    e->be = d[5] == 2;
    if (e->is64 && e->size < 64) {
        xv_tool_elf_close(e);
        return -ENOEXEC;
    }
    e->type = (uint16_t)rd(e, 16, 2);
    e->machine = (uint16_t)rd(e, 18, 2);

    struct phdr ph;
    for (size_t i = 0; i < phnum(e); i++) {
        if (phdr_get(e, i, &ph) < 0)
            break;
        if (ph.type == PT_INTERP_ && in_file(e, ph.offset, ph.filesz)) {
            e->has_interp = 1;
            size_t n = ph.filesz < sizeof e->interp ? (size_t)ph.filesz : sizeof e->interp - 1;
            memcpy(e->interp, d + ph.offset, n);
            e->interp[n] = '\0';
            e->interp[strnlen(e->interp, n)] = '\0';
        } else if (ph.type == PT_DYNAMIC_) {
            e->has_dynamic = 1;
            parse_dynamic(e, &ph);
        }
    }
    uint64_t shoff = e->is64 ? rd(e, 40, 8) : rd(e, 32, 4);
    uint16_t shentsz = (uint16_t)rd(e, e->is64 ? 58 : 46, 2);
    uint16_t shnum = (uint16_t)rd(e, e->is64 ? 60 : 48, 2);
    e->has_shdrs = shoff && shnum && shentsz >= (e->is64 ? 64 : 40) &&
                   in_file(e, shoff, (uint64_t)shnum * shentsz);
    if (e->has_shdrs) {
        for (uint16_t i = 0; i < shnum; i++)
            if (rd(e, (size_t)(shoff + (uint64_t)i * shentsz) + 4, 4) == SHT_SYMTAB_)
                e->has_symtab = 1;
    }
    return 0;
}

void xv_tool_elf_close(struct xv_elf *e)
{
    if (e->data)
        munmap((void *)e->data, e->size);
    memset(e, 0, sizeof *e);
}

struct shdr {
    uint32_t name, type, link;
    uint64_t offset, size, entsize;
};

static int shdr_get(const struct xv_elf *e, size_t i, struct shdr *sh)
{
    uint64_t shoff = e->is64 ? rd(e, 40, 8) : rd(e, 32, 4);
    uint16_t entsz = (uint16_t)rd(e, e->is64 ? 58 : 46, 2);
    uint16_t num = (uint16_t)rd(e, e->is64 ? 60 : 48, 2);
    if (!e->has_shdrs || i >= num)
        return -1;
    size_t o = (size_t)(shoff + (uint64_t)i * entsz);
    sh->name = (uint32_t)rd(e, o, 4);
    sh->type = (uint32_t)rd(e, o + 4, 4);
    if (e->is64) {
        sh->offset = rd(e, o + 24, 8);
        sh->size = rd(e, o + 32, 8);
        sh->link = (uint32_t)rd(e, o + 40, 4);
        sh->entsize = rd(e, o + 56, 8);
    } else {
        sh->offset = rd(e, o + 16, 4);
        sh->size = rd(e, o + 20, 4);
        sh->link = (uint32_t)rd(e, o + 24, 4);
        sh->entsize = rd(e, o + 36, 4);
    }
    return 0;
}

int xv_tool_elf_has_section(const struct xv_elf *e, const char *name)
{
    if (!e->has_shdrs)
        return 0;
    uint16_t num = (uint16_t)rd(e, e->is64 ? 60 : 48, 2);
    uint16_t strndx = (uint16_t)rd(e, e->is64 ? 62 : 50, 2);
    struct shdr names;
    if (shdr_get(e, strndx, &names) < 0 || !in_file(e, names.offset, names.size))
        return 0;
    for (uint16_t i = 0; i < num; i++) {
        struct shdr sh;
        if (shdr_get(e, i, &sh) < 0)
            break;
        const char *s = str_at(e, names.offset, names.offset + names.size, names.offset + sh.name);
        if (s && strcmp(s, name) == 0)
            return 1;
    }
    return 0;
}

void xv_tool_elf_symbols(const struct xv_elf *e,
                         int (*cb)(void *ctx, const char *name, int defined), void *ctx)
{
    uint16_t num = e->has_shdrs ? (uint16_t)rd(e, e->is64 ? 60 : 48, 2) : 0;
    size_t symsz = e->is64 ? 24 : 16;
    for (uint16_t i = 0; i < num; i++) {
        struct shdr sh, str;
        if (shdr_get(e, i, &sh) < 0)
            break;
        if (sh.type != SHT_SYMTAB_ && sh.type != SHT_DYNSYM_)
            continue;
        if (shdr_get(e, sh.link, &str) < 0 || !in_file(e, sh.offset, sh.size) ||
            !in_file(e, str.offset, str.size))
            continue;
        size_t n = (size_t)(sh.size / symsz);
        for (size_t k = 1; k < n; k++) {
            size_t o = (size_t)sh.offset + k * symsz;
            uint32_t nm = (uint32_t)rd(e, o, 4);
            uint16_t shndx = (uint16_t)rd(e, o + (e->is64 ? 6 : 14), 2);
            const char *s = str_at(e, str.offset, str.offset + str.size, str.offset + nm);
            if (!s || !*s)
                continue;
            if (cb(ctx, s, shndx != 0))
                return;
        }
    }
}

int xv_tool_elf_contains(const struct xv_elf *e, const char *needle, size_t n)
{
    return memmem(e->data, e->size, needle, n) != NULL;
}

const char *xv_tool_elf_machine_name(uint16_t machine, char *buf, size_t n)
{
    switch (machine) {
    case 3: return "i386";
    case 8: return "MIPS";
    case 20: return "PowerPC";
    case 21: return "PowerPC64";
    case 22: return "s390";
    case 40: return "ARM";
    case 62: return "x86-64";
    case 183: return "AArch64";
    case 243: return "RISC-V";
    case 258: return "LoongArch";
    default:
        snprintf(buf, n, "machine %u", machine);
        return buf;
    }
}
