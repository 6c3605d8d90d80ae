"""Processes someone else started, which `pmtop adopt` may put under watch.

Only a process that is the owner's own to stop may be adopted: pmtop signals what it watches, so adopting
another user's process, PID 1, a kernel thread or pmtop itself would let `pmtop stop` reach what the
owner could not (or should not) kill. `refusal` says why a PID may not be adopted, in one line.
"""

from __future__ import annotations

import os
from typing import Final

_PF_KTHREAD: Final = 0x00200000
"""The `flags` bit of /proc/<pid>/stat that marks a kernel thread."""
_KTHREADD: Final = 2


def refusal(pid: int) -> str | None:
    """Why `pid` may not be adopted by this process's user, or None when it may."""
    if pid <= 0:
        return f"{pid} is not a process ID"
    if pid == 1:
        return "pid 1 is the system's init process; pmtop does not adopt it"
    if pid == os.getpid():
        return f"pid {pid} is this pmtop itself"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        owner = os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return f"no process with pid {pid} is running"
    except OSError:  # pragma: no cover - no /proc (macOS)
        return _psutil_refusal(pid)
    state, ppid, flags = fields[0], int(fields[1]), int(fields[6])
    if state in (b"Z", b"X"):
        return f"pid {pid} has exited (it is a zombie waiting for its parent)"
    if flags & _PF_KTHREAD or pid == _KTHREADD or ppid == _KTHREADD:
        return f"pid {pid} is a kernel thread"
    if owner != os.geteuid():
        return f"pid {pid} belongs to user id {owner}, not to the user running pmtop ({os.geteuid()})"
    return None


def executable(pid: int) -> str:
    """The path of the program `pid` runs ("" when it cannot be read: gone, or not ours)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        import psutil

        try:
            return str(psutil.Process(pid).exe())
        except (psutil.Error, OSError):
            return ""


def cmdline(pid: int) -> tuple[str, ...]:
    """The process's argv as the OS shows it (what `ps` prints); empty when unknown."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        import psutil

        try:
            return tuple(psutil.Process(pid).cmdline())
        except psutil.Error:
            return ()
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def _psutil_refusal(pid: int) -> str | None:  # pragma: no cover - no /proc (macOS)
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"pid {pid} has exited (it is a zombie waiting for its parent)"
        if proc.uids().real != os.geteuid():
            return f"pid {pid} belongs to user id {proc.uids().real}, not to the user running pmtop"
    except psutil.NoSuchProcess:
        return f"no process with pid {pid} is running"
    except psutil.Error as exc:
        return f"pid {pid} cannot be examined ({exc})"
    return None
