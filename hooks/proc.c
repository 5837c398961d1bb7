/*
 * proc.c — process-exit hooks. A process that leaves through _exit()
 * (Python's os._exit, which multiprocessing's forked workers use) runs no
 * destructor, so the records its calls produced would stay in the queue.
 * These hooks give the exporter the same bounded flush the normal exit path
 * gets, then exit for real.
 *
 * Not in a vfork child (it shares the parent's memory; the preload knows by
 * the pid) and only when something is actually pending, so an _exit from a
 * signal handler in a process with nothing queued touches no lock.
 */
#include "xv_hooks.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* preload/init.c: flush for an _exit of this process (no-op elsewhere). */
void xv_preload_exit_flush(void);

__attribute__((noreturn)) static void real_exit(const char *name, int status)
{
    void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, name);
    if (real)
        real(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

XV_HOOK void _exit(int status)
{
    xv_preload_exit_flush();
    real_exit("_exit", status);
}

XV_HOOK void _Exit(int status)
{
    xv_preload_exit_flush();
    real_exit("_Exit", status);
}
