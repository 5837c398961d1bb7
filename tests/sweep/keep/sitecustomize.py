"""sitecustomize for ctest runs (tests/sweep): keep the agent's output.

Every ctest test gets this directory on PYTHONPATH (tests/sweep/artifacts.cmake).
Test scripts clean their temporary directories with shutil.rmtree, and some
delete a trace file between two runs with os.remove/os.unlink (tests/route,
tests/cassette); before a tree or such a file is removed, the files the
secret sweep must see — trace files, agent logs and stderr captures, spool
files, cassettes, what collectors received — are copied to $XV_ARTIFACTS/kept/. Nothing
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

    _real_remove = os.remove
    _real_unlink = os.unlink
    _seq = [0]
    _in_rmtree = [False]  # rmtree's own unlinks: its tree was kept whole

    def _keep_file(path):
        """A single file about to be deleted (a trace file a test removes
        between two runs): copied as kept/<pid>-files/<n>-<name>."""
        if not _KEEP or _in_rmtree[0] or not isinstance(path, (str, bytes, os.PathLike)):
            return
        path = os.fsdecode(path)
        name = os.path.basename(path)
        if not _wanted(name) or os.path.islink(path) or not os.path.isfile(path):
            return
        if os.path.getsize(path) > (8 << 20):
            return
        _seq[0] += 1
        dst = os.path.join(_KEEP, "kept", "%d-files" % os.getpid(), "%d-%s" % (_seq[0], name))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(path, dst)

    def _remove(path, *a, **k):
        try:
            if not a and not k:   # dir_fd=...: a relative name we cannot resolve here
                _keep_file(path)
        except Exception:
            pass
        return _real_remove(path, *a, **k)

    def _unlink(path, *a, **k):
        try:
            if not a and not k:
                _keep_file(path)
        except Exception:
            pass
        return _real_unlink(path, *a, **k)

    def _rmtree(path, *a, **k):
        try:
            _keep(os.fspath(path))
        except Exception:
            pass
        _in_rmtree[0] = True
        try:
            return _real_rmtree(path, *a, **k)
        finally:
            _in_rmtree[0] = False

    if _KEEP:
        _rmtree.avoids_symlink_attacks = getattr(_real_rmtree, "avoids_symlink_attacks", False)
        shutil.rmtree = _rmtree
        os.remove = _remove
        os.unlink = _unlink
except Exception:
    pass
