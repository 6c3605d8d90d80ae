"""Writing state files so that a crash or a full disk never leaves a half-written one, and so that
nobody but their owner can read them.

The state folder, the registry and the logs hold commands, environments (secrets, often) and output,
so pmtop's folders are 0700 and its files 0600 whatever the umask (SPEC §6): modes are given at
creation (the umask can only take bits away), and folders an earlier version made are tightened.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Final

from .errors import PmtopError

PRIVATE_DIR: Final = 0o700
PRIVATE_FILE: Final = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter: created 0700 (missing parents too), or tightened.

    A folder that belongs to another user is refused: in a folder someone else can write, that user
    could have planted the token or registry pmtop is about to trust.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise PmtopError(f"{path} belongs to user id {info.st_uid}, not to this user: "
                         "refusing to keep pmtop's state there")
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def tighten_files(folder: Path) -> None:
    """Make the regular files directly in `folder` 0600 (files an earlier version wrote 0644)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours: nothing to tighten
            if entry.is_file(follow_symlinks=False) and stat.S_IMODE(entry.stat().st_mode) & 0o077:
                os.chmod(entry.path, PRIVATE_FILE)


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Temp file in the same folder, fsync, rename over `path`, fsync the folder.

    Readers see the old content or the new, never a mix; `mode` is set before any byte is written,
    so a secret is never readable by others even for a moment.
    """
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd, tmp = _new_temp_file(path)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _new_temp_file(path: Path) -> tuple[int, str]:
    """`.<name>.<random>.tmp` beside `path`, created exclusively, as `tempfile.mkstemp` would: not with
    it, because tempfile (and the `random` it loads) weighs ~1 MB in a daemon that must stay light."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(tmp, flags, PRIVATE_FILE), tmp
        except FileExistsError:  # 48 random bits met another's: draw again
            continue


def remove_stale_temp_files(folder: Path) -> None:
    """Temp files of `write_atomic` that a killed writer left behind (call only while no other
    process may write in `folder`: under its instance lock)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def write_json_atomic(path: Path, value: Any, *, mode: int = PRIVATE_FILE) -> None:
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), mode=mode)


def set_aside(path: Path) -> Path:
    """Move a corrupt state file out of the way (kept for inspection) and return where it went."""
    import time

    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d_%H%M%S')}")
    os.replace(path, target)
    return target
