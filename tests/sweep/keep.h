/*
 * tests/sweep/keep.h — temporary directories of the C tests, made where the
 * secret sweep (tests/sweep/sweep.py, ctest's zz_secret_sweep) can read them.
 *
 * A C test that lets the agent's code write trace files, spool files or
 * cassettes makes its directory with xv_test_mkdtemp() — under $TMPDIR, which
 * ctest points at <build>/test-artifacts/tmp (tests/sweep/artifacts.cmake),
 * not a fixed /tmp path — and ends with xv_test_rmdir(): outside ctest
 * (XV_ARTIFACTS unset) that removes the directory as before; under ctest it
 * moves it to $XV_ARTIFACTS/kept/ (or, when that fails, leaves it under
 * $TMPDIR), and the sweep reads it and clears everything after the run.
 *
 * Header-only (static functions), for tests only. Not thread-safe: call from
 * a test's setup/teardown.
 */
#ifndef XV_TESTS_SWEEP_KEEP_H
#define XV_TESTS_SWEEP_KEEP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Make "$TMPDIR/<prefix>XXXXXX" (TMPDIR unset or empty: /tmp) into buf.
 * Returns buf, or NULL (errno set) when it cannot be made. */
static inline char *xv_test_mkdtemp(char *buf, size_t size, const char *prefix)
{
    const char *t = getenv("TMPDIR");
    if (!t || !*t)
        t = "/tmp";
    if ((size_t)snprintf(buf, size, "%s/%sXXXXXX", t, prefix) >= size)
        return NULL;
    return mkdtemp(buf);
}

/* Remove dir and what it holds, or keep it for the sweep (see the top).
 * Returns 0 on success, like system("rm -rf"). */
static inline int xv_test_rmdir(const char *dir)
{
    const char *keep = getenv("XV_ARTIFACTS");
    char cmd[1200];
    if (strchr(dir, '\''))
        return -1; /* never quoted into a shell command */
    if (keep && *keep && !strchr(keep, '\'')) {
        const char *base = strrchr(dir, '/');
        char dst[1100];
        snprintf(dst, sizeof dst, "%s/kept", keep);
        mkdir(dst, 0700);
        snprintf(dst, sizeof dst, "%s/kept/%ld-%s", keep, (long)getpid(), base ? base + 1 : dir);
        /* When the move fails the directory stays under $TMPDIR, which
         * ctest points into XV_ARTIFACTS as well. */
        (void)rename(dir, dst);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

#endif
