/*
 * patch — redirect OpenSSL entry points compiled into a program (Node's
 * official builds, programs linked against libssl.a) to the agent's hooks.
 *
 * How: each entry's first instructions (at least 5 bytes) are replaced by a
 * `jmp rel32` to a stub in a page mapped within ±2 GiB of the code; the stub
 * jumps (absolute, `jmp *0(%rip)`) to the hook. The displaced instructions
 * are decoded with Zydis and re-encoded at their new address in a
 * trampoline that ends with an absolute jump back; the trampoline is the
 * "real" function the hook calls. Anything that cannot be relocated safely
 * (a branch inside the window, a branch from the function into the patched
 * bytes, an instruction the encoder cannot move, a too-short function whose
 * tail is not padding) is refused and that function left untouched.
 *
 * Invariants: no page is ever writable and executable at once (the stub
 * page is written RW, then made RX; a text page is made RW without X only
 * while no other thread exists and signals are blocked, then restored);
 * either every essential function of an object is patched or none is.
 *
 * Thread safety: xv_patch_plan is pure. xv_patch_apply must run while the
 * process is single-threaded (a constructor); it checks and refuses
 * otherwise. xv_patch_real may be called from any thread after apply.
 * Zydis is dlopen()ed on demand (libZydis.so.4.0), only in programs that
 * have OpenSSL compiled in, so no other host maps it.
 */
#ifndef XV_PATCH_H
#define XV_PATCH_H

#include <stddef.h>
#include <stdint.h>

/* Bytes the entry patch overwrites (jmp rel32). */
#define XV_PATCH_JMP_LEN 5
/* Room for one trampoline (relocated window + jump back). */
#define XV_PATCH_TRAMP_MAX 112

/* What xv_patch_plan produces for one function. */
struct xv_patch_plan {
    unsigned win;                           /* bytes of displaced instructions */
    unsigned tramp_len;                     /* bytes used in tramp */
    unsigned char tramp[XV_PATCH_TRAMP_MAX]; /* code for address tramp_addr */
};

/* Load Zydis (once). 0 when usable, else -1 with a reason in why. */
int xv_patch_decoder_load(char *why, size_t cap);

/* Plan the relocation of a function whose entry is at runtime address
 * `addr`, `size` bytes long (its symbol's st_size), with `code` its bytes
 * (`avail` readable, may extend past size into padding). `tramp_addr` is
 * where the trampoline will live. 0 on success; -1 with a one-line reason
 * in why (the function must then be left untouched). Needs the decoder. */
int xv_patch_plan(const unsigned char *code, size_t avail, uint64_t addr, uint64_t size,
                  uint64_t tramp_addr, struct xv_patch_plan *out, char *why, size_t cap);

/* One OpenSSL function found in an ELF file's symbol tables. */
struct xv_patch_sym {
    uint64_t value;  /* st_value (add the load bias for a runtime address) */
    uint64_t size;   /* st_size */
    uint64_t offset; /* file offset of the entry, 0 if not in a PROGBITS section */
    int dynamic;     /* found in .dynsym (survives strip) rather than .symtab */
};

/* The names the agent knows, indexed like xv_ssl_fn in hooks/xv_hooks.h
 * (count XV_PATCH_NAMES). `essential[i]`: a refusal of that function (when
 * present) makes the whole object not covered; `hooked[i]`: the agent has
 * a hook for it (others are only looked up as real functions). */
#define XV_PATCH_NAMES 20
extern const char *const xv_patch_names[XV_PATCH_NAMES];
extern const unsigned char xv_patch_essential[XV_PATCH_NAMES];
extern const unsigned char xv_patch_hooked[XV_PATCH_NAMES];

/*
 * The project's one ELF reader (elf.c), used by the agent and by
 * `xenovia doctor`. ELF32/ELF64, either byte order; every offset checked.
 * A file is mapped read-only (raw syscalls: safe inside the agent's init).
 */
#define XV_PATCH_ELF_MAX_NEEDED 128   /* DT_NEEDED entries kept per object */
#define XV_PATCH_SHT_SYMTAB 2
#define XV_PATCH_SHT_DYNSYM 11

/* One section header. */
struct xv_patch_elf_shdr {
    const char *name;           /* "" when unreadable; borrowed from the mapping */
    uint32_t type, link;        /* sh_type, sh_link */
    uint64_t flags, addr, offset, size, entsize;
    int in_file;                /* [offset, offset+size) lies inside the file */
};

/* Bytes of a file not mapped whole: [off, off+len) of the file lie at mem. */
struct xv_patch_elf_piece {
    uint64_t off, len;
    const unsigned char *mem;
};
#define XV_PATCH_ELF_PIECES 8

struct xv_patch_elf_file {
    const unsigned char *data;  /* the mapped file (PROT_READ), owned; NULL when read
                                   in pieces (xv_patch_elf_open_self) */
    size_t size;                /* its length */
    struct xv_patch_elf_piece piece[XV_PATCH_ELF_PIECES]; /* when data is NULL */
    size_t npieces;
    size_t hint;                /* the piece the last read found (elf.c's at()) */
    int pieces_short;           /* an export table or .dynamic lies outside them */
    uint64_t dynamic_off;       /* read in pieces: .dynamic's section and the */
    uint64_t dynstr_off, dynstr_size; /* string table its header names */
    int is64;                   /* ELFCLASS64 */
    int be;                     /* big-endian */
    uint16_t type;              /* e_type: 2 ET_EXEC, 3 ET_DYN */
    uint16_t machine;           /* e_machine */
    int has_interp;             /* PT_INTERP present: the dynamic loader runs */
    char interp[256];           /* its path */
    int has_dynamic;            /* PT_DYNAMIC present */
    int pie;                    /* DT_FLAGS_1 has DF_1_PIE */
    const char *needed[XV_PATCH_ELF_MAX_NEEDED]; /* DT_NEEDED names, borrowed from data */
    size_t nneeded;
    const char *rpath;          /* DT_RPATH or NULL (borrowed) */
    const char *runpath;        /* DT_RUNPATH or NULL (borrowed) */
    uint64_t phoff;             /* the program header table: offset, entry size, */
    uint16_t phentsz, phcount;  /* count (0 when its entries are too small) */
    int has_shdrs;              /* section headers readable */
    uint64_t shoff;             /* the section header table: offset, entry size, */
    uint32_t shentsz;           /* usable count (0 without has_shdrs), and the */
    uint16_t shcount;           /* section-name string table's place */
    uint64_t shstr_off, shstr_size;
    int has_symtab;             /* a .symtab (not stripped) */
    int go_sections;            /* .go.buildinfo, .gopclntab or .note.go.buildid */
    int gnu_hash;               /* a usable GNU hash table over .dynsym: dyn[] holds it */
    struct xv_patch_elf_shdr dyn[3]; /* that hash table, its .dynsym, their .dynstr */
};

/* The bytes xv_patch_elf_open_self reads from the file (the rest it finds in
 * the loaded image): the section headers and their names. The caller's,
 * alive as long as the xv_patch_elf_file it fills. */
struct xv_patch_elf_sparse {
    unsigned char shdrs[48 * 64];
    unsigned char names[512];
    int fd;                     /* the file, open until xv_patch_elf_sparse_done */
};


/* One symbol of .dynsym or .symtab. */
struct xv_patch_elf_sym {
    const char *name;           /* never NULL or empty; borrowed from the mapping */
    uint64_t value, size;       /* st_value, st_size */
    uint8_t info;               /* st_info (type in the low 4 bits) */
    uint16_t shndx;             /* st_shndx (never 0: imports are not passed) */
    int dynamic;                /* from .dynsym */
};

/* Map and parse `path`. Returns 0, or -errno / -ENOEXEC (not ELF or
 * malformed) with *e zeroed. Release with xv_patch_elf_close. */
int xv_patch_elf_open(const char *path, struct xv_patch_elf_file *e);
/* The running program's own file, without mapping it: headers, .dynamic,
 * .gnu.hash, .dynsym and .dynstr are read from the loaded image (pages the
 * loader has touched already), the section headers and their names with
 * pread into *sp. The other sections (.symtab, .rodata, code) read as
 * absent: xv_patch_elf_open gives them. 0, or -1 when the file does not
 * fit this way (no PT_PHDR, section headers or their names larger than
 * *sp, not ELF64 little-endian): open it whole instead. Never closes
 * anything the program owns; xv_patch_elf_close releases nothing here. */
int xv_patch_elf_open_self(struct xv_patch_elf_file *e, struct xv_patch_elf_sparse *sp);
/* A file read in pieces whose facts need more (a .symtab to scan): map the
 * whole file (still open in *sp) under what was parsed, which stays valid.
 * 0, or -1 (the file is as it was). */
int xv_patch_elf_map_whole(struct xv_patch_elf_file *e, struct xv_patch_elf_sparse *sp);
/* Close the file xv_patch_elf_open_self left open in *sp (after 0). */
void xv_patch_elf_sparse_done(struct xv_patch_elf_sparse *sp);
void xv_patch_elf_close(struct xv_patch_elf_file *e);
size_t xv_patch_elf_nsections(const struct xv_patch_elf_file *e);
/* Section i (0, or -1 out of range); by exact name (0, or -1 when absent). */
int xv_patch_elf_section(const struct xv_patch_elf_file *e, size_t i, struct xv_patch_elf_shdr *sh);
int xv_patch_elf_find_section(const struct xv_patch_elf_file *e, const char *name,
                              struct xv_patch_elf_shdr *sh);
/* Call cb for every named symbol the file defines (imports and
 * zero-valued entries skipped) in the tables of type `table`
 * (XV_PATCH_SHT_DYNSYM or _SYMTAB) whose name starts with one of the bytes
 * of `first` (NULL: any); stops and returns cb's value when it is non-zero. */
int xv_patch_elf_symbols(const struct xv_patch_elf_file *e, uint32_t table, const char *first,
                         int (*cb)(void *ctx, const struct xv_patch_elf_sym *s), void *ctx);
/* The first defined .dynsym symbol named `name`, found through the file's
 * GNU hash table (a few pages, where a scan reads every export): 1 with *out
 * set (as xv_patch_elf_symbols would pass it), 0 when there is none, -1
 * when the file has no usable GNU hash table (the caller scans instead). */
int xv_patch_elf_dynsym_lookup(const struct xv_patch_elf_file *e, const char *name,
                               struct xv_patch_elf_sym *out);
/* Do the file's bytes [off, off+len) contain the needle? */
int xv_patch_elf_contains(const struct xv_patch_elf_file *e, uint64_t off, uint64_t len,
                          const char *needle, size_t n);
/* Several needles at once: bit i is set when the bytes [off, off+len)
 * contain needles[i] (at most 32). Each needle holds one of the `anchors`
 * bytes, chosen rare: one memchr pass per anchor byte, each occurrence
 * compared against the needles it anchors — cheaper than a memmem per
 * needle, which every process start would pay (python's .rodata is 2 MB).
 * Large ranges are mapped in one call first. */
unsigned xv_patch_elf_contains_any(const struct xv_patch_elf_file *e, uint64_t off, uint64_t len,
                                   const char *anchors, const char *const needles[], size_t count);
/* Human name of e_machine ("x86-64", …; "machine N" otherwise): static or buf. */
const char *xv_patch_elf_machine_name(uint16_t machine, char *buf, size_t n);

/* What an ELF file says about its TLS (coverage.c, from the reader above). */
struct xv_patch_elf {
    int is_elf64_x86_64;  /* 1 for an x86-64 ELF64 file */
    int machine;          /* e_machine */
    int type;             /* e_type (ET_EXEC, ET_DYN) */
    int needs_libssl;     /* DT_NEEDED names a libssl */
    int has_symtab;       /* .symtab present (not stripped) */
    int go;               /* Go: its sections, runtime.main, or its build-info magic */
    int boringssl;        /* BORINGSSL_* symbols, or "BoringSSL" in a stripped .rodata */
    int rustls;           /* rustls symbols, or its crate path in a stripped .rodata */
    int other_tls;        /* GnuTLS, mbed TLS or wolfSSL compiled in (by symbol) */
    int openssl_marker;   /* no symbols, but OpenSSL's source paths in .rodata */
    int rodata_pending;   /* read without the .rodata byte search it would have needed
                             (xv_patch_elf_read_symbols); xv_patch_elf_read_rodata does it */
    struct xv_patch_sym sym[XV_PATCH_NAMES]; /* value 0 = not found */
};

/* The facts of an open file, or of `path` (0 when it was an ELF file). */
int xv_patch_elf_facts(const struct xv_patch_elf_file *f, struct xv_patch_elf *out);
int xv_patch_elf_read(const char *path, struct xv_patch_elf *out);
/* The same facts without the byte search of a stripped file's .rodata (the
 * one costly step: 2 MB for python): what patching needs, read at every
 * process start. When the search would have run, rodata_pending is set and
 * xv_patch_elf_read_rodata(path, out) completes the facts later (0, or -1
 * when the file cannot be read again: the hints then stay 0). For
 * "/proc/self/exe" the file stays mapped in between (one mapping per
 * process, dropped by read_rodata or at exit; see coverage.c). */
int xv_patch_elf_read_symbols(const char *path, struct xv_patch_elf *out);
int xv_patch_elf_read_rodata(const char *path, struct xv_patch_elf *out);

/* Read `len` bytes at file offset `off` of path into buf; 0 on success. */
int xv_patch_file_bytes(const char *path, uint64_t off, unsigned char *buf, size_t len);

/* Does the ELF define SSL_write or SSL_read (compiled-in OpenSSL)? */
int xv_patch_elf_has_ssl(const struct xv_patch_elf *e);

/*
 * The one coverage verdict on a program's own file, for the agent (which
 * logs "not covered: <why>" unless COVERED/UNDECIDED) and `xenovia doctor`
 * (which adds what only a file on disk can show: architecture, setuid,
 * static linking, the libraries it needs). `patched`: for OpenSSL compiled
 * in with symbols, whether its entry points are (agent) or would be
 * (doctor's dry run) patched, `patch_why` the names patched or the refusal.
 * Returns the verdict with one line in `why`.
 */
enum xv_patch_cover {
    XV_PATCH_UNDECIDED = -1,   /* nothing in the file itself decides (dependencies do) */
    XV_PATCH_COVERED = 0,      /* HTTPS and plain HTTP */
    XV_PATCH_PARTLY = 1,       /* plain HTTP only */
    XV_PATCH_NOT_COVERED = 3,  /* nothing */
};
int xv_patch_coverage(const struct xv_patch_elf *e, int patched, const char *patch_why,
                      char *why, size_t n);

/* No build of OpenSSL's TLS fits in less code than this: OpenSSL 3's
 * libssl alone has ~600 KiB of it, and a static TLS client linked with
 * Debian's libssl.a and libcrypto.a (tests/extra/static_tls_client.c) 2.6
 * MiB. xv_patch_apply does not read the file of a smaller program (most of
 * what a CI job starts: /bin/true has 15 KiB of code, grep 140). */
#define XV_PATCH_OPENSSL_MIN_CODE (512u * 1024u)

/* The outcome of xv_patch_apply for the process. */
struct xv_patch_report {
    int tried;                 /* an object with compiled-in OpenSSL was found */
    int covered;               /* its essential entry points were patched */
    int exe_read;              /* exe below holds the main program's ELF facts */
    int exe_small;             /* the program's code is under XV_PATCH_OPENSSL_MIN_CODE:
                                * its file was not read (exe_read is 0) */
    int libssl;                /* a dynamic libssl was loaded at start (nothing patched) */
    struct xv_patch_elf exe;   /* what /proc/self/exe said (for preload/coverage.c) */
    /* Set only when tried (so that a process without compiled-in OpenSSL
     * writes none of their 832 bytes at start, and not their page): */
    char object[256];          /* which object */
    char why[256];             /* when !covered: the first refusal */
    char patched[320];         /* names patched, comma-separated */
};

/* Find compiled-in OpenSSL in the loaded objects (the main executable and
 * any other object without a libssl dependency) and patch its entry points
 * to hooks[i] (NULL: not hooked). Does nothing when a dynamic libssl is
 * loaded. Fills rep; returns 0 if nothing needed doing or all went well,
 * -1 on a refusal (nothing of that object is patched). Call once, from a
 * constructor, before the program's threads start. */
int xv_patch_apply(void *const hooks[XV_PATCH_NAMES], struct xv_patch_report *rep);

/* After apply: the function to call as "real" for name index i — the
 * trampoline of a patched function, the entry of a found unpatched one,
 * NULL when no compiled-in OpenSSL was found. Lock-free. */
void *xv_patch_real(int i);

/* String tests for code every process start runs: the same answers as
 * strcmp/strncmp == 0, without calling into libc, whose string functions
 * sit on pages of its code a process of its own may not touch (one fault
 * each at every start, issue 9). */
#if defined(__GNUC__) || defined(__clang__)
#define XV_PATCH_INLINE static inline __attribute__((always_inline))
#else
#define XV_PATCH_INLINE static inline
#endif
/* (always inlined: a caller built for size would keep them out of line,
 * apart from the start-up code) */
XV_PATCH_INLINE int xv_patch_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

XV_PATCH_INLINE int xv_patch_starts(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix)
        s++, prefix++;
    return !*prefix;
}

#endif
