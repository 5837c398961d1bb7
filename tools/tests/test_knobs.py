"""One source per knob (issue 10, acceptance 3): `xenovia --help`, the README's knob
table and what the agent really accepts must agree.

  1. README.md's table between the knobs:begin/end markers is exactly what
     `xenovia help --markdown` prints (made from common/xv_knobs.def).
  2. `xenovia --help` lists every row of that table: flag, variable, range, default.
  3. Every XENOVIA_*/OTEL_* variable the sources read (getenv, secure_getenv, the
     config readers) is a row of the table.
  4. At each bound and one past it (numbers, header values' lengths), for every
     spelling and a bad word (switches and choices), a control byte (header values): `xenovia run --FLAG=V -- /bin/true` refuses exactly the
     bad values (exit 2), and the agent itself (libxenovia.so preloaded into
     /bin/true, with OTLP configured so the exporter reads its knobs too) prints its
     one `xenovia: VAR=V: expected …` line for exactly the same values.

argv: xenovia binary; env XV_KNOBS_README (README.md), XV_KNOBS_LIB (libxenovia.so;
unset under sanitizers: part 4 is skipped then, the rest still runs),
XV_KNOBS_SRC (source root for part 3).
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, tmpdir, xv  # noqa: E402

README = os.environ["XV_KNOBS_README"]
LIB = os.environ.get("XV_KNOBS_LIB", "")
SRC = os.environ.get("XV_KNOBS_SRC", os.path.dirname(README))
TRUE = shutil.which("true") or "/bin/true"

# -- 1. README table == generated table ------------------------------------------
gen = xv("help", "--markdown")
check(gen.returncode == 0 and gen.stdout.startswith("| variable"), "xenovia help --markdown works")
text = open(README, encoding="utf-8").read()
m = re.search(r"<!-- knobs:begin[^\n]*-->\n(.*?)<!-- knobs:end -->", text, re.S)
check(m is not None, "README.md has the knobs:begin/end markers")
readme_table = m.group(1) if m else ""
if readme_table != gen.stdout:
    import difflib
    sys.stdout.writelines(difflib.unified_diff(readme_table.splitlines(True),
                                               gen.stdout.splitlines(True), "README.md",
                                               "xenovia help --markdown"))
check(readme_table == gen.stdout,
      "README knob table is the generated one (fix: scripts/knobs_readme.sh)")

# Rows: env, flag, values cell, default cell.
rows = []
for line in readme_table.splitlines()[2:]:
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    mm = re.match(r"`([A-Z0-9_]+)` \(`--([a-z0-9-]+)`\)", cells[0])
    check(mm is not None and len(cells) == 4, "README row well formed: " + line[:60])
    if mm:
        rows.append({"env": mm.group(1), "flag": mm.group(2), "values": cells[1],
                     "default": cells[2].strip("`")})
envs = [r["env"] for r in rows]
flags = [r["flag"] for r in rows]
check(len(set(envs)) == len(envs), "each variable has one row")
check(len(set(flags)) == len(flags), "each flag names one variable")
check(len(rows) >= 40, "the table holds every knob (%d rows)" % len(rows))

# -- 2. --help lists each row with its range and default -----------------------------
hp = xv("--help").stdout
blocks = {}
for b in re.split(r"\n(?=  --)", hp):
    mm = re.match(r"  --([a-z0-9-]+) ", b)
    if mm:
        blocks[mm.group(1)] = b
for r in rows:
    b = blocks.get(r["flag"], "")
    ok = r["env"] in b and ("default: " + r["default"].replace("`", "")) in b
    rng = re.match(r"^(\d+)–(\d+)$", r["values"])
    if rng:
        ok = ok and ("from %s to %s" % rng.groups()) in b
    check(ok, "--help: --%s %s, range and default as in README" % (r["flag"], r["env"]))
check(len(blocks) == len(rows), "--help lists exactly the README's knobs (%d vs %d)"
      % (len(blocks), len(rows)))
rh = xv("run", "--help").stdout
check(all(("--" + f + " ") in rh for f in flags) and "--replay" in rh,
      "xenovia run --help lists every flag")

# -- 3. every variable the code reads is a knob ----------------------------------------
read_re = re.compile(r'(?:getenv|env|env_copy)\(\s*"((?:XENOVIA|OTEL)_[A-Z0-9_]+)"')
unknown = set()
for top in ("common", "preload", "hooks", "conn", "exporter", "route", "session", "cassette",
            "http", "openai", "patch", "tools", "observe"):
    for dp, _, fs in os.walk(os.path.join(SRC, top)):
        for f in fs:
            if f.endswith(".c"):
                for v in read_re.findall(open(os.path.join(dp, f), errors="replace").read()):
                    if v not in envs:
                        unknown.add("%s (%s)" % (v, f))
check(not unknown, "every variable read in the sources is declared: missing %s" % sorted(unknown))

# -- 4. the agent and `run` accept exactly what the table says -------------------------
def probes(r):
    """(value, acceptable) pairs at the edges of a row."""
    v = r["values"]
    rng = re.match(r"^(\d+)–(\d+)$", v)
    if rng:
        lo, hi = int(rng.group(1)), int(rng.group(2))
        out = [(str(lo), True), (str(hi), True), (str(hi + 1), False), ("12x", False),
               ("-1", False)]
        if lo > 0:
            out.append((str(lo - 1), False))
        return out
    line = re.match(r"^[A-Z]+, ≤ (\d+) bytes$", v)
    if line:                                   # a header value: length and control bytes
        mx = int(line.group(1))
        return [("x" * mx, True), ("x" * (mx + 1), False), ("a\tb", True), ("a\x01b", False)]
    words = re.findall(r"`([^`]+)`", v)
    if not words:
        return []                              # free text: nothing to probe
    out = [(w, True) for w in words] + [(words[-1].upper(), True), ("bogus", False)]
    if v == "`on`, `off`":
        out += [("yes", True), ("0", True), ("maybe", False)]
    return out

AGENT_SKIP = {"XENOVIA_OBSERVE_RING_KB"}      # read by `xenovia observe` only, not the agent
d = tmpdir()
base = {"XENOVIA_TRACE_FILE": os.path.join(d, "t.jsonl"),
        "XENOVIA_SPOOL_DIR": os.path.join(d, "spool"),
        # the exporter reads its knobs only when OTLP is configured; nothing is sent
        # (no call is made), the port is never connected to
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
clean = {k: v for k, v in os.environ.items() if not k.startswith(("XENOVIA_", "OTEL_"))}


def agent_line(env, value):
    e = dict(clean, **base)
    e[env] = value
    e["LD_PRELOAD"] = LIB
    p = subprocess.run([TRUE], env=e, capture_output=True, text=True, errors="replace",
                       timeout=30)
    # "VAR=value: expected" (a value safe to echo) or "VAR: expected" (a header value)
    return ("xenovia: %s=" % env) in p.stderr or ("xenovia: %s: expected" % env) in p.stderr, \
        p.stderr


def one(r, value, good):
    res = []
    cli = xv("run", "--%s=%s" % (r["flag"], value), "--", TRUE,
             env=dict(base, XENOVIA_LIB=LIB or TRUE))
    refused = cli.returncode == 2 and cli.stderr.startswith("xenovia run: --" + r["flag"])
    res.append((refused == (not good), "run --%s=%s %s (rc %d %s)" % (
        r["flag"], value, "accepted" if good else "refused", cli.returncode, cli.stderr.strip()[:120])))
    if LIB and r["env"] not in AGENT_SKIP:
        said, err = agent_line(r["env"], value)
        res.append((said == (not good), "agent: %s=%s %s (%s)" % (
            r["env"], value, "accepted" if good else "reported", err.strip()[:160])))
    return res


if not LIB:
    print("skip part 4's agent half: XV_KNOBS_LIB unset (sanitizer build: no preloading)")
jobs = [(r, v, g) for r in rows for v, g in probes(r)]
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
    for res in ex.map(lambda j: one(*j), jobs):
        for ok, what in res:
            check(ok, what)
check(len(jobs) > 100, "probed %d values" % len(jobs))
shutil.rmtree(d, ignore_errors=True)
finish()
