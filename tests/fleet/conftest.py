"""A fleet of real daemons on loopback ports, each in its own PMTOP_HOME with its own token.

`fleet` starts three (`alpha`, `beta`, `gamma`), each running a `web` (the same name on every host, as
in a real fleet) and one process of its own. `Fleet.kill(name)` SIGKILLs a daemon (its processes live
on, as after a crash) and `Fleet.restart(name)` starts it again on the same port and home, where it
adopts them. Every daemon and every process they started is gone after the test.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from pmtop.core.config.fleet import FleetDaemon, choose, load_fleet
from tests.daemon import conftest as daemon_conftest
from tests.daemon.conftest import SLEEP, DaemonProc, free_port, poll, write_config

start_daemon = daemon_conftest.start_daemon  # the fixture, for this folder

NAMES = ("alpha", "beta", "gamma")
OWN = {"alpha": "api", "beta": "worker", "gamma": "db"}
"""Each host's own process, beside its `web`."""

Start = Callable[..., DaemonProc]


@dataclass
class Host:
    name: str
    home: Path
    folder: Path
    port: int
    daemon: DaemonProc
    orphans: set[int] = field(default_factory=set)
    """PIDs of its processes when it was killed (the restarted daemon adopts them)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.daemon.state_dir / "token"


@dataclass
class Fleet:
    hosts: dict[str, Host]
    start: Start
    config_dir: Path

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def write_fleet_toml(self, *, token_files: dict[str, Path] | None = None) -> Path:
        """fleet.toml naming every daemon, with its own token file (or the one given)."""
        lines = ["[fleet]", "daemons = ["]
        for host in self.hosts.values():
            token = (token_files or {}).get(host.name, host.token_file)
            lines.append(f'  {{ url = "{host.url}", token_file = "{token}", name = "{host.name}" }},')
        lines.append("]")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_dir / "fleet.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def daemons(self, **token_files: Path) -> tuple[FleetDaemon, ...]:
        return choose(load_fleet(self.write_fleet_toml(token_files=token_files)))

    def kill(self, name: str) -> None:
        """SIGKILL the daemon: its connections drop at once, its processes live on (adopted on restart)."""
        host = self.hosts[name]
        proc = host.daemon.proc
        host.orphans |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        poll(lambda: not daemon_conftest.alive(host.url), f"{name}'s port to close")

    def restart(self, name: str) -> None:
        host = self.hosts[name]
        host.daemon = self.start("--port", str(host.port), cwd=host.folder, home=host.home)


def start_host(start: Start, tmp_path: Path, name: str) -> Host:
    folder = tmp_path / name
    write_config(folder, f"[process.web]\ncommand = {SLEEP}\n[process.{OWN[name]}]\ncommand = {SLEEP}\n")
    home = folder / "home"
    port = free_port()
    daemon = start("--port", str(port), cwd=folder, home=home)
    for process in ("web", OWN[name]):
        daemon.wait_state(process, "running")
    return Host(name, home, folder, port, daemon)


@pytest.fixture
def fleet(start_daemon: Start, tmp_path: Path, pmtop_home: Path) -> Iterator[Fleet]:
    hosts = {name: start_host(start_daemon, tmp_path, name) for name in NAMES}
    made = Fleet(hosts, start_daemon, pmtop_home / "config")
    yield made
    for host in hosts.values():  # (again by `start_daemon`'s teardown: harmless)
        daemon_conftest.stop_daemon(host.daemon)
    # Processes of a killed daemon that no restarted one adopted (and stopped) are ours to end.
    for host in hosts.values():
        for pid in host.orphans:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
            except psutil.NoSuchProcess:
                pass
