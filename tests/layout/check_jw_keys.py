#!/usr/bin/env python3
"""check_jw_keys.py — every literal key given to the record writer's key
functions (xv_jw_key, xv_jw_kstr, xv_jw_knum, xv_jw_kbool, xv_jw_kscaled:
common/xv_jsonw.h) or to the record builders' helpers over them is
printable ASCII without '"' or '\\'.

Those macros pass a compile-time constant key's length to the writer, which
then copies it as it is, unscanned (issue 9: ~100 instructions a key, 32
keys a record). A literal that needed escaping would make every record
unparsable; this check fails on it instead. Keys that are not literals are
measured and escaped by the writer and are not looked at here.

Usage: check_jw_keys.py ROOT
Exit 0, or 1 listing each offending call (file:line and the key).
"""
import os
import re
import sys

# The calls whose key (argument `index`, from 0) reaches the writer with its
# length: the writer's own macros and the record builders' helpers defined
# over them (conn/record.c, openai/record.c).
CALLS = [("xv_jw_key", 1), ("xv_jw_kstr", 1), ("xv_jw_knum", 1), ("xv_jw_kbool", 1),
         ("xv_jw_kscaled", 1), ("put_ident", 1), ("add_time", 1), ("add_text", 1),
         ("put_redacted", 1), ("put_text", 2)]
PATTERNS = [re.compile(r'\b%s\s*\(\s*(?:[^,()]+,\s*){%d}"((?:[^"\\\n]|\\.)*)"' % (name, index))
            for name, index in CALLS]
PLAIN = re.compile(r'^[\x20-\x7e]*$')


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    bad, seen = [], 0
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.startswith("build")]
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in (m for pat in PATTERNS for m in pat.finditer(text)):
                seen += 1
                key = m.group(1)
                if "\\" in key or '"' in key or not PLAIN.match(key):
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append("%s:%d: key %r needs escaping" % (os.path.relpath(path, root),
                                                                line, key))
    print("literal record keys checked: %d" % seen)
    for b in bad:
        print(b)
    if seen == 0:
        print("no literal key found: the pattern no longer matches the writer's calls")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
