"""Per-run log files: capped, rotated, pruned, and read from the end.

Children write into pipes that the supervisor drains into `RotatingFile`s, so no chatty process can
fill the disk: each stream is capped at `max_bytes` with `backups` rotated files, and only the newest
`keep_runs` run folders of a process are kept. Layout (SPEC §3):
`<log dir>/<process>/<YYYYmmdd_HHMMSS>/stdout.log` and `stderr.log`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .model import LogSpec

STREAMS = ("stdout", "stderr")
_READ_CHUNK = 65536
_TAIL_LINE_LIMIT = 400


class RotatingFile:
    """An append-only file that rotates to `name.1`, `name.2`, ... when it would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = backups
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                room = self.max_bytes
            chunk = view[:room]
            written = os.write(self._fd, chunk)
            self._size += written
            view = view[written:]

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o644)
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class TailBuffer:
    """The last few lines of a stream, kept in memory for the run history (SPEC §3)."""

    def __init__(self, lines: int = 20) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()[-4096:]
        for part in parts[-(self._lines.maxlen or 1):]:
            self._lines.append(part[:_TAIL_LINE_LIMIT].decode("utf-8", "replace").rstrip("\r"))

    def lines(self) -> tuple[str, ...]:
        tail = list(self._lines)
        if self._partial:
            tail.append(self._partial[:_TAIL_LINE_LIMIT].decode("utf-8", "replace"))
        return tuple(tail[-(self._lines.maxlen or 1):])


class PipeDrain:
    """Drains one child pipe into a `RotatingFile` from the event loop, until EOF."""

    def __init__(
        self,
        fd: int,
        sink: RotatingFile,
        loop: asyncio.AbstractEventLoop,
        tail: TailBuffer | None = None,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._sink = sink
        self._loop = loop
        self._tail = tail
        self._on_eof = on_eof
        self.closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._sink.write(data)
            if self._tail is not None:
                self._tail.feed(data)
            return
        self.close()

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._sink.close()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_eof is not None:
            self._on_eof()


class RunLogs:
    """The two pipes and files of one run. `child_fds` go to the child; the rest stays here."""

    def __init__(self, run_dir: Path, spec: LogSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.run_dir = run_dir
        self.stderr_tail = TailBuffer()
        self.child_fds: list[int] = []
        self._drains: list[PipeDrain] = []
        for stream in STREAMS:
            read_fd, write_fd = os.pipe()
            sink = RotatingFile(run_dir / f"{stream}.log", spec.max_bytes, spec.backups)
            tail = self.stderr_tail if stream == "stderr" else None
            self._drains.append(PipeDrain(read_fd, sink, loop, tail))
            self.child_fds.append(write_fd)

    def close_child_ends(self) -> None:
        """Called right after spawn: the child holds its own copies now."""
        for fd in self.child_fds:
            os.close(fd)
        self.child_fds = []

    async def drained(self, timeout: float) -> None:
        """Wait (bounded) until every pipe reached EOF, i.e. everything written is on disk."""
        pending = [d.closed for d in self._drains if not d.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def close(self) -> None:
        self.close_child_ends()
        for drain in self._drains:
            drain.close()


def new_run_dir(process_dir: Path, now: float | None = None) -> Path:
    """A fresh `<YYYYmmdd_HHMMSS>` folder; runs within the same second get `-2`, `-3`, ... appended."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
    process_dir.mkdir(parents=True, exist_ok=True)
    candidate, n = process_dir / stamp, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = process_dir / f"{stamp}-{n}"


def run_dirs(process_dir: Path) -> list[Path]:
    """Run folders of a process, oldest first (names sort by time)."""
    try:
        entries = [p for p in process_dir.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(entries, key=_run_sort_key)


def _run_sort_key(path: Path) -> tuple[str, int]:
    stamp, _, n = path.name.partition("-")
    return stamp, int(n) if n.isdigit() else 1


def prune_runs(process_dir: Path, keep: int) -> None:
    for old in run_dirs(process_dir)[: -keep if keep > 0 else None]:
        shutil.rmtree(old, ignore_errors=True)


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file, read backwards from its end (never the whole file)."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            pos, buf = end, b""
            while pos > 0 and buf.count(b"\n") <= lines:
                step = min(_READ_CHUNK, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
    except FileNotFoundError:
        return []
    if buf.endswith(b"\n"):
        buf = buf[:-1]
    if not buf and pos == 0:
        return []
    return [line.decode("utf-8", "replace").rstrip("\r") for line in buf.split(b"\n")[-lines:]]
