/*
 * doctor_int.h — what `xenovia doctor`'s files share (cmd_doctor.c,
 * doctor_patch.c). ELF files are read with the agent's own reader,
 * patch/elf.c (xv_patch.h): one reader and one verdict for the agent and
 * doctor (issue 10). Single-threaded.
 */
#ifndef XV_DOCTOR_INT_H
#define XV_DOCTOR_INT_H

#include <stddef.h>

#include "xv_patch.h"

/* doctor_patch.c: would the agent patch this program's compiled-in OpenSSL
 * (patch/, dry run on the file's bytes)? 1 yes (why names the entry points),
 * 0 no (why says which function refuses and why). Prints one line listing
 * the OpenSSL symbols found. */
int xv_tool_doctor_patch(const char *path, char *why, size_t n);

#endif
