#!/usr/bin/env python3
"""test_start.py — what the agent's start-up costs a process that makes no
API call (`/bin/true`, `uname`; issue 9), counted, not timed.

Asserts, with start_probe (which reads its own counters at main()):
  * the agent's start allocates nothing: the probe, which allocates nothing
    itself, has no heap under the agent (a heap costs every process a
    getrandom, two brk and a page fault);
  * the agent adds at most MAX_FAULTS minor page faults before main() (median
    of RUNS starts each way, the environment stripped of XENOVIA_*: an empty
    preloaded object adds about 6 here, this agent about 17 since its
    start-up code and data were grouped and its start stopped allocating;
    the 5 Dec 2026 build added 25);
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
MAX_FAULTS = 23


def probe(exe, lib):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XENOVIA_") and k != "LD_PRELOAD"}
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    out = subprocess.run([exe], capture_output=True, text=True, env=env, check=True,
                         timeout=30).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return int(fields["faults"]), int(fields["heap"])


def main():
    exe, lib = sys.argv[1], sys.argv[2]
    if not os.path.exists(lib):
        print("skipped: %s not built" % lib)
        sys.exit(77)
    none = [probe(exe, None) for _ in range(RUNS)]
    agent = [probe(exe, lib) for _ in range(RUNS)]
    assert not any(h for _, h in none), "the probe itself allocated before main()"
    heap = [h for _, h in agent]
    print("heap under the agent: %d of %d starts" % (sum(heap), RUNS))
    assert not any(heap), "the agent's start-up allocated (a heap exists before main())"
    fn = statistics.median(f for f, _ in none)
    fa = statistics.median(f for f, _ in agent)
    print("minor faults before main(): none %d, agent %d, added %d (at most %d)"
          % (fn, fa, fa - fn, MAX_FAULTS))
    assert fa - fn <= MAX_FAULTS, "the agent's start-up adds %d page faults" % (fa - fn)

    dyn = subprocess.run(["readelf", "-dW", lib], capture_output=True, text=True,
                         check=True).stdout
    assert "(FINI)" not in dyn, "libxenovia.so has a DT_FINI"
    syms = subprocess.run(["readelf", "-sW", lib], capture_output=True, text=True,
                          check=True).stdout
    secs = subprocess.run(["readelf", "-SW", lib], capture_output=True, text=True,
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
    print("ok")


if __name__ == "__main__":
    main()
