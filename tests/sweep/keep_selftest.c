/*
 * keep_selftest.c — the C side of sweep_selftest: proves that a file a C test
 * writes in a directory made with tests/sweep/keep.h reaches the secret
 * sweep. It makes the directory, writes argv[1]'s text into traces.jsonl and
 * spool/00001.otlp inside it, "cleans up" with xv_test_rmdir() and prints
 * the directory's path. sweep.py --selftest runs it with and without
 * XV_ARTIFACTS and checks where the text ended up.
 *
 * Single-threaded test helper; exit 0 on success, 1 on a failed step.
 */
#include <stdio.h>

#include "keep.h"

static int put(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

int main(int argc, char **argv)
{
    char dir[400], sub[500];
    if (argc != 2 || !xv_test_mkdtemp(dir, sizeof dir, "xv-keep-selftest-"))
        return 1;
    snprintf(sub, sizeof sub, "%s/spool", dir);
    if (mkdir(sub, 0700) != 0 || put(dir, "traces.jsonl", argv[1]) != 0 ||
        put(dir, "spool/00001.otlp", argv[1]) != 0)
        return 1;
    printf("%s\n", dir);
    return xv_test_rmdir(dir) == 0 ? 0 : 1;
}
