/*
 * start_probe.c — what loading the agent cost this process before main()
 * (issue 9), seen from inside.
 *
 * At entry to main, before calling anything that could allocate, it reads
 * the minor page faults of the process so far (getrusage) and whether the
 * process has a heap yet (a "[heap]" line in /proc/self/maps, read with
 * plain open/read into a static buffer: no stdio, no malloc). It prints
 *
 *     faults=F heap=H
 *
 * test_start.py runs it without and with LD_PRELOAD=libxenovia.so. This
 * program allocates nothing before the measurement, so H=1 means the
 * agent's start-up did (and so set up the heap: a getrandom, two brk and
 * a page fault in every process).
 *
 * Exit 0, or 1 when /proc/self/maps cannot be read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char maps[1 << 16];

int main(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long faults = ru.ru_minflt;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof maps - 1 && (r = read(fd, maps + n, sizeof maps - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    maps[n] = '\0';
    int heap = strstr(maps, "[heap]") != NULL;
    printf("faults=%ld heap=%d\n", faults, heap);
    return 0;
}
