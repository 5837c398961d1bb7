#!/usr/bin/python3
"""observe_bulk.py — what `xenovia observe`'s probes cost a bulk TLS download.

Usage: bench/observe_bulk.py [--build-dir build] [--mib 100] [--rounds 5]

Starts bench_server (TLS, 127.0.0.1, port chosen by the kernel), then downloads
MIB MiB of GET /download/N with curl (libcurl over the system libssl.so.3) and
with node (https.get; OpenSSL compiled into /usr/bin/node), ROUNDS rounds per
mode, alternating: plain, and under `xenovia observe -- ...` (probes on
SSL_write/SSL_read/_ex, every byte copied to the ring buffer in 16 KiB chunks
and parsed by the consumer). Reports the median transfer time per mode (curl:
its own time_total, node: the client's own timer, so attaching the probes is not
counted), the slowdown ratio, and the CPU seconds of the whole run (client +
observer, from wait4). Needs root (CAP_SYS_ADMIN). Not part of ctest.
"""
import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_GET = r"""
const https = require('https'); const fs = require('fs');
const [url, ca] = process.argv.slice(1);
const t0 = process.hrtime.bigint(); let n = 0;
https.get(url, {ca: fs.readFileSync(ca)}, (res) => {
  res.on('data', (d) => { n += d.length; });
  res.on('end', () => { console.log(n, Number(process.hrtime.bigint() - t0) / 1e9); });
}).on('error', (e) => { console.error(e); process.exit(1); });
"""


def timed(argv, env):
    """(stdout, stderr, cpu seconds of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (argv[:3], p.returncode, p.stderr.decode()[-400:]))
    return p.stdout.decode(), p.stderr.decode(), cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    xenovia = os.path.join(a.build_dir, "tools", "xenovia")
    server = os.path.join(a.build_dir, "bench", "bin", "bench_server")
    for f in (xenovia, server):
        if not os.path.exists(f):
            print("missing %s (cmake --build BUILD --target xenovia xv_bench_server)" % f)
            return 1
    tmp = tempfile.mkdtemp(prefix="xv-obsbench-")
    srv = None
    try:
        subprocess.run(["bash", os.path.join(ROOT, "tests", "integration", "certs.sh"),
                        os.path.join(tmp, "certs")], check=True, stdout=subprocess.DEVNULL)
        ca = os.path.join(tmp, "certs", "ca.pem")
        pf = os.path.join(tmp, "port")
        srv = subprocess.Popen([server, "--cert", os.path.join(tmp, "certs", "server.pem"),
                                "--key", os.path.join(tmp, "certs", "server.key"),
                                "--port-file", pf, "--max-seconds", "1200"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(pf) or not open(pf).read().strip():
            if time.monotonic() > deadline:
                print("bench_server did not start")
                return 1
            time.sleep(0.02)
        port = int(open(pf).read())
        nbytes = a.mib << 20
        url = "https://127.0.0.1:%d/download/%d" % (port, nbytes)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("XENOVIA_", "OTEL_")) and k != "LD_PRELOAD"}
        env["XENOVIA_TRACE_FILE"] = os.path.join(tmp, "traces.jsonl")
        clients = {"curl": ["curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w",
                            "%{size_download} %{time_total}\n", url]}
        node = shutil.which("node")
        if node:
            clients["node"] = [node, "-e", NODE_GET, url, ca]
        print("bulk TLS download, %d MiB, %d rounds per mode, %s, load %s" % (
            a.mib, a.rounds, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            " ".join(open("/proc/loadavg").read().split()[:3])))
        for name, argv in clients.items():
            res = {"plain": [], "observe": []}
            cpu = {"plain": [], "observe": []}
            for r in range(a.rounds):
                for mode in (("plain", "observe") if r % 2 == 0 else ("observe", "plain")):
                    cmd = argv if mode == "plain" else [xenovia, "observe", "--"] + argv
                    out, err, c = timed(cmd, env)
                    got, secs = out.split()[:2]
                    if int(got) != nbytes:
                        raise RuntimeError("%s %s: %s bytes" % (name, mode, got))
                    res[mode].append(float(secs))
                    cpu[mode].append(c)
            p, o = statistics.median(res["plain"]), statistics.median(res["observe"])
            print("  %-5s plain %.3f s (%.0f MiB/s)  observe %.3f s (%.0f MiB/s)  x%.2f  "
                  "cpu %.2f -> %.2f s" % (name, p, a.mib / p, o, a.mib / o, o / p,
                                          statistics.median(cpu["plain"]),
                                          statistics.median(cpu["observe"])))
    finally:
        if srv and srv.poll() is None:
            os.kill(srv.pid, signal.SIGTERM)
            srv.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
