"""One run of a process: the child plus its log pipes, started fresh or adopted.

Kept apart from the state machine so that `machine.py` reads as states and decisions; this module
is the plumbing that a run needs from the OS.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..errors import SpawnError
from ..model import LiveChild, ProcessSpec
from ..system import spawner, strays
from . import logs
from .replicas import replica_env


@dataclass(eq=False)
class Run:
    child: spawner.Child
    """The run's main process: the one spawned (or adopted), until it says `MAINPID=` of another."""
    logs: logs.RunLogs
    adopted: bool = False
    create_time: float | None = None
    """The child's create time, as the OS reports it (with the PID, its identity); read on demand."""
    marker: str | None = None
    """The run folder named by `PMTOP_RUN_DIR` in the child's environment (see `system.strays`)."""
    spawned: spawner.Child | None = None
    """The child pmtop spawned, once the main process moved away from it (it is still reaped)."""
    foreign: bool = False
    """Started outside pmtop and adopted by PID (`pmtop adopt`): its group is not pmtop's to clean up."""

    _moved: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    def move(self, child: spawner.Child) -> None:
        """The main process is now `child` (sd_notify `MAINPID=`)."""
        if self.spawned is None:
            self.spawned = self.child
        self.child = child
        self.create_time = None
        if self._moved is not None and not self._moved.done():
            self._moved.set_result(None)

    async def main_exit(self, before_judging: Callable[[], None]) -> int | None:
        """The exit status of the run's main process, following it when it moves. `before_judging` runs
        when an exit is seen and may still move it (read the notifications a dying process sent)."""
        loop = asyncio.get_running_loop()
        while True:
            child = self.child
            moved = self._moved = loop.create_future()
            await asyncio.wait((child.exited, moved), return_when=asyncio.FIRST_COMPLETED)
            if child.exited.done():
                before_judging()
                if self.child is child:
                    return child.exited.result()

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
            group=self.child.group,
            foreign=self.foreign,
        )


def start_run(spec: ProcessSpec, *, env: ExecEnv, run_dir: Path, yield_cpu: bool = False) -> Run:
    """Spawn `spec` with its stdout/stderr into two new pipes; raises `SpawnError`. `yield_cpu`: see
    `spawner.spawn`.

    Only what the exec needs comes before it: the pipes, and the name of the run's folder, which the
    child's environment carries along with its process name (every descendant inherits them: how a
    supervisor proves that a process which left the group is one of its own, `system.strays`). The
    folder and its log files come after (`attach_logs`), as does all bookkeeping: this is the
    crash-to-restart path. `env` is already encoded (`exec_env`): only the two names are added here.
    """
    child_env = {**env, _NAME_KEY: os.fsencode(spec.name), _RUN_DIR_KEY: os.fsencode(run_dir)}
    run_logs = logs.RunLogs.open_pipes(run_dir)
    executable = _resolve(spec.command[0], env)
    try:
        child = spawner.spawn(
            spec.command,
            executable=executable,
            cwd=spec.cwd,
            env=child_env,
            stdout=run_logs.child_fds[0],
            stderr=run_logs.child_fds[1],
            keep_fds=list(run_logs.keeper_fds.values()),
            yield_cpu=yield_cpu,
        )
    except SpawnError:
        _resolved.pop((spec.command[0], _search_path(env)), None)  # moved or removed: look again next time
        run_logs.close()
        raise
    return Run(child, run_logs, marker=str(run_dir))


def attach_logs(
    run: Run,
    spec: ProcessSpec,
    *,
    loop: asyncio.AbstractEventLoop,
    on_output: Callable[[str, bytes], None] | None,
    on_trouble: Callable[[str, str | None, int], None] | None = None,
) -> None:
    """After a new run's exec: make its folder and drain its pipes into the log files there."""
    run.logs.attach(spec.logs, loop, on_output, on_trouble)


def adopt_run(
    spec: ProcessSpec,
    live: LiveChild,
    *,
    process_dir: Path,
    loop: asyncio.AbstractEventLoop,
    on_output: Callable[[str, bytes], None] | None,
    on_trouble: Callable[[str, str | None, int], None] | None = None,
) -> Run | None:
    """Take over a run an earlier supervisor left behind; None if that process is gone (or the PID
    now belongs to another program, which is never touched)."""
    child = spawner.adopt(live.pid, live.create_time, live.started_at, group=live.group)
    if child is None:
        return None
    run_dir = Path(live.run_dir) if live.run_dir else None
    if run_dir is None or not run_dir.is_dir():
        run_dir = logs.new_run_dir(process_dir)
    run_logs = logs.RunLogs.reattach(run_dir, spec.logs, loop, live.pid, dict(live.keeper_fds),
                                     dict(live.pipes), on_output, on_trouble)
    return Run(child, run_logs, adopted=True, create_time=live.create_time, marker=live.run_dir,
               foreign=live.foreign)


def adopt_pid(pid: int, *, process_dir: Path) -> Run | None:
    """Watch a process someone else started (`pmtop adopt`); None if it is gone. Its output is not
    captured (its stdout and stderr go wherever its starter sent them): the run's folder stays empty."""
    child = spawner.adopt_pid(pid)
    if child is None:
        return None
    run_logs = logs.RunLogs(logs.new_run_dir(process_dir), {}, logs.TailBuffer())
    return Run(child, run_logs, adopted=True, create_time=child.started_at, foreign=True)


_NOT_INHERITED: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
"""Variables that speak for pmtop's own supervisor (systemd, when pmtop runs under it), not for a child."""


def merged_env(spec: ProcessSpec, *, notify_socket: str | None = None,
               watchdog: float | None = None) -> dict[str, str] | None:
    """The child's environment (None: the supervisor's own, unchanged).

    Lowest first: the supervisor's own environment, `$PORT` for a declared `port` (a replica's is
    shifted by its index), the `env_file`s, `env`, and last what only pmtop may say: a replica's
    `$PMTOP_REPLICA`, `$NOTIFY_SOCKET` (and `$WATCHDOG_USEC`) for a `notify` check. A `$NOTIFY_SOCKET`
    that pmtop itself inherited is never passed on.
    """
    extra = replica_env(spec)
    if notify_socket is not None:
        extra["NOTIFY_SOCKET"] = notify_socket
        if watchdog is not None:
            extra["WATCHDOG_USEC"] = str(round(watchdog * 1_000_000))
    inherited = any(key in os.environ for key in _NOT_INHERITED)
    if not (spec.env or spec.file_env or extra or spec.port is not None or inherited):
        return None
    base = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED} if inherited else dict(os.environ)
    if spec.port is not None:
        base["PORT"] = str(spec.port)
    return {**base, **spec.file_env, **spec.env, **extra}


ExecEnv = Mapping[bytes, bytes]
"""A child's environment as exec takes it (bytes, `exec_env`)."""

_NAME_KEY: Final = os.fsencode(strays.ENV_PROCESS_NAME)
_RUN_DIR_KEY: Final = os.fsencode(strays.ENV_RUN_DIR)
_inherited: dict[bytes, bytes] = {}
"""The last inherited environment encoded, shared by every process that inherits it unchanged."""


def exec_env(env: Mapping[str, str] | None) -> ExecEnv:
    """`env` (None: the supervisor's own environment, as it is now) encoded for exec, once per runner.

    Encoding at each spawn (reading `os.environ` decodes every variable, `Popen` encodes each back) was
    a tenth of a millisecond of the crash-to-restart path. So the environment is fixed when the runner is
    made or its spec changes, as `merged_env` already fixed a process's own variables.
    """
    global _inherited
    encoded = {os.fsencode(k): os.fsencode(v) for k, v in (env if env is not None else os.environ).items()}
    if env is None:
        if encoded == _inherited:
            return _inherited  # one copy for all: most processes inherit, and memory is per process
        _inherited = encoded
    return encoded


_resolved: dict[tuple[str, bytes], str] = {}
"""(program, PATH) -> where it was found: a restart need not walk PATH (each miss is a failed exec)."""


def _search_path(env: ExecEnv) -> bytes:
    return env.get(b"PATH", os.fsencode(os.defpath))


def _resolve(program: str, env: ExecEnv) -> str | None:
    """The program's full path, found once per PATH; None leaves the search to exec (and its error)."""
    if os.sep in program:
        return None
    key = (program, _search_path(env))
    found = _resolved.get(key)
    if found is None:
        found = shutil.which(program, path=os.fsdecode(key[1]))
        if found is None or not os.path.isabs(found):  # a relative PATH entry depends on the cwd
            return None
        _resolved[key] = found
    return found
