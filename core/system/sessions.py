"""Session-scoped processes: registered with a session PID and removed when that PID exits (SPEC §3).

The PID is watched through a pidfd in the event loop, like children's exits: no polling, and the
exit is noticed at once. Where there is no pidfd, a thread waits on it through psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

_HAS_PIDFD = hasattr(os, "pidfd_open")


class SessionWatch:
    """Calls `on_exit(pid)` once when a watched PID exits."""

    def __init__(self, on_exit: Callable[[int], None]) -> None:
        self._on_exit = on_exit
        self._fds: dict[int, int] = {}
        self._threads: dict[int, asyncio.Future[int]] = {}

    def watch(self, pid: int) -> bool:
        """Start watching; False when no such process is running (then nothing is watched)."""
        if pid in self._fds or pid in self._threads:
            return True
        loop = asyncio.get_running_loop()
        if _HAS_PIDFD:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                return False
            except OSError:
                fd = -1
            if fd >= 0:
                if _is_zombie(pid):
                    os.close(fd)
                    return False
                self._fds[pid] = fd
                loop.add_reader(fd, self._exited, pid)
                return True
        import psutil  # pragma: no cover - non-Linux

        try:  # pragma: no cover
            proc = psutil.Process(pid)
        except psutil.Error:  # pragma: no cover
            return False
        waiter = loop.run_in_executor(None, proc.wait)  # pragma: no cover
        waiter.add_done_callback(lambda _: self._exited(pid))  # pragma: no cover
        self._threads[pid] = waiter  # pragma: no cover
        return True  # pragma: no cover

    def unwatch(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        self._threads.pop(pid, None)

    def close(self) -> None:
        for pid in list(self._fds):
            self.unwatch(pid)
        self._threads.clear()

    def _exited(self, pid: int) -> None:
        if pid not in self._fds and pid not in self._threads:
            return
        self.unwatch(pid)
        self._on_exit(pid)


def _is_zombie(pid: int) -> bool:
    """A session leader that exited but was not reaped yet counts as gone."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    return False
