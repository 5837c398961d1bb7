#!/usr/bin/env python3
"""check_layout.py - issue 10's layout rules, checked over the source tree.

Fails (exit 1, one line per breach) when
  * a source file (.c .h .py .sh .cjs .js) is over 1,000 lines,
  * a C function body is over 150 lines (generated tables are not functions),
  * the folders' #include graph has a circle (folder A includes a header of
    folder B which, directly or through others, includes one of A's),
  * a source module's file name repeats its folder's name (policy/policy_eval.c),
    except the folder's public header xv_<folder>.h, its private header
    <folder>_int.h and a file named exactly for the folder (conn/conn.c);
    tests/ and bench/ name their drivers by kind (fuzz_http.c, bench_client.c)
    and are not held to this rule.

A C function is a body that opens with "{" alone in column 0 after a line
holding "(" and closes with "}" in column 0 (the project's style, STYLE.md).
Usage: check_layout.py SOURCE_DIR
"""
import os
import re
import sys

FILE_MAX = 1000
FUNC_MAX = 150
SKIP_DIRS = {".git", "node_modules", "corpus", "fixtures", "pending"}
SRC_EXT = (".c", ".h", ".py", ".sh", ".cjs", ".js")


def walk(root):
    for dp, dn, fn in os.walk(root):
        dn[:] = sorted(d for d in dn if d not in SKIP_DIRS and not d.startswith("build"))
        for f in sorted(fn):
            yield os.path.relpath(os.path.join(dp, f), root)


def long_functions(lines):
    start = None
    for i, line in enumerate(lines):
        if line == "{" and start is None:
            j = i - 1
            while j >= 0 and "(" not in lines[j]:
                j -= 1
            start = (i, lines[j].strip() if j >= 0 else "?")
        elif line.startswith("}") and start is not None:
            if i - start[0] - 1 > FUNC_MAX:
                yield start[0] + 1, i - start[0] - 1, start[1]
            start = None


def folder_of(rel):
    d = os.path.dirname(rel)
    return d if d else "."


def include_graph(root, files):
    """folder -> set of folders whose headers it includes (quoted includes)."""
    by_name = {}
    for rel in files:
        if rel.endswith(".h"):
            by_name.setdefault(os.path.basename(rel), []).append(rel)
    graph = {}
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for rel in files:
        if not rel.endswith((".c", ".h")):
            continue
        src = folder_of(rel)
        with open(os.path.join(root, rel), errors="replace") as fh:
            for line in fh:
                m = inc.match(line)
                if not m:
                    continue
                target = os.path.normpath(os.path.join(src, m.group(1)))
                if target in files:
                    dst = folder_of(target)
                else:
                    cands = by_name.get(os.path.basename(m.group(1)), [])
                    if len(cands) != 1:
                        continue
                    dst = folder_of(cands[0])
                if dst != src:
                    graph.setdefault(src, set()).add(dst)
    return graph


def circles(graph):
    """Strongly connected components of more than one folder (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    files = [f for f in walk(root) if f.endswith(SRC_EXT)]
    fileset = set(files)
    bad = []
    for rel in files:
        with open(os.path.join(root, rel), errors="replace") as fh:
            lines = fh.read().split("\n")
        if len(lines) - 1 > FILE_MAX:
            bad.append("%s: %d lines (max %d)" % (rel, len(lines) - 1, FILE_MAX))
        if rel.endswith(".c"):
            for at, n, head in long_functions(lines):
                bad.append("%s:%d: function of %d lines (max %d): %s"
                           % (rel, at, n, FUNC_MAX, head[:70]))
        folder = os.path.basename(folder_of(rel))
        stem = os.path.splitext(os.path.basename(rel))[0]
        top = rel.split(os.sep)[0]
        if (folder not in (".", "") and top not in ("tests", "bench", "scripts")
                and stem not in ("xv_" + folder, folder + "_int")
                and re.match(re.escape(folder) + r"[_.-]", stem + ".")
                and stem != folder):
            bad.append("%s: the name repeats its folder '%s'" % (rel, folder))
    for comp in circles(include_graph(root, fileset)):
        bad.append("include circle between folders: " + " -> ".join(comp))
    for line in bad:
        print("layout: " + line)
    print("layout: %d source files checked, %d breaches" % (len(files), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
