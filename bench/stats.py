#!/usr/bin/env python3
"""stats.py — turns the raw numbers bench/run.sh collected into the report.

Input: the work directory of run.sh, holding
  lat-<transport>-<mode>-<block>.txt   one call latency in ns per line
  cpu-<transport>-<mode>.txt           one "calls cpu_us" line per block
  bulk-<client>-<mode>.txt             one "bytes seconds" line per round
  meta.txt                             key=value lines (records written, expected ...)
where mode is "none" (no agent) or "agent" (LD_PRELOAD=libxenovia.so).

Output (stdout): per transport, p50/p99 per mode and the added latency (pooled
percentiles, and the median of the per-block p50 differences, which cancels
slow drift because blocks alternate); CPU per call; per bulk client, the
median throughput per mode and the ratio; each next to its target (targets
are reported against, never asserted). Standard library only.
"""

import os
import statistics
import sys

TARGET_ADDED_US = 20.0
TARGET_BULK_PCT = 99.0


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def load_lat(work, transport, mode):
    blocks = {}
    prefix = "lat-%s-%s-" % (transport, mode)
    for name in os.listdir(work):
        if name.startswith(prefix) and name.endswith(".txt"):
            b = int(name[len(prefix):-4])
            with open(os.path.join(work, name)) as f:
                blocks[b] = [int(x) / 1000.0 for x in f if x.strip()]
    return blocks


def verdict(ok):
    return "meets target" if ok else "MISSES target"


def main():
    work = sys.argv[1]
    meta = {}
    mp = os.path.join(work, "meta.txt")
    if os.path.exists(mp):
        for line in open(mp):
            if "=" in line:
                k, v = line.strip().split("=", 1)
                meta[k] = v
    print("libxenovia benchmark  (%s)" % meta.get("lib", "?"))
    print("machine: %s CPU(s), %s" % (os.cpu_count(), meta.get("uname", "")))
    print("load average: %s (anything above ~0.5 on a 2-CPU machine makes p99 noise); "
          "nice %s" % (meta.get("load", "?"), meta.get("nice", "0")))
    print()
    for transport in ("tls", "plain"):
        none, agent = load_lat(work, transport, "none"), load_lat(work, transport, "agent")
        if not none or not agent:
            continue
        alln = sorted(v for b in none.values() for v in b)
        alla = sorted(v for b in agent.values() for v in b)
        n50, n99, a50, a99 = pct(alln, 50), pct(alln, 99), pct(alla, 50), pct(alla, 99)
        diffs = [pct(sorted(agent[b]), 50) - pct(sorted(none[b]), 50)
                 for b in sorted(set(none) & set(agent))]
        med_diff = statistics.median(diffs) if diffs else float("nan")
        print("Keep-alive chat call over %s (one connection per block, %d blocks, "
              "%d calls per mode, blocks alternate none/agent):"
              % ("TLS" if transport == "tls" else "plain TCP", len(none), len(alln)))
        print("  %-22s %10s %10s" % ("", "p50 (us)", "p99 (us)"))
        print("  %-22s %10.1f %10.1f" % ("without agent", n50, n99))
        print("  %-22s %10.1f %10.1f" % ("with agent", a50, a99))
        print("  %-22s %10.1f %10.1f   target <= %.0f us added per call: %s (p50)"
              % ("added by the agent", a50 - n50, a99 - n99, TARGET_ADDED_US,
                 verdict(a50 - n50 <= TARGET_ADDED_US)))
        print("  median over blocks of (agent p50 - none p50): %.1f us" % med_diff)
        cpu, tcpu = {}, {}
        for mode in ("none", "agent"):
            p = os.path.join(work, "cpu-%s-%s.txt" % (transport, mode))
            calls = us = tus = 0
            if os.path.exists(p):
                for line in open(p):
                    f = line.split()
                    calls += int(f[0])
                    us += int(f[1])
                    tus += int(f[2]) if len(f) > 2 else 0
            cpu[mode] = us / calls if calls else float("nan")
            tcpu[mode] = tus / calls if calls else float("nan")
        print("  CPU per call, whole process:        none %5.1f us, agent %5.1f us, added %5.1f us"
              % (cpu["none"], cpu["agent"], cpu["agent"] - cpu["none"]))
        print("  CPU per call, calling thread only:  none %5.1f us, agent %5.1f us, added %5.1f us"
              % (tcpu["none"], tcpu["agent"], tcpu["agent"] - tcpu["none"]))
        print()
    bulk_lines = []
    for client in ("bench_client", "curl"):
        res, cpu_res = {}, {}
        for mode in ("none", "agent"):
            p = os.path.join(work, "bulk-%s-%s.txt" % (client, mode))
            if not os.path.exists(p):
                continue
            rates, cpu = [], []
            for line in open(p):
                f = line.split()
                rates.append(int(f[0]) / float(f[1]) / (1 << 20))
                if len(f) > 2:
                    cpu.append(int(f[2]) / 1000.0 / (int(f[0]) / float(100 << 20)))
            res[mode] = rates
            if cpu:
                cpu_res[mode] = cpu
        if "none" in res and "agent" in res and res["none"] and res["agent"]:
            mn, ma = statistics.median(res["none"]), statistics.median(res["agent"])
            ratio = 100.0 * ma / mn
            bulk_lines.append("  %-13s none %8.1f MiB/s   agent %8.1f MiB/s   ratio %6.1f %%   "
                              "target >= %.0f %%: %s   (%d rounds, median; best none %.1f, "
                              "best agent %.1f)"
                              % (client, mn, ma, ratio, TARGET_BULK_PCT,
                                 verdict(ratio >= TARGET_BULK_PCT), len(res["none"]),
                                 max(res["none"]), max(res["agent"])))
            pairs = [a / n for n, a in zip(res["none"], res["agent"]) if n > 0]
            if pairs:
                bulk_lines.append("  %-13s median of per-round ratios (adjacent none/agent rounds): "
                                  "%.1f %%" % ("", 100.0 * statistics.median(pairs)))
            if "none" in cpu_res and "agent" in cpu_res:
                cn, ca = statistics.median(cpu_res["none"]), statistics.median(cpu_res["agent"])
                bulk_lines.append("  %-13s client CPU per 100 MiB: none %.1f ms, agent %.1f ms "
                                  "(agent/none %.1f %%; steadier than MiB/s on a busy machine)"
                                  % ("", cn, ca, 100.0 * ca / cn if cn else float("nan")))
    if bulk_lines:
        print("Bulk non-OpenAI TLS download (%s MiB per round, rounds alternate none/agent):"
              % meta.get("bulk_mib", "?"))
        for line in bulk_lines:
            print(line)
        print()
    spawn = {}
    for mode in ("none", "agent"):
        p = os.path.join(work, "spawn-%s.txt" % mode)
        if os.path.exists(p):
            rows = [line.split() for line in open(p) if line.strip()]
            spawn[mode] = ([int(r[0]) / 1000.0 for r in rows], [int(r[1]) for r in rows])
    if "none" in spawn and "agent" in spawn:
        wn, wa = statistics.median(spawn["none"][0]), statistics.median(spawn["agent"][0])
        cn, ca = statistics.mean(spawn["none"][1]), statistics.mean(spawn["agent"][1])
        print("Process start (/bin/true, %d starts per mode; no target set, SPEC 2: never "
              "visibly slow the host):" % len(spawn["none"][0]))
        print("  wall, median:  none %7.0f us   agent %7.0f us   added %7.0f us" % (wn, wa, wa - wn))
        print("  CPU, mean:     none %7.0f us   agent %7.0f us   added %7.0f us" % (cn, ca, ca - cn))
        print()
    if "records" in meta:
        print("trace records written by the agent: %s (expected %s)"
              % (meta["records"], meta.get("records_expected", "?")))


if __name__ == "__main__":
    main()
