"""The runner's side of a `notify` check: one sd_notify socket per process, kept across its runs, and what
each message means for the current run.

Who may speak: the socket sits in a private folder (only the owner can reach it), and the kernel names
the sender of each datagram. A message from another user is dropped, and so is one from a living process
outside the run's session (a stray from an earlier run that escaped its group, say). A sender that is
already gone is believed: `systemd-notify --ready` exits right after sending.

What is understood (sd_notify(3)):
- `READY=1`, `STATUS=...`, `WATCHDOG=1`, `WATCHDOG=trigger`, `STOPPING=1`: handed to the run's
  `RunWatch` (and the watchdog's `NotifyState`).
- `MAINPID=N`: the run's main process is now N (a launcher that hands over to the real server, say).
  Accepted only for a living process of the owner inside the run's own session, so a process can never
  make pmtop watch, or signal, a process that is not its own; the group that stop signals go to stays the
  run's. N is then followed through a pidfd; its exit ends the run, with an exit status pmtop cannot
  know (N is not pmtop's child).
- Everything else (`RELOADING=1`, `ERRNO=`, `FDSTORE=1`, `EXTEND_TIMEOUT_USEC=`...) is ignored; the
  descriptors a message carries are closed.

`STOPPING=1` follows systemd: the process says it is on its way out. Health verdicts end there, the
reason says so, and the exit that follows is judged by its status as any exit is (0: a clean exit;
under `restart = "always"` it is restarted, as systemd's `Restart=always` would). A process that says
it is stopping and is still running `stop_timeout` later is stopped, and counts as failed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Protocol

from ..checks.notify import NotifyCheck
from ..model import ProcessSpec
from ..system.notify import Notification, NotifySocket, NotifyState, socket_path
from .launch import merged_env
from .watch import RunWatch

log = logging.getLogger("pmtop.core")


def socket_for(spec: ProcessSpec, folder: Path | None) -> str | None:
    """The path of the process's sd_notify socket (None: its check is not `notify`)."""
    if folder is None or spec.health is None or not isinstance(spec.health.check, NotifyCheck):
        return None
    return socket_path(folder, spec.name)


def child_env(spec: ProcessSpec, folder: Path | None) -> dict[str, str] | None:
    """The child's environment, with `$NOTIFY_SOCKET` (and `$WATCHDOG_USEC`) for a `notify` check."""
    check = spec.health.check if spec.health is not None else None
    watchdog = check.watchdog if isinstance(check, NotifyCheck) else None
    return merged_env(spec, notify_socket=socket_for(spec, folder), watchdog=watchdog)


class MainPidFollower(Protocol):
    def follow_main_pid(self, pid: int) -> None:
        """The run's main process is now `pid` (already checked to belong to the run)."""
        ...


class Notifications:
    """A process's sd_notify socket, and the run it currently speaks for."""

    def __init__(self, name: str, path: str, runner: MainPidFollower) -> None:
        self.name = name
        self.path = path
        self._runner = runner
        self._socket: NotifySocket | None = None
        self._session: int | None = None
        self._watch: RunWatch | None = None
        self._state: NotifyState | None = None
        self._main: int | None = None
        self._grace = 10.0

    def open(self) -> None:
        """Bind the socket (before the first spawn: the child may speak at once)."""
        if self._socket is None:
            self._socket = NotifySocket(self.path, self._on_message)

    def begin(self, session: int, watch: RunWatch, *, grace: float, state: NotifyState) -> None:
        """A run began: its session (the spawned child's PID), its watch and its state."""
        self._session = self._main = session
        self._watch = watch
        self._state = state
        self._grace = grace

    def moved(self, pid: int) -> None:
        self._main = pid

    def end(self) -> None:
        """The run ended: nothing it still says counts."""
        self._session = self._main = None
        self._watch = None
        self._state = None

    def drain(self) -> None:
        if self._socket is not None:
            self._socket.drain()

    def close(self, *, unlink: bool = True) -> None:
        self.end()
        if self._socket is not None:
            self._socket.close(unlink=unlink)
            self._socket = None

    # -- messages ------------------------------------------------------------------------------------

    def _on_message(self, message: Notification) -> None:
        watch, state, session = self._watch, self._state, self._session
        if watch is None or state is None or session is None:
            return  # between runs: nobody to speak for
        if message.uid is not None and message.uid != os.geteuid():
            log.warning("%s: sd_notify message from user id %s ignored", self.name, message.uid)
            return
        if message.pid is not None and not _in_session(message.pid, session, absent=True):
            log.warning("%s: sd_notify message from pid %s (outside the run's session) ignored", self.name,
                        message.pid)
            return
        fields = message.fields
        if "MAINPID" in fields:
            self._main_pid(fields["MAINPID"], session)
        if fields.get("READY") == "1" and not state.ready:
            state.ready = True
            state.since = time.monotonic()  # the watchdog counts from here
            watch.ready()
        if "STATUS" in fields:
            state.status = fields["STATUS"]
            watch.status(fields["STATUS"])
        watchdog = fields.get("WATCHDOG")
        if watchdog == "1":
            state.last_ping = time.monotonic()
        elif watchdog == "trigger":
            watch.trigger()
        if fields.get("STOPPING") == "1":
            watch.stopping_now(self._grace)

    def _main_pid(self, value: str, session: int) -> None:
        try:
            pid = int(value)
        except ValueError:
            log.warning("%s: MAINPID=%r ignored: not a PID", self.name, value)
            return
        if pid <= 0 or pid == self._main:
            return
        if not _in_session(pid, session, absent=False) or not _owned(pid):
            log.warning("%s: MAINPID=%s ignored: not a living process of this run's own session", self.name, pid)
            return
        self._runner.follow_main_pid(pid)


def _in_session(pid: int, session: int, *, absent: bool) -> bool:
    """Is `pid` in session `session`? `absent` is the answer for a process that is gone."""
    try:
        return os.getsid(pid) == session
    except ProcessLookupError:
        return absent
    except OSError:
        return False


def _owned(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        import psutil  # pragma: no cover - no /proc (macOS)

        try:
            return bool(psutil.Process(pid).uids().real == os.geteuid())
        except psutil.Error:
            return False
