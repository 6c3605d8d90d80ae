"""Shared fixtures: an isolated PMTOP_HOME, real supervisors, and event waits with deadlines."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pmtop.core.locations import InstancePaths, instance_paths
from pmtop.core.model import ProcessSpec, RestartSpec
from pmtop.core.supervisor import Supervisor


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole session, no process started by a test may still run: every one carries its
    test's PMTOP_HOME (children inherit it), all under this session's temporary folder. Detached
    daemons and watchers are nobody's child, so this is where one left behind would show."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    left = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("PMTOP_HOME", "").startswith(base) and proc.status() != psutil.STATUS_ZOMBIE:
                left.append((proc.pid, proc.cmdline()))
                proc.kill()
        except (psutil.Error, OSError):
            continue
    assert not left, f"processes left behind by the tests (now killed): {left}"


@pytest.fixture(autouse=True)
def pmtop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "pmtop-home"
    monkeypatch.setenv("PMTOP_HOME", str(home))
    return home


@pytest.fixture
def paths(pmtop_home: Path) -> InstancePaths:
    return instance_paths("test")


def py(code: str) -> tuple[str, ...]:
    """A command running `code` in this interpreter."""
    return (sys.executable, "-c", code)


def spec(name: str, code: str = "import time; time.sleep(600)", **kw: Any) -> ProcessSpec:
    restart = kw.pop("restart", None)
    if restart is None:
        restart = RestartSpec(**{k: kw.pop(k) for k in list(kw) if k in RestartSpec.__dataclass_fields__})
    kw.setdefault("stop_timeout", 5.0)
    return ProcessSpec(name=name, command=py(code), restart=restart, **kw)


@pytest.fixture
async def make_supervisor(paths: InstancePaths) -> AsyncIterator[Callable[..., Supervisor]]:
    """Supervisors built here are shut down after the test, and must leave no process behind."""
    made: list[Supervisor] = []

    def make(*specs: ProcessSpec) -> Supervisor:
        sup = Supervisor(specs, paths=paths)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        await sup.shutdown()
    me = psutil.Process(os.getpid())
    leftovers = [c for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
