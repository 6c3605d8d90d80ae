"""The API against schemathesis, driven by the daemon's own `GET /openapi.json`, on a real daemon.

Every operation is fuzzed (valid and invalid bodies, queries and paths; stateful sequences that follow
the document's links from a registration to what a client does next; schemathesis' boundary-value
"coverage" phase is left out: on a loaded 2-core machine it costs 40 s for what fuzzing finds too),
with every schemathesis check
but `positive_data_acceptance`: the schema cannot say that `depends_on` must name a registered
process or that a name is still free, so a schema-valid request may rightly be refused. The seed is
fixed, so every CI run asks the same questions (set PMTOP_FUZZ_SEED to explore others).

Left out of the fuzzing, and covered by their own tests: `/events` and `?follow=1` (streams that never
end), `/monitor/shutdown` and `/monitor/restart` (the daemon would be gone for the rest of the run).
Afterwards the daemon must still serve, hold every process it says it runs (and no other), and have
written no traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon.conftest import SLEEP, DaemonProc, write_config
from tests.faults.conftest import processes_of

Start = Callable[..., DaemonProc]

HOOKS = '''
import os

import schemathesis

@schemathesis.hook
def map_query(context, query):
    """`follow=1` turns a log request into a stream that never ends: ask for the tail instead."""
    if query and "follow" in query:
        query = {**query, "follow": "0"}
    return query


@schemathesis.hook
def map_body(context, body):
    """Random trusted hosts, but loopback stays one: else every later trusted-only call is a 403.
    A random `pid` to adopt would put any process of this user within reach of `stop`: every valid one
    becomes the sleeper the test started for it."""
    if context.operation.path == "/config/trusted-hosts" and isinstance(body, dict):
        hosts = body.get("hosts")
        if isinstance(hosts, list):
            body = {**body, "hosts": [*hosts, "127.0.0.1"]}
    if context.operation.path == "/processes" and isinstance(body, dict) and isinstance(body.get("pid"), int) \
            and not isinstance(body["pid"], bool) and body["pid"] > 0:
        body = {**body, "pid": int(os.environ["PMTOP_FUZZ_PID"])}
    return body
'''
EXCLUDED = ("events", "monitor-shutdown", "monitor-restart")


@pytest.mark.skipif(shutil.which("schemathesis", path=os.path.dirname(sys.executable)) is None,
                    reason="schemathesis is not installed (pip install '.[test]')")
def test_the_api_survives_schemathesis(start_daemon: Start, tmp_path: Path) -> None:
    printer = '["python3", "-c", "import time\\nwhile True: print(\'tick\', flush=True); time.sleep(0.5)"]'
    write_config(tmp_path, f"[process.web]\ncommand = {printer}\n[process.db]\ncommand = {SLEEP}\n"
                           f"[process.api]\ncommand = {SLEEP}\ndepends_on = [\"db\"]\n")
    daemon = start_daemon("--port", "auto")
    daemon.wait_state("api", "running")
    adoptable = subprocess.Popen(["sleep", "600"], start_new_session=True)  # the only PID fuzzing may adopt
    (tmp_path / "pmtop_fuzz_hooks.py").write_text(HOOKS)
    try:
        _fuzz(daemon, tmp_path, adoptable.pid)
    finally:
        adoptable.kill()
        adoptable.wait()


def _fuzz(daemon: DaemonProc, tmp_path: Path, adoptable: int) -> None:
    exclusions = [arg for op in EXCLUDED for arg in ("--exclude-operation-id", op)]
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run", f"{daemon.url}/openapi.json",
         "-H", f"Authorization: Bearer {daemon.token}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--phases", "examples,fuzzing,stateful",
         "--max-examples", "20", "--seed", os.environ.get("PMTOP_FUZZ_SEED", "20261206"),
         "--request-timeout", "30", "--workers", "1", "--no-color", *exclusions],
        cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": "pmtop_fuzz_hooks", "PYTHONPATH": str(tmp_path),
                           "PMTOP_FUZZ_PID": str(adoptable)},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    tested = result.stdout.split("Tested: ", 1)[1].split()[0]
    assert tested == "31", f"every operation but {EXCLUDED} is tested: {tested}"
    assert "Authentication failed" not in result.stdout, result.stdout[-3000:]

    assert daemon.proc.poll() is None, "the daemon died"
    assert daemon.api("GET", "/alive").text == "OK"
    running = {p["pid"] for p in daemon.processes().values() if p["pid"] is not None}
    children = {c.pid for c in psutil.Process(daemon.proc.pid).children() if c.status() != psutil.STATUS_ZOMBIE}
    assert children == running - {adoptable}, "the daemon's children and the processes it reports differ"
    # Random partner settings never made the daemon start anything (a watcher, say): every process of
    # this test's home is the daemon or one it reports.
    others = [p.cmdline() for p in processes_of(daemon.home) if p.pid != daemon.proc.pid and p.pid not in running]
    assert not others, f"started because of a fuzzed setting? {others}"
    assert daemon.api("GET", "/status").json()["partner"].get("restarts", 0) == 0
    daemon_logs = list((daemon.home / "log" / "default").glob("daemon-*.log"))
    assert daemon_logs
    for log in daemon_logs:
        text = log.read_text()
        assert "Traceback" not in text and "unexpected error" not in text, text[-4000:]
