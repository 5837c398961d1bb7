#!/usr/bin/env python3
"""stats.py — turns the raw numbers bench/run.sh collected into the report.

Input: the work directory of run.sh, holding
  lat-<transport>-<mode>-<block>.txt   one call latency in ns per line
  cpu-<transport>-<mode>.txt           one "calls cpu_us thread_cpu_us peer_cpu_us" line per block
  once-<mode>.txt                      per one-call process: "once LAT_NS MINFLT RSS_KB STAMPED"
                                       (the child) then "WALL_NS CPU_US PEER_CPU_US" (its spawner)
  bulk-<client>-<mode>.txt             one "bytes seconds [cpu_us]" line per round
  spawn-<mode>.txt                     one "wall_ns cpu_us [peer] [minflt]" line per /bin/true start
  convo-<mode>.txt                     calls, CPU us, request bytes, proxy CPU us per round
  spawn-node-<mode>.txt                the same per `node -e 0` start (pairs, alternating)
  meta.txt                             key=value lines (records written, expected ...)
where mode is "none" (no agent), "agent" (LD_PRELOAD=libxenovia.so), "policy"
(the agent with the 20-rule bench policy) or "nginx" (no agent, through a
local nginx hop; its CPU is the peer CPU).

Output (stdout): the detail per measurement, then one table of every goal of
issue 9 with its figure from this run and met/MISSED (goals are reported,
never asserted). Standard library only.
"""

import os
import statistics
import sys

# Goals (issue 9), same run, this machine.
GOAL_P50_US = 8.0          # keep-alive TLS call, no policy, added p50
GOAL_P99_US = 40.0         # ... added p99
GOAL_CPU_US = 8.0          # ... added CPU per call (all threads)
GOAL_POLICY_P50_US = 12.0  # with the 20-rule bench policy, added p50
GOAL_NGINX_RATIO = 5.0     # nginx added / agent added, p50 and CPU
GOAL_ONCE_LAT_US = 500.0   # one-call process: added latency of the call
GOAL_ONCE_CPU_US = 1000.0  # ... added CPU of the process
GOAL_START_CPU_US = 300.0  # /bin/true: added CPU
GOAL_BULK_PCT = 99.0       # bulk TLS throughput, agent/none
GOAL_BULK_CPU_PCT = 5.0    # bulk TLS client CPU added
GOAL_RSS_KIB = 1024.0      # RSS added by the first API call


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


def load_cpu(work, transport, mode):
    """(process CPU, calling thread CPU, peer CPU) per call, µs."""
    p = os.path.join(work, "cpu-%s-%s.txt" % (transport, mode))
    calls = us = tus = pus = 0
    if os.path.exists(p):
        for line in open(p):
            f = line.split()
            calls += int(f[0])
            us += int(f[1])
            tus += int(f[2]) if len(f) > 2 and f[2] else 0
            pus += int(f[3]) if len(f) > 3 and f[3] else 0
    if not calls:
        return (float("nan"),) * 3
    return us / calls, tus / calls, pus / calls


def cpu_blocks(work, transport, mode):
    """Per-block (process CPU + peer CPU) per call, µs, in block order."""
    p = os.path.join(work, "cpu-%s-%s.txt" % (transport, mode))
    out = []
    if os.path.exists(p):
        for line in open(p):
            f = line.split()
            if f and int(f[0]):
                peer = int(f[3]) if len(f) > 3 and f[3] else 0
                out.append((int(f[1]) + peer) / int(f[0]))
    return out


def load_once(work, mode):
    """Rows (lat_us, minflt, rss_kib, wall_us, cpu_us, peer_us) of one-call processes."""
    p = os.path.join(work, "once-%s.txt" % mode)
    rows, pending = [], None
    if not os.path.exists(p):
        return rows
    for line in open(p):
        f = line.split()
        if not f:
            continue
        if f[0] == "once":
            pending = (int(f[1]) / 1000.0, int(f[2]), float(f[3]))
        elif pending is not None:
            rows.append(pending + (int(f[0]) / 1000.0, int(f[1]),
                                   int(f[2]) if len(f) > 2 else 0))
            pending = None
    return rows


class Goals:
    """The closing table: figure, goal, verdict."""

    def __init__(self):
        self.rows = []

    def add(self, what, figure, unit, goal_text, ok):
        if figure != figure:  # NaN: not measured in this run
            self.rows.append((what, "not measured", goal_text, "-"))
            return
        self.rows.append((what, "%.1f %s" % (figure, unit) if unit else "%.1f" % figure,
                          goal_text, "met" if ok else "MISSED"))

    def note(self, what, text):
        self.rows.append((what, text, "", "-"))

    def show(self, load=None):
        print("Goals (issue 9) beside this run's figures:")
        if load is not None and load > (os.cpu_count() or 1):
            print("  (load average %.1f on %d CPUs: the baseline itself is disturbed, so added "
                  "figures can even come out negative; verdicts marked '?' are not to be trusted)"
                  % (load, os.cpu_count() or 1))
            self.rows = [(w, f, g, v + "?" if v in ("met", "MISSED") else v)
                         for w, f, g, v in self.rows]
        w = max(len(r[0]) for r in self.rows)
        for what, fig, goal, verdict in self.rows:
            print("  %-*s  %18s   %-16s %s" % (w, what, fig, goal, verdict))


def latency_section(work, goals):
    added = {}
    titles = {"tls": "TLS", "plain": "plain TCP",
              "tls1": "TLS on one CPU (client, server and nginx pinned to CPU 0)"}
    for transport in ("tls", "tls1", "plain"):
        none = load_lat(work, transport, "none")
        if not none:
            continue
        alln = sorted(v for b in none.values() for v in b)
        n50, n99 = pct(alln, 50), pct(alln, 99)
        cn = load_cpu(work, transport, "none")
        print("Keep-alive chat call over %s (%d blocks, %d calls per mode, mode order rotating "
              "per block):" % (titles[transport], len(none), len(alln)))
        print("  %-26s %9s %9s %10s %10s %14s %12s %11s"
              % ("", "p50 us", "p99 us", "+p50 us", "+p99 us", "+p50 blk-med", "CPU/call us",
                 "+CPU us"))
        print("  %-26s %9.1f %9.1f %10s %10s %14s %12.1f %11s"
              % ("none", n50, n99, "", "", "", cn[0], ""))
        for mode in ("agent", "policy", "nginx", "route"):
            m = load_lat(work, transport, mode)
            if not m:
                continue
            allm = sorted(v for b in m.values() for v in b)
            m50, m99 = pct(allm, 50), pct(allm, 99)
            diffs = [pct(sorted(m[b]), 50) - pct(sorted(none[b]), 50)
                     for b in sorted(set(none) & set(m))]
            med = statistics.median(diffs) if diffs else float("nan")
            cm = load_cpu(work, transport, mode)
            cpu = cm[0] + cm[2]  # client (all threads) + proxy
            label = {"agent": "agent", "policy": "agent + 20-rule policy",
                     "nginx": "nginx hop (client+nginx)",
                     "route": "agent, rerouted (relay)"}[mode]
            print("  %-26s %9.1f %9.1f %10.1f %10.1f %14.1f %12.1f %11.1f"
                  % (label, m50, m99, m50 - n50, m99 - n99, med, cpu, cpu - cn[0]))
            added[(transport, mode)] = (m50 - n50, m99 - n99, cpu - cn[0], med)
            nb, mb = cpu_blocks(work, transport, "none"), cpu_blocks(work, transport, mode)
            pairs = [m_ - n_ for n_, m_ in zip(nb, mb)]
            bmed = statistics.median(pairs) if pairs else float("nan")
            extra = "added CPU, median over blocks: %+.1f us" % bmed
            if mode == "agent":
                extra += "; calling thread only: %+.1f us (the agent's inline cost)" % (cm[1] - cn[1])
            print("  %-26s %s" % ("", extra))
        print()
    a = added.get(("tls", "agent"))
    call_goals(goals, a, added.get(("tls", "policy")), "", with_p99=True)
    rt = added.get(("tls", "route"))
    if a and rt:
        print("rerouted vs direct to the gateway (TLS, same run, both under the agent): "
              "+%.1f us p50, +%.1f us p99, +%.1f us CPU per call (the relay's loopback hop "
              "and second TLS session)" % (rt[0] - a[0], rt[1] - a[1], rt[2] - a[2]))
        print()
        goals.note("rerouted call: added over direct", "%.1f us p50 (reported, no goal)" % (rt[0] - a[0]))
    ngx = added.get(("tls", "nginx"))
    if a and ngx:
        nginx_ratios(goals, a, ngx, "(TLS, same run)", "")
    elif a:
        goals.note("nginx/agent ratios", "no nginx in this run")
    # The same on one CPU: what the paths' own work adds, reported beside
    # the two-CPU figures above (which are the goals' own).
    a1, n1 = added.get(("tls1", "agent")), added.get(("tls1", "nginx"))
    call_goals(goals, a1, added.get(("tls1", "policy")), "one CPU: ", with_p99=False)
    if a1 and n1:
        nginx_ratios(goals, a1, n1, "on one CPU", "one CPU: ")


def call_goals(goals, a, pol, prefix, with_p99):
    """Goal rows of the keep-alive call (a) and the policy call (pol): (p50, p99, CPU, ...)."""
    if a:
        goals.add(prefix + "TLS call, no policy: added p50", a[0], "us",
                  "<= %.0f us" % GOAL_P50_US, a[0] <= GOAL_P50_US)
        if with_p99:
            goals.add(prefix + "TLS call, no policy: added p99", a[1], "us",
                      "<= %.0f us" % GOAL_P99_US, a[1] <= GOAL_P99_US)
        goals.add(prefix + "TLS call, no policy: added CPU", a[2], "us",
                  "<= %.0f us" % GOAL_CPU_US, a[2] <= GOAL_CPU_US)
    if pol:
        goals.add(prefix + "TLS call, 20-rule policy: added p50", pol[0], "us",
                  "<= %.0f us" % GOAL_POLICY_P50_US, pol[0] <= GOAL_POLICY_P50_US)


def nginx_ratios(goals, a, ngx, where, prefix):
    """The nginx/agent ratios of added p50 and added CPU, printed and as goal rows."""
    r50 = ngx[0] / a[0] if a[0] > 0 else float("inf")
    rcpu = ngx[2] / a[2] if a[2] > 0 else float("inf")
    print("agent vs nginx hop %s: added p50 %.1f vs %.1f us -> nginx/agent %.1fx; "
          "added CPU %.1f vs %.1f us -> %.1fx" % (where, a[0], ngx[0], r50, a[2], ngx[2], rcpu))
    print()
    goals.add(prefix + "nginx/agent, added p50", r50, "x", ">= %.0fx" % GOAL_NGINX_RATIO,
              r50 >= GOAL_NGINX_RATIO)
    goals.add(prefix + "nginx/agent, added CPU per call", rcpu, "x", ">= %.0fx" % GOAL_NGINX_RATIO,
              rcpu >= GOAL_NGINX_RATIO)


def convo_section(work, goals):
    """The long conversation (an agent loop): CPU per call and per KiB of request."""
    rows = {}
    for mode in ("none", "agent", "nginx"):
        p = os.path.join(work, "convo-%s.txt" % mode)
        if os.path.exists(p):
            rows[mode] = [[int(x) for x in line.split()] for line in open(p) if line.strip()]
    if not rows.get("none") or not rows.get("agent"):
        return
    calls, nbytes = rows["none"][0][0], rows["none"][0][2]
    kib_per_call = nbytes / calls / 1024.0

    def per_call(mode):  # client (all threads) + proxy, per call, median of rounds
        return statistics.median((r[1] + r[3]) / r[0] for r in rows[mode])
    n = per_call("none")
    print("Long conversation (an agent loop: %d calls per round, %.0f KiB of request on average, "
          "%d rounds per mode, medians):" % (calls, kib_per_call, len(rows["none"])))
    print("  %-26s %12s %12s %16s" % ("", "CPU/call us", "+CPU us", "+CPU us per KiB"))
    print("  %-26s %12.1f" % ("none", n))
    added = {}
    for mode in ("agent", "nginx"):
        if rows.get(mode):
            m = per_call(mode)
            added[mode] = m - n
            label = {"agent": "agent", "nginx": "nginx hop (client+nginx)"}[mode]
            print("  %-26s %12.1f %12.1f %16.2f" % (label, m, m - n, (m - n) / kib_per_call))
    goals.note("long conversation: added CPU per call",
               "%.0f us (%.2f us per KiB; reported, no goal)"
               % (added["agent"], added["agent"] / kib_per_call))
    if "nginx" in added and added["agent"] > 0:
        goals.note("long conversation: nginx/agent added CPU",
                   "%.1f x (reported, no goal)" % (added["nginx"] / added["agent"]))
    print()


def once_section(work, goals):
    rows = {m: load_once(work, m) for m in ("none", "agent", "nginx")}
    if not rows["none"] or not rows["agent"]:
        return
    med, low = {}, {}
    for m, r in rows.items():
        if r:
            med[m] = [statistics.median(x[i] for x in r) for i in range(6)]
            low[m] = pct(sorted(x[0] for x in r), 25)
    n = med["none"]
    print("One-call process (start, one TLS chat call, exit; %d processes per mode, "
          "alternating; medians):" % len(rows["none"]))
    print("  the call's latency, lower quartile (a new process's first call is often delayed "
          "by the scheduler on a busy machine; the quartile shows what the agent adds): "
          + ", ".join("%s %.1f us" % (m, low[m]) for m in ("none", "agent", "nginx") if m in low)
          + "; agent adds %.1f us" % (low["agent"] - low["none"]))
    # Added CPU: the median over rounds of (mode - none) from the two
    # processes of the same round (started one after the other), steadier
    # than a difference of medians when a process's CPU jumps by ms from
    # one start to the next.
    paired = {}
    for m in ("agent", "nginx"):
        if rows.get(m):
            k = min(len(rows[m]), len(rows["none"]))
            paired[m] = statistics.median(rows[m][i][4] + rows[m][i][5] - rows["none"][i][4]
                                          for i in range(k))
    print("  %-26s %11s %11s %13s %11s %9s %9s" % ("", "call us", "+call us", "process CPU",
                                                 "+CPU us", "+faults", "+RSS KiB"))
    for m in ("none", "agent", "nginx"):
        if m not in med:
            continue
        x = med[m]
        cpu = x[4] + x[5]
        label = {"none": "none", "agent": "agent", "nginx": "nginx hop (client+nginx)"}[m]
        print("  %-26s %11.1f %11s %13.1f %11s %9s %9s"
              % (label, x[0], "" if m == "none" else "%.1f" % (x[0] - n[0]), cpu,
                 "" if m == "none" else "%.1f" % paired[m],
                 "" if m == "none" else "%d" % (x[1] - n[1]),
                 "" if m == "none" else "%.0f" % (x[2] - n[2])))
    print("  (+CPU: median over rounds of the difference between the two processes of a round; "
          "difference of the medians: agent %.1f us)" % (med["agent"][4] + med["agent"][5]
                                                         - n[4] - n[5]))
    print()
    a = med["agent"]
    goals.add("one-call process: added call latency (median)", a[0] - n[0], "us",
              "<= %.0f us" % GOAL_ONCE_LAT_US, a[0] - n[0] <= GOAL_ONCE_LAT_US)
    lq = low["agent"] - low["none"]
    goals.add("one-call process: added call latency (p25)", lq, "us",
              "<= %.0f us" % GOAL_ONCE_LAT_US, lq <= GOAL_ONCE_LAT_US)
    acpu = paired["agent"]
    goals.add("one-call process: added CPU", acpu, "us", "<= %.0f us" % GOAL_ONCE_CPU_US,
              acpu <= GOAL_ONCE_CPU_US)
    goals.add("RSS added by the first API call", a[2] - n[2], "KiB",
              "<= %.0f KiB" % GOAL_RSS_KIB, a[2] - n[2] <= GOAL_RSS_KIB)


def bulk_section(work, meta, goals):
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
        if not (res.get("none") and res.get("agent")):
            continue
        mn, ma = statistics.median(res["none"]), statistics.median(res["agent"])
        ratio = 100.0 * ma / mn
        pairs = [a / n for n, a in zip(res["none"], res["agent"]) if n > 0]
        pr = 100.0 * statistics.median(pairs) if pairs else float("nan")
        bulk_lines.append("  %-13s none %8.1f MiB/s   agent %8.1f MiB/s   ratio %6.1f %% "
                          "(median of adjacent-round ratios %.1f %%; %d rounds)"
                          % (client, mn, ma, ratio, pr, len(res["none"])))
        if client == "bench_client":
            # Both estimators, as for /bin/true: the ratio of the medians, and the
            # median of adjacent rounds' ratios (which a drift of the VM's speed
            # between rounds does not bias).
            goals.add("bulk TLS throughput (ratio of medians)", ratio, "%",
                      ">= %.0f %%" % GOAL_BULK_PCT, ratio >= GOAL_BULK_PCT)
            goals.add("bulk TLS throughput (paired median)", pr, "%",
                      ">= %.0f %%" % GOAL_BULK_PCT, pr >= GOAL_BULK_PCT)
        if "none" in cpu_res and "agent" in cpu_res:
            cn, ca = statistics.median(cpu_res["none"]), statistics.median(cpu_res["agent"])
            added = 100.0 * (ca - cn) / cn if cn else float("nan")
            cpairs = [100.0 * (a - n) / n for n, a in zip(cpu_res["none"], cpu_res["agent"]) if n]
            padded = statistics.median(cpairs) if cpairs else float("nan")
            bulk_lines.append("  %-13s client CPU per 100 MiB: none %.1f ms, agent %.1f ms "
                              "(added %+.1f %%; median of adjacent rounds' %+.1f %%)"
                              % ("", cn, ca, added, padded))
            if client == "bench_client":
                goals.add("bulk TLS client CPU added (of medians)", added, "%",
                          "<= %.0f %%" % GOAL_BULK_CPU_PCT, added <= GOAL_BULK_CPU_PCT)
                goals.add("bulk TLS client CPU added (paired median)", padded, "%",
                          "<= %.0f %%" % GOAL_BULK_CPU_PCT, padded <= GOAL_BULK_CPU_PCT)
    if bulk_lines:
        print("Bulk non-OpenAI TLS download (%s MiB per round, rounds alternate none/agent):"
              % meta.get("bulk_mib", "?"))
        for line in bulk_lines:
            print(line)
        print()


def spawn_section(work, goals):
    spawn = {}
    for mode in ("none", "agent"):
        p = os.path.join(work, "spawn-%s.txt" % mode)
        if os.path.exists(p):
            rows = [line.split() for line in open(p) if line.strip()]
            spawn[mode] = ([int(r[0]) / 1000.0 for r in rows], [int(r[1]) for r in rows],
                           [int(r[3]) for r in rows if len(r) > 3])
    if "none" in spawn and "agent" in spawn:
        wn, wa = statistics.median(spawn["none"][0]), statistics.median(spawn["agent"][0])
        cn, ca = statistics.mean(spawn["none"][1]), statistics.mean(spawn["agent"][1])
        k = min(len(spawn["none"][1]), len(spawn["agent"][1]))
        # the starts alternate (run.sh): round i's two are neighbours
        paired = statistics.median(spawn["agent"][1][i] - spawn["none"][1][i] for i in range(k))
        print("Process start (/bin/true, %d starts per mode, alternating):" % len(spawn["none"][0]))
        print("  wall, median:  none %7.0f us   agent %7.0f us   added %7.0f us" % (wn, wa, wa - wn))
        print("  CPU, mean:     none %7.0f us   agent %7.0f us   added %7.0f us" % (cn, ca, ca - cn))
        print("  CPU added, median over rounds of the two neighbouring starts' difference: "
              "%.0f us" % paired)
        if spawn["none"][2] and spawn["agent"][2]:
            # page faults are what a start costs on this VM (~15-30 us each)
            # and, unlike CPU time, do not swing with the machine's load
            fn, fa = statistics.median(spawn["none"][2]), statistics.median(spawn["agent"][2])
            print("  minor faults, median: none %5.0f   agent %5.0f   added %5.0f" % (fn, fa, fa - fn))
        print()
        goals.add("/bin/true start: added CPU (paired median)", paired, "us",
                  "<= %.0f us" % GOAL_START_CPU_US, paired <= GOAL_START_CPU_US)
        goals.add("/bin/true start: added CPU (difference of means)", ca - cn, "us",
                  "<= %.0f us" % GOAL_START_CPU_US, ca - cn <= GOAL_START_CPU_US)
    node = {}
    for mode in ("none", "agent"):
        p = os.path.join(work, "spawn-node-%s.txt" % mode)
        if os.path.exists(p):
            node[mode] = [line.split() for line in open(p) if line.strip()]
    if node.get("none") and node.get("agent"):
        k = min(len(node["none"]), len(node["agent"]))
        # pairs of neighbouring starts: node's own start swings by ms
        d_cpu = statistics.median(int(node["agent"][i][1]) - int(node["none"][i][1])
                                  for i in range(k))
        d_flt = statistics.median(int(node["agent"][i][3]) - int(node["none"][i][3])
                                  for i in range(k) if len(node["agent"][i]) > 3)
        print("Process start (node -e 0, OpenSSL compiled in and patched; %d pairs, medians of "
              "the pairs' differences):" % k)
        print("  CPU: none %.1f ms, added %.2f ms; minor faults added %.0f" % (
            statistics.median(int(r[1]) for r in node["none"][:k]) / 1000.0, d_cpu / 1000.0,
            d_flt))
        print()


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
    ngx = meta.get("nginx", "?")
    print(ngx if ngx.startswith("nginx") else "nginx: %s" % ngx)
    print()
    goals = Goals()
    latency_section(work, goals)
    convo_section(work, goals)
    once_section(work, goals)
    bulk_section(work, meta, goals)
    spawn_section(work, goals)
    if goals.rows:
        try:
            load = float(meta.get("load", "").split()[0])
        except (ValueError, IndexError):
            load = None
        goals.show(load)
        print()
    if "records" in meta:
        print("trace records written by the agent: %s (expected %s)"
              % (meta["records"], meta.get("records_expected", "?")))


if __name__ == "__main__":
    main()
