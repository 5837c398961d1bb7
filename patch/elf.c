/*
 * elf.c — the project's one ELF reader (issue 10: one source per fact). The
 * agent reads its executable with it at start (patch/ to find compiled-in
 * OpenSSL, coverage.c for the coverage verdict) and `xenovia doctor` reads
 * programs and their libraries with it, so both see the same facts.
 *
 * Reads ELF32/ELF64 of either byte order: header, PT_INTERP, the dynamic
 * section through the program headers (DT_NEEDED/RPATH/RUNPATH/FLAGS_1,
 * so stripped-of-sections files work), sections by index or name, and the
 * symbols of .dynsym and .symtab.
 *
 * Invariant: no offset, size or count from the file is trusted; every read
 * goes through at()/rd()/str_at(), which check bounds. The file is a private
 * read-only mapping, or (the running program's own file, at every start)
 * pieces: the loaded image and two small reads; both opened and closed with
 * raw syscalls so the reader may run inside the agent's init without
 * re-entering its hooks.
 * Thread safety: reentrant; a struct xv_patch_elf_file belongs to one thread.
 */
#include "xv_patch.h"
#include "xv_place.h"
#include "xv_rawsys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
#define SHT_DYNAMIC_ 6
#define SHT_GNU_HASH_ 0x6ffffff6

XV_START_FN static int in_file(const struct xv_patch_elf_file *e, uint64_t off, uint64_t len)
{
    return off <= e->size && len <= e->size - off;
}

/* Where the file's bytes [off, off+len) are, or NULL: outside the file, or
 * (a file read in pieces) not inside one piece. */
XV_START_FN static const unsigned char *at(const struct xv_patch_elf_file *e, uint64_t off,
                                           uint64_t len)
{
    if (!in_file(e, off, len))
        return NULL;
    if (e->data)
        return e->data + off;
    /* the piece the last read found first: reads come in runs (a table's
     * entries, a header's fields); then newest first */
    const struct xv_patch_elf_piece *p = &e->piece[e->hint];
    if (off >= p->off && len <= p->len && off - p->off <= p->len - len)
        return p->mem + (off - p->off);
    for (size_t i = e->npieces; i-- > 0;) {
        p = &e->piece[i];
        if (off >= p->off && len <= p->len && off - p->off <= p->len - len) {
            /* a hint only: the file belongs to one thread (see the head) */
            ((struct xv_patch_elf_file *)(uintptr_t)e)->hint = i;
            return p->mem + (off - p->off);
        }
    }
    return NULL;
}

/* The unsigned field of `width` bytes at p (in bounds), byte order `be`. */
XV_START_FN static uint64_t field(const unsigned char *p, int be, int width)
{
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!be) {               /* the common case: one load of a known width */
        switch (width) {
        case 2: { uint16_t x; memcpy(&x, p, 2); return x; }
        case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
        case 8: memcpy(&v, p, 8); return v;
        default: return p[0];
        }
    }
#endif
    for (int i = 0; i < width; i++) {
        int shift = be ? (width - 1 - i) * 8 : i * 8;
        v |= (uint64_t)p[i] << shift;
    }
    return v;
}

/* An unsigned field of `width` bytes at `off`, in the file's byte order;
 * 0 past the end. */
XV_START_FN static uint64_t rd(const struct xv_patch_elf_file *e, size_t off, int width)
{
    const unsigned char *p = at(e, off, (uint64_t)width);
    return p ? field(p, e->be, width) : 0;
}

/* A NUL-terminated string at `off` that lies wholly inside [lo, hi). */
XV_START_FN static const char *str_at(const struct xv_patch_elf_file *e, uint64_t lo, uint64_t hi,
                                       uint64_t off)
{
    if (hi > e->size)
        hi = e->size;
    if (off < lo || off >= hi)
        return NULL;
    const char *s = (const char *)at(e, off, hi - off);
    if (!s)
        return NULL;
    /* names are short: a loop, not memchr (a page of libc's code that a
     * program start would not otherwise touch, issue 9) */
    for (uint64_t i = 0; i < hi - off; i++)
        if (!s[i])
            return s;
    return NULL;
}

struct phdr {
    uint32_t type;
    uint64_t offset, vaddr, filesz;
};

XV_START_FN static size_t phnum(const struct xv_patch_elf_file *e)
{
    return e->phcount;
}

XV_START_FN static int phdr_get(const struct xv_patch_elf_file *e, size_t i, struct phdr *ph)
{
    if (i >= e->phcount)
        return -1;
    /* the entry found once, its fields read in place */
    const unsigned char *p = at(e, e->phoff + (uint64_t)i * e->phentsz, e->is64 ? 56 : 32);
    if (!p)
        return -1;
    ph->type = (uint32_t)field(p, e->be, 4);
    if (e->is64) {
        ph->offset = field(p + 8, e->be, 8);
        ph->vaddr = field(p + 16, e->be, 8);
        ph->filesz = field(p + 32, e->be, 8);
    } else {
        ph->offset = field(p + 4, e->be, 4);
        ph->vaddr = field(p + 8, e->be, 4);
        ph->filesz = field(p + 16, e->be, 4);
    }
    return 0;
}

/* File offset of a virtual address, through the PT_LOAD segments. */
XV_START_FN static int vaddr_to_off(const struct xv_patch_elf_file *e, uint64_t va, uint64_t *off)
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

XV_START_FN static uint16_t shnum(const struct xv_patch_elf_file *e);

/* DT_NEEDED, DT_RPATH, DT_RUNPATH and DF_1_PIE from PT_DYNAMIC. */
XV_START_FN static void parse_dynamic(struct xv_patch_elf_file *e, const struct phdr *dyn)
{
    size_t entsz = e->is64 ? 16 : 8;
    size_t n = (size_t)(dyn->filesz / entsz);
    const unsigned char *table = at(e, dyn->offset, (uint64_t)n * entsz); /* found once */
    if (!table)
        return;
    int w = e->is64 ? 8 : 4;
    uint64_t strtab_va = 0, strsz = 0;
    /* First pass: where the string table is. */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *t = table + i * entsz;
        int64_t tag = (int64_t)(e->is64 ? field(t, e->be, 8) : (uint64_t)(int32_t)field(t, e->be, 4));
        uint64_t val = field(t + w, e->be, w);
        if (tag == DT_NULL_)
            break;
        if (tag == DT_STRTAB_)
            strtab_va = val;
        else if (tag == DT_STRSZ_)
            strsz = val;
        else if (tag == DT_FLAGS_1_ && (val & DF_1_PIE_))
            e->pie = 1;
    }
    uint64_t stroff, strend;
    if (!e->data) {
        /* Read in pieces, .dynamic is the loaded one, whose DT_STRTAB the
         * loader has turned into an address (glibc adds the load bias):
         * the string table is the one its section header names (parse()). */
        if (!e->dynstr_size || e->dynamic_off != dyn->offset)
            return;
        stroff = e->dynstr_off;
        strend = e->dynstr_off + e->dynstr_size;
    } else {
        if (!strtab_va || vaddr_to_off(e, strtab_va, &stroff) < 0)
            return;
        strend = strsz && stroff + strsz <= e->size ? stroff + strsz : e->size;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *t = table + i * entsz;
        int64_t tag = (int64_t)(e->is64 ? field(t, e->be, 8) : (uint64_t)(int32_t)field(t, e->be, 4));
        uint64_t val = field(t + w, e->be, w);
        if (tag == DT_NULL_)
            break;
        const char *s = NULL;
        if (tag == DT_NEEDED_ || tag == DT_RPATH_ || tag == DT_RUNPATH_)
            s = str_at(e, stroff, strend, stroff + val);
        if (!s)
            continue;
        if (tag == DT_NEEDED_ && e->nneeded < XV_PATCH_ELF_MAX_NEEDED)
            e->needed[e->nneeded++] = s;
        else if (tag == DT_RPATH_)
            e->rpath = s;
        else if (tag == DT_RUNPATH_)
            e->runpath = s;
    }
}

/* Section header count (0 when unusable). */
XV_START_FN static uint16_t shnum(const struct xv_patch_elf_file *e)
{
    return e->shcount;
}

static uint32_t section_other(const struct xv_patch_elf_file *e, size_t o, struct xv_patch_elf_shdr *sh);

XV_START_FN int xv_patch_elf_section(const struct xv_patch_elf_file *e, size_t i, struct xv_patch_elf_shdr *sh)
{
    memset(sh, 0, sizeof *sh);
    if (i >= shnum(e))
        return -1;
    size_t o = (size_t)(e->shoff + (uint64_t)i * e->shentsz);
    uint32_t name;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char *p = e->is64 && !e->be ? at(e, o, 64) : NULL;
    if (p) {
        /* the common case, read as the record it is */
        struct {
            uint32_t name, type;
            uint64_t flags, addr, offset, size;
            uint32_t link, info;
            uint64_t align, entsize;
        } r;
        memcpy(&r, p, sizeof r);
        name = r.name;
        sh->type = r.type;
        sh->flags = r.flags;
        sh->addr = r.addr;
        sh->offset = r.offset;
        sh->size = r.size;
        sh->link = r.link;
        sh->entsize = r.entsize;
    } else
#endif
        name = section_other(e, o, sh);
    sh->in_file = in_file(e, sh->offset, sh->size);
    /* the name, from the section-name string table (placed by parse()) */
    const char *s = e->shstr_size ? str_at(e, e->shstr_off, e->shstr_off + e->shstr_size,
                                           e->shstr_off + name)
                                  : NULL;
    sh->name = s ? s : "";
    return 0;
}

/* A section header of a 32-bit or big-endian file, field by field (doctor
 * reads those; the agent's own program never is one: not start-up code).
 * Returns sh_name. */
static __attribute__((noinline, cold)) uint32_t section_other(const struct xv_patch_elf_file *e,
                                                              size_t o, struct xv_patch_elf_shdr *sh)
{
    uint32_t name;
    if (e->is64) {
        name = (uint32_t)rd(e, o, 4);
        sh->type = (uint32_t)rd(e, o + 4, 4);
        sh->flags = rd(e, o + 8, 8);
        sh->addr = rd(e, o + 16, 8);
        sh->offset = rd(e, o + 24, 8);
        sh->size = rd(e, o + 32, 8);
        sh->link = (uint32_t)rd(e, o + 40, 4);
        sh->entsize = rd(e, o + 56, 8);
    } else {
        name = (uint32_t)rd(e, o, 4);
        sh->type = (uint32_t)rd(e, o + 4, 4);
        sh->flags = rd(e, o + 8, 4);
        sh->addr = rd(e, o + 12, 4);
        sh->offset = rd(e, o + 16, 4);
        sh->size = rd(e, o + 20, 4);
        sh->link = (uint32_t)rd(e, o + 24, 4);
        sh->entsize = rd(e, o + 36, 4);
    }
    return name;
}

size_t xv_patch_elf_nsections(const struct xv_patch_elf_file *e)
{
    return shnum(e);
}

XV_START_FN int xv_patch_elf_find_section(const struct xv_patch_elf_file *e, const char *name,
                              struct xv_patch_elf_shdr *sh)
{
    for (size_t i = 0; i < shnum(e); i++)
        if (xv_patch_elf_section(e, i, sh) == 0 && xv_patch_streq(sh->name, name))
            return 0;
    memset(sh, 0, sizeof *sh);
    return -1;
}

/* The file's size by its descriptor (raw calls: see the file's head). */
XV_START_FN static int open_file(const char *path, struct stat *st)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (xv_fstat_raw(fd, st) < 0) {
        int err = errno;
        syscall(SYS_close, fd);
        return -err;
    }
    if (!S_ISREG(st->st_mode) || st->st_size < 52) {
        syscall(SYS_close, fd);
        return -ENOEXEC;
    }
    return fd;
}

XV_START_FN static int parse(struct xv_patch_elf_file *e);

XV_START_FN int xv_patch_elf_open(const char *path, struct xv_patch_elf_file *e)
{
    memset(e, 0, sizeof *e);
    struct stat st;
    int fd = open_file(path, &st);
    if (fd < 0)
        return fd;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    syscall(SYS_close, fd);
    if (p == MAP_FAILED)
        return -err;
    e->data = p;
    e->size = (size_t)st.st_size;
    return parse(e);
}

XV_START_FN static void add_piece(struct xv_patch_elf_file *e, uint64_t off, uint64_t len,
                                  const void *mem)
{
    if (e->npieces < XV_PATCH_ELF_PIECES)
        e->piece[e->npieces++] = (struct xv_patch_elf_piece){ off, len, mem };
}

/* [off, off+len) of the open file into buf: 0, or -1 (short or failed). */
XV_START_FN static int read_at(int fd, void *buf, uint64_t off, uint64_t len)
{
    return (ssize_t)syscall(SYS_pread64, fd, buf, (size_t)len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

XV_START_FN int xv_patch_elf_open_self(struct xv_patch_elf_file *e, struct xv_patch_elf_sparse *sp)
{
    memset(e, 0, sizeof *e);
    sp->fd = -1;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    size_t n = (size_t)getauxval(AT_PHNUM);
    if (sizeof(ElfW(Addr)) != 8 || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ || !ph || !n)
        return -1;
    /* the load bias, from where the program headers are against where the
     * file says they are */
    uintptr_t bias = 0;
    size_t i;
    for (i = 0; i < n && ph[i].p_type != PT_PHDR; i++)
        ;
    if (i == n)
        return -1;
    bias = (uintptr_t)ph - ph[i].p_vaddr;
    /* the read-only loaded segments hold the file's bytes as they are;
     * .dynamic (in the writable one) only gains DT_DEBUG's value */
    for (i = 0; i < n; i++)
        if ((ph[i].p_type == PT_LOAD && !(ph[i].p_flags & PF_W)) || ph[i].p_type == PT_DYNAMIC)
            add_piece(e, ph[i].p_offset, ph[i].p_filesz, (const void *)(bias + ph[i].p_vaddr));
    struct stat st;
    int fd = open_file("/proc/self/exe", &st);
    if (fd < 0)
        return -1;
    e->size = (size_t)st.st_size;
    e->is64 = 1;
    /* the header (from the image) says where the section headers are */
    uint64_t shoff = rd(e, 40, 8), shentsz = rd(e, 58, 2), num = rd(e, 60, 2), strndx = rd(e, 62, 2);
    int ok = at(e, 0, 64) && shoff && shentsz == 64 && num * 64 <= sizeof sp->shdrs &&
             strndx < num && in_file(e, shoff, num * 64) &&
             read_at(fd, sp->shdrs, shoff, num * 64) == 0;
    if (ok) {
        add_piece(e, shoff, num * 64, sp->shdrs);
        uint64_t noff = rd(e, shoff + strndx * 64 + 24, 8), nsz = rd(e, shoff + strndx * 64 + 32, 8);
        ok = nsz <= sizeof sp->names && in_file(e, noff, nsz) && read_at(fd, sp->names, noff, nsz) == 0;
        if (ok)
            add_piece(e, noff, nsz, sp->names);
    }
    ok = ok && parse(e) == 0 && e->is64 && !e->be && !e->pieces_short;
    if (ok && e->gnu_hash)
        ok = at(e, e->dyn[0].offset, e->dyn[0].size) != NULL;
    if (!ok) {
        syscall(SYS_close, fd);
        memset(e, 0, sizeof *e);
        return -1;
    }
    sp->fd = fd;
    return 0;
}

XV_START_FN int xv_patch_elf_map_whole(struct xv_patch_elf_file *e, struct xv_patch_elf_sparse *sp)
{
    struct stat st;
    if (e->data || sp->fd < 0 || xv_fstat_raw(sp->fd, &st) != 0 || (size_t)st.st_size != e->size)
        return -1;
    void *p = mmap(NULL, e->size, PROT_READ, MAP_PRIVATE, sp->fd, 0);
    if (p == MAP_FAILED)
        return -1;
    e->data = p; /* from now on every read is of the mapping; the parse stands */
    return 0;
}

XV_START_FN void xv_patch_elf_sparse_done(struct xv_patch_elf_sparse *sp)
{
    if (sp->fd >= 0)
        syscall(SYS_close, sp->fd);
    sp->fd = -1;
}

/* What every reader asks of a file whose bytes `at` finds: header, program
 * headers, .dynamic, the section headers' place and one pass over them. */
XV_START_FN static int parse(struct xv_patch_elf_file *e)
{
    const unsigned char *d = at(e, 0, 16);
    /* four byte compares: no call of libc's memcmp at start */
    if (!d || d[0] != 0x7f || d[1] != 'E' || d[2] != 'L' || d[3] != 'F' || (d[4] != 1 && d[4] != 2) || (d[5] != 1 && d[5] != 2) ||
        (d[4] == 2 && !at(e, 0, 64)) || !at(e, 0, 52)) {
        xv_patch_elf_close(e);
        return -ENOEXEC;
    }
    e->is64 = d[4] == 2;
    e->be = d[5] == 2;
    e->type = (uint16_t)rd(e, 16, 2);
    e->machine = (uint16_t)rd(e, 18, 2);
    /* the program header table's place, once (phdr_get reads it per entry) */
    e->phoff = e->is64 ? rd(e, 32, 8) : rd(e, 28, 4);
    e->phentsz = (uint16_t)rd(e, e->is64 ? 54 : 42, 2);
    e->phcount = e->phentsz >= (e->is64 ? 56 : 32) ? (uint16_t)rd(e, e->is64 ? 56 : 44, 2) : 0;

    uint64_t shoff = e->is64 ? rd(e, 40, 8) : rd(e, 32, 4);
    uint16_t shentsz = (uint16_t)rd(e, e->is64 ? 58 : 46, 2);
    uint16_t num = (uint16_t)rd(e, e->is64 ? 60 : 48, 2);
    uint16_t strndx = (uint16_t)rd(e, e->is64 ? 62 : 50, 2);
    e->has_shdrs = shoff && num && shentsz >= (e->is64 ? 64 : 40) &&
                   in_file(e, shoff, (uint64_t)num * shentsz);
    if (e->has_shdrs) {
        e->shoff = shoff;
        e->shentsz = shentsz;
        e->shcount = num;
        /* the section-name string table's own header, read raw */
        if (strndx < num) {
            size_t so = (size_t)(shoff + (uint64_t)strndx * shentsz);
            uint64_t noff = e->is64 ? rd(e, so + 24, 8) : rd(e, so + 16, 4);
            uint64_t nsz = e->is64 ? rd(e, so + 32, 8) : rd(e, so + 20, 4);
            if (nsz && in_file(e, noff, nsz)) {
                e->shstr_off = noff;
                e->shstr_size = nsz;
            }
        }
    }
    /* One pass over the section headers for what every start asks (issue 9:
     * a search per question parsed every header several times over) */
    struct xv_patch_elf_shdr sh;
    size_t hash = 0; /* index + 1 of the first GNU hash section */
    for (size_t i = 0; i < shnum(e); i++) {
        if (xv_patch_elf_section(e, i, &sh) != 0)
            continue;
        if (sh.type == XV_PATCH_SHT_SYMTAB)
            e->has_symtab = 1;
        if ((sh.type == XV_PATCH_SHT_DYNSYM || sh.type == SHT_DYNAMIC_) && !e->data) {
            /* read in pieces: an export table outside them would be missed
             * by a scan, .dynamic's names are read through its header */
            struct xv_patch_elf_shdr str;
            int ok = xv_patch_elf_section(e, sh.link, &str) == 0 && at(e, sh.offset, sh.size) &&
                     at(e, str.offset, str.size);
            if (!ok)
                e->pieces_short = 1;
            else if (sh.type == SHT_DYNAMIC_ && !e->dynstr_size) {
                e->dynamic_off = sh.offset;
                e->dynstr_off = str.offset;
                e->dynstr_size = str.size;
            }
        }
        if (sh.type == SHT_GNU_HASH_ && !hash)
            hash = i + 1;
        if (sh.name[0] == '.' && sh.name[1] == 'g' &&
            (xv_patch_streq(sh.name, ".go.buildinfo") || xv_patch_streq(sh.name, ".gopclntab")))
            e->go_sections = 1;
        if (sh.name[0] == '.' && sh.name[1] == 'n' && xv_patch_streq(sh.name, ".note.go.buildid"))
            e->go_sections = 1;
    }
    /* the GNU hash table, its .dynsym and their .dynstr, read once for
     * every xv_patch_elf_dynsym_lookup */
    struct xv_patch_elf_shdr *dy = e->dyn;
    e->gnu_hash = hash && xv_patch_elf_section(e, hash - 1, &dy[0]) == 0 && dy[0].in_file &&
                  dy[0].size >= 16 && xv_patch_elf_section(e, dy[0].link, &dy[1]) == 0 &&
                  dy[1].type == XV_PATCH_SHT_DYNSYM && dy[1].in_file &&
                  xv_patch_elf_section(e, dy[1].link, &dy[2]) == 0 && dy[2].in_file;
    struct phdr ph;
    for (size_t i = 0; i < phnum(e); i++) {
        if (phdr_get(e, i, &ph) < 0)
            break;
        const unsigned char *ip;
        if (ph.type == PT_INTERP_ && (ip = at(e, ph.offset, ph.filesz)) != NULL) {
            e->has_interp = 1;
            size_t n = ph.filesz < sizeof e->interp ? (size_t)ph.filesz : sizeof e->interp - 1;
            memcpy(e->interp, ip, n);
            e->interp[n] = '\0';
        } else if (ph.type == PT_DYNAMIC_) {
            e->has_dynamic = 1;
            parse_dynamic(e, &ph);
        }
    }
    return 0;
}

/* sh_type of section i, without the rest of its header (0 past the end). */
XV_START_FN static uint32_t section_type(const struct xv_patch_elf_file *e, size_t i)
{
    return (uint32_t)rd(e, (size_t)(e->shoff + (uint64_t)i * e->shentsz) + 4, 4);
}

XV_START_FN void xv_patch_elf_close(struct xv_patch_elf_file *e)
{
    if (e->data)
        munmap((void *)e->data, e->size);
    memset(e, 0, sizeof *e);
}

/* The bytes of a symbol table and its string table, found once. */
struct symtab {
    const unsigned char *sym; /* the entries */
    size_t n;                 /* their count */
    const char *str;          /* the names */
    uint64_t strsz;
    int terminated;           /* str ends in a NUL byte: every name starting
                                 inside it ends there, no search per name */
};

XV_START_FN static int symtab_get(const struct xv_patch_elf_file *e, const struct xv_patch_elf_shdr *sh,
                                  const struct xv_patch_elf_shdr *str, struct symtab *t)
{
    t->sym = at(e, sh->offset, sh->size);
    t->str = (const char *)at(e, str->offset, str->size);
    if (!t->sym || !t->str)
        return -1;
    t->n = (size_t)(sh->size / (e->is64 ? 24 : 16));
    t->strsz = str->size;
    t->terminated = str->size && t->str[str->size - 1] == '\0';
    return 0;
}

static uint32_t sym_other(const struct xv_patch_elf_file *e, const struct symtab *t, size_t k,
                          struct xv_patch_elf_sym *s);

/* Entry k of table t into *s: 1, or 0 for an import, a value of 0 or a
 * missing name (what no caller wants). */
XV_START_FN static inline __attribute__((always_inline)) int
read_sym(const struct xv_patch_elf_file *e, const struct symtab *t, size_t k,
         struct xv_patch_elf_sym *s)
{
    uint32_t nm;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (e->is64 && !e->be) {
        /* the hot case (node: ~75k entries), read as the record it is */
        struct {
            uint32_t name;
            uint8_t info, other;
            uint16_t shndx;
            uint64_t value, size;
        } r;
        memcpy(&r, t->sym + k * 24, sizeof r);
        nm = r.name;
        s->info = r.info;
        s->shndx = r.shndx;
        s->value = r.value;
        s->size = r.size;
    } else
#endif
        nm = sym_other(e, t, k, s);
    if (s->shndx == 0 || !s->value)
        return 0;                          /* an import: says nothing about this file */
    if (nm >= t->strsz)
        return 0;
    if (t->terminated) {
        s->name = t->str + nm;
    } else {
        s->name = NULL;
        for (uint64_t i = nm; i < t->strsz && !s->name; i++)
            if (!t->str[i])
                s->name = t->str + nm;
    }
    return s->name && *s->name;
}

/* Entry k of a 32-bit or big-endian file's table (doctor's files; not
 * start-up code). Returns st_name. */
static __attribute__((noinline, cold)) uint32_t sym_other(const struct xv_patch_elf_file *e,
                                                          const struct symtab *t, size_t k,
                                                          struct xv_patch_elf_sym *s)
{
    uint32_t nm;
    {
        /* the table as a file of its own: rd() reads its byte order */
        struct xv_patch_elf_file v = *e;
        v.data = t->sym;
        v.size = t->n * (e->is64 ? 24 : 16);
        size_t o = k * (e->is64 ? 24 : 16);
        if (e->is64) {
            nm = (uint32_t)rd(&v, o, 4);
            s->info = (uint8_t)rd(&v, o + 4, 1);
            s->shndx = (uint16_t)rd(&v, o + 6, 2);
            s->value = rd(&v, o + 8, 8);
            s->size = rd(&v, o + 16, 8);
        } else {
            nm = (uint32_t)rd(&v, o, 4);
            s->value = rd(&v, o + 4, 4);
            s->size = rd(&v, o + 8, 4);
            s->info = (uint8_t)rd(&v, o + 12, 1);
            s->shndx = (uint16_t)rd(&v, o + 14, 2);
        }
    }
    return nm;
}

XV_START_FN int xv_patch_elf_symbols(const struct xv_patch_elf_file *e, uint32_t table, const char *first,
                         int (*cb)(void *ctx, const struct xv_patch_elf_sym *s), void *ctx)
{
    /* `first` as a bitmap of bytes: the loop below stays tight (no call per
     * symbol), so the CPU overlaps its cache misses — about half the time
     * on node's .dynsym */
    unsigned char want[32];
    memset(want, first ? 0 : 0xff, sizeof want);
    for (const char *p = first; p && *p; p++)
        want[(unsigned char)*p >> 3] |= (unsigned char)(1u << (*p & 7));
    for (size_t i = 0; i < shnum(e); i++) {
        struct xv_patch_elf_shdr sh, str;
        if (section_type(e, i) != table)
            continue;
        if (xv_patch_elf_section(e, i, &sh) < 0 || sh.type != table || !sh.in_file)
            continue;
        struct symtab t;
        if (xv_patch_elf_section(e, sh.link, &str) < 0 || !str.in_file ||
            symtab_get(e, &sh, &str, &t) != 0)
            continue;
        /* A string table ending in NUL (as every well-formed one does)
         * terminates any name that starts inside it: no per-name search
         * (node's .dynsym holds ~100k names; the agent reads it at start). */
        for (size_t k = 1; k < t.n; k++) {
            struct xv_patch_elf_sym s;
            s.dynamic = table == XV_PATCH_SHT_DYNSYM;
            if (!read_sym(e, &t, k, &s))
                continue;
            unsigned char c0 = (unsigned char)s.name[0];
            if (!(want[c0 >> 3] & (1u << (c0 & 7))))
                continue;
            int rc = cb(ctx, &s);
            if (rc)
                return rc;
        }
    }
    return 0;
}

XV_START_FN int xv_patch_elf_dynsym_lookup(const struct xv_patch_elf_file *e, const char *name,
                                           struct xv_patch_elf_sym *out)
{
    if (!e->gnu_hash)
        return -1;
    const struct xv_patch_elf_shdr gh = e->dyn[0], sh = e->dyn[1], str = e->dyn[2];
    struct symtab t;
    if (symtab_get(e, &sh, &str, &t) != 0)
        return -1;
    size_t word = e->is64 ? 8 : 4;
    uint64_t o = gh.offset, end = gh.offset + gh.size;
    uint32_t nbuckets = (uint32_t)rd(e, (size_t)o, 4), symoffset = (uint32_t)rd(e, (size_t)o + 4, 4);
    uint32_t bloom_size = (uint32_t)rd(e, (size_t)o + 8, 4), shift = (uint32_t)rd(e, (size_t)o + 12, 4);
    uint64_t buckets = o + 16 + (uint64_t)bloom_size * word, chain = buckets + 4ull * nbuckets;
    if (!nbuckets || !bloom_size || chain > end || symoffset > t.n)
        return -1;
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    unsigned bits = (unsigned)word * 8;
    uint64_t bw = rd(e, (size_t)(o + 16 + (uint64_t)((h / bits) % bloom_size) * word), (int)word);
    uint64_t mask = (1ull << (h % bits)) | (1ull << ((h >> shift) % bits));
    if ((bw & mask) != mask)
        return 0;
    uint32_t i = (uint32_t)rd(e, (size_t)(buckets + 4ull * (h % nbuckets)), 4);
    if (i < symoffset)
        return 0;
    for (; i < t.n; i++) {
        uint64_t co = chain + 4ull * (i - symoffset);
        if (co + 4 > end)
            return -1;                     /* a chain past its table: malformed */
        uint32_t h2 = (uint32_t)rd(e, (size_t)co, 4);
        if ((h | 1) == (h2 | 1) && read_sym(e, &t, i, out) && xv_patch_streq(out->name, name)) {
            out->dynamic = 1;
            return 1;
        }
        if (h2 & 1)
            return 0;
    }
    return -1;
}

int xv_patch_elf_contains(const struct xv_patch_elf_file *e, uint64_t off, uint64_t len,
                          const char *needle, size_t n)
{
    const unsigned char *p = at(e, off, len);
    return p && memmem(p, (size_t)len, needle, n) != NULL;
}

unsigned xv_patch_elf_contains_any(const struct xv_patch_elf_file *e, uint64_t off, uint64_t len,
                                   const char *anchors, const char *const needles[], size_t count)
{
    size_t nlen[32], pos[32];
    unsigned want = 0, found = 0;
    const unsigned char *base = at(e, off, len);
    if (count > 32 || !base)
        return 0;
    for (size_t i = 0; i < count; i++) {
        const char *a = strpbrk(needles[i], anchors);
        if (!a)
            return 0; /* every needle must hold an anchor byte */
        pos[i] = (size_t)(a - needles[i]);
        nlen[i] = strlen(needles[i]);
        want |= 1u << i;
    }
    const unsigned char *end = base + len;
    /* Large ranges (python's .rodata is 2 MB): map the pages in one call
     * rather than one fault per 64 KiB (MADV_POPULATE_READ, Linux 5.14;
     * older kernels: ordinary faults). Small ones fault faster alone. */
    if (len >= (256u << 10)) {
        int saved = errno;
        uintptr_t lo = (uintptr_t)base & ~(uintptr_t)4095;
        syscall(SYS_madvise, (void *)lo, (size_t)((uintptr_t)end - lo), 22 /* MADV_POPULATE_READ */);
        errno = saved;
    }
    /* One memchr pass per anchor byte; at each occurrence, the needles
     * whose first anchor is that byte are compared where it lines up. */
    for (const char *an = anchors; *an && found != want; an++) {
        unsigned mine = 0;
        for (size_t i = 0; i < count; i++)
            if (needles[i][pos[i]] == *an)
                mine |= 1u << i;
        const unsigned char *p = base;
        while ((found & mine) != mine && p < end &&
               (p = memchr(p, (unsigned char)*an, (size_t)(end - p))) != NULL) {
            size_t k = (size_t)(p - base);
            for (size_t i = 0; i < count; i++)
                if (((mine & ~found) >> i) & 1 && k >= pos[i] && len - (k - pos[i]) >= nlen[i] &&
                    memcmp(base + k - pos[i], needles[i], nlen[i]) == 0)
                    found |= 1u << i;
            p++;
        }
    }
    return found;
}

const char *xv_patch_elf_machine_name(uint16_t machine, char *buf, size_t n)
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

int xv_patch_file_bytes(const char *path, uint64_t off, unsigned char *buf, size_t len)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = (ssize_t)syscall(SYS_pread64, fd, buf, len, (off_t)off);
    syscall(SYS_close, fd);
    return n == (ssize_t)len ? 0 : -1;
}
