"""Faults against real supervisors: each test gets its own PMTOP_HOME, free loopback ports, and a
cleanup that leaves no process of that home behind.

Daemons started with `--detach` (or restarted by a watcher) are nobody's child, so the cleanup finds
every process by its environment: each carries this test's unique `PMTOP_HOME` (children inherit it),
which makes them provably ours. They get SIGTERM, then their whole process groups SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.waiting import poll_sync

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]
DEADLINE = 30.0
FAST_WATCH = "0.25,2,3"
"""`PMTOP_WATCH_TIMING` for these tests: a check every 0.25 s, 2 failures, 3 s for an answer."""


def poll(cond: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    return poll_sync(cond, what=what, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_of(home: Path) -> list[psutil.Process]:
    """Every live process whose environment names `home` as its PMTOP_HOME."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("PMTOP_HOME") == str(home) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def kill_everything_of(home: Path) -> list[int]:
    """SIGTERM, then SIGKILL to the process groups, of every process of `home`; their PIDs."""
    procs = processes_of(home)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=3)  # a test's cleanup: what lingers is killed
    for proc in alive:
        try:
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    for proc in processes_of(home):  # started meanwhile by a watcher that was still running
        try:
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return [p.pid for p in procs]


@dataclass
class Home:
    """One PMTOP_HOME, the project folder, and every pmtop started in it."""

    root: Path
    project: Path
    port: int = field(default_factory=free_port)
    watcher_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PMTOP_CONFIG"}
        return {**env, "PMTOP_HOME": str(self.root), "PMTOP_WATCH_TIMING": FAST_WATCH, **self.extra_env}

    def state_dir(self, instance: str = "default") -> Path:
        return self.root / "state" / instance

    def log_dir(self, instance: str = "default") -> Path:
        return self.root / "log" / instance

    def config(self, text: str) -> Path:
        path = self.project / "pmtop.toml"
        path.write_text(f"[daemon]\nport = {self.port}\n{text}")
        return path

    def run(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*PMTOP, *args], cwd=self.project, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*PMTOP, *args], cwd=self.project, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        self.started.append(proc)
        return proc

    def spawn_python(self, code: str, *args: str) -> subprocess.Popen[str]:
        """`python -c CODE ARGS...` as this test's child (a pmtop with a fault built in)."""
        proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=self.project, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        self.started.append(proc)
        return proc

    # -- daemons --------------------------------------------------------------------------------------

    def detach(self, *flags: str) -> dict[str, Any]:
        """`pmtop --headless --detach`: returns its daemon.json."""
        self.run("--headless", "--detach", *flags, check=True)
        info = self.info()
        assert info is not None
        return info

    def watcher(self) -> subprocess.Popen[str]:
        """`pmtop watcher` in the foreground (this test's child), once it serves and sees the default up."""
        proc = self.spawn("watcher", "--port", str(self.watcher_port))
        poll(lambda: proc.poll() is None and self.info("watcher"), "the watcher to serve")
        return proc

    def info(self, instance: str = "default") -> dict[str, Any] | None:
        try:
            return json.loads((self.state_dir(instance) / "daemon.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def token(self, instance: str = "default") -> str:
        return (self.state_dir(instance) / "token").read_text().strip()

    def api(self, method: str, path: str, instance: str = "default", **kw: Any) -> httpx.Response:
        info = self.info(instance)
        assert info is not None, f"no daemon.json for {instance}"
        headers = {"Authorization": f"Bearer {self.token(instance)}"}
        with httpx.Client(timeout=30, trust_env=False, verify=False) as client:  # no TLS: no SSL context to build
            return client.request(method, f"http://127.0.0.1:{info['port']}{path}", headers=headers, **kw)

    def try_api(self, method: str, path: str, instance: str = "default", **kw: Any) -> httpx.Response | None:
        try:
            return self.api(method, path, instance, **kw)
        except (httpx.HTTPError, AssertionError, OSError):
            return None

    def partner(self, instance: str = "default") -> dict[str, Any]:
        answer = self.try_api("GET", "/status", instance)
        return answer.json()["partner"] if answer is not None and answer.status_code == 200 else {}

    def processes(self, instance: str = "default") -> dict[str, dict[str, Any]]:
        answer = self.api("GET", "/processes?facts=0", instance)
        return {p["name"]: p for p in answer.json()["processes"]}

    def serving(self, instance: str = "default") -> dict[str, Any] | None:
        """daemon.json, once the daemon it names is alive and answers `/health` with its PID."""
        info = self.info(instance)
        if info is None or not pid_alive(info["pid"]):
            return None
        try:
            health = httpx.get(f"http://127.0.0.1:{info['port']}/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        return info if health.get("pid") == info["pid"] else None

    def daemon_logs(self, instance: str = "default") -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir(instance).glob("daemon-*.log")))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    project = tmp_path / "project"
    project.mkdir()
    h = Home(tmp_path / "home", project)
    yield h
    for proc in h.started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in h.started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    kill_everything_of(h.root)


def hard_kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    poll(lambda: not pid_alive(pid), f"pid {pid} to die")


def wait_gone(pid: int, timeout: float = DEADLINE) -> None:
    poll(lambda: not pid_alive(pid), f"pid {pid} to be gone", timeout)


def monotonic_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
