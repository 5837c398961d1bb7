"""clitest.py — what the xenovia CLI tests add to the suite's one helper
(tests/lib/xvtest.py, whose check/finish they use): the built `xenovia`
binary, its fixtures, a run of it with a clean environment, a temp dir and a
C compiler. Run by ctest with /usr/bin/python3.

Each test script takes the path of the built `xenovia` binary as argv[1]
and exits non-zero on the first failed check (with a message saying what).
"""
import os
import shutil
import subprocess
import sys
import tempfile

XENOVIA = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "xenovia"
FIXTURES = os.environ.get("XV_TOOLS_FIXTURES",
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "lib"))
from xvtest import check, finish  # noqa: E402,F401  (re-exported for the CLI tests)


def xv(*args, env=None, input=None, timeout=60):
    """Run xenovia; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    # A test must not pick up the developer's own configuration.
    for k in list(e):
        if k.startswith("XENOVIA_") or k.startswith("OTEL_"):
            del e[k]
    # An ASan build of xenovia started with LD_PRELOAD set (as these tests do)
    # would refuse to run; the preloaded test libraries are harmless.
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    return subprocess.run([XENOVIA] + list(args), env=e, input=input, capture_output=True,
                          text=True, errors="replace", timeout=timeout)


def tmpdir():
    d = tempfile.mkdtemp(prefix="xvtools-")
    return d


def cc():
    for c in ("cc", "gcc", "clang"):
        p = shutil.which(c)
        if p:
            return p
    return None

