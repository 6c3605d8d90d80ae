"""Several daemons: `instances`, a read-only daemon's refusals, and `shutdown`."""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil

from .conftest import PMTOP, SLEEP_CODE, Daemon, clean_env, one_error_line, process_table, run_pmtop


def test_instances_lists_every_running_daemon(start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_daemon(process_table("one", SLEEP_CODE), instance="alpha", home=home)
    second = start_daemon(None, instance="beta", home=home)
    stale = home / "state" / "gamma"  # a daemon that died without cleaning up: not listed
    stale.mkdir(parents=True)
    (stale / "daemon.json").write_text(json.dumps({"host": "127.0.0.1", "port": 9, "pid": 999999999,
                                                   "started_at": 0, "version": "0", "instance": "gamma"}))
    env = clean_env(home)

    result = run_pmtop("instances", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["INSTANCE", "URL", "PID", "UPTIME", "CONFIG"]
    by_instance = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(by_instance) == {"alpha", "beta"}
    assert by_instance["alpha"][1:3] == [f"http://127.0.0.1:{first.port}", str(first.proc.pid)]
    assert by_instance["alpha"][4] == str(first.cwd / "pmtop.toml")
    assert by_instance["beta"][1:3] == [f"http://127.0.0.1:{second.port}", str(second.proc.pid)]
    assert by_instance["beta"][4] == "-"

    data = json.loads(run_pmtop("instances", "--json", cwd=tmp_path, env=env).stdout)["instances"]
    assert [(d["instance"], d["port"], d["pid"]) for d in data] == [
        ("alpha", first.port, first.proc.pid), ("beta", second.port, second.proc.pid)]

    empty = run_pmtop("instances", cwd=tmp_path, env=clean_env(tmp_path / "nobody"))
    assert (empty.returncode, empty.stdout) == (0, "No pmtop daemon is running.\n")


def test_a_read_only_daemon_refuses_actions_and_still_shows(start_daemon: Callable[..., Daemon],
                                                            tmp_path: Path) -> None:
    daemon = start_daemon(process_table("svc", SLEEP_CODE), "--read-only", instance="ro")
    daemon.wait_state("svc", "running")
    result = daemon.pmtop("ps")
    assert result.returncode == 0 and "svc" in result.stdout
    for args in (("stop", "svc"), ("stop", "--all"), ("restart", "svc"), ("disable", "svc"), ("rm", "svc"),
                 ("add", "x", "--", "sleep", "1"), ("reload",), ("shutdown",)):
        one_error_line(daemon.pmtop(*args), 1, "read-only")
    assert daemon.statuses()["svc"]["state"] == "running"
    assert daemon.proc.poll() is None
    status = json.loads(daemon.pmtop("status", "--json").stdout)
    assert status["read_only"] is True
    assert "read-only  yes" in daemon.pmtop("status").stdout


def test_shutdown_waits_until_the_daemon_and_its_processes_are_gone(start_daemon: Callable[..., Daemon]) -> None:
    code = "import time; print('ready', flush=True); time.sleep(600)"
    daemon = start_daemon(process_table("svc", code), instance="doomed")
    child = psutil.Process(daemon.wait_state("svc", "running")["pid"])
    follower = subprocess.Popen([*PMTOP, "--instance", "doomed", "logs", "svc", "-f"], cwd=daemon.cwd,
                                env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready and follower.stdout.readline() == b"ready\n", "the log stream is open"

        result = daemon.pmtop("shutdown")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"pmtop daemon for instance 'doomed' (pid {daemon.proc.pid}) stopped.\n"
        assert daemon.proc.wait(timeout=5) == 0, "it had exited already"
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        one_error_line(daemon.pmtop("ps"), 1, "no pmtop daemon for instance 'doomed'")

        _, err = follower.communicate(timeout=20)
        assert follower.returncode == 1
        assert err.decode().startswith("Error: ") and err.decode().count("\n") == 1, err
        assert "closed the log stream (shutting down)" in err.decode(), err
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
