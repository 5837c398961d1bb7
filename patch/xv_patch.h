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

/* What an ELF file says about compiled-in OpenSSL. */
struct xv_patch_elf {
    int is_elf64_x86_64;  /* 1 for an x86-64 ELF64 file */
    int machine;          /* e_machine */
    int type;             /* e_type (ET_EXEC, ET_DYN) */
    int needs_libssl;     /* DT_NEEDED names a libssl */
    int has_symtab;       /* .symtab present (not stripped) */
    int go;               /* .go.buildinfo present */
    int boringssl;        /* BORINGSSL_* / rustls_* symbols */
    int openssl_marker;   /* no symbols, but OpenSSL's source paths in .rodata */
    struct xv_patch_sym sym[XV_PATCH_NAMES]; /* value 0 = not found */
};

/* Parse an ELF file (read through a private read-only mapping; raw
 * syscalls, so it is safe inside init). 0 when it was an ELF file. */
int xv_patch_elf_read(const char *path, struct xv_patch_elf *out);

/* Read `len` bytes at file offset `off` of path into buf; 0 on success. */
int xv_patch_file_bytes(const char *path, uint64_t off, unsigned char *buf, size_t len);

/* Does the ELF define SSL_write or SSL_read (compiled-in OpenSSL)? */
int xv_patch_elf_has_ssl(const struct xv_patch_elf *e);

/* The outcome of xv_patch_apply for the process. */
struct xv_patch_report {
    int tried;                 /* an object with compiled-in OpenSSL was found */
    int covered;               /* its essential entry points were patched */
    char object[256];          /* which object */
    char why[256];             /* when !covered: the first refusal */
    char patched[320];         /* names patched, comma-separated */
    int exe_read;              /* exe below holds the main program's ELF facts */
    struct xv_patch_elf exe;   /* what /proc/self/exe said (for preload/coverage.c) */
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

#endif
