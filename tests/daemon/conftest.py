"""Real daemons as subprocesses, each in its own PMTOP_HOME, always cleaned up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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


def poll(cond: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    return poll_sync(cond, what=what, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DaemonProc:
    proc: subprocess.Popen[str]
    home: Path
    instance: str = "default"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    @property
    def state_dir(self) -> Path:
        return self.home / "state" / self.instance

    @property
    def token(self) -> str:
        """The owner's token, read from the instance's file as the CLI does."""
        return (self.state_dir / "token").read_text().strip()

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, timeout=30, headers=headers, **kw)

    def processes(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.api("GET", "/processes").json()["processes"]}

    def wait_state(self, name: str, state: str, timeout: float = DEADLINE) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            p = self.processes().get(name)
            return p if p is not None and p["state"] == state else None

        return poll(check, f"{name} {state}", timeout)  # type: ignore[no-any-return]


def read_info(state_dir: Path, pid: int) -> dict[str, Any] | None:
    try:
        info = json.loads((state_dir / "daemon.json").read_text())
    except (OSError, ValueError):
        return None
    return info if info.get("pid") == pid else None


def alive(url: str) -> bool:
    try:
        return httpx.get(url + "/alive", timeout=2).text == "OK"
    except httpx.HTTPError:
        return False


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProc]]:
    started: list[DaemonProc] = []

    def start(*args: str, cwd: Path | None = None, home: Path | None = None, instance: str = "default",
              wait: bool = True, env: dict[str, str] | None = None, umask: int = -1) -> DaemonProc:
        home = home or tmp_path / "home"
        environ = {**os.environ, "PMTOP_HOME": str(home), **(env or {})}
        proc = subprocess.Popen([*PMTOP, "--headless", *args], cwd=cwd or tmp_path, env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, umask=umask)
        daemon = DaemonProc(proc, home, instance)
        started.append(daemon)
        if wait:
            daemon.info = poll(lambda: proc.poll() is None and read_info(daemon.state_dir, proc.pid),
                               f"daemon {proc.pid} to write daemon.json")
            poll(lambda: alive(daemon.url), "the daemon to answer /alive")
        return daemon

    yield start
    for daemon in started:
        stop_daemon(daemon)


def stop_daemon(daemon: DaemonProc) -> None:
    """SIGTERM, then SIGKILL by PID; and no child of it may survive."""
    proc = daemon.proc
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pmtop.toml"
    path.write_text(text)
    return path


SLEEP = '["sleep", "600"]'
