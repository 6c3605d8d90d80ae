"""Starting children in their own process group, noticing their exit at once, killing them whole.

Invariants:
- Every child is a session (and so process-group) leader: `pgid == pid`, so `os.killpg(pid, ...)`
  reaches every descendant that did not leave the group on purpose.
- Exit is noticed through a pidfd registered with the event loop (no polling, no thread per child,
  no SIGCHLD handler that could steal statuses from asyncio); where the kernel has no pidfd, a thread
  waits instead. The child is reaped by `Popen.poll()` as soon as the pidfd is readable.
- Once the leader is gone, whatever is left of its group gets SIGKILL: no grandchild outlives it.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import SpawnError

_HAS_PIDFD = hasattr(os, "pidfd_open")


@dataclass(eq=False)
class Child:
    pid: int
    popen: subprocess.Popen[bytes] | None
    """None for an adopted process (spawned by an earlier supervisor)."""
    started_at: float
    """Unix time of the spawn."""
    exited: asyncio.Future[int | None] = field(repr=False)
    """Resolves the moment the child exits, to its exit status (negative: killed by that signal), or
    None when it cannot be known: an adopted process that is not our child."""
    pidfd: int = -1
    """The pidfd watched for the exit (-1: none, or already closed)."""
    group: int | None = None
    """The process group that stop signals go to: the child's own for every child pmtop spawns (it
    leads a new session), the original group for a main PID that moved (sd_notify `MAINPID=`), None for
    a process adopted by PID that does not lead its group (then it is signalled alone)."""


def spawn(
    argv: Sequence[str],
    *,
    executable: str | None = None,
    cwd: str | None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None,
    stdout: int,
    stderr: int,
    keep_fds: Sequence[int] = (),
    yield_cpu: bool = False,
) -> Child:
    """Start `argv` (never through a shell) as the leader of a new session, stdin from /dev/null.

    `Popen` returns only after the exec succeeded (it reads the exec-error pipe), so when this returns
    the new program is running; an exec failure raises `SpawnError` with a one-line explanation.
    `keep_fds` are inherited under the same numbers (see `logs.RunLogs` for why).

    `yield_cpu` lets the new program finish its exec before this process does anything else. `Popen`
    forks with vfork: the child's exec wakes the suspended parent half-way through, and on the same
    CPU the woken parent preempts it. Whatever the parent runs next then delays the exec's second half
    (ftrace, a daemon restarting `sleep`: 0.4 ms of its bookkeeping, until it next blocked; a floor
    respawner blocks at once in `os.wait`). `sched_yield` hands the CPU back at once. It is asked for
    where one spawn's latency is the point (a crash's restart); a boot of many spawns has nothing to
    win from it, and keeps its measured path.
    """
    try:
        popen = subprocess.Popen(
            list(argv),
            executable=executable,
            cwd=cwd,
            env=env,
            stdin=_devnull(),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(keep_fds),
        )
    except FileNotFoundError as exc:
        if cwd is not None and exc.filename == cwd:
            raise SpawnError(f"working directory not found: {cwd}") from exc
        raise SpawnError(f"command not found: {argv[0]}") from exc
    except NotADirectoryError as exc:
        raise SpawnError(f"not a directory: {exc.filename}") from exc
    except PermissionError as exc:
        raise SpawnError(f"permission denied: {exc.filename or argv[0]}") from exc
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
    started_at = time.time()  # the exec's time, before the yield lets the new program run on
    if yield_cpu:
        os.sched_yield()
    loop = asyncio.get_running_loop()
    exited, pidfd = watch_exit(popen, loop)
    return Child(popen.pid, popen, started_at, exited, pidfd, group=popen.pid)


@functools.cache
def _devnull() -> int:
    """/dev/null, opened once for every child's stdin (`subprocess.DEVNULL` opens it at each spawn).
    Not inheritable: each child gets it as its fd 0 only."""
    return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def watch_exit(
    popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop
) -> tuple[asyncio.Future[int | None], int]:
    """A future that resolves with the child's exit status as soon as it exits (and reaps it),
    and the pidfd watched for it (-1 where there is none)."""
    future: asyncio.Future[int | None] = loop.create_future()
    if _HAS_PIDFD:
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:  # pragma: no cover - old kernel (ENOSYS) or seccomp; fall back to a thread
            pass
        else:
            def on_exit() -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                returncode = popen.poll()
                if returncode is None:  # pragma: no cover - pidfd readable means exited
                    returncode = popen.wait()
                if not future.done():
                    future.set_result(returncode)

            loop.add_reader(pidfd, on_exit)
            return future, pidfd
    waiter = loop.run_in_executor(None, popen.wait)  # pragma: no cover - non-Linux
    waiter.add_done_callback(functools.partial(_resolve, future))
    return future, -1


def _resolve(future: asyncio.Future[int | None], waiter: asyncio.Future[int | None]) -> None:
    if not future.done():
        future.set_result(waiter.result())


def _resolve_unknown(future: asyncio.Future[int | None], _: object) -> None:
    if not future.done():
        future.set_result(None)


def adopt(pid: int, created: float, started_at: float, *, group: int | None) -> Child | None:
    """Take over a process that pmtop did not spawn in this run, if it is still the one meant.

    A PID alone proves nothing: it is adopted only if its create time matches the one recorded and it is
    still in `group` (the process group its stop signals go to; None: it is signalled alone). The pidfd
    is opened before the check, so the PID cannot be reused between the check and the watch. An adopted
    process may still be our child (after `/monitor/restart` re-executes this process): then its exit
    status is reaped as usual; otherwise it is unknown (None).
    """
    loop = asyncio.get_running_loop()
    pidfd = None
    if _HAS_PIDFD:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # ESRCH: gone already; anything else: no pidfd, the check below decides
            pass
    try:
        started = create_time(pid)
        same = started is not None and abs(started - created) < 0.01
        same = same and (group is None or os.getpgid(pid) == group)
    except OSError:
        same = False
    if not same:
        if pidfd is not None:
            os.close(pidfd)
        return None
    return _watch_pidfd(pid, pidfd, started_at, group, loop)


def adopt_pid(pid: int) -> Child | None:
    """Watch a process someone else started (`pmtop adopt`); None if it is gone. Its stop signals go to
    its process group only if it leads it, else to it alone (killing a group it merely belongs to
    could take down its shell's other jobs)."""
    created = create_time(pid)
    if created is None:
        return None
    try:
        leads = os.getpgid(pid) == pid
    except OSError:
        return None
    return adopt(pid, created, created, group=pid if leads else None)


def follow(pid: int, started_at: float, group: int | None) -> Child | None:
    """Watch `pid`, a process of a child's own session that took over as its main process (sd_notify
    `MAINPID=`); None if it is gone already. Its stop signals go to `group`, the child's group."""
    loop = asyncio.get_running_loop()
    pidfd = None
    if _HAS_PIDFD:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
    elif create_time(pid) is None:  # pragma: no cover - non-Linux
        return None
    return _watch_pidfd(pid, pidfd, started_at, group, loop)


def _watch_pidfd(
    pid: int, pidfd: int | None, started_at: float, group: int | None, loop: asyncio.AbstractEventLoop
) -> Child:
    future: asyncio.Future[int | None] = loop.create_future()
    if pidfd is not None:
        fd = pidfd

        def on_exit() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            if not future.done():
                future.set_result(_reap_if_ours(pid))

        loop.add_reader(fd, on_exit)
        return Child(pid, None, started_at, future, fd, group=group)
    import psutil  # pragma: no cover - non-Linux: psutil polls

    waiter = loop.run_in_executor(None, psutil.Process(pid).wait)  # pragma: no cover
    waiter.add_done_callback(functools.partial(_resolve_unknown, future))
    return Child(pid, None, started_at, future, group=group)


def forget(child: Child) -> None:
    """Stop watching a child this supervisor hands over (it keeps running)."""
    if child.pidfd >= 0 and not child.exited.done():
        loop = asyncio.get_running_loop()
        loop.remove_reader(child.pidfd)
        os.close(child.pidfd)
        child.pidfd = -1
    if child.popen is not None:
        child.popen.returncode = 0  # so that Popen's finaliser never reaps it behind a successor's back


def _reap_if_ours(pid: int) -> int | None:
    try:
        _, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # not our child: its parent (init) reaps it; the status is not ours to know
    return os.waitstatus_to_exitcode(status) if status else None


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a whole process group; False when the group no longer exists.

    ESRCH means every member is gone. EPERM happens on some systems when the only members left are
    zombies, which are gone for our purpose too. Both are expected races, not errors.
    """
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    except OSError as exc:  # pragma: no cover - nothing else is expected from killpg
        if exc.errno in (errno.ESRCH, errno.EPERM):
            return False
        raise
    return True


def signal_child(child: Child, sig: int) -> bool:
    """Send `sig` to the child's process group (or to the child alone when it has none of its own);
    False when nothing is left to receive it."""
    if child.group is not None:
        return signal_group(child.group, sig)
    if child.exited.done():  # its PID may belong to another process by now
        return False
    try:
        os.kill(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_leftovers(child: Child) -> None:
    """After the leader exited: SIGKILL whatever is left of its group (a lone adopted PID has none)."""
    if child.group is not None:
        signal_group(child.group, signal.SIGKILL)


async def stop_group(child: Child, stop_signal: int, timeout: float) -> bool:
    """Stop a child's whole group; True when it had to be escalated to SIGKILL.

    The stop signal is followed by SIGCONT (as systemd does) so that a stopped or frozen process
    receives it; after `timeout` the group gets SIGKILL; once the leader is gone the group gets
    SIGKILL once more so that no grandchild survives. A child without a group of its own (adopted by
    PID, not its group's leader) gets the same sequence alone.
    """
    escalated = False
    if not child.exited.done():
        signal_child(child, stop_signal)
        if stop_signal not in (signal.SIGKILL, signal.SIGCONT):
            signal_child(child, signal.SIGCONT)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(child.exited)
        except TimeoutError:
            escalated = True
            signal_child(child, signal.SIGKILL)
            await asyncio.shield(child.exited)
    kill_leftovers(child)
    return escalated


def create_time(pid: int) -> float | None:
    """When `pid` started, in Unix time, as psutil computes it; None if it is gone or a zombie.

    With the PID, this is the identity of a process (PIDs are reused, start times are not). Read from
    /proc directly where there is one: this runs for every live child at each registry save.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:  # pragma: no cover - no /proc (macOS)
        import psutil

        try:
            proc = psutil.Process(pid)
            return None if proc.status() == psutil.STATUS_ZOMBIE else float(proc.create_time())
        except psutil.Error:
            return None
    if fields[0] == b"Z":
        return None
    return _boot_time() + int(fields[19]) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@functools.cache
def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")  # pragma: no cover
