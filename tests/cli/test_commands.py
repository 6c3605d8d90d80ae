"""`pmtop ps`, the actions, `logs`, `status` and their error paths, against one shared daemon."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import PMTOP, SLEEP_CODE, TICKER_CODE, Daemon, one_error_line, poll, process_table, run_pmtop

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TALKER = "import sys, time; print('out line', flush=True); print('err line', file=sys.stderr, flush=True); time.sleep(600)"
CONFIG = "\n".join([
    "# the shared test project",
    "[defaults]",
    'stop_timeout = "5s"',
    "",
    process_table("db", SLEEP_CODE),
    process_table("web", SLEEP_CODE, depends_on=["db"]),
    process_table("ticker", TICKER_CODE),
    process_table("talker", TALKER),
    process_table("idle", SLEEP_CODE, autostart=False),
])
DECLARED = ["db", "web", "ticker", "talker", "idle"]


@pytest.fixture(scope="module")
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    d: Daemon = start_daemon(CONFIG)
    for name in ("db", "web", "ticker", "talker"):
        d.wait_state(name, "running")
    return d


def rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by name (cells split on runs of two or more spaces)."""
    lines = stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["NAME", "STATE", "PID", "PORTS", "HEALTH", "RESTARTS", "UPTIME",
                                             "CPU%", "MEM", "REASON"]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------- ps

def test_ps_prints_an_aligned_table_without_colour_when_piped(daemon: Daemon) -> None:
    result = daemon.pmtop("ps")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\x1b" not in result.stdout
    table = rows(result.stdout)
    assert list(table) == DECLARED
    api = daemon.statuses()
    assert table["db"][1] == "running" and table["db"][2] == str(api["db"]["pid"])
    assert table["idle"][1:3] == ["stopped", "-"]
    header = result.stdout.splitlines()[0]
    for line in result.stdout.splitlines()[1:]:  # columns line up: each state starts under STATE
        assert line[header.index("STATE"):].split()[0] in ("running", "stopped", "starting")


def test_ps_json_is_the_apis_answer(daemon: Daemon) -> None:
    result = daemon.pmtop("ps", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)["processes"]
    status, api = daemon.api("GET", "/processes")
    assert status == 200
    assert [s["name"] for s in printed] == [s["name"] for s in api["processes"]]
    for mine, theirs in zip(printed, api["processes"], strict=True):
        assert mine.keys() == theirs.keys()
        assert (mine["pid"], mine["started_at"], mine["command"]) == (theirs["pid"], theirs["started_at"], theirs["command"])


def run_on_a_terminal(daemon: Daemon, *args: str, **env: str) -> str:
    """What `pmtop ARGS` prints when its stdout is a terminal."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([*PMTOP, *args], cwd=daemon.cwd, env={**daemon.env, "COLUMNS": "200", **env},
                                stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            assert ready, "no output from pmtop on the terminal"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def test_ps_colours_the_state_only_on_a_terminal_and_never_with_no_color(daemon: Daemon) -> None:
    coloured = run_on_a_terminal(daemon, "ps")
    assert "\x1b[32mrunning" in coloured
    plain = ANSI.sub("", coloured).replace("\r\n", "\n")
    assert list(rows(plain)) == DECLARED, "colour must not shift the columns"
    assert "\x1b" not in run_on_a_terminal(daemon, "ps", NO_COLOR="1")


def test_ps_with_a_broken_config_still_finds_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "pmtop.toml").write_text("[daemon\nthis is not toml")
    result = run_pmtop("ps", "--port", str(daemon.port), cwd=tmp_path, env=daemon.env)
    assert result.returncode == 0, result.stderr
    assert list(rows(result.stdout)) == DECLARED


# ----------------------------------------------------------------------------------------- actions

def test_each_action_on_one_process(daemon: Daemon) -> None:
    result = daemon.pmtop("start", "idle")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] in (["idle", "starting"], ["idle", "running"])
    first = daemon.wait_state("idle", "running")

    result = daemon.pmtop("restart", "idle", "--json")
    assert result.returncode == 0, result.stderr
    [restarted] = json.loads(result.stdout)["processes"]
    assert restarted["name"] == "idle"
    assert daemon.wait_state("idle", "running")["pid"] != first["pid"]

    result = daemon.pmtop("stop", "idle")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["idle", "stopped", "-"]
    assert "stopped by user" in result.stdout

    result = daemon.pmtop("disable", "idle")
    assert (result.returncode, result.stdout.split()[:2]) == (0, ["idle", "disabled"])
    one_error_line(daemon.pmtop("start", "idle"), 1, "idle is disabled; enable it first")
    result = daemon.pmtop("enable", "idle")
    assert (result.returncode, result.stdout.split()[:2]) == (0, ["idle", "stopped"]), "not autostart: stays stopped"


def test_all_starts_in_declaration_order_and_stops_in_one_request(daemon: Daemon) -> None:
    """Stopping several is one request: the daemon orders it by depends_on (tests/api), and the
    answer lists them as asked."""
    result = daemon.pmtop("stop", "--all")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == DECLARED
    assert all(s["state"] == "stopped" for s in daemon.statuses().values())

    assert daemon.pmtop("disable", "idle").returncode == 0
    result = daemon.pmtop("start", "--all")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == DECLARED[:-1], "disabled ones are left alone"
    for name in DECLARED[:-1]:
        daemon.wait_state(name, "running")
    assert daemon.statuses()["idle"]["state"] == "disabled"
    assert daemon.pmtop("enable", "idle").returncode == 0


def test_action_needs_names_or_all_but_not_both(daemon: Daemon) -> None:
    one_error_line(daemon.pmtop("stop"), 2, "or give --all")
    one_error_line(daemon.pmtop("stop", "db", "--all"), 2, "not both")


def test_unknown_name_among_several_changes_nothing(daemon: Daemon) -> None:
    before = daemon.statuses()["db"]
    one_error_line(daemon.pmtop("stop", "db", "nosuch"), 1, "no process named 'nosuch'")
    after = daemon.statuses()["db"]
    assert (after["state"], after["pid"]) == (before["state"], before["pid"])


@pytest.mark.parametrize("args", [("start", "nosuch"), ("stop", "nosuch"), ("restart", "nosuch"),
                                  ("enable", "nosuch"), ("disable", "nosuch"), ("logs", "nosuch"),
                                  ("logs", "nosuch", "-f"), ("rm", "nosuch")])
def test_no_such_process(daemon: Daemon, args: tuple[str, ...]) -> None:
    one_error_line(daemon.pmtop(*args), 1, "no process named 'nosuch'")


# ------------------------------------------------------------------------------------------- logs

def test_logs_prints_the_tail_of_either_stream(daemon: Daemon) -> None:
    poll(lambda: daemon.pmtop("logs", "talker").stdout == "out line\n", what="talker's stdout")
    result = daemon.pmtop("logs", "talker", "--stderr")
    assert (result.returncode, result.stdout) == (0, "err line\n")
    daemon.wait_state("ticker", "running")
    poll(lambda: len(daemon.pmtop("logs", "ticker", "-n", "50").stdout.splitlines()) == 50, what="50 ticks")
    result = daemon.pmtop("logs", "ticker", "-n", "3")
    assert len(result.stdout.splitlines()) == 3
    assert all(re.fullmatch(r"tick \d+", line) for line in result.stdout.splitlines())
    one_error_line(daemon.pmtop("logs", "ticker", "-n", "-1"), 2, "-n")


def test_logs_follow_prints_new_lines_as_they_come(daemon: Daemon) -> None:
    daemon.wait_state("ticker", "running")
    proc = subprocess.Popen([*PMTOP, "logs", "ticker", "-f", "-n", "0"], cwd=daemon.cwd, env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        buffer = b""

        def more() -> bool:
            nonlocal buffer
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
                assert chunk, f"logs -f ended: {proc.stderr.read() if proc.stderr else ''}"
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                lines.extend(line.decode() for line in complete)
            return len(lines) >= 5

        poll(more, what="five new lines from logs -f")
        numbers = [int(line.removeprefix("tick ")) for line in lines]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "in order, none missed"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


# ----------------------------------------------------------------------------------------- status

def test_status_summarises_the_daemon(daemon: Daemon) -> None:
    result = daemon.pmtop("status")
    assert result.returncode == 0, result.stderr
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines())
    assert fields["instance"] == "default"
    assert fields["url"] == f"http://127.0.0.1:{daemon.port}"
    assert fields["pid"] == str(daemon.proc.pid)
    assert fields["config"] == str(daemon.cwd / "pmtop.toml")
    assert fields["processes"].startswith("5: ")
    assert re.fullmatch(r"\d+(s|m\d\ds)", fields["uptime"])

    result = daemon.pmtop("status", "--json")
    data = json.loads(result.stdout)
    assert data["pid"] == daemon.proc.pid and data["instance"] == "default"
    assert sum(data["counts"].values()) == data["processes"] == 5


# ----------------------------------------------------------------------------------------- errors

def test_no_daemon_is_one_line_and_exit_1(tmp_path: Path, daemon: Daemon) -> None:
    port = free_port()
    env = {**daemon.env, "PMTOP_HOME": str(tmp_path / "empty-home")}
    for args in (("ps",), ("status",), ("stop", "x"), ("logs", "x", "-f"), ("shutdown",), ("reload",)):
        one_error_line(run_pmtop(*args, "--port", str(port), cwd=tmp_path, env=env), 1,
                       f"no pmtop daemon for instance 'default' at 127.0.0.1:{port}",
                       "pmtop --headless --detach")
    line = one_error_line(run_pmtop("--instance", "ghost", "ps", cwd=tmp_path, env=env), 1)
    assert "instance 'ghost'" in line and "--instance ghost" in line


def test_bad_port_is_a_usage_error(daemon: Daemon) -> None:
    one_error_line(daemon.pmtop("ps", "--port", "http"), 2, "--port")
    one_error_line(daemon.pmtop("ps", "--instance", "../etc"), 2, "invalid instance name")


def test_add_errors(daemon: Daemon) -> None:
    one_error_line(daemon.pmtop("add", "db", "--", "sleep", "1"), 1, "a process named 'db' already exists")
    one_error_line(daemon.pmtop("add", "x", "--restart", "sometimes", "--", "sleep", "1"), 2, "--restart")
    one_error_line(daemon.pmtop("add", "x", "--"), 2, "no command")
    one_error_line(daemon.pmtop("add", "x"), 2, "no command")
    one_error_line(daemon.pmtop("add", "bad/name", "--", "sleep", "1"), 2, "invalid process name")
    one_error_line(daemon.pmtop("add", "x", "--env", "NOVALUE", "--", "sleep", "1"), 2, "KEY=VALUE")
    assert "x" not in daemon.statuses()
