/*
 * test_patch.c — unit tests of patch/: the planner on hand-assembled
 * prologues (ordinary frames, Node's SSL_get_error and SSL_get_shutdown
 * shapes, RIP-relative operands, every refusal), a full patch executed in
 * this process (entry jump -> hook -> trampoline -> rest of the original),
 * the ELF symbol lookup, and xv_patch_apply in a process without OpenSSL.
 * Needs libZydis.so.4.0 (libzydis4.0); without it the planner tests are
 * skipped with the reason. Single-threaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "xv_patch.h"

#define A 0x401000ull        /* a function's address in the planner tests */
#define T (A + 0x100000ull)  /* its trampoline's */

static int need_decoder(void)
{
    char why[160];
    if (xv_patch_decoder_load(why, sizeof why) != 0) {
        print_message("skipped: %s\n", why);
        return 0;
    }
    return 1;
}

static int plan(const unsigned char *code, size_t len, uint64_t size, struct xv_patch_plan *p,
                char *why, size_t cap)
{
    return xv_patch_plan(code, len, A, size, T, p, why, cap);
}

/* The jump back at the end of a trampoline goes to `want`. */
static void assert_jump_back(const struct xv_patch_plan *p, uint64_t want)
{
    assert_true(p->tramp_len >= 14);
    const unsigned char *j = p->tramp + p->tramp_len - 14;
    assert_int_equal(j[0], 0xff);
    assert_int_equal(j[1], 0x25);
    uint64_t to;
    memcpy(&to, j + 6, 8);
    assert_int_equal(to, want);
}

/* Node's SSL_write: push %rbp; mov %rsp,%rbp; push %r14; ... — copied as is. */
static void test_frame_prologue(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    static const unsigned char f[] = { 0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x41, 0x55, 0x41,
                                       0x54, 0x48, 0x83, 0xec, 0x48, 0xc3 };
    struct xv_patch_plan p;
    char why[160] = "";
    assert_int_equal(plan(f, sizeof f, sizeof f, &p, why, sizeof why), 0);
    assert_int_equal(p.win, 6); /* push, mov, push %r14 */
    assert_memory_equal(p.tramp, f, 6);
    assert_int_equal(p.tramp_len, 6 + 14);
    assert_jump_back(&p, A + 6);
}

/* Node's SSL_get_error: xor; test; jle +0x10; ret — the jle is relocated
 * to a rel32 form that still lands on the original target. */
static void test_get_error_shape(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    unsigned char f[0x20];
    memset(f, 0x90, sizeof f);
    static const unsigned char head[] = { 0x31, 0xc0, 0x85, 0xf6, 0x7e, 0x0a, 0xc3 };
    memcpy(f, head, sizeof head);
    f[0x10] = 0x55;
    f[0x11] = 0xc3;
    struct xv_patch_plan p;
    char why[160] = "";
    assert_int_equal(plan(f, sizeof f, sizeof f, &p, why, sizeof why), 0);
    assert_int_equal(p.win, 6);
    assert_memory_equal(p.tramp, f, 4);        /* xor, test copied */
    assert_int_equal(p.tramp[4], 0x0f);        /* jle rel32 */
    assert_int_equal(p.tramp[5], 0x8e);
    int32_t rel;
    memcpy(&rel, p.tramp + 6, 4);
    assert_int_equal(T + 10 + (int64_t)rel, A + 0x10);
    assert_jump_back(&p, A + 6);
}

/* SSL_get_shutdown: 4 bytes then padding — the padding may be overwritten. */
static void test_short_function_padding(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    static const unsigned char f[] = { 0x8b, 0x47, 0x44, 0xc3, 0x66, 0x2e, 0x0f, 0x1f, 0x84,
                                       0, 0, 0, 0, 0, 0x90, 0x90 };
    struct xv_patch_plan p;
    char why[160] = "";
    assert_int_equal(plan(f, sizeof f, 4, &p, why, sizeof why), 0);
    static const unsigned char g[] = { 0x8b, 0x47, 0x44, 0xc3, 0x55, 0x48, 0x89, 0xe5 };
    assert_int_equal(plan(g, sizeof g, 4, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "not followed by padding"));
}

/* A RIP-relative load keeps its absolute target from the trampoline. */
static void test_rip_relative(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    static const unsigned char f[] = { 0x48, 0x8b, 0x05, 0x00, 0x01, 0x00, 0x00, 0xc3 };
    struct xv_patch_plan p;
    char why[160] = "";
    assert_int_equal(plan(f, sizeof f, sizeof f, &p, why, sizeof why), 0);
    assert_int_equal(p.win, 7);
    assert_int_equal(p.tramp[0], 0x48);
    assert_int_equal(p.tramp[1], 0x8b);
    assert_int_equal(p.tramp[2], 0x05);
    int32_t d;
    memcpy(&d, p.tramp + 3, 4);
    assert_int_equal(T + 7 + (int64_t)d, A + 7 + 0x100);
}

/* Refusals: a branch from the body into the patched bytes, a branch inside
 * the window, an instruction the encoder cannot move (loop rel8 far away),
 * no size. */
static void test_refusals(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    struct xv_patch_plan p;
    char why[160];
    /* xor; test; nop; nop; ... ; jmp back to +2 */
    unsigned char f[16];
    memset(f, 0x90, sizeof f);
    f[0] = 0x31; f[1] = 0xc0; f[2] = 0x85; f[3] = 0xf6;
    f[10] = 0xeb; f[11] = (unsigned char)(2 - 12); /* jmp +2 */
    f[12] = 0xc3;
    why[0] = '\0';
    assert_int_equal(plan(f, sizeof f, sizeof f, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "jumps into the patched bytes"));
    /* xor; je back to the entry (a target inside the window); ... */
    static const unsigned char g[] = { 0x31, 0xc0, 0x74, 0xfc, 0x90, 0x90, 0x90, 0xc3 };
    why[0] = '\0';
    assert_int_equal(plan(g, sizeof g, sizeof g, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "inside the displaced bytes"));
    /* loop rel8 to +0x20: the trampoline is 1 MiB away, loop has no rel32 form */
    unsigned char h[0x30];
    memset(h, 0x90, sizeof h);
    h[0] = 0xe2; h[1] = 0x1e; h[2] = 0x90; h[3] = 0x90; h[4] = 0x90;
    h[0x20] = 0xc3;
    why[0] = '\0';
    assert_int_equal(plan(h, sizeof h, sizeof h, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "cannot be relocated"));
    why[0] = '\0';
    assert_int_equal(plan(h, sizeof h, 0, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "no size"));
}

/* ---- a real patch, executed ------------------------------------------------ */

typedef int (*fn_t)(int);
static fn_t g_real;

static int hook(int x)
{
    return g_real(x) * 2;
}

static void test_patch_executes(void **state)
{
    (void)state;
    if (!need_decoder())
        return;
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *mem = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    unsigned char *fn = mem, *stub = mem + pg;
    /* push %rbp; mov %rsp,%rbp; lea 0x1(%rdi),%eax; pop %rbp; ret */
    static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0x8d, 0x47, 0x01, 0x5d, 0xc3 };
    memcpy(fn, code, sizeof code);
    memset(fn + sizeof code, 0xcc, 16);
    struct xv_patch_plan p;
    char why[160] = "";
    uintptr_t tramp = (uintptr_t)stub + 16;
    assert_int_equal(xv_patch_plan(fn, sizeof code + 16, (uintptr_t)fn, sizeof code, tramp, &p,
                                   why, sizeof why), 0);
    /* stub: jmp *0(%rip) -> hook; then the trampoline */
    void *h = (void *)hook;
    stub[0] = 0xff;
    stub[1] = 0x25;
    memset(stub + 2, 0, 4);
    memcpy(stub + 6, &h, 8);
    memcpy(stub + 16, p.tramp, p.tramp_len);
    /* entry: jmp rel32 -> stub */
    int32_t rel = (int32_t)((intptr_t)stub - (intptr_t)(fn + 5));
    fn[0] = 0xe9;
    memcpy(fn + 1, &rel, 4);
    assert_int_equal(mprotect(mem, 2 * (size_t)pg, PROT_READ | PROT_EXEC), 0);
    g_real = (fn_t)tramp;
    assert_int_equal(g_real(41), 42);          /* the trampoline is the original */
    assert_int_equal(((fn_t)(void *)fn)(41), 84); /* the entry reaches the hook */
    munmap(mem, 2 * (size_t)pg);
}

/* ---- ELF lookup and apply ------------------------------------------------- */

static void test_elf_and_apply(void **state)
{
    (void)state;
    struct xv_patch_elf e;
    assert_int_equal(xv_patch_elf_read("/proc/self/exe", &e), 0);
    assert_true(e.is_elf64_x86_64);
    assert_false(xv_patch_elf_has_ssl(&e));
    assert_int_equal(xv_patch_elf_read("/nonexistent/xv", &e), -1);
    /* Node's official build exports OpenSSL in .dynsym (when installed) */
    if (access("/usr/bin/node", R_OK) == 0 && xv_patch_elf_read("/usr/bin/node", &e) == 0 &&
        !e.needs_libssl) {
        assert_true(xv_patch_elf_has_ssl(&e));
        assert_true(e.sym[0].dynamic);
        assert_true(e.sym[0].size > 0);
    }
    /* The agent's two-step read (symbols at start, the .rodata search at the
     * first connect) ends with the same facts as doctor's one read. */
    struct xv_patch_elf full, split;
    if (xv_patch_elf_read("/bin/true", &full) == 0 && !full.has_symtab) {
        assert_int_equal(xv_patch_elf_read_symbols("/bin/true", &split), 0);
        assert_true(split.rodata_pending);
        assert_false(full.rodata_pending);
        errno = 99;
        assert_int_equal(xv_patch_elf_read_rodata("/bin/true", &split), 0);
        assert_int_equal(errno, 99);
        assert_false(split.rodata_pending);
        assert_memory_equal(&full, &split, sizeof full);
        assert_int_equal(xv_patch_elf_read_rodata("/bin/true", &split), 0); /* nothing left */
    } else {
        print_message("skipped the split read: /bin/true missing or not stripped\n");
    }
    assert_int_equal(xv_patch_elf_read_symbols("/proc/self/exe", &split), 0);
    assert_false(split.rodata_pending); /* this test has its symbols: no search needed */
    /* this process has no OpenSSL: nothing tried, nothing to resolve */
    void *hooks[XV_PATCH_NAMES] = { 0 };
    struct xv_patch_report rep;
    assert_int_equal(xv_patch_apply(hooks, &rep), 0);
    assert_false(rep.tried);
    /* This test's code is far under the size of any OpenSSL: its file is
     * not read at start (the coverage verdict waits for a connect). */
    assert_true(rep.exe_small);
    assert_false(rep.exe_read);
    assert_null(xv_patch_real(0));
    assert_null(xv_patch_real(-1));
    assert_null(xv_patch_real(XV_PATCH_NAMES));
}

/* ---- the one coverage verdict (coverage.c) and the reader's header facts -- */

static void test_coverage_verdict(void **state)
{
    (void)state;
    char why[512];
    struct xv_patch_elf e;
    memset(&e, 0, sizeof e);
    assert_int_equal(xv_patch_coverage(&e, 0, "", why, sizeof why), XV_PATCH_UNDECIDED);
    e.go = 1;
    assert_int_equal(xv_patch_coverage(&e, 1, "x", why, sizeof why), XV_PATCH_NOT_COVERED);
    assert_non_null(strstr(why, "Go program"));
    memset(&e, 0, sizeof e);
    e.sym[0].value = 0x1000;                      /* SSL_write defined here */
    assert_int_equal(xv_patch_coverage(&e, 1, "SSL_write", why, sizeof why), XV_PATCH_COVERED);
    assert_non_null(strstr(why, "patched at start (SSL_write)"));
    assert_int_equal(xv_patch_coverage(&e, 0, "SSL_write: no room", why, sizeof why),
                     XV_PATCH_PARTLY);
    assert_non_null(strstr(why, "cannot be patched safely (SSL_write: no room)"));
    e.needs_libssl = 1;                           /* a wrapper around the real libssl */
    assert_int_equal(xv_patch_coverage(&e, 0, "", why, sizeof why), XV_PATCH_UNDECIDED);
    memset(&e, 0, sizeof e);
    e.rustls = 1;
    assert_int_equal(xv_patch_coverage(&e, 0, "", why, sizeof why), XV_PATCH_PARTLY);
    assert_non_null(strstr(why, "(rustls)"));
    memset(&e, 0, sizeof e);
    e.openssl_marker = 1;
    assert_int_equal(xv_patch_coverage(&e, 0, "", why, sizeof why), XV_PATCH_PARTLY);
    assert_non_null(strstr(why, "stripped"));

    struct xv_patch_elf_file f;
    assert_int_equal(xv_patch_elf_open("/proc/self/exe", &f), 0);
    assert_true(f.is64 && !f.be && f.has_interp && f.has_dynamic && f.nneeded > 0);
    char buf[32];
    assert_string_equal(xv_patch_elf_machine_name(f.machine, buf, sizeof buf), "x86-64");
    struct xv_patch_elf_shdr sh;
    assert_int_equal(xv_patch_elf_find_section(&f, ".text", &sh), 0);
    assert_true(sh.in_file && sh.size > 0);
    assert_int_equal(xv_patch_elf_find_section(&f, ".no-such", &sh), -1);
    xv_patch_elf_close(&f);
    assert_int_equal(xv_patch_elf_open("/nonexistent/xv", &f), -ENOENT);
    assert_int_equal(xv_patch_elf_open("/proc/self/cmdline", &f), -ENOEXEC);
}

/* ---- .dynsym through the GNU hash table (elf.c) --------------------------- */

/* Every defined export the scan passes, in table order: the lookup of its
 * name must give the first one of that name, field for field. */
struct lookup_check {
    const struct xv_patch_elf_file *f;
    size_t checked, dup;
};

static int check_lookup(void *ctx, const struct xv_patch_elf_sym *s)
{
    struct lookup_check *c = ctx;
    struct xv_patch_elf_sym got;
    int rc = xv_patch_elf_dynsym_lookup(c->f, s->name, &got);
    assert_int_equal(rc, 1);
    assert_string_equal(got.name, s->name);
    assert_int_equal(got.dynamic, 1);
    if (got.value != s->value || got.size != s->size || got.info != s->info ||
        got.shndx != s->shndx) {
        /* a second definition of the name (versions): the lookup must have
         * returned an earlier entry of the table, which the scan passed */
        c->dup++;
    }
    c->checked++;
    return 0;
}

int main(void);
/* exported (this target keeps default visibility, -rdynamic) for the lookup */
int xv_test_exported_probe(void);
int xv_test_exported_probe(void)
{
    return 42;
}

static void test_dynsym_lookup(void **state)
{
    (void)state;
    const char *files[] = { "/proc/self/exe", "/lib/x86_64-linux-gnu/libc.so.6",
                            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/bin/node" };
    size_t tried = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct xv_patch_elf_file f;
        if (xv_patch_elf_open(files[i], &f) != 0) {
            print_message("note: %s not readable here, not checked\n", files[i]);
            continue;
        }
        struct lookup_check c = { &f, 0, 0 };
        if (f.gnu_hash) {
            xv_patch_elf_symbols(&f, XV_PATCH_SHT_DYNSYM, NULL, check_lookup, &c);
            /* versioned duplicates are few (libc: a handful); anything more
             * means the lookup picks the wrong entries */
            assert_true(c.dup * 50 <= c.checked);
            struct xv_patch_elf_sym s;
            assert_int_equal(xv_patch_elf_dynsym_lookup(&f, "xv_no_such_symbol_here", &s), 0);
            assert_int_equal(xv_patch_elf_dynsym_lookup(&f, "", &s), 0);
            print_message("%s: %zu exports looked up (%zu with another version first)\n",
                          files[i], c.checked, c.dup);
            tried++;
        } else {
            struct xv_patch_elf_sym s;
            assert_int_equal(xv_patch_elf_dynsym_lookup(&f, "malloc", &s), -1);
        }
        xv_patch_elf_close(&f);
    }
    assert_true(tried >= 1); /* libc at least */

    /* This program's own file (linked with -rdynamic), read in pieces (its
     * loaded image and the section headers): the same header facts, section
     * for section, and the same lookups, export for export, as the whole
     * mapping gives. */
    struct xv_patch_elf_file f, img;
    struct xv_patch_elf_sparse sp;
    assert_int_equal(xv_patch_elf_open("/proc/self/exe", &f), 0);
    assert_true(f.gnu_hash);
    errno = 77;
    assert_int_equal(xv_patch_elf_open_self(&img, &sp), 0);
    assert_int_equal(errno, 77);
    assert_null(img.data);
    assert_true(img.npieces >= 3);
    assert_int_equal(img.size, f.size);
    assert_true(img.is64 == f.is64 && img.be == f.be && img.type == f.type &&
                img.machine == f.machine && img.pie == f.pie);
    assert_true(img.has_interp && f.has_interp);
    assert_string_equal(img.interp, f.interp);
    assert_true(img.has_dynamic == f.has_dynamic && img.nneeded == f.nneeded && f.nneeded > 0);
    for (size_t i = 0; i < f.nneeded; i++)
        assert_string_equal(img.needed[i], f.needed[i]);
    assert_true(img.has_shdrs == f.has_shdrs && img.has_symtab == f.has_symtab &&
                img.go_sections == f.go_sections && img.gnu_hash == f.gnu_hash);
    assert_int_equal(xv_patch_elf_nsections(&img), xv_patch_elf_nsections(&f));
    for (size_t i = 0; i < xv_patch_elf_nsections(&f); i++) {
        struct xv_patch_elf_shdr a, b;
        assert_int_equal(xv_patch_elf_section(&img, i, &a), 0);
        assert_int_equal(xv_patch_elf_section(&f, i, &b), 0);
        assert_string_equal(a.name, b.name);
        assert_true(a.type == b.type && a.offset == b.offset && a.size == b.size &&
                    a.addr == b.addr && a.link == b.link && a.in_file == b.in_file);
    }
    /* what the pieces lack (.strtab is not loaded) reads as absent, never as
     * other bytes; what they hold (.dynstr) reads as in the file */
    struct xv_patch_elf_shdr strtab;
    assert_int_equal(xv_patch_elf_find_section(&img, ".strtab", &strtab), 0);
    assert_true(xv_patch_elf_contains(&f, strtab.offset, strtab.size, "main", 5));
    assert_false(xv_patch_elf_contains(&img, strtab.offset, strtab.size, "main", 5));
    assert_true(xv_patch_elf_contains(&img, img.dyn[2].offset, img.dyn[2].size,
                                      "xv_test_exported_probe", 23));
    struct lookup_check c = { &img, 0, 0 };
    xv_patch_elf_symbols(&f, XV_PATCH_SHT_DYNSYM, NULL, check_lookup, &c);
    print_message("this program: %zu exports looked up in its image\n", c.checked);
    assert_true(c.checked >= 3 && c.dup == 0);
    /* the scan of the pieces' .dynsym passes what the mapping's passes */
    struct lookup_check c2 = { &f, 0, 0 };
    xv_patch_elf_symbols(&img, XV_PATCH_SHT_DYNSYM, NULL, check_lookup, &c2);
    assert_true(c2.checked == c.checked && c2.dup == 0);
    /* the values are this program's: one load bias for two of its functions */
    struct xv_patch_elf_sym s, s2;
    assert_int_equal(xv_patch_elf_dynsym_lookup(&img, "main", &s), 1);
    assert_int_equal(xv_patch_elf_dynsym_lookup(&img, "xv_test_exported_probe", &s2), 1);
    assert_int_equal(s.info & 0xf, 2 /* STT_FUNC */);
    assert_true((uintptr_t)&main - s.value == (uintptr_t)&xv_test_exported_probe - s2.value);
    assert_int_equal(xv_patch_elf_dynsym_lookup(&img, "xv_no_such_symbol_here", &s), 0);
    /* what the pieces lack, the whole file mapped under the same parse has */
    assert_true(sp.fd >= 0);
    assert_int_equal(xv_patch_elf_map_whole(&img, &sp), 0);
    assert_non_null(img.data);
    assert_true(xv_patch_elf_contains(&img, strtab.offset, strtab.size, "main", 5));
    assert_int_equal(xv_patch_elf_dynsym_lookup(&img, "main", &s), 1);
    assert_int_equal(xv_patch_elf_map_whole(&img, &sp), -1); /* once */
    xv_patch_elf_sparse_done(&sp);
    assert_int_equal(sp.fd, -1);
    xv_patch_elf_close(&img);
    xv_patch_elf_close(&f);
}

/* ---- ELF32/ELF64 of either byte order (elf.c reads all four) --------------- */

/* A field of width w at p, byte order be. */
static void put(unsigned char *p, uint64_t v, int w, int be)
{
    for (int i = 0; i < w; i++)
        p[be ? w - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

/* A small shared object as a foreign toolchain would write it: a PT_LOAD over
 * the whole file at vaddr 0, PT_DYNAMIC (DT_NEEDED libssl.so.3, DT_STRTAB,
 * DT_STRSZ), .text, .dynsym holding SSL_write (value 0x100, size 16, a
 * function), .dynstr, .dynamic and .shstrtab. Its length. */
static size_t make_elf(unsigned char *f, int is64, int be)
{
    memset(f, 0, 4096);
    static const char dynstr[] = "\0libssl.so.3\0SSL_write";
    static const char shstr[] = "\0.text\0.dynsym\0.dynstr\0.dynamic\0.shstrtab";
    size_t ehsz = is64 ? 64 : 52, phsz = is64 ? 56 : 32, shsz = is64 ? 64 : 40;
    size_t symsz = is64 ? 24 : 16, dynsz = is64 ? 16 : 8, w = is64 ? 8 : 4;
    size_t ph = ehsz, text = 0x100, dsym = 0x200, dstr = 0x280, dyn = 0x300, sstr = 0x380,
           sh = 0x400, n = sh + 6 * shsz;
    memcpy(f, "\177ELF", 4);
    f[4] = is64 ? 2 : 1;
    f[5] = be ? 2 : 1;
    f[6] = 1;
    put(f + 16, 3, 2, be);                  /* ET_DYN */
    put(f + 18, is64 ? 183 : 40, 2, be);    /* AArch64 / ARM */
    put(f + 20, 1, 4, be);
    put(f + (is64 ? 32 : 28), ph, (int)w, be);
    put(f + (is64 ? 40 : 32), sh, (int)w, be);
    put(f + (is64 ? 52 : 40), ehsz, 2, be);
    put(f + (is64 ? 54 : 42), phsz, 2, be);
    put(f + (is64 ? 56 : 44), 2, 2, be);
    put(f + (is64 ? 58 : 46), shsz, 2, be);
    put(f + (is64 ? 60 : 48), 6, 2, be);
    put(f + (is64 ? 62 : 50), 5, 2, be);
    for (int i = 0; i < 2; i++) {           /* PT_LOAD, PT_DYNAMIC */
        unsigned char *p = f + ph + i * phsz;
        uint64_t off = i ? dyn : 0, len = i ? 4 * dynsz : n;
        put(p, i ? 2 : 1, 4, be);
        put(p + (is64 ? 8 : 4), off, (int)w, be);
        put(p + (is64 ? 16 : 8), off, (int)w, be);  /* vaddr = offset */
        put(p + (is64 ? 32 : 16), len, (int)w, be);
        put(p + (is64 ? 40 : 20), len, (int)w, be);
    }
    memset(f + text, 0xc3, 16);
    unsigned char *sym = f + dsym + symsz;  /* entry 1: SSL_write */
    put(sym, 13, 4, be);
    if (is64) {
        sym[4] = 0x12;                      /* GLOBAL FUNC */
        put(sym + 6, 1, 2, be);
        put(sym + 8, text, 8, be);
        put(sym + 16, 16, 8, be);
    } else {
        put(sym + 4, text, 4, be);
        put(sym + 8, 16, 4, be);
        sym[12] = 0x12;
        put(sym + 14, 1, 2, be);
    }
    memcpy(f + dstr, dynstr, sizeof dynstr);
    uint64_t tags[4][2] = { { 1, 1 }, { 5, dstr }, { 10, sizeof dynstr }, { 0, 0 } };
    for (int i = 0; i < 4; i++) {
        put(f + dyn + i * dynsz, tags[i][0], (int)w, be);
        put(f + dyn + i * dynsz + w, tags[i][1], (int)w, be);
    }
    memcpy(f + sstr, shstr, sizeof shstr);
    /* name, type, flags, off, size, link, entsize of sections 1..5 */
    uint64_t s[5][7] = { { 1, 1, 6, text, 16, 0, 0 },
                         { 7, 11, 2, dsym, 2 * symsz, 3, symsz },
                         { 15, 3, 2, dstr, sizeof dynstr, 0, 0 },
                         { 23, 6, 3, dyn, 4 * dynsz, 3, dynsz },
                         { 32, 3, 0, sstr, sizeof shstr, 0, 0 } };
    for (int i = 0; i < 5; i++) {
        unsigned char *p = f + sh + (i + 1) * shsz;
        put(p, s[i][0], 4, be);
        put(p + 4, s[i][1], 4, be);
        put(p + 8, s[i][2], (int)w, be);
        put(p + (is64 ? 16 : 12), s[i][3], (int)w, be);  /* addr = offset */
        put(p + (is64 ? 24 : 16), s[i][3], (int)w, be);
        put(p + (is64 ? 32 : 20), s[i][4], (int)w, be);
        put(p + (is64 ? 40 : 24), s[i][5], 4, be);
        put(p + (is64 ? 56 : 36), s[i][6], (int)w, be);
    }
    return n;
}

struct first_sym {
    uint64_t value, size;
    int seen;
};

static int note_sym(void *ctx, const struct xv_patch_elf_sym *s)
{
    struct first_sym *f = ctx;
    if (strcmp(s->name, "SSL_write") == 0) {
        f->value = s->value;
        f->size = s->size;
        f->seen++;
    }
    return 0;
}

/* The same facts from all four classes and byte orders (doctor reads other
 * machines' programs; the agent's own program is always the host's). */
static void test_elf_classes(void **state)
{
    (void)state;
    unsigned char f[4096];
    char path[] = "/tmp/xv-elf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    for (int v = 0; v < 4; v++) {
        int is64 = v & 1, be = v >> 1;
        size_t n = make_elf(f, is64, be);
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(pwrite(fd, f, n, 0), (ssize_t)n);
        struct xv_patch_elf_file e;
        assert_int_equal(xv_patch_elf_open(path, &e), 0);
        assert_true(e.is64 == is64 && e.be == be && e.type == 3);
        assert_int_equal(e.machine, is64 ? 183 : 40);
        assert_true(e.has_dynamic && e.has_shdrs && !e.has_symtab);
        assert_int_equal(e.nneeded, 1);
        assert_string_equal(e.needed[0], "libssl.so.3");
        struct xv_patch_elf_shdr sh;
        assert_int_equal(xv_patch_elf_find_section(&e, ".dynsym", &sh), 0);
        assert_true(sh.type == XV_PATCH_SHT_DYNSYM && sh.in_file && sh.link == 3);
        assert_int_equal(xv_patch_elf_find_section(&e, ".shstrtab", &sh), 0);
        struct first_sym fs = { 0, 0, 0 };
        xv_patch_elf_symbols(&e, XV_PATCH_SHT_DYNSYM, NULL, note_sym, &fs);
        assert_int_equal(fs.seen, 1);
        assert_int_equal(fs.value, 0x100);
        assert_int_equal(fs.size, 16);
        xv_patch_elf_close(&e);
        struct xv_patch_elf facts;
        assert_int_equal(xv_patch_elf_read(path, &facts), 0);
        assert_true(facts.needs_libssl);
        assert_int_equal(facts.sym[0].value, 0x100); /* SSL_write */
        assert_int_equal(facts.sym[0].offset, 0x100);
        assert_false(facts.is_elf64_x86_64);
    }
    close(fd);
    unlink(path);
}

/* ---- the multi-needle search of .rodata (elf.c) --------------------------- */

static unsigned slow_hits(const unsigned char *d, size_t n, const char *const *nd, size_t count)
{
    unsigned m = 0;
    for (size_t i = 0; i < count; i++)
        if (memmem(d, n, nd[i], strlen(nd[i])))
            m |= 1u << i;
    return m;
}

/* Same answer as one memmem per needle, on texts made of the needles' own
 * bytes (near misses everywhere), needles planted at both ends and across
 * each other, in small ranges and in one large enough for the populate
 * call; errno untouched; malformed calls find nothing. */
static void test_contains_any(void **state)
{
    (void)state;
    static const char *const nd[] = { "ssl/statem/statem_clnt.c", "ssl/ssl_lib.c",
                                      "ssl/s3_lib.c", "BoringSSL", "/rustls-" };
    static const char alpha[] = "ssl/tem_cnB3ibgSL-ru.";
    size_t cap = 600u << 10;
    unsigned char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(buf != MAP_FAILED);
    struct xv_patch_elf_file f;
    memset(&f, 0, sizeof f);
    f.data = buf;
    f.size = cap;
    uint32_t x = 12345;
    unsigned seen = 0;
    for (int round = 0; round < 4000; round++) {
        size_t n = round < 3990 ? 1 + (size_t)(round % 300) : cap - (size_t)(round % 7);
        for (size_t k = 0; k < n; k++) {
            x = x * 1103515245u + 12345u;
            buf[k] = (unsigned char)alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        int plants = (int)((x >> 8) % 3);
        for (int p = 0; p < plants; p++) {
            x = x * 1103515245u + 12345u;
            const char *w = nd[(x >> 16) % 5];
            size_t wl = strlen(w);
            if (wl > n)
                continue;
            size_t at = (x >> 4) % 3 == 0 ? 0 : (x >> 4) % 3 == 1 ? n - wl : (x >> 3) % (n - wl + 1);
            memcpy(buf + at, w, wl);
        }
        size_t off = n > 8 ? (x >> 5) % 4 : 0;
        /* small texts in an exact-size heap copy: a read past the range
         * is an error under the sanitizer build */
        unsigned char *exact = n < cap / 2 ? malloc(n) : NULL;
        if (exact) {
            memcpy(exact, buf, n);
            f.data = exact;
            f.size = n;
        }
        errno = 4242;
        unsigned got = xv_patch_elf_contains_any(&f, off, n - off, "/B", nd, 5);
        assert_int_equal(errno, 4242);
        assert_int_equal(got, slow_hits(buf + off, n - off, nd, 5));
        seen |= got;
        f.data = buf;
        f.size = cap;
        free(exact);
    }
    assert_int_equal(seen, 31u); /* every needle was found somewhere */
    assert_int_equal(xv_patch_elf_contains_any(&f, 0, cap, "Q", nd, 5), 0u);  /* no anchor */
    assert_int_equal(xv_patch_elf_contains_any(&f, cap - 1, 2, "/B", nd, 5), 0u); /* past the end */
    assert_int_equal(xv_patch_elf_contains_any(&f, 0, 0, "/B", nd, 5), 0u);
    munmap(buf, cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_prologue),
        cmocka_unit_test(test_get_error_shape),
        cmocka_unit_test(test_short_function_padding),
        cmocka_unit_test(test_rip_relative),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_patch_executes),
        cmocka_unit_test(test_elf_and_apply),
        cmocka_unit_test(test_coverage_verdict),
        cmocka_unit_test(test_contains_any),
        cmocka_unit_test(test_elf_classes),
        cmocka_unit_test(test_dynsym_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
