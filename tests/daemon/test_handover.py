"""What survives a supervisor: adoption after kill -9, PID reuse safety, restart, reload, sessions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon.conftest import SLEEP, DaemonProc, free_port, poll, write_config

Start = Callable[..., DaemonProc]

TICKER = '["python3", "-c", "import time\\nwhile True:\\n    print(\'tick\', flush=True)\\n    time.sleep(0.05)"]'


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_hard(daemon: DaemonProc) -> None:
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(timeout=10)


def test_kill_9_then_adoption_without_duplicates(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.sleeper]\ncommand = {SLEEP}\n[process.ticker]\ncommand = {TICKER}\n")
    first = start_daemon("--port", "auto")
    pids = {name: first.wait_state(name, "running")["pid"] for name in ("sleeper", "ticker")}
    poll(lambda: all(p.get("pid") for p in json.loads(
        (first.state_dir / "registry.json").read_text())["live"].values()) and len(json.loads(
            (first.state_dir / "registry.json").read_text())["live"]) == 2, "both in the registry")
    kill_hard(first)
    assert all(psutil.pid_exists(pid) and not gone(pid) for pid in pids.values()), "children outlive a crash"

    second = start_daemon("--port", "auto")
    statuses = second.processes()
    assert {n: statuses[n]["pid"] for n in pids} == pids, "adopted, not started again"
    assert all(statuses[n]["state"] == "running" for n in pids)
    assert "adopted" in statuses["sleeper"]["reason"]
    same_command = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "600"]
                    and p.pid == pids["sleeper"]]
    assert len(same_command) == 1
    # The ticker's output was captured again (it blocked on a full pipe, at worst, while no one read).
    before = second.api("GET", "/processes/ticker/logs?lines=1000").json()["lines"]
    poll(lambda: len(second.api("GET", "/processes/ticker/logs?lines=1000").json()["lines"]) > len(before),
         "new output from the adopted ticker")
    # An adopted process is stopped like any other, group and all; its exit is noticed at once.
    stopped = second.api("POST", "/processes/sleeper/stop").json()
    assert stopped["state"] == "stopped"
    poll(lambda: gone(pids["sleeper"]), "the adopted sleeper to be gone")
    os.kill(pids["ticker"], signal.SIGKILL)
    restarted = poll(lambda: (p := second.processes()["ticker"])["pid"] not in (None, pids["ticker"])
                     and p["state"] == "running" and p, "the adopted ticker to be restarted after a crash")
    assert restarted["restarts"] == 1


def test_a_reused_pid_is_never_adopted(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.worker]\ncommand = {SLEEP}\n")
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        state = tmp_path / "home" / "state" / "default"
        state.mkdir(parents=True)
        registry = {"version": 1, "added": {}, "live": {"worker": {
            "pid": stranger.pid, "create_time": psutil.Process(stranger.pid).create_time() - 1000,
            "started_at": time.time() - 1000, "run_dir": None, "restarts": 0,
            "consecutive_failures": 0, "pipes": {}, "keeper_fds": {}}}}
        (state / "registry.json").write_text(json.dumps(registry))
        daemon = start_daemon("--port", "auto")
        worker = daemon.wait_state("worker", "running")
        assert worker["pid"] != stranger.pid
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(timeout=30)
        assert stranger.poll() is None, "the unrelated process was not touched"
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_on_exit_false_leaves_processes_for_the_next(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[daemon]\nstop_on_exit = false\n[process.keep]\ncommand = {SLEEP}\n")
    first = start_daemon("--port", "auto")
    pid = first.wait_state("keep", "running")["pid"]
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=30) == 0
    assert not gone(pid)
    second = start_daemon("--port", "auto")
    assert second.processes()["keep"]["pid"] == pid
    second.api("POST", "/processes/keep/stop")
    poll(lambda: gone(pid), "the process to stop")


def test_monitor_restart_re_executes_and_adopts(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.keep]\ncommand = {SLEEP}\n")
    daemon = start_daemon("--port", str(free_port()))  # not auto: nobody can take it during the exec
    pid = daemon.wait_state("keep", "running")["pid"]
    started = daemon.api("GET", "/health").json()["uptime"]
    assert daemon.api("POST", "/monitor/restart").status_code == 202

    def restarted() -> bool:
        try:
            health = daemon.api("GET", "/health").json()
        except Exception:
            return False
        return health["pid"] == daemon.proc.pid and health["uptime"] < started + 0.5 and (
            daemon.processes()["keep"]["state"] == "running")

    poll(restarted, "the daemon to come back")
    assert daemon.processes()["keep"]["pid"] == pid, "the process was adopted across the exec"
    daemon.api("POST", "/processes/keep/stop")
    poll(lambda: gone(pid), "the process to stop (and be reaped: it is our child again)")


def test_sighup_reloads_the_config(start_daemon: Start, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"[process.same]\ncommand = {SLEEP}\n[process.old]\ncommand = {SLEEP}\n"
                                    f"[process.edit]\ncommand = {SLEEP}\n")
    daemon = start_daemon("--port", "auto")
    before = {n: daemon.wait_state(n, "running")["pid"] for n in ("same", "old", "edit")}
    config.write_text(f'[process.same]\ncommand = {SLEEP}\n[process.edit]\ncommand = ["sleep", "601"]\n'
                      f"[process.new]\ncommand = {SLEEP}\n")
    daemon.proc.send_signal(signal.SIGHUP)
    poll(lambda: set(daemon.processes()) == {"same", "edit", "new"}, "the reloaded set of processes")
    after = {n: daemon.wait_state(n, "running") for n in ("same", "edit", "new")}
    assert after["same"]["pid"] == before["same"], "unchanged processes keep running"
    assert after["edit"]["command"] == ["sleep", "601"] and after["edit"]["pid"] != before["edit"]
    poll(lambda: gone(before["old"]) and gone(before["edit"]), "removed and replaced processes gone")
    # An invalid config is refused and the running one stays.
    config.write_text("[process.same]\ncommand = 5\n")
    daemon.proc.send_signal(signal.SIGHUP)
    log = poll(lambda: _daemon_log_with(daemon, "reload refused"), "the refusal in the daemon log")
    assert "process.same.command" in log
    assert set(daemon.processes()) == {"same", "edit", "new"}


def _daemon_log_with(daemon: DaemonProc, needle: str) -> str | None:
    for path in (daemon.home / "log" / daemon.instance).glob("daemon-2*.log"):
        text = path.read_text()
        if needle in text:
            return text
    return None


def test_session_processes_end_with_their_session(start_daemon: Start, tmp_path: Path) -> None:
    daemon = start_daemon("--port", "auto")
    session = subprocess.Popen(["sleep", "600"])
    try:
        response = daemon.api("POST", "/processes", json={
            "name": "helper", "command": ["sleep", "600"], "session_pid": session.pid, "stop_timeout": "1s"})
        assert response.status_code == 201, response.text
        assert response.json()["scope"] == "session"
        pid = daemon.wait_state("helper", "running")["pid"]
        session.kill()
        session.wait()
        poll(lambda: "helper" not in daemon.processes(), "the session process to be removed")
        poll(lambda: gone(pid), "its process to be gone")
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    refused = daemon.api("POST", "/processes", json={"name": "late", "command": ["sleep", "1"],
                                                       "session_pid": dead.pid})
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"session PID {dead.pid} is not running"


def test_runtime_additions_survive_a_restart(start_daemon: Start, tmp_path: Path) -> None:
    daemon = start_daemon("--port", "auto")
    response = daemon.api("POST", "/processes", json={"name": "tool", "command": ["sleep", "600"],
                                                      "scope": "global"})
    assert response.status_code == 201, response.text
    daemon.wait_state("tool", "running")
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(timeout=30)
    again = start_daemon("--port", "auto")
    tool = again.wait_state("tool", "running")
    assert tool["scope"] == "global"
