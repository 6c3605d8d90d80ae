"""`pmtop scale`, `pmtop logs --all`, group names in actions, `next run in` in `pmtop ps`, and the
registry that keeps a schedule's last time and a scaled count for the next daemon."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

import pytest

from .conftest import PMTOP, SLEEP_CODE, Daemon, one_error_line, poll, process_table

STAMPED = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (\S+)\s+\| (.*)$")
SAY = "import os, time; print('hello from', os.environ.get('PMTOP_REPLICA', 'solo'), flush=True); time.sleep(600)"
CONFIG = "\n".join([
    process_table("web", SAY, replicas=2),
    process_table("solo", SAY),
    process_table("nightly", "print('ran')", schedule="0 3 * * *"),
])


@pytest.fixture(scope="module")
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    d: Daemon = start_daemon(CONFIG)
    for name in ("web-1", "web-2", "solo"):
        d.wait_state(name, "running")
    return d


def test_ps_shows_replicas_and_the_next_run(daemon: Daemon) -> None:
    result = daemon.pmtop("ps")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == {"web-1", "web-2", "solo", "nightly"}
    assert re.search(r"scheduled: 0 3 \* \* \*; next run in (\d+h\d\dm|\d+m\d\ds|\d+s)$", lines["nightly"]), lines["nightly"]
    listed = json.loads(daemon.pmtop("ps", "--json").stdout)["processes"]
    by_name = {p["name"]: p for p in listed}
    assert by_name["web-2"]["group"] == "web" and by_name["solo"]["group"] is None
    assert by_name["nightly"]["next_run_at"] > 0


def test_logs_all_merges_every_process_with_time_and_name(daemon: Daemon) -> None:
    poll(lambda: len(daemon.pmtop("logs", "--all").stdout.splitlines()) >= 3, what="three greetings")
    result = daemon.pmtop("logs", "--all")
    assert result.returncode == 0, result.stderr
    parsed = [STAMPED.match(line) for line in result.stdout.splitlines()]
    assert all(parsed), result.stdout
    said = {(m.group(1), m.group(2)) for m in parsed if m}
    assert {("web-1", "hello from 1"), ("web-2", "hello from 2"), ("solo", "hello from solo")} <= said


def test_logs_of_a_group_grep_and_since(daemon: Daemon) -> None:
    group = daemon.pmtop("logs", "web")
    assert group.returncode == 0, group.stderr
    assert {STAMPED.match(line).group(1) for line in group.stdout.splitlines()} == {"web-1", "web-2"}  # type: ignore[union-attr]
    grep = daemon.pmtop("logs", "--all", "--grep", "from [0-9]", "--since", "1h")
    assert grep.returncode == 0 and "solo" not in grep.stdout and "hello from 1" in grep.stdout
    one_error_line(daemon.pmtop("logs", "--all", "--grep", "("), 2, "invalid --grep pattern")
    one_error_line(daemon.pmtop("logs", "--all", "--since", "whenever"), 2, "since must be a duration")
    one_error_line(daemon.pmtop("logs"), 2, "give --all")
    one_error_line(daemon.pmtop("logs", "--all", "--stderr"), 2, "the merged view shows both streams")


def test_logs_follow_all(daemon: Daemon) -> None:
    proc = subprocess.Popen([*PMTOP, "logs", "--all", "-f", "-n", "1"], cwd=daemon.cwd, env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert STAMPED.match(first.strip()), first
        daemon.pmtop("restart", "solo")
        while True:  # the restarted solo's greeting arrives as it is written
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            if "solo" in line and "hello from solo" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_scale_and_group_actions(daemon: Daemon) -> None:
    result = daemon.pmtop("scale", "web", "3")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["web-1", "web-2", "web-3"]
    daemon.wait_state("web-3", "running")
    stopped = daemon.pmtop("stop", "web")
    assert stopped.returncode == 0, stopped.stderr
    assert {line.split()[0]: line.split()[1] for line in stopped.stdout.splitlines()} == {
        "web-1": "stopped", "web-2": "stopped", "web-3": "stopped"}
    assert daemon.pmtop("start", "web").returncode == 0
    daemon.wait_state("web-3", "running")
    down = daemon.pmtop("scale", "web", "1", "--json")
    assert [p["name"] for p in json.loads(down.stdout)["processes"]] == ["web-1"]
    one_error_line(daemon.pmtop("scale", "solo", "2"), 1, "no replicas setting")
    one_error_line(daemon.pmtop("scale", "nope", "2"), 1, "no process named 'nope'")
    one_error_line(daemon.pmtop("scale", "web", "-1"), 2, "0 or more")
    one_error_line(daemon.pmtop("rm", "web-1"), 1, "is a replica of web")


def test_a_scaled_count_and_a_schedule_memo_reach_the_next_daemon(start_daemon: Callable[..., Daemon]) -> None:
    config = process_table("web", SLEEP_CODE, replicas=1) + process_table("job", "print(1)", schedule="@daily")
    first = start_daemon(config)
    first.wait_state("web-1", "running")
    assert first.pmtop("scale", "web", "2").returncode == 0
    first.wait_state("web-2", "running")
    def saved() -> dict[str, object]:
        return dict(json.loads((first.state_dir / "registry.json").read_text()))

    registry = poll(lambda: saved() if saved().get("scaled") else None, what="the scaled count in the registry")
    assert registry["scaled"] == {"web": {"count": 2, "declared": 1}}
    assert set(registry["schedules"]) == {"job"}
    first.stop()
    second = start_daemon(None, cwd=first.cwd, home=first.home)
    second.wait_state("web-2", "running")
    assert set(second.statuses()) == {"web-1", "web-2", "job"}
