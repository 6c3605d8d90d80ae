"""`pmtop web` as a user runs it: a real daemon subprocess, a real `pmtop web` subprocess in the
same PMTOP_HOME, and clients that hold the instance's token as the owner's browser would.

Every process started here is stopped at teardown, the web server's dashboard sessions included:
none may survive it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.daemon import conftest as daemon_conftest
from tests.daemon.conftest import PMTOP, DaemonProc, free_port, poll, write_config
from tests.waiting import poll_sync

start_daemon = daemon_conftest.start_daemon
"""The daemon tests' fixture: real `pmtop --headless` subprocesses, always stopped."""

TALKER = "import itertools, time\nfor i in itertools.count():\n    print(f'hello from beta {i}', flush=True)\n    time.sleep(0.2)"


def stack(daemon_port: int) -> str:
    """Two processes: `alpha` sleeps, `beta` writes a line every 0.2 s (for the log pane)."""
    import json
    import sys

    return (f"[daemon]\nport = {daemon_port}\n"
            f"[process.alpha]\ncommand = {json.dumps([sys.executable, '-c', 'import time; time.sleep(600)'])}\n"
            f"stop_timeout = \"5s\"\n"
            f"[process.beta]\ncommand = {json.dumps([sys.executable, '-c', TALKER])}\n")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    env["PMTOP_HOME"] = str(home)
    env.update(extra)
    return env


def token_of(home: Path, instance: str = "default") -> str:
    return (home / "state" / instance / "token").read_text().strip()


def api(daemon: DaemonProc, method: str, path: str, **kw: Any) -> httpx.Response:
    """The daemon's API with the owner's token, as every pmtop client sends it."""
    headers = {"Authorization": f"Bearer {token_of(daemon.home, daemon.instance)}"}
    return httpx.request(method, daemon.url + path, headers=headers, timeout=30, **kw)


def api_state(daemon: DaemonProc, name: str) -> str:
    return str(api(daemon, "GET", f"/processes/{name}").json()["state"])


@dataclass
class WebProc:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    output: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return token_of(self.home)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def sessions(self) -> list[psutil.Process]:
        """The dashboard processes the server runs now (one per open browser session)."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            try:
                argv = child.cmdline()  # empty while a process exits: it is still one until it is a zombie
                if not gone(child) and (not argv or "--web-session" in argv):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def wait_sessions(self, count: int, timeout: float = 30.0) -> list[psutil.Process]:
        """Until exactly `count` dashboard processes run; they are returned."""
        found: list[psutil.Process] = []

        def exactly() -> bool:
            found[:] = self.sessions()
            return len(found) == count

        poll_sync(exactly, what=f"{count} dashboard session(s) of the web server", timeout=timeout)
        return found


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie not yet reaped counts: it runs nothing any more)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def health(url: str) -> dict[str, Any] | None:
    try:
        answer = httpx.get(url + "/health", timeout=2)
        return answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def stop_web(web: WebProc) -> None:
    """SIGTERM (the server ends its sessions), then SIGKILL; no session may outlive it."""
    sessions = web.sessions()
    if web.proc.poll() is None:
        web.proc.send_signal(signal.SIGTERM)
        try:
            web.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.proc.kill()
            web.proc.wait()
    survivors = []
    for session in sessions:
        try:
            session.wait(timeout=10)
        except psutil.TimeoutExpired:
            survivors.append(session.pid)
            session.kill()
        except psutil.NoSuchProcess:
            pass
    assert not survivors, f"dashboard sessions outlived the web server: {survivors}"


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator[Callable[..., WebProc]]:
    started: list[WebProc] = []

    def start(*args: str, home: Path, cwd: Path | None = None, port: int | None = None,
              env: dict[str, str] | None = None, wait: bool = True) -> WebProc:
        port = port or free_port()
        output = tmp_path / f"web-{len(started)}.out"
        with open(output, "wb") as out:
            proc = subprocess.Popen([*PMTOP, "web", "--port", str(port), *args], cwd=cwd or tmp_path,
                                    env=env or env_for(home), stdout=out, stderr=subprocess.STDOUT)
        web = WebProc(proc, port, home, output)
        started.append(web)
        if wait:
            poll(lambda: proc.poll() is None and (health(web.url) or {}).get("pid") == proc.pid,
                 f"pmtop web to answer on port {port}; it said: {output.read_text(errors='replace')[-500:]!r}")
        return web

    yield start
    for web in started:
        stop_web(web)


@pytest.fixture
def stack_daemon(start_daemon: Callable[..., DaemonProc], tmp_path: Path) -> DaemonProc:
    """A daemon running `stack()` from tmp_path/pmtop.toml, both processes running."""
    write_config(tmp_path, stack(free_port()))
    daemon = start_daemon()
    for name in ("alpha", "beta"):
        poll(lambda n=name: api_state(daemon, n) == "running", f"{name} running")  # type: ignore[misc]
    return daemon
