/*
 * nextsym.c — dlsym(RTLD_NEXT, name) from the loader's own tables (see
 * xv_nextsym.h). The GNU hash lookup follows the ELF gABI's GNU hash
 * section (bloom filter, buckets, chains of hash values whose low bit ends
 * a chain) and glibc's rule for an unversioned dlsym: a symbol of version
 * index 0 or 1 is taken at once; otherwise the one non-hidden version, if
 * it is the only one.
 */
#include "xv_nextsym.h"
#include "xv_place.h"

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>

/* An object the lookup searches: its tables, from its dynamic section. */
struct obj {
    uintptr_t base;
    const uint32_t *gnu;   /* DT_GNU_HASH */
    const ElfW(Sym) *sym;  /* DT_SYMTAB */
    const char *str;       /* DT_STRTAB */
    const ElfW(Half) *ver; /* DT_VERSYM, or NULL */
};

/* Only the first object after ours and how many follow it: the objects
 * themselves are the loader's link maps (public in <link.h>), which for the
 * objects loaded at start never move nor go away. 40 bytes, on the one data
 * page start-up writes anyway (tests/perf/test_start.py). */
static struct {
    const struct link_map *first; /* the first object after ours */
    int n;                        /* objects from first on, at start */
    int usable;                   /* the snapshot answers (xv_nextsym.h) */
    uintptr_t vdso;               /* AT_SYSINFO_EHDR */
    uintptr_t self_lo, self_hi;
} g_next XV_START_DATA;

/* d_ptr as the loader left it: relocated in place on most targets, an
 * offset where the dynamic section is read-only (the vDSO's, some
 * architectures'). */
XV_START_FN static uintptr_t dyn_ptr(uintptr_t base, ElfW(Addr) v)
{
    return v < base ? base + v : v;
}

/* The tables of map; 0 when it has no GNU hash table to search. */
XV_START_FN static int obj_of(const struct link_map *m, struct obj *o)
{
    *o = (struct obj){ .base = m->l_addr };
    if (!m->l_ld)
        return 0;
    for (const ElfW(Dyn) *d = m->l_ld; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_GNU_HASH:
            o->gnu = (const void *)dyn_ptr(o->base, d->d_un.d_ptr);
            break;
        case DT_SYMTAB:
            o->sym = (const void *)dyn_ptr(o->base, d->d_un.d_ptr);
            break;
        case DT_STRTAB:
            o->str = (const void *)dyn_ptr(o->base, d->d_un.d_ptr);
            break;
        case DT_VERSYM:
            o->ver = (const void *)dyn_ptr(o->base, d->d_un.d_ptr);
            break;
        default:
            break;
        }
    }
    return o->gnu && o->sym && o->str;
}

/* Is path's last component soname…? ("/lib/x86_64-linux-gnu/libc.so.6") */
XV_START_FN static int has_name(const char *path, const char *soname)
{
    const char *base = path;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            base = p + 1;
    while (*soname && *base == *soname)
        base++, soname++;
    return *soname == '\0';
}

/* The vDSO: in the loader's list (after the program), never in its
 * search scope. */
XV_START_FN static int is_vdso(const struct link_map *m, uintptr_t ehdr)
{
    return ehdr && (uintptr_t)m->l_ld >= ehdr && (uintptr_t)m->l_ld - ehdr < 65536;
}

struct walk {
    uintptr_t self;
    uintptr_t self_base; /* dlpi_addr of the object holding self */
    int found;
};

XV_START_FN static int self_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    struct walk *w = ud;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (w->self < lo || w->self >= hi)
        return 0;
    g_next.self_lo = lo;
    g_next.self_hi = hi;
    w->self_base = info->dlpi_addr;
    w->found = 1;
    return 1;
}

/* Is LD_AUDIT set? An audit module may redirect what dlsym returns
 * (la_symbind); the snapshot would bypass it. */
XV_START_FN static int audited(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        const char *p = *e, *k = "LD_AUDIT=";
        while (*k && *p == *k)
            p++, k++;
        if (!*k && *p)
            return 1;
    }
    return 0;
}

XV_START_FN void xv_nextsym_init(const void *self)
{
    struct walk w = { .self = (uintptr_t)self };
    g_next.usable = 0;
    dl_iterate_phdr(self_cb, &w);
    if (!w.found || audited())
        return;
    /* The loader's list of objects, in load order: ours is the one at our
     * base (the main program, base 0 when not PIE, comes first). */
    const struct link_map *m = _r_debug.r_map, *me = NULL;
    for (; m && !me; m = m->l_next)
        if (m->l_addr == w.self_base && (w.self_base || m == _r_debug.r_map))
            me = m;
    if (!me)
        return;
    /* From the next object through libc, which defines every name the
     * table asks for: what comes after it (ld.so, objects an earlier
     * constructor dlopen()ed, outside the global scope) is never reached.
     * No libc after us (we were dlopen()ed after it, or are libc): ask
     * dlsym. */
    int n = 0, libc = 0;
    uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
    g_next.vdso = vdso;
    for (m = me->l_next; m && !libc; m = m->l_next, n++) {
        struct obj o;
        if (is_vdso(m, vdso))
            continue;
        if (!obj_of(m, &o))
            return; /* an object the lookup could not search */
        libc = m->l_name && has_name(m->l_name, "libc.so.");
    }
    if (!libc)
        return;
    g_next.first = me->l_next;
    g_next.n = n;
    g_next.usable = 1;
}

XV_START_FN int xv_nextsym_usable(void)
{
    return g_next.usable;
}

XV_START_FN int xv_nextsym_self_range(unsigned long *lo, unsigned long *hi)
{
    if (!g_next.self_hi)
        return 0;
    *lo = g_next.self_lo;
    *hi = g_next.self_hi;
    return 1;
}

static int nextsym_same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* -1: ask dlsym; 0: not in this object; 1: found. */
static int nextsym_search(const struct obj *o, const char *name, uint32_t h, void **out)
{
    const uint32_t nbuckets = o->gnu[0], symoffset = o->gnu[1], bloom_size = o->gnu[2],
                   shift = o->gnu[3];
    if (!nbuckets || !bloom_size)
        return 0;
    const ElfW(Addr) *bloom = (const void *)(o->gnu + 4);
    const uint32_t *buckets = (const void *)(bloom + bloom_size);
    const uint32_t *chain = buckets + nbuckets;
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word = bloom[(h / bits) % bloom_size];
    if (!((word >> (h % bits)) & (word >> ((h >> shift) % bits)) & 1))
        return 0;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return 0;
    const ElfW(Sym) *versioned = NULL;
    int nversioned = 0;
    for (;; i++) {
        uint32_t c = chain[i - symoffset];
        const ElfW(Sym) *s = &o->sym[i];
        if (((c ^ h) >> 1) == 0 && s->st_shndx != SHN_UNDEF && nextsym_same(o->str + s->st_name, name)) {
            int type = s->st_info & 0xf, bind = s->st_info >> 4; /* ST_TYPE, ST_BIND */
            if (type == STT_GNU_IFUNC || bind == STB_GNU_UNIQUE || type == STT_TLS)
                return -1; /* the loader does more than return an address */
            if (type != STT_FUNC && type != STT_NOTYPE && type != STT_OBJECT)
                return -1;
            if (!s->st_value)
                return -1;
            unsigned v = o->ver ? o->ver[i] : 1;
            if ((v & 0x7fff) < 2) {
                *out = (void *)(o->base + s->st_value);
                return 1;
            }
            if (!(v & 0x8000) && nversioned++ == 0)
                versioned = s;
        }
        if (c & 1)
            break;
    }
    if (nversioned == 1) {
        *out = (void *)(o->base + versioned->st_value);
        return 1;
    }
    return nversioned ? -1 : 0;
}

int xv_nextsym(const char *name, void **out)
{
    if (!g_next.usable)
        return XV_NEXTSYM_ASK;
    uint32_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = h * 33 + *p;
    const struct link_map *m = g_next.first;
    for (int k = 0; k < g_next.n && m; k++, m = m->l_next) {
        struct obj o;
        if (is_vdso(m, g_next.vdso))
            continue;
        if (!obj_of(m, &o))
            return XV_NEXTSYM_ASK;
        int r = nextsym_search(&o, name, h, out);
        if (r == 1)
            return XV_NEXTSYM_FOUND;
        if (r < 0)
            return XV_NEXTSYM_ASK;
    }
    return XV_NEXTSYM_ASK; /* not in libc or before it: dlsym may know better */
}
