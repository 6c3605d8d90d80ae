"""One run of a process: the child plus its log pipes, started fresh or adopted.

Kept apart from the state machine so that `machine.py` reads as states and decisions; this module
is the plumbing that a run needs from the OS.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpawnError
from ..model import LiveChild, ProcessSpec
from ..system import spawner
from . import logs
from .replicas import replica_env


@dataclass(eq=False)
class Run:
    child: spawner.Child
    logs: logs.RunLogs
    adopted: bool = False
    create_time: float | None = None
    """The child's create time, as the OS reports it (with the PID, its identity); read on demand."""

    @property
    def run_dir(self) -> Path:
        return self.logs.run_dir

    def identity(self) -> float | None:
        if self.create_time is None:
            self.create_time = spawner.create_time(self.child.pid)
        return self.create_time

    def live_child(self, restarts: int, failures: int) -> LiveChild | None:
        """What a successor needs to adopt this run; None once the child is gone."""
        if self.child.exited.done():
            return None
        create_time = self.identity()
        if create_time is None:
            return None
        return LiveChild(
            pid=self.child.pid,
            create_time=create_time,
            started_at=self.child.started_at,
            run_dir=str(self.run_dir),
            restarts=restarts,
            consecutive_failures=failures,
            pipes=dict(self.logs.pipe_inodes),
            keeper_fds=dict(self.logs.keeper_fds),
        )


def start_run(
    spec: ProcessSpec,
    *,
    env: Mapping[str, str] | None,
    run_dir: Path,
    loop: asyncio.AbstractEventLoop,
    on_output: Callable[[str, bytes], None] | None,
) -> Run:
    """Spawn `spec` with its stdout/stderr piped into `run_dir`; raises `SpawnError`."""
    run_logs = logs.RunLogs.create(run_dir, spec.logs, loop, on_output)
    executable = _resolve(spec.command[0], env)
    try:
        child = spawner.spawn(
            spec.command,
            executable=executable,
            cwd=spec.cwd,
            env=env,
            stdout=run_logs.child_fds[0],
            stderr=run_logs.child_fds[1],
            keep_fds=list(run_logs.keeper_fds.values()),
        )
    except SpawnError:
        _resolved.pop((spec.command[0], _search_path(env)), None)  # moved or removed: look again next time
        run_logs.close()
        raise
    finally:
        run_logs.close_child_ends()
    return Run(child, run_logs)


def adopt_run(
    spec: ProcessSpec,
    live: LiveChild,
    *,
    process_dir: Path,
    loop: asyncio.AbstractEventLoop,
    on_output: Callable[[str, bytes], None] | None,
) -> Run | None:
    """Take over a run an earlier supervisor left behind; None if that process is gone (or the PID
    now belongs to another program, which is never touched)."""
    child = spawner.adopt(live.pid, live.create_time, live.started_at)
    if child is None:
        return None
    run_dir = Path(live.run_dir) if live.run_dir else None
    if run_dir is None or not run_dir.is_dir():
        run_dir = logs.new_run_dir(process_dir)
    run_logs = logs.RunLogs.reattach(run_dir, spec.logs, loop, live.pid, dict(live.keeper_fds),
                                     dict(live.pipes), on_output)
    return Run(child, run_logs, adopted=True, create_time=live.create_time)


def merged_env(spec: ProcessSpec) -> dict[str, str] | None:
    """The child's environment: the supervisor's, with the spec's on top (None: inherit as is); a
    replica also gets `PMTOP_REPLICA` (and `PORT`)."""
    extra = replica_env(spec)
    return {**os.environ, **spec.env, **extra} if spec.env or extra else None


_resolved: dict[tuple[str, str], str] = {}
"""(program, PATH) -> where it was found: a restart need not walk PATH (each miss is a failed exec)."""


def _search_path(env: Mapping[str, str] | None) -> str:
    return (env if env is not None else os.environ).get("PATH", os.defpath)


def _resolve(program: str, env: Mapping[str, str] | None) -> str | None:
    """The program's full path, found once per PATH; None leaves the search to exec (and its error)."""
    if os.sep in program:
        return None
    key = (program, _search_path(env))
    found = _resolved.get(key)
    if found is None:
        found = shutil.which(program, path=key[1])
        if found is None or not os.path.isabs(found):  # a relative PATH entry depends on the cwd
            return None
        _resolved[key] = found
    return found
