"""Real daemons for the client commands: `pmtop --headless --port auto` subprocesses in a private
PMTOP_HOME, driven by `pmtop <command>` subprocesses, exactly as a user drives them.

Every wait polls a condition against a deadline (never a fixed sleep), and every daemon started here
is stopped at teardown (SIGTERM, then SIGKILL by PID), after which none of its children may survive.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.waiting import poll_sync

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]
PY = sys.executable
DEADLINE = 20.0
SLEEP_CODE = "import time; time.sleep(600)"
TICKER_CODE = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n    time.sleep(0.05)"


def poll(cond: Callable[[], Any], *, what: str, timeout: float = DEADLINE) -> Any:
    return poll_sync(cond, what=what, timeout=timeout)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN", "NO_COLOR")}
    env["PMTOP_HOME"] = str(home)
    env.update(extra)
    return env


def run_pmtop(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PMTOP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def process_table(name: str, code: str, **keys: Any) -> str:
    """A `[process.NAME]` table running `code` in this interpreter."""
    lines = [f"[process.{name}]", f"command = {json.dumps([PY, '-c', code])}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Daemon:
    """One `pmtop --headless` subprocess and how to talk to it."""

    proc: subprocess.Popen[bytes]
    home: Path
    cwd: Path
    instance: str
    log: Path
    port: int = 0
    children: list[psutil.Process] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.home)

    @property
    def state_dir(self) -> Path:
        return self.home / "state" / self.instance

    def pmtop(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`pmtop ARGS` as a user in this daemon's folder would run it (its instance found through
        `daemon.json`, or `--instance` for other instances)."""
        extra = ["--instance", self.instance] if self.instance != "default" and "--instance" not in args else []
        return run_pmtop(*extra, *args, cwd=cwd or self.cwd, env=env or self.env, timeout=timeout)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Straight to the HTTP API, to compare the commands' output with."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            token = (self.state_dir / "token").read_text().strip()  # as the CLI reads it
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            raw = response.read()
            ctype = response.getheader("Content-Type") or ""
            return response.status, json.loads(raw) if ctype.startswith("application/json") else raw.decode()
        finally:
            conn.close()

    def statuses(self) -> dict[str, dict[str, Any]]:
        status, data = self.api("GET", "/processes")
        assert status == 200, data
        return {s["name"]: s for s in data["processes"]}

    def wait_state(self, name: str, state: str, timeout: float = DEADLINE) -> dict[str, Any]:
        result: dict[str, Any] = poll(lambda: (s := self.statuses().get(name)) and s["state"] == state and s,
                                      what=f"{name} {state}", timeout=timeout)
        return result

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                info = json.loads((self.state_dir / "daemon.json").read_text())
            except (OSError, ValueError):
                return False
            if info.get("pid") != self.proc.pid:
                return False
            self.port = int(info["port"])
            try:
                return self.api("GET", "/alive") == (200, "OK")
            except OSError:
                return False

        poll(ready, what=f"daemon {self.instance} to serve")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL by PID; then no child of it may still run."""
        if self.proc.poll() is None:
            try:
                self.children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        else:
            self.proc.wait()
        survivors = [c for c in self.children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        for child in survivors:  # only ours, by PID: do not leave them to the next test
            child.kill()
        assert not survivors, f"children of the daemon survived it: {survivors}"


@pytest.fixture(scope="module")
def start_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Daemon]]:
    """`start_daemon(config_text, *flags, instance=..., home=..., cwd=...)`; all stopped at module end."""
    started: list[Daemon] = []

    def start(config: str | None, *flags: str, instance: str = "default", home: Path | None = None,
              cwd: Path | None = None) -> Daemon:
        folder = cwd or tmp_path_factory.mktemp("project")
        if config is not None:
            (folder / "pmtop.toml").write_text(textwrap.dedent(config))
        home = home or tmp_path_factory.mktemp("home")
        log = tmp_path_factory.mktemp("log") / "daemon.out"
        args = [*PMTOP, "--headless", "--port", "auto", *flags]
        if instance != "default":
            args += ["--instance", instance]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, cwd=folder, env=clean_env(home), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        daemon = Daemon(proc, home, folder, instance, log)
        started.append(daemon)
        daemon.wait_ready()
        return daemon

    yield start
    errors = []
    for daemon in reversed(started):
        try:
            daemon.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, errors


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The result failed with `code`, printed nothing on stdout and exactly one `Error:` line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
