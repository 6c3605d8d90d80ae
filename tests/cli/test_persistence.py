"""`add` and `rm` of project processes edit the project's pmtop.toml; `reload` reads it again."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from pmtop.core.config import load_config

from .conftest import PMTOP, SLEEP_CODE, Daemon, one_error_line, poll, process_table, run_pmtop

CONFIG = "\n".join([
    "# Our project. This comment must survive every edit.",
    "",
    "[defaults]",
    'stop_timeout = "5s"',
    "",
    "# the database",
    process_table("db", SLEEP_CODE),
])


@pytest.fixture(scope="module")
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    d: Daemon = start_daemon(CONFIG)
    d.wait_state("db", "running")
    return d


def config_text(daemon: Daemon) -> str:
    return (daemon.cwd / "pmtop.toml").read_text()


def test_add_in_the_project_folder_persists_and_rm_removes(daemon: Daemon) -> None:
    result = daemon.pmtop("add", "api", "--restart", "always", "--env", "MODE=test", "--",
                          sys.executable, "-c", SLEEP_CODE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "api"
    assert lines[1] == f"Saved in {daemon.cwd / 'pmtop.toml'}."
    text = config_text(daemon)
    assert "# Our project. This comment must survive every edit." in text and "# the database" in text
    saved = tomllib.loads(text)["process"]["api"]
    assert saved["command"] == [sys.executable, "-c", SLEEP_CODE]
    assert saved["restart"] == "always" and saved["env"] == {"MODE": "test"}
    assert load_config(daemon.cwd / "pmtop.toml").by_name["api"].scope.value == "project"
    running = daemon.wait_state("api", "running")
    assert running["scope"] == "project"
    assert psutil.Process(running["pid"]).environ().get("MODE") == "test"

    result = daemon.pmtop("rm", "api")
    assert (result.returncode, result.stdout) == (0, "Removed api.\n")
    assert "api" not in daemon.statuses()
    text = config_text(daemon)
    assert "api" not in tomllib.loads(text)["process"]
    assert "# Our project. This comment must survive every edit." in text and "# the database" in text
    poll(lambda: not psutil.pid_exists(running["pid"]) or psutil.Process(running["pid"]).status() == "zombie",
         what="api's process to end")


def test_add_from_an_unrelated_folder_is_global_and_not_written(daemon: Daemon, tmp_path: Path) -> None:
    before = config_text(daemon)
    result = run_pmtop("add", "elsewhere", "--no-start", "--", "sleep", "600", cwd=tmp_path, env=daemon.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["elsewhere", "stopped"]
    assert "Saved" not in result.stdout
    status = daemon.statuses()["elsewhere"]
    assert (status["scope"], status["state"]) == ("global", "stopped")
    _, detail = daemon.api("GET", "/processes/elsewhere")
    assert detail["config"]["cwd"] == str(tmp_path)
    assert config_text(daemon) == before
    assert run_pmtop("rm", "elsewhere", cwd=tmp_path, env=daemon.env).returncode == 0


def test_add_from_another_project_folder_is_not_written_into_either_file(daemon: Daemon, tmp_path: Path) -> None:
    other = tmp_path / "pmtop.toml"
    other.write_text("# another project\n")
    before = config_text(daemon)
    result = run_pmtop("--port", str(daemon.port), "add", "stray", "--no-start", "--", "sleep", "600",
                       cwd=tmp_path, env=daemon.env)
    assert result.returncode == 0, result.stderr
    assert daemon.statuses()["stray"]["scope"] == "global"
    assert (config_text(daemon), other.read_text()) == (before, "# another project\n")
    assert daemon.pmtop("rm", "stray").returncode == 0


def test_reload_reports_what_changed(daemon: Daemon) -> None:
    path = daemon.cwd / "pmtop.toml"
    original = path.read_text()
    try:
        path.write_text(original + "\n" + process_table("cache", SLEEP_CODE))
        result = daemon.pmtop("reload")
        assert (result.returncode, result.stdout) == (0, "Reloaded: added cache; changed -; removed -.\n")
        daemon.wait_state("cache", "running")
        result = daemon.pmtop("reload")
        assert (result.returncode, result.stdout) == (0, "Reloaded: nothing changed.\n")

        path.write_text(original + '\n[process.cache]\ncommand = ["true"]\nrestrat = "always"\n')
        line = one_error_line(daemon.pmtop("reload"), 2, "process.cache.restrat", "unknown key")
        assert "pmtop.toml" in line
        assert "cache" in daemon.statuses(), "a refused reload changes nothing"
    finally:
        path.write_text(original)
    result = daemon.pmtop("reload")
    assert (result.returncode, result.stdout) == (0, "Reloaded: added -; changed -; removed cache.\n")


def test_add_session_process_goes_when_its_session_ends(daemon: Daemon) -> None:
    session = subprocess.Popen([sys.executable, "-c", SLEEP_CODE])
    try:
        result = daemon.pmtop("add", "temp", "--session", str(session.pid), "--", sys.executable, "-c", SLEEP_CODE)
        assert result.returncode == 0, result.stderr
        assert "Saved" not in result.stdout
        status = daemon.wait_state("temp", "running")
        assert status["scope"] == "session"
        assert "temp" not in config_text(daemon)
    finally:
        session.kill()
        session.wait()

    def gone() -> bool:
        listed = json.loads(daemon.pmtop("ps", "--json").stdout)["processes"]
        return "temp" not in [s["name"] for s in listed]

    poll(gone, what="the session process to be removed")
    poll(lambda: not psutil.pid_exists(status["pid"]) or psutil.Process(status["pid"]).status() == "zombie",
         what="temp's process to end")


def test_add_session_of_a_dead_pid_is_refused(daemon: Daemon) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    one_error_line(daemon.pmtop("add", "orphan", "--session", str(dead.pid), "--", "sleep", "1"), 1,
                   f"session PID {dead.pid} is not running")
    one_error_line(daemon.pmtop("add", "orphan", "--scope", "session", "--", "sleep", "1"), 2, "--session PID")
    assert os.path.exists(daemon.cwd / "pmtop.toml")


def test_logs_follow_ends_quietly_when_the_process_is_removed(daemon: Daemon) -> None:
    code = "import time; print('ready', flush=True); time.sleep(600)"
    assert daemon.pmtop("add", "brief", "--", sys.executable, "-c", code).returncode == 0
    poll(lambda: daemon.pmtop("logs", "brief").stdout == "ready\n", what="brief's first line")
    follower = subprocess.Popen([*PMTOP, "logs", "brief", "-f"], cwd=daemon.cwd, env=daemon.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready, "logs -f printed nothing"
        assert follower.stdout.readline() == b"ready\n"  # the stream is open
        assert daemon.pmtop("rm", "brief").returncode == 0
        _, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0
    assert err == b"pmtop: brief was removed; no more lines will come.\n"
