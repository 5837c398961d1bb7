/*
 * doctor_int.h — the small ELF reader behind `xenovia doctor` (shared by
 * doctor_elf.c and cmd_doctor.c only).
 *
 * The reader maps a file read-only and answers what the doctor needs:
 * class/machine/type, PT_INTERP, DT_NEEDED/RPATH/RUNPATH (read through the
 * program headers, so it works on binaries without section headers), the
 * names of a few sections, and the symbols of .dynsym and .symtab. Input
 * is untrusted: every offset is bounds-checked, and a malformed file gives
 * an error, never a crash. No libelf. Single-threaded.
 */
#ifndef XV_DOCTOR_INT_H
#define XV_DOCTOR_INT_H

#include <stddef.h>
#include <stdint.h>

#define XV_ELF_MAX_NEEDED 128   /* DT_NEEDED entries kept per object */

struct xv_elf {
    const unsigned char *data;  /* the mapped file (PROT_READ), owned */
    size_t size;                /* its length */
    int is64;                   /* ELFCLASS64 */
    int be;                     /* big-endian */
    uint16_t type;              /* e_type: 2 ET_EXEC, 3 ET_DYN */
    uint16_t machine;           /* e_machine */
    int has_interp;             /* PT_INTERP present: the dynamic loader runs */
    char interp[256];           /* its path */
    int has_dynamic;            /* PT_DYNAMIC present */
    int pie;                    /* DT_FLAGS_1 has DF_1_PIE */
    const char *needed[XV_ELF_MAX_NEEDED];  /* DT_NEEDED names, borrowed from data */
    size_t nneeded;
    const char *rpath;          /* DT_RPATH or NULL (borrowed) */
    const char *runpath;        /* DT_RUNPATH or NULL (borrowed) */
    int has_shdrs;              /* section headers readable */
    int has_symtab;             /* a .symtab (not stripped) */
};

/* Map and parse `path`. Returns 0, or -errno / -ENOEXEC (not ELF or
 * malformed) with *e zeroed. Release with xv_tool_elf_close. */
int xv_tool_elf_open(const char *path, struct xv_elf *e);
void xv_tool_elf_close(struct xv_elf *e);

/* Is there a section of that exact name? */
int xv_tool_elf_has_section(const struct xv_elf *e, const char *name);

/* Call cb for every named symbol of .dynsym and .symtab; `defined` is 0
 * for imports (SHN_UNDEF). Stops early when cb returns non-zero. */
void xv_tool_elf_symbols(const struct xv_elf *e,
                         int (*cb)(void *ctx, const char *name, int defined), void *ctx);

/* Does the file contain these bytes anywhere? */
int xv_tool_elf_contains(const struct xv_elf *e, const char *needle, size_t n);

/* doctor_patch.c: would the agent patch this program's compiled-in OpenSSL
 * (patch/, dry run on the file's bytes)? 1 yes (why names the entry points),
 * 0 no (why says which function refuses and why). Prints one line listing
 * the OpenSSL symbols found. */
int xv_tool_doctor_patch(const char *path, char *why, size_t n);

/* Human name of e_machine ("x86-64", "AArch64", …; "machine N" otherwise).
 * Static storage or `buf`. */
const char *xv_tool_elf_machine_name(uint16_t machine, char *buf, size_t n);

#endif
