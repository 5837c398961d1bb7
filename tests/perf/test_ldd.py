#!/usr/bin/env python3
"""test_ldd.py — what libxenovia.so costs every process at start (issue 9).

Asserts:
  * `ldd libxenovia.so` lists only libc, the dynamic loader and the vDSO.
    The Rego engine and its libraries (pcre2, gmp, libm) live in
    libxenovia-policy.so, libcjson is dlopen'ed at the first JSON the agent
    reads or writes (preload/cjson_shim.c), zlib at the first compressed
    body, and SHA-256 is the agent's own;
  * a program started under the agent that makes no API call (cat of its own
    /proc/self/maps) has mapped neither libcjson nor libz nor the policy
    object;
  * libxenovia-policy.so sits next to it and exports exactly one symbol, its
    entry table;
  * libxenovia.so defines no dynamic symbol outside its export map
    (<build>/preload/exports.map, generated from common/hooked.def).

Usage: test_ldd.py LIBXENOVIA EXPORTS_MAP
"""
import os
import re
import subprocess
import sys

ALLOWED = {"libc.so.6"}
ALWAYS = {"linux-vdso.so.1", "ld-linux-x86-64.so.2"}


def needed(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        name = line.strip().split()[0]
        names.add(os.path.basename(name))
    return names


def dyn_defined(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def main():
    lib, exports_map = sys.argv[1], sys.argv[2]
    if not os.path.exists(lib):
        print("skipped: %s not built" % lib)
        sys.exit(77)
    got = needed(lib)
    extra = got - ALLOWED - ALWAYS
    print("libxenovia.so needs: %s" % " ".join(sorted(got)))
    assert not extra, "libxenovia.so links more than libc: %s" % sorted(extra)

    env = dict(os.environ, LD_PRELOAD=os.path.abspath(lib))
    maps = subprocess.run(["/bin/cat", "/proc/self/maps"], capture_output=True, text=True,
                          env=env, check=True, timeout=30).stdout
    assert os.path.basename(lib) in maps, "the agent was not loaded into cat"
    for name in ("libcjson", "libz.so", "libxenovia-policy"):
        assert name not in maps, "%s mapped at start of a process that made no call" % name

    plugin = os.path.join(os.path.dirname(lib), "libxenovia-policy.so")
    assert os.path.exists(plugin), "libxenovia-policy.so is not next to libxenovia.so"
    pexp = dyn_defined(plugin)
    assert pexp == {"xv_policy_plugin_table"}, "policy object exports %s" % sorted(pexp)

    with open(exports_map) as fh:
        text = re.sub(r"/\*.*?\*/", "", fh.read(), flags=re.S)
    glob = text.split("global:")[1].split("local:")[0]
    allowed = {w for w in re.split(r"[\s;]+", glob) if w}
    leaked = dyn_defined(lib) - allowed
    assert not leaked, "libxenovia.so exports names outside exports.map: %s" % sorted(leaked)
    print("ok")


if __name__ == "__main__":
    main()
