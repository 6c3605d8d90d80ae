"""SPEC §5 start-up: one supervisor per instance and port, clear errors, --port auto, --detach."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon.conftest import PMTOP, SLEEP, DaemonProc, alive, free_port, poll, write_config

Start = Callable[..., DaemonProc]


def run(*args: str, cwd: Path, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PMTOP_HOME": str(home)}
    return subprocess.run([*PMTOP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_health_identifies_the_daemon(start_daemon: Start, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"[process.a]\ncommand = {SLEEP}\n")
    daemon = start_daemon("--port", "auto")
    health = daemon.api("GET", "/health").json()
    assert health["service"] == "pmtop" and health["status"] == "running"
    assert health["pid"] == daemon.proc.pid and health["instance"] == "default"
    assert health["config"] == str(config)
    assert (daemon.state_dir / f"daemon-{daemon.info['port']}.pid").read_text().strip() == str(daemon.proc.pid)
    assert oct((daemon.state_dir / "token").stat().st_mode & 0o777) == "0o600"


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = run("--headless", "--port", str(port), cwd=tmp_path, home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr == (f"Error: port {port} is already in use by another program. Stop it, or choose "
                             "another port with --port (or --port auto).\n")


def test_port_auto_moves_up_from_the_configured_port(start_daemon: Start, tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, f"[daemon]\nport = {port}\n")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        daemon = start_daemon("--port", "auto")
    assert daemon.info["port"] > port


def test_second_start_reuses_the_running_daemon(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.a]\ncommand = {SLEEP}\n")
    port = free_port()
    daemon = start_daemon("--port", str(port))
    again = run("--headless", "--port", str(port), cwd=tmp_path, home=daemon.home)
    assert again.returncode == 0
    assert again.stdout.startswith(f"pmtop is already running for instance 'default' at http://127.0.0.1:{port} "
                                   f"(pid {daemon.proc.pid}).")
    other = tmp_path / "other"
    write_config(other, f"[process.b]\ncommand = {SLEEP}\n")
    from_elsewhere = run("--headless", "--port", str(port), cwd=other, home=daemon.home)
    assert from_elsewhere.returncode == 0
    assert f"that daemon runs {tmp_path / 'pmtop.toml'}, not this folder's config" in from_elsewhere.stdout
    assert "--instance NAME or --port PORT" in from_elsewhere.stdout


def test_one_supervisor_per_instance(start_daemon: Start, tmp_path: Path) -> None:
    daemon = start_daemon("--port", "auto")
    second = run("--headless", "--port", str(free_port()), cwd=tmp_path, home=daemon.home)
    assert second.returncode == 1
    assert second.stderr.startswith("Error: instance 'default' is already supervised (pid "
                                    f"{daemon.proc.pid}, 127.0.0.1:{daemon.info['port']})")
    other = start_daemon("--port", "auto", "--instance", "second", instance="second")
    assert other.info["port"] != daemon.info["port"]


def test_sigterm_stops_processes_and_removes_the_files(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.a]\ncommand = {SLEEP}\n")
    daemon = start_daemon("--port", "auto")
    pid = daemon.wait_state("a", "running")["pid"]
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (daemon.state_dir / "daemon.json").exists()
    assert not (daemon.state_dir / f"daemon-{daemon.info['port']}.pid").exists()


def test_detach_returns_once_the_daemon_answers(tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.a]\ncommand = {SLEEP}\n")
    home = tmp_path / "home"
    result = run("--headless", "--detach", "--port", "auto", cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stderr
    info = json.loads((home / "state" / "default" / "daemon.json").read_text())
    try:
        assert result.stdout.strip() == (f"pmtop daemon started: instance 'default' at "
                                         f"http://127.0.0.1:{info['port']} (pid {info['pid']})")
        assert alive(f"http://127.0.0.1:{info['port']}")
        assert os.getsid(info["pid"]) == info["pid"], "detached into its own session"
    finally:
        os.kill(info["pid"], signal.SIGTERM)
        poll(lambda: not psutil.pid_exists(info["pid"]), "the detached daemon to exit")


def test_detach_failure_prints_the_reason_and_the_log(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        # Something listens but is not pmtop: the parent sees no daemon to reuse only after /health
        # times out; the child then fails to bind and exits.
        result = run("--headless", "--detach", "--port", str(port), cwd=tmp_path, home=tmp_path / "home")
    assert result.returncode != 0
    assert "already in use by another program" in result.stderr


def test_detach_failure_when_the_child_dies(tmp_path: Path) -> None:
    """A daemon that exits during start-up: the parent says so and shows the end of its output."""
    home = tmp_path / "home"
    state = home / "state" / "default"
    state.mkdir(parents=True)
    (state / "token").mkdir()  # the child cannot read or create its token: it fails after detaching
    result = run("--headless", "--detach", "--port", "auto", cwd=tmp_path, home=home)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: pmtop daemon did not start: the daemon exited with status 1 during "
                                    "start-up.\n")
    assert "start-up failed: cannot read the API token" in result.stderr, "the daemon log is shown"
    assert f"Error: cannot read the API token {state / 'token'}: Is a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_config_fails_before_detaching(tmp_path: Path) -> None:
    write_config(tmp_path, "[process.a]\ncommand = []\n")
    result = run("--headless", "--detach", "--port", "auto", cwd=tmp_path, home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: pmtop.toml:2: process.a.command: ")
    assert not (tmp_path / "home" / "state" / "default" / "daemon.json").exists()


def test_corrupt_registry_is_set_aside(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.a]\ncommand = {SLEEP}\n")
    state = tmp_path / "home" / "state" / "default"
    state.mkdir(parents=True)
    (state / "registry.json").write_text("{ not json")
    daemon = start_daemon("--port", "auto")
    daemon.wait_state("a", "running")
    aside = list(state.glob("registry.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    poll(lambda: b'"live"' in (state / "registry.json").read_bytes(), "a rebuilt registry")




def test_facts_in_every_status_without_a_watcher(start_daemon: Start, tmp_path: Path) -> None:
    """SPEC §6: facts are part of every status, sampled on request; `?facts=0` skips them."""
    listener = ('["python3", "-c", "import socket, time\\ns = socket.socket()\\ns.bind((\'127.0.0.1\', 0))'
                '\\ns.listen()\\nprint(s.getsockname()[1], flush=True)\\ntime.sleep(600)"]')
    write_config(tmp_path, f"[process.a]\ncommand = {listener}\n")
    daemon = start_daemon("--port", "auto")
    daemon.wait_state("a", "running")
    port = int(poll(lambda: daemon.api("GET", "/processes/a/logs").json()["lines"], "a to print its port")[0])
    skipped = daemon.api("GET", "/processes?facts=0").json()["processes"][0]
    assert skipped["memory_rss"] is None and skipped["ports"] == [], "facts=0: nothing is sampled"
    # Facts may be a second old (the contract): a sample from before the bind (wait_state above asked
    # for facts while `a` ran but did not listen yet) can still be served; the next one has the port.
    listed = poll(lambda: (p := daemon.api("GET", "/processes").json()["processes"][0])["ports"] and p,
                  "the listening port in the facts")
    assert listed["memory_rss"] > 0 and listed["ports"] == [port], "no query: facts included"
    detail = daemon.api("GET", "/processes/a").json()
    assert detail["memory_rss"] > 0 and detail["ports"] == [port]


def test_a_second_sigint_does_not_wait_out_stop_timeouts(start_daemon: Start, tmp_path: Path) -> None:
    stubborn = ('["python3", "-c", "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)'
                '\\nprint(\'ready\', flush=True)\\ntime.sleep(600)"]')
    write_config(tmp_path, f'[process.stubborn]\ncommand = {stubborn}\nstop_timeout = "10m"\n')
    daemon = start_daemon("--port", "auto")
    pid = daemon.wait_state("stubborn", "running")["pid"]
    poll(lambda: daemon.api("GET", "/processes/stubborn/logs").json()["lines"] == ["ready"],
         "SIGTERM to be ignored")
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.stdout is not None
    poll(lambda: "stubborn         stopping" in daemon.proc.stdout.readline(), "the first stop to begin")
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(timeout=20) == 130
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
