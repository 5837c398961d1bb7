#!/usr/bin/python3
"""The secret and content sweep (issue 7 acceptance 3).

Runs LAST in ctest (it DEPENDS on every other test and is RUN_SERIAL; see
tests/sweep/artifacts.cmake) and reads everything the suite's runs of the
agent left behind:
  * $XV_ARTIFACTS (the build tree's test-artifacts/): files tests wrote
    there directly (tests/hostsafe, tests/fault) and, under kept/, the trace
    files, agent logs/stderr captures, spool files and collector exports that
    Python tests had in their temporary directories (kept/ is filled by
    tests/sweep/keep/sitecustomize.py just before a test removes them);
  * ctest's own log of this run (Testing/Temporary/LastTest*.log): every
    line the tests printed, which includes the agent's stderr lines they
    captured.
It fails on any occurrence of the suite's credentials and redacted texts:
  - API keys: every test key carries the marker XENOVIA-SECRET
    (sk-test-XENOVIA-SECRET-…), plus the other sk-test- keys;
  - bearer tokens and cookies built from them ("Bearer sk-test-", cookie
    values with the marker);
  - the originals that redaction tests replace (tests/agent/test_policy.py's
    bob@example.com and 123-45-6789).
Skipped: the mock upstreams' request logs (upstream*, mock*: the app's own traffic,
which rightly carries its credential) and test sources. Exit 0 clean, 1 on a
hit (each printed with file and context), 77 when there is nothing to sweep.
  sweep.py [--clear] ARTIFACTS_DIR [LOG|DIR ...]   the sweep (--clear: empty
                                        ARTIFACTS_DIR afterwards; a DIR means
                                        its LastTest*.log files)
  sweep.py --selftest [--keep-helper P] proves it can fail: a planted leak in
                                        a trace, a spool file and a log is
                                        found, a clean tree is not; and a
                                        secret planted through each way a
                                        test's temp files are kept (Python
                                        rmtree/os.remove/os.unlink, shell
                                        keep.sh, C keep.h via P) is swept
"""
import os
import re
import stat
import sys
import tempfile

PATTERNS = [
    re.compile(rb"XENOVIA-SECRET"),
    re.compile(rb"sk-test-[A-Za-z0-9_-]{3,}"),
    re.compile(rb"[Bb]earer\s+sk-[A-Za-z0-9_-]{6,}"),
    re.compile(rb"bob@example\.com"),
    re.compile(rb"123-45-6789"),
]
SKIP_PREFIX = ("upstream", "mock")  # the mocks' request logs: the app's own traffic
SKIP_SUFFIX = (".py", ".c", ".sh", ".rego", ".pem", ".key", ".csr", ".srl", ".cnf")


def scan_bytes(data, where, hits):
    """One hit per file (or log line): the first pattern found."""
    for pat in PATTERNS:
        m = pat.search(data)
        if m:
            a = max(0, m.start() - 60)
            hits.append("%s: %r" % (where, data[a:m.end() + 40]))
            return


def scan_tree(root, hits):
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.startswith(SKIP_PREFIX) or f.endswith(SKIP_SUFFIX):
                continue
            path = os.path.join(dirpath, f)
            try:
                st = os.lstat(path)
                # only regular files: a kept FIFO (the exporter's unit test
                # makes one) would block the open forever
                if not stat.S_ISREG(st.st_mode) or st.st_size > (64 << 20):
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            n += 1
            scan_bytes(data, path, hits)
    return n


def scan_log(path, hits):
    """ctest's log: test output lines. Lines that are a test's own command
    line or assertion text name the key on purpose and are not agent output:
    only lines that look like agent output or file dumps are judged."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return 0
    for i, line in enumerate(data.split(b"\n")):
        if line.lstrip().startswith((b"xenovia", b"{\"trace_id\"", b"{\"resourceSpans\"")):
            scan_bytes(line, "%s:%d" % (path, i + 1), hits)
    return 1


HERE = os.path.dirname(os.path.abspath(__file__))
KEEP_HELPER = None  # --keep-helper PATH: keep_selftest, built by CMake


def _swept(art, needle):
    """Files under art whose sweep reports the needle's leak."""
    hits = []
    scan_tree(art, hits)
    return [h for h in hits if needle in h]


def selftest_keepers(d):
    """Each way a test's temporary files reach the sweep, planted with a
    secret: under ctest (XV_ARTIFACTS set) the sweep must find it; without
    XV_ARTIFACTS the test's directory is removed as before and nothing kept."""
    import subprocess
    ok = True
    secret = '{"messages":[{"content":"Bearer sk-test-XENOVIA-SECRET-%s"}]}\n'
    py = (
        "import os, shutil, sys, tempfile\n"
        "t = sys.argv[1]\n"
        "with tempfile.TemporaryDirectory() as d:\n"        # shutil.rmtree
        "    os.makedirs(os.path.join(d, 'spool'))\n"
        "    open(os.path.join(d, 'trace.jsonl'), 'w').write(t % 'rmtree')\n"
        "    open(os.path.join(d, 'spool', '00001.otlp'), 'w').write(t % 'spool')\n"
        "    open(os.path.join(d, 'cassette-1.json'), 'w').write(t % 'cassette')\n"
        "    open(os.path.join(d, 'upstream.jsonl'), 'w').write(t % 'upstream')\n"
        "    p = os.path.join(d, 'traces.jsonl')\n"                 # os.remove between runs
        "    open(p, 'w').write(t % 'remove'); os.remove(p)\n"
        "    open(p, 'w').write(t % 'unlink'); os.unlink(p)\n"
        "    print(d)\n")
    sh = ('. "$1/keep.sh"; d=$(mktemp -d); printf %s "$2" > "$d/traces.jsonl"; '
          'printf %s "$2" > "$d/err"; xv_keep_files "$d" traces.jsonl err; rm -rf "$d"; echo "$d"')
    cases = [
        ("python rmtree", ["/usr/bin/python3", "-c", py, secret],
         ["rmtree", "spool", "cassette", "remove", "unlink"], ["upstream"]),
        ("shell keep.sh", ["bash", "-c", sh, "sh", HERE, secret % "shell"], ["shell"], []),
    ]
    if KEEP_HELPER:
        cases.append(("C keep.h", [KEEP_HELPER, secret % "c-helper"], ["c-helper"], []))
    else:
        print("note: selftest: no --keep-helper given: keep.h's C side not checked")
    for name, argv, found, not_found in cases:
        for under_ctest in (True, False):
            art = os.path.join(d, "art-%s-%d" % (name.replace(" ", "_"), under_ctest))
            tmp = os.path.join(art, "tmp") if under_ctest else os.path.join(d, "plain-tmp")
            os.makedirs(tmp, exist_ok=True)
            env = dict(os.environ, TMPDIR=tmp, PYTHONPATH=os.path.join(HERE, "keep"))
            env.pop("XV_ARTIFACTS", None)
            if under_ctest:
                env["XV_ARTIFACTS"] = art
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
            left = r.stdout.strip()
            if r.returncode != 0 or not left:
                print("FAIL: selftest: %s exited %d: %s" % (name, r.returncode, r.stderr[-300:]))
                ok = False
                continue
            for what in found:
                got = _swept(art, "XENOVIA-SECRET-" + what)
                if under_ctest and not got:
                    print("FAIL: selftest: %s: the secret planted via %s was not swept" % (name, what))
                    ok = False
                elif not under_ctest and got:
                    print("FAIL: selftest: %s without XV_ARTIFACTS kept %r" % (name, got))
                    ok = False
                elif under_ctest:
                    print("ok:   selftest: %s: planted via %s, swept in %s" % (
                        name, what, os.path.relpath(got[0].split(":")[0], art)))
            for what in not_found:
                if _swept(art, "XENOVIA-SECRET-" + what):
                    print("FAIL: selftest: %s: the %s log (the app's own traffic) was kept" % (name, what))
                    ok = False
            if not under_ctest and os.path.exists(left):
                print("FAIL: selftest: %s without XV_ARTIFACTS left %s behind" % (name, left))
                ok = False
    # An agent that falls back to its default trace file (no XENOVIA_TRACE_FILE)
    # writes under XDG_STATE_HOME, which ctest points into the artifacts.
    art = os.environ.get("XV_ARTIFACTS")
    if art:
        state = os.environ.get("XDG_STATE_HOME", "")
        if not state.startswith(art.rstrip("/") + "/"):
            print("FAIL: selftest: XDG_STATE_HOME=%r is not under XV_ARTIFACTS=%r" % (state, art))
            ok = False
        else:
            print("ok:   selftest: default trace/spool location $XDG_STATE_HOME is under XV_ARTIFACTS")
    return ok


def selftest():
    ok = True
    with tempfile.TemporaryDirectory(prefix="xv-sweep-self-") as d:
        clean = os.path.join(d, "clean")
        os.makedirs(os.path.join(clean, "spool"))
        open(os.path.join(clean, "trace.jsonl"), "w").write(
            '{"trace_id":"x","error":"[REDACTED:email]","headers":{"authorization":"[redacted]"}}\n')
        open(os.path.join(clean, "upstream.jsonl"), "w").write(
            '{"headers":{"Authorization":"Bearer sk-test-XENOVIA-SECRET-123"}}\n')
        os.mkfifo(os.path.join(clean, "fifo"))  # a kept FIFO must not hang the sweep
        hits = []
        scan_tree(clean, hits)
        if hits:
            print("FAIL: selftest: a clean tree (and an upstream log) reported %r" % hits)
            ok = False
        planted = {
            "trace.jsonl": '{"trace_id":"x","messages":[{"content":"Bearer sk-test-XENOVIA-SECRET-123"}]}\n',
            os.path.join("spool", "00001.otlp"): "\x0a\x05sk-test-XENOVIA-SECRET-456",
            "agent.stderr": "xenovia: header Cookie: sid=XENOVIA-SECRET-cookie\n",
            "red.jsonl": '{"messages":[{"content":"I am bob@example.com"}]}\n',
        }
        for name, text in planted.items():
            leak = os.path.join(d, "leak-" + name.replace(os.sep, "_"))
            os.makedirs(os.path.join(leak, os.path.dirname(name)), exist_ok=True)
            open(os.path.join(leak, name), "w").write(text)
            hits = []
            scan_tree(leak, hits)
            if len(hits) != 1:
                print("FAIL: selftest: the leak planted in %s gave %r" % (name, hits))
                ok = False
            else:
                print("ok:   selftest: planted leak found: %s" % hits[0][:120])
        ok = selftest_keepers(d) and ok
        log = os.path.join(d, "LastTest.log")
        open(log, "w").write('ran: curl -H "Authorization: Bearer sk-test-XENOVIA-SECRET-123"\n'
                             "xenovia: could not send Bearer sk-test-XENOVIA-SECRET-123\n")
        hits = []
        scan_log(log, hits)
        if len(hits) != 1:
            print("FAIL: selftest: ctest-log scan gave %r" % hits)
            ok = False
    print("selftest passed" if ok else "selftest FAILED")
    return 0 if ok else 1


def keep_evidence(root, hits, logs):
    """A failed sweep's evidence outlives --clear and the next ctest run: the
    hit list and a copy of every file and log it names go to ROOT-leaks/
    beside the artifacts (replaced by the next failing sweep)."""
    import shutil
    dest = os.path.normpath(root) + "-leaks"
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "hits.txt"), "w") as fh:
        fh.write("\n".join(hits) + "\n")
    named = sorted({h.split(": ", 1)[0] for h in hits} | set(logs))
    for i, path in enumerate(named):
        src = path.split(":", 1)[0] if not os.path.exists(path) else path
        if os.path.isfile(src):
            try:
                shutil.copy(src, os.path.join(dest, "%03d-%s" % (i, os.path.basename(src))))
            except OSError:
                pass
    print("evidence kept in %s" % dest)


def main():
    if sys.argv[1:2] == ["--selftest"]:
        global KEEP_HELPER
        if sys.argv[2:3] == ["--keep-helper"] and len(sys.argv) > 3:
            KEEP_HELPER = sys.argv[3]
        return selftest()
    args = sys.argv[1:]
    clear = args[:1] == ["--clear"]
    if clear:
        args = args[1:]
    root = args[0]
    logs = []
    for a in args[1:]:
        if os.path.isdir(a):
            logs += [os.path.join(a, f) for f in sorted(os.listdir(a))
                     if f.startswith("LastTest") and f.endswith(".log")]
        else:
            logs.append(a)
    hits = []
    files = scan_tree(root, hits) if os.path.isdir(root) else 0
    nlogs = sum(scan_log(l, hits) for l in logs)
    print("swept %d files under %s and %d ctest log(s)" % (files, root, nlogs))
    if files == 0 and nlogs == 0:
        print("SKIP: nothing to sweep (run the whole suite first)")
        return 77
    for h in hits[:50]:
        print("LEAK: " + h)
    if hits:
        keep_evidence(root, hits, logs)
    if clear and os.path.isdir(root):
        # the next run starts from nothing (this is the build tree's own dir)
        import shutil
        for f in os.listdir(root):
            p = os.path.join(root, f)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    if hits:
        print("FAIL: %d leak(s)" % len(hits))
        return 1
    print("no credential or redacted original found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
