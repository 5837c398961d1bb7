/*
 * apply.c — find compiled-in OpenSSL among the loaded objects and patch
 * its entry points (see xv_patch.h for the scheme and its invariants).
 *
 * Page protections: the stub/trampoline page is mapped RW, filled, then
 * made RX — never both. A text page of the patched object is made RW
 * (not X) only for the few-byte write, with every signal blocked and only
 * after checking that the process has a single thread (/proc/self/task):
 * nothing can execute that page meanwhile. Its protection is then set back
 * from the PT_LOAD segment's flags.
 *
 * Thread safety: xv_patch_apply runs once, single-threaded (constructor);
 * g.real is published with release stores and read with acquire loads.
 */
#include "xv_patch.h"
#include "xv_place.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SLOT 128                     /* bytes per function in the stub page */
#define STUB 16                      /* stub (jmp *0(%rip); .quad hook) + pad */
#define NEAR_RANGE (1ull << 30)      /* search distance for the stub page */

/* Written by xv_patch_apply only (single-threaded), read by xv_patch_real. */
static struct {
    void *_Atomic real[XV_PATCH_NAMES];
} g XV_START_DATA;

void *xv_patch_real(int i)
{
    if (i < 0 || i >= XV_PATCH_NAMES)
        return NULL;
    return __atomic_load_n(&g.real[i], __ATOMIC_ACQUIRE);
}

/* ---- the loaded object ---------------------------------------------------- */

struct obj {
    char path[256];
    uintptr_t bias;           /* dlpi_addr */
    uintptr_t lo, hi;         /* span of its PT_LOAD segments */
    const ElfW(Phdr) *phdr;   /* its program headers (mapped by the loader) */
    int phnum;
};

struct find {
    uintptr_t want;   /* an address inside the object, or 0 for the main program */
    int libssl;       /* a libssl.so is loaded */
    int others;       /* objects that may export SSL_write (see system_object) */
    int found;
    struct obj o;
};

XV_START_FN static void fill_obj(struct dl_phdr_info *info, struct obj *o)
{
    o->bias = info->dlpi_addr;
    o->phdr = info->dlpi_phdr;
    o->phnum = info->dlpi_phnum;
    o->lo = UINTPTR_MAX;
    o->hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < o->lo)
            o->lo = a;
        if (a + ph->p_memsz > o->hi)
            o->hi = a + ph->p_memsz;
    }
}

/* glibc's own objects and the vDSO, which never export SSL_write: a
 * process with nothing else loaded (most programs a CI job starts) needs no
 * failing dlsym, whose error path allocates and so sets up the heap at every
 * start (issue 9). */
XV_START_FN static int system_object(const char *name)
{
    static const char *const sys[] = { "linux-vdso.so.", "ld-linux", "libc.so.", "libm.so.",
                                       "libpthread.so.", "libdl.so.", "librt.so.",
                                       "libresolv.so.", "libgcc_s.so.", NULL };
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/')
            base = p + 1;
    for (int i = 0; sys[i]; i++)
        if (xv_patch_starts(base, sys[i]))
            return 1;
    return 0;
}

XV_START_FN static int find_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    struct find *f = ud;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    /* "libssl.so" as the name's start or after a '/' (strstr of
     * "/libssl.so", without libc: see xv_patch_streq) */
    for (const char *p = name; *p; p++)
        if ((p == name || p[-1] == '/') && xv_patch_starts(p, "libssl.so"))
            f->libssl = 1;
    if (name[0] && !system_object(name)) {
        struct obj o;
        fill_obj(info, &o);
        uintptr_t self = (uintptr_t)&xv_patch_apply;
        if (!(self >= o.lo && self < o.hi))
            f->others++; /* neither the program, the agent nor glibc */
    }
    if (f->found)
        return 0;
    if (!f->want) {
        /* the main program is the first object, with an empty name */
        fill_obj(info, &f->o);
        f->found = 1;
        return 0;
    }
    struct obj o;
    fill_obj(info, &o);
    if (f->want >= o.lo && f->want < o.hi) {
        f->o = o;
        snprintf(f->o.path, sizeof f->o.path, "%s", name);
        f->found = 1;
    }
    return 0;
}

/* Protection of the segment holding address a (PROT_* bits), or -1. */
static int seg_prot(const struct obj *o, uintptr_t a, uintptr_t *seg_end)
{
    for (int i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *ph = &o->phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = o->bias + ph->p_vaddr;
        if (a >= s && a < s + ph->p_memsz) {
            *seg_end = s + ph->p_memsz;
            return ((ph->p_flags & PF_R) ? PROT_READ : 0) | ((ph->p_flags & PF_W) ? PROT_WRITE : 0) |
                   ((ph->p_flags & PF_X) ? PROT_EXEC : 0);
        }
    }
    return -1;
}

/* ---- process state -------------------------------------------------------- */

/* Number of threads of this process (entries of /proc/self/task), or -1. */
static int thread_count(void)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    int n = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            if (d->name[0] != '.')
                n++;
            off += d->reclen;
        }
    }
    syscall(SYS_close, fd);
    return n;
}

/* A page within NEAR_RANGE of [lo, hi) for the stubs, or NULL. */
static unsigned char *near_page(uintptr_t lo, uintptr_t hi)
{
    const uintptr_t step = 0x10000;
    for (uintptr_t d = step; d < NEAR_RANGE; d += step) {
        uintptr_t cand[2] = { (lo & ~(step - 1)) - d, ((hi + step - 1) & ~(step - 1)) + d - step };
        for (int k = 0; k < 2; k++) {
            if (cand[k] < 0x10000 || (k == 0 && d > lo))
                continue;
            void *p = mmap((void *)cand[k], 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED)
                continue;
            if ((uintptr_t)p != cand[k]) { /* kernel without NOREPLACE: a hint only */
                munmap(p, 4096);
                continue;
            }
            return p;
        }
    }
    return NULL;
}

/* Overwrite `len` bytes of text at `at` (see the file comment). 0 done;
 * -1 nothing written (the page stays as it was); -2 written but its
 * protection could not be set back (mprotect failing on a range it just
 * accepted: only ENOMEM splitting the mapping) — the function is then
 * patched, and the page is left readable and writable without exec rather
 * than writable and executable. */
static int write_text(const struct obj *o, uintptr_t at, const unsigned char *bytes, size_t len)
{
    uintptr_t seg_end = 0;
    int prot = seg_prot(o, at, &seg_end);
    if (prot < 0 || at + len > seg_end)
        return -1;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t p0 = at & ~(uintptr_t)(pg - 1);
    size_t span = ((at + len + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1)) - p0;
    if (mprotect((void *)p0, span, PROT_READ | PROT_WRITE) != 0)
        return -1;
    memcpy((void *)at, bytes, len);
    __builtin___clear_cache((char *)at, (char *)at + len);
    return mprotect((void *)p0, span, prot) == 0 ? 0 : -2;
}

/* ---- the whole operation -------------------------------------------------- */

static void add_name(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

static int refuse(struct xv_patch_report *rep, const char *fmt, const char *a, const char *b)
{
    snprintf(rep->why, sizeof rep->why, fmt, a, b);
    rep->covered = 0;
    return -1;
}

/* Patch the entry points of the object f, whose symbols e holds. Its own
 * function with its own (6 KiB) frame: the ordinary start, which finds
 * nothing to patch, stays on stack pages already touched (issue 9). */
static __attribute__((noinline)) int patch_object(void *const hooks[XV_PATCH_NAMES],
                                                  struct xv_patch_report *rep,
                                                  const struct find *fp,
                                                  const struct xv_patch_elf *ep, int in_exe)
{
    struct find f = *fp;
    struct xv_patch_elf e = *ep;
    rep->tried = 1;
    rep->why[0] = rep->patched[0] = '\0';
    snprintf(rep->object, sizeof rep->object, "%s", f.o.path);
    if (in_exe) {
        ssize_t n = readlink("/proc/self/exe", rep->object, sizeof rep->object - 1);
        rep->object[n > 0 ? n : 0] = '\0';
    }
    if (!e.is_elf64_x86_64)
        return refuse(rep, "%s%s", "not an x86-64 program", "");
    if (e.boringssl || e.rustls || e.go)
        return refuse(rep, "%s%s", e.go ? "Go TLS" : "BoringSSL/rustls, not OpenSSL", "");
    char why[160] = "";
    if (xv_patch_decoder_load(why, sizeof why) != 0)
        return refuse(rep, "%s%s", why, "");
    int nthr = thread_count();
    if (nthr != 1)
        return refuse(rep, "%s%s", "other threads already run (patching is only safe before they start)", "");
    unsigned char *page = near_page(f.o.lo, f.o.hi);
    if (!page)
        return refuse(rep, "%s%s", "no free page within 1 GiB of its code for the trampolines", "");

    /* Plan every function first; write nothing until all essential ones pass. */
    struct xv_patch_plan plan[XV_PATCH_NAMES];
    int ok[XV_PATCH_NAMES] = { 0 };
    for (int i = 0; i < XV_PATCH_NAMES; i++) {
        if (!e.sym[i].value || !hooks[i])
            continue;
        uintptr_t at = f.o.bias + e.sym[i].value, seg_end = 0;
        int prot = seg_prot(&f.o, at, &seg_end);
        if (prot < 0 || !(prot & PROT_EXEC)) {
            snprintf(why, sizeof why, "not in an executable segment");
        } else {
            size_t avail = e.sym[i].size + 16;
            if (at + avail > seg_end)
                avail = seg_end - at;
            uintptr_t tramp = (uintptr_t)page + (uintptr_t)i * SLOT + STUB;
            ok[i] = xv_patch_plan((const unsigned char *)at, avail, at, e.sym[i].size, tramp, &plan[i],
                                  why, sizeof why) == 0;
        }
        if (!ok[i] && xv_patch_essential[i]) {
            munmap(page, 4096);
            return refuse(rep, "%s: %s", xv_patch_names[i], why);
        }
    }
    /* Stubs and trampolines: written while RW, then RX. */
    for (int i = 0; i < XV_PATCH_NAMES; i++) {
        if (!ok[i])
            continue;
        unsigned char *slot = page + i * SLOT;
        slot[0] = 0xff;
        slot[1] = 0x25;
        memset(slot + 2, 0, 4);
        memcpy(slot + 6, &hooks[i], 8);
        memcpy(slot + STUB, plan[i].tramp, plan[i].tramp_len);
    }
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) {
        munmap(page, 4096);
        return refuse(rep, "%s%s", "mprotect of the trampoline page failed", "");
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < XV_PATCH_NAMES; i++) {
        uintptr_t at = f.o.bias + e.sym[i].value;
        if (!e.sym[i].value)
            continue;
        void *real = (void *)at;
        if (ok[i]) {
            unsigned char jmp[XV_PATCH_JMP_LEN] = { 0xe9 };
            int64_t rel = (int64_t)((uintptr_t)page + (uintptr_t)i * SLOT) - (int64_t)(at + 5);
            int32_t r32 = (int32_t)rel;
            memcpy(jmp + 1, &r32, 4);
            /* publish the trampoline before the entry can reach the hook */
            real = page + i * SLOT + STUB;
            __atomic_store_n(&g.real[i], real, __ATOMIC_RELEASE);
            if ((int64_t)r32 != rel || write_text(&f.o, at, jmp, sizeof jmp) == -1) {
                /* nothing written (or the write failed before touching the page) */
                __atomic_store_n(&g.real[i], (void *)at, __ATOMIC_RELEASE);
                ok[i] = 0;
                continue;
            }
            add_name(rep->patched, sizeof rep->patched, xv_patch_names[i]);
        }
        __atomic_store_n(&g.real[i], real, __ATOMIC_RELEASE);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    rep->covered = 1;
    for (int i = 0; i < XV_PATCH_NAMES; i++)
        if (e.sym[i].value && hooks[i] && xv_patch_essential[i] && !ok[i]) {
            /* only a failed mprotect gets here: say so, the rest stays patched */
            rep->covered = 0;
            snprintf(rep->why, sizeof rep->why, "%s: its page could not be written", xv_patch_names[i]);
        }
    return rep->covered ? 0 : -1;
}

/* Another object exporting SSL_write (a library with OpenSSL inside): its
 * own function, so that the ordinary start's stack holds no second copy of
 * the facts (the program file's read runs deepest, issue 9). */
static __attribute__((noinline)) int patch_library(void *const hooks[XV_PATCH_NAMES],
                                                   struct xv_patch_report *rep)
{
    void *q = dlsym(RTLD_NEXT, "SSL_write");
    if (!q)
        return 0;
    struct find g2 = { .want = (uintptr_t)q };
    struct xv_patch_elf e;
    dl_iterate_phdr(find_cb, &g2);
    if (!g2.found || g2.libssl || xv_patch_elf_read_symbols(g2.o.path, &e) != 0 ||
        !xv_patch_elf_has_ssl(&e) || e.needs_libssl)
        return 0;
    return patch_object(hooks, rep, &g2, &e, 0);
}

/* Bytes of code in the object's executable segments, from the program
 * headers the loader mapped (no system call). */
XV_START_FN static size_t code_bytes(const struct obj *o)
{
    size_t n = 0;
    for (int i = 0; i < o->phnum; i++)
        if (o->phdr[i].p_type == PT_LOAD && (o->phdr[i].p_flags & PF_X))
            n += o->phdr[i].p_memsz;
    return n;
}

XV_START_FN int xv_patch_apply(void *const hooks[XV_PATCH_NAMES], struct xv_patch_report *rep)
{
    /* exe: filled whole by the read below (meaningless when exe_read is 0);
     * the strings: when tried. A small program writes none of the 1.5 KiB,
     * and not the page past them (tests/perf/test_start.py). */
    rep->tried = rep->covered = rep->exe_read = rep->exe_small = rep->libssl = 0;
    struct find f = { 0 };
    dl_iterate_phdr(find_cb, &f);
    /* A program with less code than any OpenSSL cannot have it compiled
     * in: its file is not opened (open + fstat + 2 preads of /proc/self/exe
     * cost ~40-60 us of a 15 KiB program's cold start, issue 9). */
    rep->exe_small = f.found && code_bytes(&f.o) < XV_PATCH_OPENSSL_MIN_CODE;
    rep->libssl = f.libssl;
    if (f.libssl)
        return 0; /* dynamic libssl: the ordinary hooks see it */
    memcpy(f.o.path, "/proc/self/exe", sizeof "/proc/self/exe");
    rep->exe_read = f.found && !rep->exe_small &&
                    xv_patch_elf_read_symbols(f.o.path, &rep->exe) == 0;
    if (rep->exe_read && xv_patch_elf_has_ssl(&rep->exe) && !rep->exe.needs_libssl)
        return patch_object(hooks, rep, &f, &rep->exe, 1);
    return f.others ? patch_library(hooks, rep) : 0;
}
