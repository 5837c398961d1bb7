/*
 * xv_nextsym.h — dlsym(RTLD_NEXT, name) for the real-function table
 * (common/real.c), answered from the loader's own symbol tables, without
 * dlsym: lock-free, allocation-free and async-signal-safe, so the table can
 * resolve each entry at its first call (a hook first reached from a signal
 * handler included) instead of all 29 at every process start (~30 us of a
 * short process's start on the bench VM, issue 9: the cost is the cold
 * cache lines of libc's hash tables, paid only for the names a process uses).
 *
 * xv_nextsym_init, once, before any thread (a load-time constructor), takes
 * a snapshot of the objects the loader placed after this one: their GNU
 * hash tables, symbols, strings and versions, as mapped. It is usable only
 * when this object came before libc in the load order (preloaded, or linked
 * into the program): the loader's global search order then matches the
 * load order that dl_iterate_phdr walks. Otherwise (this object dlopen()ed,
 * or LD_AUDIT set, whose modules may redirect what dlsym returns) every
 * answer is XV_NEXTSYM_ASK, and the caller asks dlsym.
 *
 * xv_nextsym(name) answers as dlsym(RTLD_NEXT, name) would for a plain
 * function: the first object after ours defining the name, its default
 * version (the one dlsym returns). Anything the snapshot cannot decide the
 * same way as the loader (an IFUNC, a GNU unique symbol, several default
 * versions, an object without a GNU hash table, a name defined nowhere)
 * is XV_NEXTSYM_ASK. tests/unit/test_hooks.c compares every hooked name with
 * dlsym's answer.
 *
 * Thread safety: init before threads; xv_nextsym reads immutable data only.
 */
#ifndef XV_NEXTSYM_H
#define XV_NEXTSYM_H

enum { XV_NEXTSYM_ASK = 0, XV_NEXTSYM_FOUND = 1 };

/* Snapshot the objects after the one holding `self` (an address in it).
 * Also records that object's address range (xv_nextsym_self_range). */
void xv_nextsym_init(const void *self);

/* Does the snapshot answer (else every answer is XV_NEXTSYM_ASK)? */
int xv_nextsym_usable(void);

/* XV_NEXTSYM_FOUND with *out set, or XV_NEXTSYM_ASK (ask dlsym). */
int xv_nextsym(const char *name, void **out);

/* [lo, hi) spanning the PT_LOAD segments of the object holding `self`
 * given to xv_nextsym_init; 0 when init has not run. */
int xv_nextsym_self_range(unsigned long *lo, unsigned long *hi);

#endif
