/*
 * xv_place.h — where the linker puts some of the agent's code and data, so
 * that a process pays page faults only for what it runs (issue 9; on the
 * 2-CPU VM the bench runs on an anonymous page fault costs ~15 us and a
 * file-backed one ~30 us). Nothing here changes what the code does.
 * Header-only; patch/ uses it too.
 */
#ifndef XV_PLACE_H
#define XV_PLACE_H

/* For a large zero-initialised static table (the fd map, the DNS ring...):
 * placed in .lbss, which the linker puts after all of .bss, so the small
 * variables that start-up and a first call touch share a few pages instead
 * of lying between the tables, one page fault each. The table's own pages
 * are still touched only as used. x86-64 GCC makes .lbss NOBITS; anywhere
 * else the attribute is left out. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define XV_LARGE_BSS __attribute__((section(".lbss.xv")))
#else
#define XV_LARGE_BSS
#endif

#if defined(__GNUC__) && defined(__ELF__)
/* Code that every process start runs (XV_START_FN) or its exit
 * (XV_EXIT_FN): placed in .text.startup / .text.exit, which the default ELF
 * linker scripts gather at the head of .text, next to the constructor. A
 * process that never connects (`/bin/true`, `uname`) then pages in one
 * 64 KiB window of the agent's code instead of one per file its start
 * passes through. */
#define XV_START_FN __attribute__((section(".text.startup")))
#define XV_EXIT_FN __attribute__((section(".text.exit")))
/* Variables that every process start writes (XV_START_DATA), and those a
 * first API call touches, locks mostly (XV_CALL_DATA): each kind gathered in
 * a section of its own, so start-up writes two pages next to the ones the
 * loader writes anyway (the PLT slots, .data) instead of a few bytes on each
 * of five pages, one copy-on-write fault each (~15 us on the bench VM).
 * In .bss such a variable would cost two faults when a lock is taken (glibc
 * reads a mutex's kind before it writes it: a read fault, then a write one).
 * The two names match no rule of the default linker script, which places
 * them after .data, in the order met: .xvstart first (preload/init.c, the
 * first object linked, uses it), then .xvcall, then .bss. tests/perf
 * test_start.py checks that order. Only where it matters: both are stored
 * in the file. */
#define XV_START_DATA __attribute__((section(".xvstart")))
#define XV_CALL_DATA __attribute__((section(".xvcall")))
/* Start-up data only the head of which every start writes (patch/'s report,
 * whose strings are written only when OpenSSL is compiled in): placed at the
 * end of .xvstart (preload/hot.ld), so that the part every start writes
 * stays on the page the loader writes anyway. */
#define XV_START_TAIL_DATA __attribute__((section(".xvstart.tail")))
#else
#define XV_START_TAIL_DATA
#define XV_START_FN
#define XV_EXIT_FN
#define XV_START_DATA
#define XV_CALL_DATA
#endif

#endif
