"""systemd's sd_notify protocol, from the receiving end: one datagram socket per process.

A child that speaks the protocol finds the socket's path in `$NOTIFY_SOCKET` and sends datagrams of
newline-separated `KEY=VALUE` assignments (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`,
`MAINPID=...`), as `sd_notify(3)`, `systemd-notify(1)` and the `sdnotify` package do.

Where the socket lives, and why there: a path in a 0700 folder of the owner (the instance's state folder,
else `$XDG_RUNTIME_DIR`, else a 0700 folder of its own in the temp folder), not an abstract socket. An
abstract socket has no permissions at all: every user of the machine could send `READY=1` (its name is
listed in /proc/net/unix for all to read). A path in a private folder cannot even be reached by anyone
else. The path is the same for a process across supervisors, so a child that a successor adopts keeps
reaching it (the successor binds it anew). The kernel also attaches the sender's credentials to each
datagram (`SO_PASSCRED`), so the receiver knows which PID and user sent it.

Read from the event loop (`add_reader`): no thread, no polling; an idle socket costs nothing.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..files import private_dir

MAX_DATAGRAM: Final = 4096
"""systemd reads at most this much of one notification (NOTIFY_BUFFER_MAX is 4096 - 1)."""
MAX_FDS: Final = 16
"""File descriptors a datagram may carry (`FDSTORE=1`); pmtop keeps none and closes them at once."""
_SUN_PATH: Final = 107
"""Bytes of a socket path the kernel takes (sun_path is 108, with its NUL)."""
_UCRED: Final = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class Notification:
    """One datagram: its assignments, and who sent it as the kernel says (None if it did not say)."""

    fields: dict[str, str]
    pid: int | None
    uid: int | None


@dataclass(slots=True)
class NotifyState:
    """What a process said over its socket during one run (a watchdog probe reads it)."""

    since: float = field(default_factory=time.monotonic)
    """When the watchdog began counting (monotonic): the run's start, then `READY=1`; until the first
    `WATCHDOG=1`, silence is counted from here."""
    ready: bool = False
    last_ping: float | None = None
    """Monotonic time of the last `WATCHDOG=1`."""
    status: str | None = None
    """The last `STATUS=`."""

    def silent_for(self, now: float | None = None) -> float:
        """Seconds since the last `WATCHDOG=1` (or since the run began, before the first)."""
        last = self.last_ping if self.last_ping is not None else self.since
        return (time.monotonic() if now is None else now) - last


def parse(datagram: bytes) -> dict[str, str]:
    """`READY=1\\nSTATUS=x` -> {"READY": "1", "STATUS": "x"}; lines without `=` are skipped (as systemd does)."""
    fields: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


# ------------------------------------------------------------------------------------------ where

def socket_folder(state_dir: Path) -> Path:
    """The folder for an instance's sockets: `<state>/notify` when a path in it fits the kernel's limit,
    else one under `$XDG_RUNTIME_DIR`, else one in the temp folder; each named after the state folder,
    so two instances (or two test homes) never share one, and each is the same on every start."""
    preferred = state_dir / "notify"
    if len(os.fsencode(str(preferred))) + 1 + _SHORT_NAME <= _SUN_PATH:
        return preferred
    tag = _short_hash(os.fsencode(str(state_dir)))
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / f"pmtop-{tag}"
    # Directly in the sticky temp folder (no shared parent another user could have made first); a
    # folder of that name that is not ours is refused by `private_dir`.
    import tempfile  # (a rare path: tempfile alone weighs ~1 MB in a daemon that is meant to be light)

    return Path(tempfile.gettempdir()) / f"pmtop-{os.geteuid()}-{tag}"


_SHORT_NAME: Final = len("0123456789ab.sock")


def socket_path(folder: Path, name: str) -> str:
    """`<folder>/<name>.sock`, or a short name derived from `name` when the path would be too long."""
    path = str(folder / f"{name}.sock")
    if len(os.fsencode(path)) <= _SUN_PATH:
        return path
    return str(folder / f"{_short_hash(name.encode())}.sock")


def _short_hash(data: bytes) -> str:
    """12 hex digits of SHA-256, imported only here: hashlib loads OpenSSL's libcrypto (~4 MB of RSS)
    and only a state folder or process name too long for a socket path needs it."""
    import hashlib

    return hashlib.sha256(data).hexdigest()[:12]


# ------------------------------------------------------------------------------------------ socket

class NotifySocket:
    """A bound datagram socket that hands each notification to `on_message`, from the event loop."""

    def __init__(self, path: str, on_message: Callable[[Notification], None]) -> None:
        self.path = path
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        folder = Path(path).parent
        private_dir(folder)  # 0700, ours: nobody else can reach the socket
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a socket an earlier supervisor left (its children reach the new one)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            if hasattr(socket, "SO_PASSCRED"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        except BaseException:
            sock.close()
            raise
        self._sock: socket.socket | None = sock
        self._loop.add_reader(sock.fileno(), self.drain)

    def drain(self) -> None:
        """Hand over every datagram waiting now. Also called before an exit is judged, so that a
        `MAINPID=` sent just before the old main process exited is read first (as systemd does)."""
        sock = self._sock
        while sock is not None:
            try:
                data, ancillary, _flags, _address = sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(MAX_FDS * 4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = uid = None
            for level, kind, payload in ancillary:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == getattr(socket, "SCM_CREDENTIALS", -1) and len(payload) >= _UCRED.size:
                    pid, uid, _gid = _UCRED.unpack_from(payload)
                elif kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    for fd in fds:  # FDSTORE=1 and friends: pmtop keeps no descriptors
                        with contextlib.suppress(OSError):
                            os.close(fd)
            self._on_message(Notification(parse(data), pid, uid))
            sock = self._sock  # the handler may have closed us

    def close(self, *, unlink: bool = True) -> None:
        """Stop reading; with `unlink`, remove the path (not when a successor will take it over)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._loop.remove_reader(sock.fileno())
        sock.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
