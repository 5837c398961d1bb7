#!/usr/bin/python3
"""test_unpatchable.py — issue 11, acceptance 5 (negative case): a program with
"OpenSSL" symbols whose SSL_write cannot be patched safely (unpatchable.c: a
loop branches back into the bytes the entry jump would overwrite) is left
entirely alone: under the agent it prints exactly what it prints without it,
stderr has exactly one `xenovia: not covered:` line naming SSL_write and the
reason; `xenovia doctor` calls it partly covered with the same reason; and
with XENOVIA_DISABLE=on there is no line at all.

Also (--small): a program too small to hold OpenSSL (small_tls.c) says nothing
until it connects, then gets its verdict (mbed TLS compiled in) exactly once;
(--small-libssl) the same program on a dynamic libssl gets none.

Usage: test_unpatchable.py --lib build/preload/libxenovia.so --prog PATH [--small PATH]
       [--small-libssl PATH] [--xenovia PATH]
Exit 77 only when libxenovia.so is missing.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import xvtest  # noqa: E402
from xvtest import check  # noqa: E402

NC = "xenovia: not covered:"


def main():
    lib = xvtest.lib_from_argv()
    prog = xvtest.arg_value("--prog")
    cli = xvtest.arg_value("--xenovia")
    check(prog and os.path.isfile(prog), "fixture program built (%r)" % prog)
    rc0, out0, err0 = xvtest.run([prog], xvtest.client_env(), timeout=30)
    check(rc0 == 0 and out0 == b"SSL_write=6 SSL_read=7 err=0\n" and not err0,
          "without the agent: the fixture's own answer (%r)" % out0)
    rc, out, err = xvtest.run([prog], xvtest.client_env(lib=lib), timeout=30)
    lines = err.decode("utf-8", "replace").splitlines()
    check(rc == 0 and out == out0, "with the agent: same exit status and output (%r)" % out)
    check(len(lines) == 1 and lines[0].startswith(NC) and "SSL_write" in lines[0]
          and "jumps into the patched bytes" in lines[0],
          "with the agent: exactly one not-covered line naming SSL_write and why (%r)" % lines)
    rc, out, err = xvtest.run([prog], xvtest.client_env(lib=lib, extra={"XENOVIA_DISABLE": "on"}),
                              timeout=30)
    check(rc == 0 and out == out0 and not err, "XENOVIA_DISABLE=on: unchanged, silent (%r)" % err)
    if cli and os.path.isfile(cli):
        rc, out, err = xvtest.run([cli, "doctor", prog], xvtest.client_env(), timeout=60)
        text = out.decode("utf-8", "replace")
        check(rc == 1 and "cannot be patched safely" in text and "SSL_write" in text,
              "doctor: partly covered, naming SSL_write (rc %r)\n%s" % (rc, text))
    small = xvtest.arg_value("--small")
    if small:
        check_small(lib, small)
    small_libssl = xvtest.arg_value("--small-libssl")
    if small_libssl:
        check_small_libssl(lib, small_libssl)
    else:
        print("skip the small program on a dynamic libssl: OpenSSL's CMake package not found")
    xvtest.finish()


def check_small_libssl(lib, prog):
    """The same small program loading a dynamic libssl: its TLS is that libssl's,
    hooked; its file is read neither at start nor at its connect, so it gets no
    verdict (a second TLS stack that small beside libssl is not looked for)."""
    rc0, out0, _ = xvtest.run([prog, "connect"], xvtest.client_env(), timeout=30)
    check(rc0 == 0 and out0 == b"connected\nmbedtls_ssl_write=3\n",
          "small fixture on libssl without the agent: its own answer (%r)" % out0)
    rc, out, err = xvtest.run([prog, "connect"], xvtest.client_env(lib=lib), timeout=30)
    check(rc == 0 and out == out0 and not err,
          "small fixture on libssl, connect: unchanged, no verdict line (%r)" % err)


def check_small(lib, prog):
    """A program with less code than any OpenSSL: its file is not read at start,
    so a run that never connects says nothing; one that connects gets the
    verdict (mbed TLS compiled in) exactly once, at that connect."""
    check(os.path.isfile(prog), "small fixture built (%r)" % prog)
    rc0, out0, err0 = xvtest.run([prog], xvtest.client_env(), timeout=30)
    check(rc0 == 0 and out0 == b"mbedtls_ssl_write=3\n" and not err0,
          "small fixture without the agent: its own answer (%r)" % out0)
    rc, out, err = xvtest.run([prog], xvtest.client_env(lib=lib), timeout=30)
    check(rc == 0 and out == out0 and not err,
          "small fixture, no connect: unchanged and silent (%r)" % err)
    rc, out, err = xvtest.run([prog, "connect"], xvtest.client_env(lib=lib), timeout=30)
    lines = err.decode("utf-8", "replace").splitlines()
    check(rc == 0 and out == b"connected\n" + out0,
          "small fixture, connect: unchanged output (rc %r, %r)" % (rc, out))
    check(len(lines) == 1 and lines[0].startswith(NC) and "mbed TLS" in lines[0],
          "small fixture, connect: exactly one not-covered line naming mbed TLS (%r)" % lines)


if __name__ == "__main__":
    main()
