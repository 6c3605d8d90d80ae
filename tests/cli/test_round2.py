"""The client commands of SPEC §10 against a real daemon: `pmtop adopt`, `pmtop add` with the new keys,
and `pmtop ps` showing a declared port before it binds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from .conftest import PY, SLEEP_CODE, Daemon, one_error_line, poll, process_table


@pytest.fixture(scope="module")
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon(process_table("db", SLEEP_CODE))


@pytest.fixture
def foreign() -> Iterator[int]:
    """A process someone else started (its starter has exited)."""
    code = ("import subprocess\n"
            "p = subprocess.Popen(['sleep', '600'], start_new_session=True, stdin=subprocess.DEVNULL,\n"
            "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)\n")
    pid = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             timeout=30).stdout)
    yield pid
    try:
        psutil.Process(pid).kill()
    except psutil.NoSuchProcess:
        pass


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_adopt_without_a_command(daemon: Daemon, foreign: int) -> None:
    result = daemon.pmtop("adopt", "napper", "--pid", str(foreign))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:4] == ["napper", "starting", "pid", str(foreign)]
    assert result.stdout.splitlines()[1] == f"Once pid {foreign} exits, napper stays stopped (no command to restart it with)."
    status = daemon.wait_state("napper", "running")
    assert status["pid"] == foreign and status["scope"] == "global"
    assert "stop signals its process group" in status["reason"]
    psutil.Process(foreign).kill()  # someone else ends it
    stopped = daemon.wait_state("napper", "stopped")
    assert stopped["reason"].endswith("adopted without a command, so nothing restarts it")
    one_error_line(daemon.pmtop("start", "napper"), 1, "without a command")
    assert daemon.pmtop("rm", "napper").returncode == 0
    assert "napper" not in (daemon.cwd / "pmtop.toml").read_text(), "a PID is never written to the config"


def test_adopt_with_a_command_runs_it_once_it_exits(daemon: Daemon, foreign: int) -> None:
    result = daemon.pmtop("adopt", "nap2", "--pid", str(foreign), "--restart", "always", "--", PY, "-c", SLEEP_CODE)
    assert result.returncode == 0, result.stderr
    daemon.wait_state("nap2", "running")
    daemon.pmtop("stop", "nap2")
    assert poll(lambda: gone(foreign), what="the adopted process stopped")
    assert daemon.pmtop("start", "nap2").returncode == 0  # now its own command
    status = daemon.wait_state("nap2", "running")
    assert status["pid"] != foreign and status["command"] == [PY, "-c", SLEEP_CODE]
    assert daemon.pmtop("rm", "nap2").returncode == 0


def test_adopt_errors(daemon: Daemon) -> None:
    one_error_line(daemon.pmtop("adopt", "x", "--pid", "1"), 1, "cannot adopt pid 1")
    one_error_line(daemon.pmtop("adopt", "x"), 2, "--pid")
    one_error_line(daemon.pmtop("adopt", "db", "--pid", "1"), 1, "already exists")


def test_add_with_the_new_keys_and_ps_shows_the_port_before_it_binds(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("GREETING=hi from the env file\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ("import os, socket, time\nprint(os.environ['GREETING'], flush=True)\n"
              "open(os.environ['GATE']).read(1)\n"
              "s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()\n"
              "print('accepting connections', flush=True)\ntime.sleep(600)\n")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    result = daemon.pmtop("add", "web", "--listen", str(port), "--env-file", str(tmp_path / "web.env"),
                          "--ready-log-line", "^accepting", "--env", f"GATE={gate}", "--", PY, "-c", server,
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    waiting = poll(lambda: (s := daemon.statuses()["web"]) and s["reason"] == "waiting for log line /^accepting/"
                   and s, what="web waiting for its line")
    assert waiting["state"] == "starting" and waiting["port"] == port
    ps = daemon.pmtop("ps")
    [row] = [line for line in ps.stdout.splitlines() if line.startswith("web ")]
    assert f"({port})" in row.split(), "declared, not listening yet"
    keeper = os.open(gate, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(keeper, b"x")
        daemon.wait_state("web", "running")
        ps = poll(lambda: (out := daemon.pmtop("ps").stdout) and f" {port} " in out and out, what="web listening")
        [row] = [line for line in ps.splitlines() if line.startswith("web ")]
        assert str(port) in row.split() and f"({port})" not in row
        listed = json.loads(daemon.pmtop("ps", "--json").stdout)["processes"]
        assert {s["name"]: s for s in listed}["web"]["port"] == port
        logs = daemon.pmtop("logs", "web", "-n", "5").stdout.splitlines()
        assert logs == ["hi from the env file", "accepting connections"]
    finally:
        os.close(keeper)
    assert daemon.pmtop("rm", "web").returncode == 0
