"""sitecustomize for ctest runs (tests/sweep): keep the agent's output.

Every ctest test gets this directory on PYTHONPATH (tests/sweep/artifacts.cmake).
Test scripts clean their temporary directories with shutil.rmtree; before a
tree under the system temp dir or the build tree is removed, the files the
secret sweep must see — trace files, agent logs and stderr captures, spool
files, what collectors received — are copied to $XV_ARTIFACTS/kept/. Nothing
else changes for the test. Files over 8 MiB and the mock upstream's own
request logs (the app's traffic: they rightly hold its credentials) are not
kept. Python's site module imports this before the test's code; errors here
are swallowed so a test never fails because of it.
"""
import os
import shutil

try:
    _KEEP = os.environ.get("XV_ARTIFACTS")
    _real_rmtree = shutil.rmtree
    _SKIP_NAMES = ("upstream.jsonl", "requests.jsonl", "mock.stderr")

    def _wanted(name):
        n = name.lower()
        if n in _SKIP_NAMES or n.startswith(("upstream", "mock")):
            return False
        return (n.endswith((".jsonl", ".log", ".stderr", ".err", ".otlp", ".pb", ".json", ".spool"))
                or "spool" in n or "trace" in n or "collector" in n or "export" in n)

    def _keep(path):
        if not _KEEP or not os.path.isdir(path):
            return
        dest_root = os.path.join(_KEEP, "kept", "%d-%s" % (os.getpid(), os.path.basename(path)))
        for dirpath, _dirs, files in os.walk(path):
            for f in files:
                src = os.path.join(dirpath, f)
                rel = os.path.relpath(src, path)
                if not (_wanted(f) or "spool" in rel.lower()):
                    continue
                try:
                    if os.path.islink(src) or os.path.getsize(src) > (8 << 20):
                        continue
                    dst = os.path.join(dest_root, rel)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)
                except OSError:
                    pass

    def _rmtree(path, *a, **k):
        try:
            _keep(os.fspath(path))
        except Exception:
            pass
        return _real_rmtree(path, *a, **k)

    if _KEEP:
        _rmtree.avoids_symlink_attacks = getattr(_real_rmtree, "avoids_symlink_attacks", False)
        shutil.rmtree = _rmtree
except Exception:
    pass
