/*
 * start_probe.c — what loading the agent cost this process before main()
 * (issue 9), seen from inside.
 *
 * At entry to main, before calling anything that could allocate, it reads
 * the minor page faults of the process so far (getrusage) and whether the
 * process has a heap yet (a "[heap]" line in /proc/self/maps, read with
 * plain open/read into a static buffer: no stdio, no malloc). It prints
 *
 *     faults=F heap=H written_kib=W code_kib=C
 *
 * test_start.py runs it without and with LD_PRELOAD=libxenovia.so. This
 * program allocates nothing before the measurement, so H=1 means the
 * agent's start-up did (and so set up the heap: a getrandom, two brk and
 * a page fault in every process). W and C are read after the counters: W
 * the KiB of the agent's own pages written so far (its data's copy-on-write
 * copies, "Anonymous:" of its mappings in /proc/self/smaps, and the pages
 * of its .bss present in /proc/self/pagemap), C the KiB of its code mapped
 * ("Rss:" of its executable mapping). 0 and 0 without the agent.
 *
 * Exit 0, or 1 when /proc/self/maps cannot be read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static char maps[1 << 16];
static char smaps[1 << 18];

static long field_kib(const char *block, const char *end, const char *name)
{
    const char *p = strstr(block, name);
    return p && p < end ? strtol(p + strlen(name), NULL, 10) : 0;
}

/* The agent's .bss: the part of its writable segment past the file's
 * bytes, whole pages only (the loader zeroes a partial one, which smaps
 * counts with the file mapping). Its anonymous mapping can merge with a
 * neighbour, so its pages are looked up one by one in /proc/self/pagemap. */
struct range {
    uintptr_t start, end;
};

static int find_bss(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    struct range *r = ud;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libxenovia.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            uintptr_t file_end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
            r->start = (file_end + 4095) & ~(uintptr_t)4095;
            r->end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t)4095;
        }
    }
    return 1;
}

static long bss_kib(void)
{
    struct range r = { 0, 0 };
    dl_iterate_phdr(find_bss, &r);
    if (r.end <= r.start)
        return 0;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    long kib = 0;
    for (uintptr_t p = r.start; p < r.end; p += 4096) {
        uint64_t e = 0;
        if (syscall(SYS_pread64, fd, &e, sizeof e, (off_t)(p / 4096 * sizeof e)) == sizeof e &&
            (e >> 63 & 1))
            kib += 4;
    }
    syscall(SYS_close, fd);
    return kib;
}

/* Sum the agent's written KiB and code KiB from smaps (see the header). */
static void agent_pages(long *written, long *code)
{
    /* raw system calls: the agent's read() and close() hooks would page in
     * code of theirs that start-up does not run */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    ssize_t r;
    *written = *code = 0;
    if (fd < 0)
        return;
    while (n < sizeof smaps - 1 &&
           (r = syscall(SYS_read, fd, smaps + n, sizeof smaps - 1 - n)) > 0)
        n += (size_t)r;
    syscall(SYS_close, fd);
    smaps[n] = '\0';
    *written = bss_kib();
    for (char *line = smaps; line && *line;) {
        char *eol = strchr(line, '\n');
        /* a mapping's header: "start-end perms offset dev inode [path]" */
        int header = strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') &&
                     strspn(line, "0123456789abcdef") == (size_t)(strchr(line, '-') - line);
        if (header) {
            char *next = line;
            do {
                next = strchr(next, '\n');
                next = next ? next + 1 : NULL;
            } while (next && *next &&
                     !(strspn(next, "0123456789abcdef") && next[strspn(next, "0123456789abcdef")] == '-'));
            const char *end = next ? next : smaps + n;
            const char *nl = eol ? eol : smaps + n;
            int agent = 0;
            for (const char *c = line; c < nl; c++)
                if (strncmp(c, "libxenovia.so", 13) == 0)
                    agent = 1;
            if (agent)
                *written += field_kib(line, end, "\nAnonymous:");
            if (agent && strstr(line, " r-xp ") && strstr(line, " r-xp ") < nl)
                *code += field_kib(line, end, "\nRss:");
            line = next;
            continue;
        }
        line = eol ? eol + 1 : NULL;
    }
}

int main(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long faults = ru.ru_minflt;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof maps - 1 && (r = syscall(SYS_read, fd, maps + n, sizeof maps - 1 - n)) > 0)
        n += (size_t)r;
    syscall(SYS_close, fd);
    maps[n] = '\0';
    int heap = strstr(maps, "[heap]") != NULL;
    long written, code;
    agent_pages(&written, &code);
    printf("faults=%ld heap=%d written_kib=%ld code_kib=%ld\n", faults, heap, written, code);
    return 0;
}
