"""`xenovia run`: flags become the agent's variables, libxenovia.so goes first in
LD_PRELOAD (from XENOVIA_LIB, the build tree or the installed layout), bad flags are
refused before anything runs, and a missing command exits 127."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import XENOVIA, check, cc, finish, tmpdir, xv  # noqa: E402


def env_of(out):
    d = {}
    for line in out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d[k] = v
    return d


def make_lib(path):
    """A real (empty) shared object when a compiler exists, so ld.so preloads it
    silently; otherwise any file (ld.so then warns and ignores it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    c = cc()
    if c:
        src = path + ".c"
        with open(src, "w") as f:
            f.write("int xv_test_fake_lib_marker = 1;\n")
        subprocess.run([c, "-shared", "-fPIC", "-o", path, src], check=True)
    else:
        with open(path, "w") as f:
            f.write("fake\n")


d = tmpdir()
lib = os.path.join(d, "fake", "libxenovia.so")
make_lib(lib)
uuid = "0b7e4c1a-2f7d-4a4e-9c51-3c9a1d2e5f60"
# Entries already in LD_PRELOAD must exist, or ld.so complains about them.
other_libs = [os.path.join(d, p, "lib%s.so" % n) for p, n in (("other", "foo"), ("x", "bar"))]
old_agent = os.path.join(d, "old", "libxenovia.so")
for p in other_libs + [old_agent]:
    make_lib(p)

# -- every documented flag sets its variable --------------------------------------
r = xv("run", "--policy", "p.rego", "--session", uuid, "--property", "team=ml",
       "--property", "note=a b,c=d%", "--flow-id", "job-7", "--trace-file", "/tmp/t.jsonl",
       "--otlp", "http://127.0.0.1:4318", "--route", "api.openai.com=https://gw.example/x",
       "--hosts", "api.openai.com,*.openai.azure.com", "--capture-content=off", "--", "env",
       env={"XENOVIA_LIB": lib, "LD_PRELOAD": "%s %s:%s" % (other_libs[0], old_agent, other_libs[1])})
check(r.returncode == 0, "run env exits 0 (stderr: %s)" % r.stderr.strip())
e = env_of(r.stdout)
check(e.get("XENOVIA_POLICY") == "p.rego", "XENOVIA_POLICY")
check(e.get("XENOVIA_SESSION_ID") == uuid, "XENOVIA_SESSION_ID")
check(e.get("XENOVIA_PROPERTIES") == "team=ml,note=a%20b%2Cc%3Dd%25",
      "XENOVIA_PROPERTIES joined, values percent-encoded: %r" % e.get("XENOVIA_PROPERTIES"))
check(e.get("XENOVIA_FLOW_ID") == "job-7", "XENOVIA_FLOW_ID")
check(e.get("XENOVIA_TRACE_FILE") == "/tmp/t.jsonl", "XENOVIA_TRACE_FILE")
check(e.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_ENDPOINT")
check(e.get("XENOVIA_ROUTE") == "api.openai.com=https://gw.example/x", "XENOVIA_ROUTE")
check(e.get("XENOVIA_HOSTS") == "api.openai.com,*.openai.azure.com", "XENOVIA_HOSTS")
check(e.get("XENOVIA_CAPTURE_CONTENT") == "off", "XENOVIA_CAPTURE_CONTENT (--flag=value form)")
pre = e.get("LD_PRELOAD", "")
check(pre.split(":")[0] == os.path.realpath(lib), "LD_PRELOAD starts with the absolute lib: %r" % pre)
check(pre.split(":")[1:] == other_libs, "existing LD_PRELOAD entries kept, in order: %r" % pre)
check(old_agent not in pre, "another libxenovia.so is removed from LD_PRELOAD")

# -- the other knobs of the table are flags too --------------------------------------
r = xv("run", "--policy-mode", "monitor", "--stream-policy", "buffer", "--fail-mode", "open",
       "--export-timeout-ms", "500", "--otlp-protocol", "http/json", "--agent-id", "a1",
       "--log-level", "DEBUG", "--disable", "yes", "--stamp=off", "--body-max-bytes", "4096",
       "env", env={"XENOVIA_LIB": lib})
e = env_of(r.stdout)
check(r.returncode == 0 and e.get("XENOVIA_POLICY_MODE") == "monitor"
      and e.get("XENOVIA_STREAM_POLICY") == "buffer" and e.get("XENOVIA_FAIL_MODE") == "open"
      and e.get("XENOVIA_EXPORT_TIMEOUT_MS") == "500"
      and e.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "http/json" and e.get("XENOVIA_AGENT_ID") == "a1"
      and e.get("XENOVIA_LOG_LEVEL") == "DEBUG" and e.get("XENOVIA_DISABLE") == "yes"
      and e.get("XENOVIA_STAMP") == "off" and e.get("XENOVIA_BODY_MAX_BYTES") == "4096",
      "more knobs; CMD may start without --")

# -- a property value is 512 characters, not bytes (the agent's own parser decides) --
r = xv("run", "--property", "k=" + "\u00e9" * 512, "--", "env", env={"XENOVIA_LIB": lib})
check(r.returncode == 0 and env_of(r.stdout).get("XENOVIA_PROPERTIES", "").startswith("k=%C3%A9"),
      "512 two-byte characters accepted, as the agent accepts them (rc %d %s)"
      % (r.returncode, r.stderr.strip()[:100]))

# -- properties merge with the inherited variable ---------------------------------
r = xv("run", "--property", "team=ml", "--", "env",
       env={"XENOVIA_LIB": lib, "XENOVIA_PROPERTIES": "team=old,keep=1"})
check(env_of(r.stdout).get("XENOVIA_PROPERTIES") == "keep=1,team=ml",
      "inherited properties kept, same key overridden by the flag: %r"
      % env_of(r.stdout).get("XENOVIA_PROPERTIES"))

# -- refusals: nothing runs --------------------------------------------------------
for args, what in [
    (["--capture-content", "maybe"], "capture-content not on|off"),
    (["--session", "not-a-uuid"], "session not a UUID"),
    (["--property", "policy_x=1"], "reserved property key"),
    (["--property", "novalue"], "property without ="),
    (["--property", "k=" + "v" * 513], "property value over 512"),
    (["--property", "a.b=1"], "property key the agent refuses ('.')"),
    (["--property", "k=\x01"], "property value with a control character (the agent's rule)"),
    (["--export-timeout-ms", "soon"], "non-numeric number"),
    (["--export-timeout-ms", "600001"], "number over the agent's maximum"),
    (["--body-max-bytes", "100"], "number under the agent's minimum"),
    (["--log-level", "loud"], "unknown log level"),
    (["--stamp", "maybe"], "not a boolean"),
    (["--bogus", "1"], "unknown flag"),
    (["--policy"], "flag without value"),
]:
    r = xv("run", *args, "--", "sh", "-c", "echo RAN", env={"XENOVIA_LIB": lib})
    check(r.returncode == 2 and "RAN" not in r.stdout and r.stderr.startswith("xenovia run:"),
          "refused (%s): rc=%d %s" % (what, r.returncode, r.stderr.strip()))
r = xv("run", "--property", *sum([["--property", "k%d=v" % i] for i in range(21)], [])[1:],
       "--", "true", env={"XENOVIA_LIB": lib})
check(r.returncode == 2, "more than 20 properties refused")
r = xv("run", env={"XENOVIA_LIB": lib})
check(r.returncode == 2, "no command: usage error")

# -- missing / non-executable command ---------------------------------------------
r = xv("run", "--", "xv-no-such-command-here", env={"XENOVIA_LIB": lib})
check(r.returncode == 127 and "command not found" in r.stderr, "missing command: 127 (%s)" % r.stderr.strip())
r = xv("run", "--", "/nonexistent/dir/cmd", env={"XENOVIA_LIB": lib})
check(r.returncode == 127, "missing path: 127")
noexec = os.path.join(d, "noexec.sh")
with open(noexec, "w") as f:
    f.write("#!/bin/sh\necho hi\n")
os.chmod(noexec, 0o644)
r = xv("run", "--", noexec, env={"XENOVIA_LIB": lib})
check(r.returncode == 126, "not executable: 126 (rc=%d)" % r.returncode)

# -- a program the agent can never see is reported, and still runs -----------------
c = cc()
if c:
    hello = os.path.join(d, "hello.c")
    with open(hello, "w") as f:
        f.write('#include <stdio.h>\nint main(void){puts("static-ran");return 3;}\n')
    static = os.path.join(d, "static-hello")
    if subprocess.run([c, "-static", "-o", static, hello], capture_output=True).returncode == 0:
        r = xv("run", "--", static, env={"XENOVIA_LIB": lib})
        check(r.returncode == 3 and "static-ran" in r.stdout
              and "xenovia: not covered: " in r.stderr and "statically linked" in r.stderr,
              "static CMD: one 'not covered' line, then it runs (%r)" % r.stderr.strip())
    r = xv("run", "--", "true", env={"XENOVIA_LIB": lib})
    check("not covered" not in r.stderr, "no note for a coverable program")

# -- exit status of CMD passes through --------------------------------------------
r = xv("run", "--", "sh", "-c", "exit 7", env={"XENOVIA_LIB": lib})
check(r.returncode == 7, "CMD's exit status is xenovia's")

# -- library lookup next to the binary --------------------------------------------
r = xv("run", "--", "true", env={"XENOVIA_LIB": os.path.join(d, "nope.so")})
check(r.returncode == 1 and "XENOVIA_LIB" in r.stderr, "XENOVIA_LIB naming no file: exit 1")
for layout, libdir in (("build", "preload"), ("inst", "lib")):
    bindir = os.path.join(d, layout, "tools" if layout == "build" else "bin")
    os.makedirs(bindir, exist_ok=True)
    shutil.copy(XENOVIA, os.path.join(bindir, "xenovia"))
    want = os.path.join(d, layout, libdir, "libxenovia.so")
    make_lib(want)
    e2 = dict(os.environ)
    e2.pop("XENOVIA_LIB", None)
    e2.pop("LD_PRELOAD", None)
    p = subprocess.run([os.path.join(bindir, "xenovia"), "run", "--", "env"], env=e2,
                       capture_output=True, text=True)
    got = env_of(p.stdout).get("LD_PRELOAD")
    check(p.returncode == 0 and got == os.path.realpath(want),
          "%s layout: LD_PRELOAD=%r" % (layout, got))
bare = os.path.join(d, "bare")
os.makedirs(bare)
shutil.copy(XENOVIA, os.path.join(bare, "xenovia"))
e2 = dict(os.environ)
e2.pop("XENOVIA_LIB", None)
p = subprocess.run([os.path.join(bare, "xenovia"), "run", "--", "true"], env=e2,
                   capture_output=True, text=True)
check(p.returncode == 1 and "not found" in p.stderr, "no library anywhere: exit 1 with a message")

# -- --help lists every knob --------------------------------------------------------
r = xv("--help")
for var in ["XENOVIA_POLICY", "XENOVIA_SESSION_ID", "XENOVIA_PROPERTIES", "XENOVIA_FLOW_ID",
            "XENOVIA_TRACE_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT", "XENOVIA_ROUTE", "XENOVIA_HOSTS",
            "XENOVIA_CAPTURE_CONTENT", "XENOVIA_CAPTURE_MAX_BYTES", "XENOVIA_SESSION_PATH",
            "XENOVIA_PARENT_TRACE_ID", "XENOVIA_AGENT_ID", "XENOVIA_ORG_ID", "XENOVIA_POLICY_MODE",
            "XENOVIA_STREAM_POLICY", "XENOVIA_FAIL_MODE", "XENOVIA_POLICY_TIMEOUT_MS",
            "XENOVIA_EXPORT_TIMEOUT_MS", "XENOVIA_SPOOL_DIR", "XENOVIA_CA_FILE", "XENOVIA_API_KEY",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION",
            "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
            "XENOVIA_LIB", "XENOVIA_LOG_LEVEL", "XENOVIA_DISABLE", "XENOVIA_STAMP",
            "XENOVIA_BODY_MAX_BYTES", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]:
    check(var in r.stdout, "--help lists " + var)
check(r.returncode == 0, "--help exits 0")
r = xv("frobnicate")
check(r.returncode == 2, "unknown command: 2")
r = xv("policy", "check", "x.rego")
check(r.returncode != 0 or r.stdout, "policy: either built or says it is not")

shutil.rmtree(d)
finish()
