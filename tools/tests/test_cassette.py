"""`xenovia cassette ls|show|diff|prune` on cassettes written in the documented
format (docs/cassette.md): listing, full display, differences named by path with
exit status 1, and pruning what no run used."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, tmpdir, xv  # noqa: E402


def recording(d, name, prompt, answer, occ=0, stream=False):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]})
    resp = {"status": 200, "reason": "OK",
            "headers": [["Content-Type", "text/event-stream" if stream else "application/json"]]}
    if stream:
        resp["events"] = [{"t_ms": 3, "data": 'data: {"x":"%s"}\n\n' % answer},
                          {"t_ms": 9, "data": "data: [DONE]\n\n"}]
    else:
        resp["body"] = json.dumps({"id": "chatcmpl-1", "choices": [
            {"message": {"role": "assistant", "content": answer}}]})
    doc = {"version": 1, "key": name.split("-")[1].ljust(64, "0"), "occurrence": occ,
           "match": {"method": "POST", "host": "api.openai.com", "path": "/v1/chat/completions",
                     "ignored_fields": ["user"]},
           "request": {"method": "POST", "host": "api.openai.com", "path": "/v1/chat/completions",
                       "headers": [["Content-Type", "application/json"]], "body": body},
           "response": resp}
    with open(os.path.join(d, name), "w") as f:
        json.dump(doc, f, indent=1)


base = tmpdir()
a = os.path.join(base, "a")
os.makedirs(a)
recording(a, "chat_completions-1111111111111111-0.json", "What is 2+2?", "4")
recording(a, "chat_completions-2222222222222222-0.json", "Stream a haiku", "leaves", stream=True)
recording(a, "chat_completions-3333333333333333-0.json", "Ünïcode prompt " + "x" * 100, "ok")
with open(os.path.join(a, "junk.json"), "w") as f:
    f.write("{not json")

# -- ls -----------------------------------------------------------------------
r = xv("cassette", "ls", a)
check(r.returncode == 0, "ls exits 0 (%s)" % r.stderr.strip())
lines = r.stdout.splitlines()
check(lines[0].startswith("RECORDING"), "ls: header line")
rows = [l for l in lines if l.startswith("chat_completions-")]
check(len(rows) == 3, "ls: one row per recording (%d)" % len(rows))
check(rows[0].split()[0].endswith("1111111111111111-0.json"), "ls: sorted by file name")
check("What is 2+2?" in rows[0] and "gpt-4o-mini" in rows[0] and " 200 " in rows[0],
      "ls: prompt, model, status: %r" % rows[0])
check(" stream " in rows[1], "ls: stream kind")
check("3 recordings" in r.stdout, "ls: count line")
check("junk.json is not a recording" in r.stderr, "ls: a broken file is named on stderr")
try:
    rows[2].encode("utf-8")
    check(True, "ls: a long UTF-8 prompt is cut on a character boundary")
except UnicodeEncodeError:
    check(False, "ls: a long UTF-8 prompt is cut on a character boundary")

# -- show ---------------------------------------------------------------------
r = xv("cassette", "show", a, "2222")
check(r.returncode == 0 and "Stream a haiku" in r.stdout and "+    9 ms  data: [DONE]" in r.stdout,
      "show: request body and timed events (%r)" % r.stdout[-200:])
r = xv("cassette", "show", a, "nope")
check(r.returncode == 1 and "no recording named like" in r.stderr, "show: unknown name")

# -- diff ---------------------------------------------------------------------
b = os.path.join(base, "b")
shutil.copytree(a, b)
os.remove(os.path.join(b, "junk.json"))
r = xv("cassette", "diff", a, b)
check(r.returncode == 0 and "0 differences" in r.stdout, "diff: identical cassettes exit 0")
recording(b, "chat_completions-1111111111111111-0.json", "What is 2+2?", "four")
os.remove(os.path.join(b, "chat_completions-3333333333333333-0.json"))
recording(b, "chat_completions-4444444444444444-0.json", "new", "n")
r = xv("cassette", "diff", a, b)
check(r.returncode == 1, "diff: differing cassettes exit 1")
check("- chat_completions-3333333333333333-0.json (only in %s)" % a in r.stdout, "diff: only in A")
check("+ chat_completions-4444444444444444-0.json (only in %s)" % b in r.stdout, "diff: only in B")
check("~ chat_completions-1111111111111111-0.json: response differs in 1 place, first at body"
      in r.stdout, "diff: changed response named: %r" % r.stdout)
r = xv("cassette", "diff", a, os.path.join(base, "missing"))
check(r.returncode == 2, "diff: unreadable cassette exits 2")

# -- prune --------------------------------------------------------------------
r = xv("cassette", "prune", b)
check(r.returncode == 1 and "nothing deleted" in r.stderr, "prune without .used deletes nothing")
with open(os.path.join(b, ".used"), "w") as f:
    f.write("chat_completions-1111111111111111-0.json\nchat_completions-4444444444444444-0.json\n"
            "chat_completions-1111111111111111-0.json\n")
r = xv("cassette", "prune", b, "--dry-run")
check(r.returncode == 0 and "would delete" in r.stdout and
      os.path.exists(os.path.join(b, "chat_completions-2222222222222222-0.json")),
      "prune --dry-run deletes nothing")
r = xv("cassette", "prune", b)
left = sorted(f for f in os.listdir(b) if f.endswith(".json"))
check(r.returncode == 0 and left == ["chat_completions-1111111111111111-0.json",
                                     "chat_completions-4444444444444444-0.json"],
      "prune keeps exactly the used recordings: %r" % left)
check(not os.path.exists(os.path.join(b, ".used")), "prune starts a new use record")

r = xv("cassette")
check(r.returncode == 2 and "Usage" in r.stderr, "no subcommand: usage, exit 2")
shutil.rmtree(base)
finish()
