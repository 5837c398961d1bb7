#!/usr/bin/env python3
"""test_start.py — what the agent's start-up costs a process that makes no
API call (`/bin/true`, `uname`; issue 9), counted, not timed.

Asserts, with start_probe (which reads its own counters at main()):
  * the agent's start allocates nothing: the probe, which allocates nothing
    itself, has no heap under the agent (a heap costs every process a
    getrandom, two brk and a page fault);
  * the agent adds at most MAX_FAULTS minor page faults before main() (median
    of RUNS starts each way, the environment stripped of XENOVIA_*: an empty
    preloaded object adds about 6 here, this agent about 11 since its
    start-up data has sections of its own, its tables no pointers and its
    segments 64 KiB alignment; the 5 Dec 2026 builds added 25, then 17,
    the 6 Dec one 14);
  * start-up writes at most 2 pages of the agent's own (the RELRO page the
    loader relocates, and the one holding .got.plt, .data and the head of
    .xvstart; common/xv_place.h), read from /proc/self/smaps, and maps one
    64 KiB window of its code; its file-backed data ends on a page boundary
    (the loader zeroes no partial page of .bss) and its segments are 64 KiB
    aligned (so that window is the same at every load address); .rodata
    lies in the first segment, with the headers the loader reads, all in
    one 64 KiB window;
  * the pages the loader relocates are those, in front of the first call's
    data (.xvstart before .xvcall, both after .data);
  * libxenovia.so has no DT_FINI (its empty _fini sat on the last page of
    the agent's code, paged in at every exit) and its start-up code sits in
    .text.startup (one 64 KiB window of code at start).

Usage: test_start.py START_PROBE LIBXENOVIA
"""
import os
import statistics
import subprocess
import sys

RUNS = 15
MAX_FAULTS = 15
MAX_WRITTEN_KIB = 8
MAX_CODE_KIB = 64


def probe(exe, lib):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XENOVIA_") and k != "LD_PRELOAD"}
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    out = subprocess.run([exe], capture_output=True, text=True, env=env, check=True,
                         timeout=30).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return (int(fields["faults"]), int(fields["heap"]), int(fields["written_kib"]),
            int(fields["code_kib"]))


def main():
    exe, lib = sys.argv[1], sys.argv[2]
    if not os.path.exists(lib):
        print("skipped: %s not built" % lib)
        sys.exit(77)
    none = [probe(exe, None) for _ in range(RUNS)]
    agent = [probe(exe, lib) for _ in range(RUNS)]
    assert not any(r[1] for r in none), "the probe itself allocated before main()"
    heap = [r[1] for r in agent]
    print("heap under the agent: %d of %d starts" % (sum(heap), RUNS))
    assert not any(heap), "the agent's start-up allocated (a heap exists before main())"
    fn = statistics.median(r[0] for r in none)
    fa = statistics.median(r[0] for r in agent)
    print("minor faults before main(): none %d, agent %d, added %d (at most %d)"
          % (fn, fa, fa - fn, MAX_FAULTS))
    assert fa - fn <= MAX_FAULTS, "the agent's start-up adds %d page faults" % (fa - fn)
    written = max(r[2] for r in agent)
    code = max(r[3] for r in agent)
    print("the agent's pages written by start-up: %d KiB (at most %d); its code mapped: %d KiB "
          "(at most %d)" % (written, MAX_WRITTEN_KIB, code, MAX_CODE_KIB))
    assert 0 < code, "no code of libxenovia.so found in /proc/self/smaps"
    assert written <= MAX_WRITTEN_KIB, "start-up wrote %d KiB of the agent's pages" % written
    assert code <= MAX_CODE_KIB, "start-up mapped %d KiB of the agent's code" % code

    dyn = subprocess.run(["readelf", "-dW", lib], capture_output=True, text=True,
                         check=True).stdout
    assert "(FINI)" not in dyn, "libxenovia.so has a DT_FINI"
    syms = subprocess.run(["readelf", "-sW", lib], capture_output=True, text=True,
                          check=True).stdout
    secs = subprocess.run(["readelf", "-SW", lib], capture_output=True, text=True,
                          check=True).stdout
    phdrs_text = subprocess.run(["readelf", "-lW", lib], capture_output=True, text=True,
                                check=True).stdout
    text = [l for l in secs.splitlines() if " .text " in l][0].split()
    addr = {}
    for line in syms.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC":
            addr[f[7]] = int(f[1], 16)
    # .text.startup is gathered at the head of .text: do_init and the
    # start-up functions of other files lie within 64 KiB of each other
    start = [addr[n] for n in ("do_init", "xv_config_load", "xv_patch_apply", "xv_exp_init",
                               "xv_knob_get_text", "xv_real_init") if n in addr]
    assert len(start) == 6, "start-up functions not found in the symbol table"
    span = max(start) - min(start)
    print("start-up code spans %d bytes (text at %s)" % (span, text[text.index(".text") + 2]))
    assert span < 65536, "start-up code spread over %d bytes" % span

    # The functions an API call runs (preload/hot_functions.txt) follow the
    # start-up code at the head of .text (preload/hot.ld): a call pages in
    # three 64 KiB windows of code, not all five (~145 KiB from the head of
    # .text here; spread by the compiler's order they span ~260 KiB).
    hot_list = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "preload",
                            "hot_functions.txt")
    names = {l.strip() for l in open(hot_list) if l.strip() and not l.startswith("#")}
    size = {}
    for line in syms.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC":
            size[f[7]] = int(f[2])
    hot = [(addr[n], size[n]) for n in names if n in addr]
    assert len(hot) > len(names) // 2, "most listed functions are missing from the library"
    head = int(text[text.index(".text") + 2], 16)
    end = max(a + s for a, s in hot)
    print("%d of %d listed functions end %d bytes after the head of .text" % (len(hot), len(names),
                                                                         end - head))
    assert end - head <= 160 * 1024, "a call's code spreads over %d bytes" % (end - head)
    # Its first group, what a process's first TLS chat call runs, ends within
    # the code segment's first two 64 KiB windows (start-up code included):
    # such a process pages in two windows of the agent's code, not three.
    first, group = set(), None
    for l in open(hot_list):
        if l.startswith("# 1."):
            group = first
        elif l.startswith("# 2."):
            group = None
        elif group is not None and l.strip() and not l.startswith("#"):
            group.add(l.strip())
    assert first, "preload/hot_functions.txt has no group 1"
    seg = [f for f in (l.split() for l in phdrs_text.splitlines())
           if f[:1] == ["LOAD"] and "E" in f[6:-1]]
    code_start = int(seg[0][2], 16)
    end1 = max(addr[n] + size[n] for n in first if n in addr)
    print("the first call's functions end %d bytes into the code segment (at most %d)"
          % (end1 - code_start, 2 * 65536))
    assert end1 - code_start <= 2 * 65536, \
        ("the first call's code spreads over a third 64 KiB window (%d bytes): make room (start-"
         "only files built with -Os, as patch/elf.c; less code on the call's path) or move a "
         "function the first call need not run to group 2" % (end1 - code_start))

    # The writable pages start-up writes: the loader's relocations (the RELRO
    # part, .got.plt) and the variables start-up writes (.xvstart, placed
    # right after .data) lie on at most 3 pages; a table of pointers added
    # to the constant data, or .xvstart spread out again, costs every
    # process one copy-on-write fault per page more.
    sec = {}
    for line in secs.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 5 and f[0].startswith("[") and f[0] != "[Nr]":
            sec[f[1]] = (int(f[3], 16), int(f[5], 16))
    order = [n for n in (".got.plt", ".data", ".xvstart", ".xvcall", ".bss") if n in sec]
    assert order == [".got.plt", ".data", ".xvstart", ".xvcall", ".bss"], order
    assert [sec[n][0] for n in order] == sorted(sec[n][0] for n in order), \
        "sections out of order: %s" % {n: hex(sec[n][0]) for n in order}
    phdrs = subprocess.run(["readelf", "-lW", lib], capture_output=True, text=True,
                           check=True).stdout
    relro = [l.split() for l in phdrs.splitlines() if l.split()[:1] == ["GNU_RELRO"]][0]
    first = int(relro[2], 16) >> 12
    last = (sec[".xvstart"][0] + sec[".xvstart"][1] - 1) >> 12
    print("RELRO, .got.plt, .data and .xvstart on pages %#x-%#x" % (first, last))
    assert last - first + 1 <= 3, "start-up data spans %d pages" % (last - first + 1)
    loads = [l.split() for l in phdrs.splitlines() if l.split()[:1] == ["LOAD"]]
    assert all(int(l[-1], 16) == 0x10000 for l in loads), "segments not 64 KiB aligned: %s" % loads
    # .rodata shares the first segment, the headers the loader reads, and
    # that segment fits one 64 KiB window: start-up's constants cost no
    # fault of their own
    first_load = [l for l in loads if int(l[1], 16) == 0][0]
    ro = sec[".rodata"]
    print(".rodata at %#x-%#x, first segment %s bytes" % (ro[0], ro[0] + ro[1], first_load[5]))
    assert ro[0] + ro[1] <= int(first_load[5], 16) <= 0x10000, \
        ".rodata outside the first 64 KiB segment"
    rw = [l for l in loads if l[-2] == "RW"][0]
    data_end = int(rw[2], 16) + int(rw[4], 16)
    print("file-backed data ends at %#x" % data_end)
    assert data_end % 4096 == 0, "the loader zeroes the partial page at %#x" % data_end
    relocs = subprocess.run(["readelf", "-rW", lib], capture_output=True, text=True,
                            check=True).stdout
    pages = set()
    for line in relocs.splitlines():
        f = line.split()
        if len(f) >= 3 and f[2].startswith("R_X86_64_"):
            pages.add(int(f[0], 16) >> 12)
    outside = sorted(p for p in pages if not first <= p <= last)
    print("pages the loader relocates: %s" % ", ".join("%#x" % p for p in sorted(pages)))
    assert not outside, "relocations on pages %s beyond the start-up ones" % outside
    print("ok")


if __name__ == "__main__":
    main()
