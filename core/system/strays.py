"""Finding the processes a supervisor's children left behind, and proving they are its own.

Every child is started with `PMTOP_RUN_DIR` (its run's log folder) in its environment, which all its
descendants inherit, whatever they do to their process group or session. A process of this user
whose environment names a run folder of this instance is therefore provably one of ours: a
double-forked daemon, a grandchild that called `setsid`, a child that moved to another group, or a
child that a supervisor spawned and then died before recording it. The kernel's copy of the
environment (`/proc/<pid>/environ`) is what a process was started with; it cannot be edited later.

A scan reads one small file per process (a few milliseconds for a few hundred): it runs in a thread,
after a run ended (coalesced, see `Supervisor`), and at a start after an unclean exit, never idly.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from dataclasses import dataclass
from typing import Final

ENV_RUN_DIR: Final = "PMTOP_RUN_DIR"
ENV_PROCESS_NAME: Final = "PMTOP_PROCESS_NAME"
EXIT_WAIT: Final = 1.0
"""Seconds `kill_marked` waits for a killed process to be gone (SIGKILL takes effect at once, but its
exit, which closes its sockets, comes a moment later)."""


@dataclass(frozen=True, slots=True)
class Marked:
    pid: int
    pgid: int
    sid: int
    run_dir: str
    """The run folder its environment names (so: which process, which run)."""


def find_marked(log_dir: str) -> list[Marked]:
    """Live processes of this user whose `PMTOP_RUN_DIR` lies in `log_dir` (this instance's logs)."""
    prefix = f"{ENV_RUN_DIR}={log_dir.rstrip(os.sep)}{os.sep}".encode()
    me, uid = os.getpid(), os.getuid()
    found = []
    try:
        entries = list(os.scandir("/proc"))
    except OSError:  # pragma: no cover - no /proc (macOS): nothing can be proved
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        run_dir = _value(environ, prefix)
        if run_dir is None:
            continue
        state = _stat(int(entry.name))
        if state is not None:
            found.append(Marked(int(entry.name), state[1], state[2], run_dir))
    return found


def _value(environ: bytes, prefix: bytes) -> str | None:
    """The value of the `PMTOP_RUN_DIR` entry that starts with `prefix`, or None."""
    if environ.startswith(prefix):
        start = 0
    else:
        at = environ.find(b"\0" + prefix)
        if at < 0:
            return None
        start = at + 1
    start += len(ENV_RUN_DIR) + 1
    end = environ.find(b"\0", start)
    return environ[start:end if end >= 0 else len(environ)].decode("utf-8", "replace")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, session) of a live process; None for a zombie or one gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    state = fields[0].decode()
    return None if state in ("Z", "X") else (state, int(fields[2]), int(fields[3]))


def kill_marked(marked: Marked, log_dir: str) -> bool:
    """SIGKILL a marked process (and the group it leads), if it is still that process; True if killed.

    The pidfd is opened first and the mark read again after: the PID cannot have been reused by an
    unrelated process in between, and the signal goes to the process the pidfd names.
    """
    try:
        pidfd = os.pidfd_open(marked.pid)
    except OSError:
        return False
    try:
        again = [m for m in find_marked_one(marked.pid, log_dir) if m.run_dir == marked.run_dir]
        if not again:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        if again[0].pgid == marked.pid:  # it leads a group of its own: that goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(marked.pid, signal.SIGKILL)
        # Until it has exited (its pidfd turns readable): then what it held, a port say, is free.
        select.select([pidfd], [], [], EXIT_WAIT)
        return True
    finally:
        os.close(pidfd)


def find_marked_one(pid: int, log_dir: str) -> list[Marked]:
    prefix = f"{ENV_RUN_DIR}={log_dir.rstrip(os.sep)}{os.sep}".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            run_dir = _value(f.read(), prefix)
    except OSError:
        return []
    state = _stat(pid)
    return [Marked(pid, state[1], state[2], run_dir)] if run_dir is not None and state is not None else []
