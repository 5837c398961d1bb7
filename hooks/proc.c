/*
 * proc.c — process-exit hooks. A process that leaves through _exit()
 * (Python's os._exit, which multiprocessing's forked workers use) runs no
 * destructor, so the records its calls produced would stay in the queue.
 * These hooks run what preload/ registered (the same bounded flush the
 * normal exit path gets: xv_hooks_on_exit), then exit for real through the
 * table (common/xv_real.h).
 *
 * The callback decides (not in a vfork child, which shares the parent's
 * memory; only when something is actually pending, so an _exit from a
 * signal handler in a process with nothing queued touches no lock).
 * Thread safety: the callback pointer is written once before the hooks
 * turn on and read with an atomic load.
 */
#include "xv_hooks.h"
#include "xv_place.h"

#include <stdatomic.h>

/* Registered by preload/ (xv_hooks_on_exit); NULL: nothing to do. */
static void (*_Atomic g_on_exit)(void) XV_START_DATA;

XV_START_FN void xv_hooks_on_exit(void (*fn)(void))
{
    atomic_store_explicit(&g_on_exit, fn, memory_order_release);
}

static void run_exit_callback(void)
{
    void (*fn)(void) = atomic_load_explicit(&g_on_exit, memory_order_acquire);
    if (fn)
        fn();
}

XV_HOOK void _exit(int status)
{
    run_exit_callback();
    XV_REAL(_exit)(status);
}

XV_HOOK void _Exit(int status)
{
    run_exit_callback();
    xv_real._Exit(status);
}
