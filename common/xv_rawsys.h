/*
 * xv_rawsys.h — system calls the agent's start-up makes itself rather than
 * through glibc's wrappers. glibc's fstat and fstatat sit on a page of its
 * code that a program start may not otherwise touch: a page fault at every
 * start (~20-60 us on the bench VM, issue 9); fstat also passes an empty
 * name from glibc's .rodata, another page.
 */
#ifndef XV_RAWSYS_H
#define XV_RAWSYS_H

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* fstat of fd: 0, or -1 with errno set. */
static inline int xv_fstat_raw(int fd, struct stat *st)
{
    char empty[1] = ""; /* a name of our own, not one in glibc's .rodata */
#if defined(__x86_64__) && defined(SYS_newfstatat)
    /* x86-64: glibc's struct stat is the kernel's */
    return (int)syscall(SYS_newfstatat, fd, empty, st, AT_EMPTY_PATH);
#else
    return fstatat(fd, empty, st, AT_EMPTY_PATH);
#endif
}

#endif
