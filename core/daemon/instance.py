"""One supervisor per instance: the lock, the PID file, `daemon.json`, the token, and finding a daemon.

`instance.lock` is held with `fcntl.flock` for the supervisor's whole life; the kernel releases it
when the process dies, however it dies, so a crash never leaves a stale lock. `daemon.json` is how
clients find the daemon of an instance (host, port, pid, started_at, version, config).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Any

from ..errors import DaemonUnavailable, InstanceLocked, PmtopError
from ..files import private_dir, tighten_files, write_atomic, write_json_atomic
from ..locations import DaemonRecord, InstancePaths, read_daemon_record


def make_private(paths: InstancePaths) -> None:
    """pmtop's state and log folders (the instance's and the ones above that hold every instance's),
    0700: made so, or tightened if an earlier version left them open; and the state files 0600. The
    per-process log folders inside need no walk: nobody else can enter the instance's log folder."""
    for folder in (paths.state_dir.parent, paths.state_dir, paths.log_dir.parent, paths.log_dir):
        private_dir(folder)
    tighten_files(paths.state_dir)


class InstanceLock:
    def __init__(self, paths: InstancePaths) -> None:
        self.path = paths.state_dir / "instance.lock"
        self._paths = paths
        self._fd: int | None = None
        self.unclean = False
        """The last holder died holding the lock (its PID was still in the file): it may have left
        half-done work (see `Daemon.prepare`)."""

    def acquire(self) -> None:
        """Take the lock or raise `InstanceLocked` naming the supervisor that holds it."""
        make_private(self._paths)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_daemon_info(self._paths)
            where = f" (pid {holder.pid}, {holder.host}:{holder.port})" if holder else ""
            raise InstanceLocked(
                f"instance {self._paths.instance!r} is already supervised{where}; "
                "use --instance NAME for a separate supervisor"
            ) from None
        self._fd = fd
        # The file holds its holder's PID while it runs and is emptied by a clean release.
        self.unclean = bool(os.pread(fd, 64, 0).strip())
        with contextlib.suppress(OSError):  # a read-only state folder: start-up says so soon enough
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def pid_file(paths: InstancePaths, port: int) -> Path:
    return paths.state_dir / f"daemon-{port}.pid"


def write_daemon_files(paths: InstancePaths, info: DaemonRecord) -> None:
    write_atomic(pid_file(paths, info.port), f"{info.pid}\n".encode())
    write_json_atomic(paths.daemon_file, info.to_json())


def remove_daemon_files(paths: InstancePaths, info: DaemonRecord) -> None:
    """Remove the PID file and `daemon.json` (if still ours); a read-only state folder keeps them."""
    with contextlib.suppress(OSError):
        pid_file(paths, info.port).unlink()
    current = read_daemon_info(paths)
    if current is not None and current.pid == info.pid:
        with contextlib.suppress(OSError):
            paths.daemon_file.unlink()


def read_daemon_info(paths: InstancePaths) -> DaemonRecord | None:
    return read_daemon_record(paths.state_dir)


def ensure_token(paths: InstancePaths) -> str:
    """The instance's API token (created once, mode 0600)."""
    path = paths.token_file
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PmtopError(f"cannot read the API token {path}: {exc.strerror or exc}") from None
    # 256 bits from the kernel, as `secrets.token_hex(32)` makes them (without the secrets module, which
    # loads hmac, hashlib and OpenSSL's libcrypto: ~4 MB of RSS for a daemon that never needs them).
    token = os.urandom(32).hex()
    try:
        write_atomic(path, f"{token}\n".encode(), mode=0o600)
    except OSError as exc:
        raise PmtopError(f"cannot write the API token {path}: {exc.strerror or exc}") from None
    return token


def probe_health(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """What answers `GET /health` at host:port: its JSON, `{}` when it answers HTTP but not as
    pmtop's `/health`, or None when nothing (or nothing that speaks HTTP) answers.

    A plain connect comes first: when nothing listens (the common case at start-up) not even the
    light client is imported.
    """
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return None
    from ..api.sync_client import Client

    with Client(host, port, timeout=timeout) as client:
        try:
            data = client.request("GET", "/health")
        except DaemonUnavailable:  # nothing that speaks HTTP (a ProtocolError), or it went away
            return None
        except PmtopError:  # an error answer: not pmtop's open /health
            return {}
    return data if isinstance(data, dict) else {}
