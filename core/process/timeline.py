"""When each line of output was written: a time index beside each log file, and the merged view.

Why an index and not time stamps in the files: the files stay exactly what the process wrote (tools
that read them, `tail -f`, JSON log lines, binary output all keep working), and stamping costs nothing
per line. Each read from a pipe (one chunk, one or many lines) is one 16-byte record, `(offset in the
file, time)`, and only when at least `RESOLUTION` passed since the previous record, so a process
printing 100 MB as fast as it can costs a few thousand records, and one printing a line now and then
a record per line. Records wait in memory and are written together (at most `FLUSH_AFTER` seconds
late, with a timer armed only while some are waiting: an idle supervisor does nothing). Measured in
bench/bench_logs.py, with the figures in the README.

A line's time is that of the record covering the offset where the line starts. `stdout.times` sits
beside `stdout.log` and rotates with it (`stdout.times.1` beside `stdout.log.1`).

The merged view reads every process's files backwards, newest line first, each source (a process's
stream, across its rotated files and earlier runs) already in time order, and merges them by time,
stopping at the first `lines` lines that pass the filter: what it reads is bounded by what it shows.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from ..files import PRIVATE_FILE
from ..model import STREAMS, LogLine

RECORD: Final = struct.Struct("<Qd")
"""One index record: byte offset in the log file (unsigned 64-bit), Unix time (double)."""
RESOLUTION: Final = 0.001
"""Seconds: a chunk read sooner than this after the previous record shares its time."""
FLUSH_AFTER: Final = 1.0
BUFFER_LIMIT: Final = 256 * RECORD.size
"""Records kept in memory before they are written anyway."""
READ_CHUNK: Final = 65536
MAX_BYTES_PER_SOURCE: Final = 64 * 1024 * 1024
"""The most the merged view reads of one stream of one process (its files across runs)."""
MAX_LINE: Final = 16_384


def index_path(log_path: Path) -> Path:
    """`stdout.log` -> `stdout.times`, `stdout.log.2` -> `stdout.times.2`."""
    name = log_path.name
    stem, _, rotation = name.partition(".log")
    return log_path.with_name(f"{stem}.times{rotation}")


class TimeIndex:
    """The writing side: records for one log file, rotated with it."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.path = path
        self._loop = loop
        self._fd = -1
        self._buffer = bytearray()
        self._last = -1.0
        self._timer: asyncio.TimerHandle | None = None

    def mark(self, offset: int, now: float) -> None:
        """Bytes from `offset` on were read at `now`."""
        if now - self._last < RESOLUTION and offset:
            return
        self._last = now
        self._buffer += RECORD.pack(offset, now)
        if len(self._buffer) >= BUFFER_LIMIT:
            self.flush()
        elif self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, PRIVATE_FILE)
            os.write(self._fd, self._buffer)
        except OSError:
            pass  # a full disk loses time stamps (lines then show an earlier time), never the output
        self._buffer.clear()

    def rotate(self, backups: int) -> None:
        """The log file rotates: so does the index (same scheme), and the new file starts afresh."""
        self.flush()
        self._close_fd()
        try:
            if backups > 0:
                for n in range(backups - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{n}")
                    if older.exists():
                        os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
                if self.path.exists():
                    os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            else:
                self.path.unlink(missing_ok=True)
        except OSError:
            pass
        self._last = -1.0

    def close(self) -> None:
        self.flush()
        self._close_fd()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# ------------------------------------------------------------------------------------------ reading

class _Records(Sequence[int]):
    """The offsets of an index file, read where bisect looks (the file is never read whole)."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._data = data
        self._count = len(data) // RECORD.size

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> int:  # type: ignore[override]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        offset: int = RECORD.unpack_from(self._data, i * RECORD.size)[0]
        return offset

    def time(self, i: int) -> float:
        when: float = RECORD.unpack_from(self._data, i * RECORD.size)[1]
        return when


class _Times:
    """A log file's times by offset; without an index (older runs), every line gets `fallback`."""

    def __init__(self, path: Path, fallback: float) -> None:
        self.fallback = fallback
        self._map: mmap.mmap | None = None
        self._records: _Records | None = None
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size >= RECORD.size:
                    self._map = mmap.mmap(file.fileno(), size - size % RECORD.size, access=mmap.ACCESS_READ)
                    self._records = _Records(self._map)
        except OSError:
            pass

    def at(self, offset: int) -> float:
        records = self._records
        if records is None:
            return self.fallback
        i = bisect.bisect_right(records, offset) - 1
        return records.time(i) if i >= 0 else self.fallback  # written before the index began

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
            self._records = None


def lines_backward(path: Path, budget: list[int]) -> Iterator[tuple[int, bytes]]:
    """`(offset, line)` from the end of a file to its start; `budget[0]` bytes at most (shared)."""
    try:
        file = open(path, "rb")
    except OSError:
        return
    with file:
        pos = size = file.seek(0, os.SEEK_END)
        rest = b""
        first = True
        while pos > 0 and budget[0] > 0:
            step = min(READ_CHUNK, pos, budget[0])
            pos -= step
            budget[0] -= step
            file.seek(pos)
            chunk = file.read(step) + rest
            parts = chunk.split(b"\n")
            rest = parts[0]
            end = pos + len(chunk)
            if first:
                first = False
                if parts and parts[-1] == b"":
                    parts.pop()
                    end -= 1
            for part in reversed(parts[1:]):
                start = end - len(part)
                yield start, part
                end = start - 1
        if pos == 0 and size:
            yield 0, rest


def _run_started(run_dir: Path) -> float:
    """A run folder's start from its name (`20240501_140322[-2]`), for files without an index."""
    try:
        return datetime.strptime(run_dir.name.partition("-")[0], "%Y%m%d_%H%M%S").timestamp()
    except ValueError:
        return 0.0


def _rotations(run_dir: Path, stream: str) -> list[Path]:
    """The stream's files in a run, newest first: `stdout.log`, `stdout.log.1`, ..."""
    found = []
    for entry in run_dir.glob(f"{stream}.log*"):
        suffix = entry.name[len(f"{stream}.log"):]
        if suffix == "" or (suffix.startswith(".") and suffix[1:].isdigit()):
            found.append((int(suffix[1:] or 0), entry))
    return [path for _, path in sorted(found)]


LineFilter = Callable[[LogLine], bool]


def source_lines(name: str, stream: str, run_dirs: Sequence[Path], *, since: float | None,
                 accept: LineFilter, budget: int = MAX_BYTES_PER_SOURCE, whole: bool = False) -> Iterator[LogLine]:
    """One process's stream, newest line first, across rotations and runs (`run_dirs` oldest first),
    reading at most `budget` bytes of its files. With `whole`, a last line still being written (no
    newline yet) is left out: a follower gets it whole when it ends."""
    left = [budget]
    skip_unfinished = whole
    for run_dir in reversed(run_dirs):
        fallback = _run_started(run_dir)
        if since is not None and fallback and _newest(run_dir, stream) < since:
            return  # this run (and every older one) ended before `since`
        for log_path in _rotations(run_dir, stream):
            times = _Times(index_path(log_path), fallback)
            unfinished = skip_unfinished and not _ends_a_line(log_path)
            skip_unfinished = False
            try:
                for offset, raw in lines_backward(log_path, left):
                    if unfinished:
                        unfinished = False
                        continue
                    when = times.at(offset)
                    if since is not None and when < since:
                        return
                    line = LogLine(when, name, stream, _decode(raw))
                    if accept(line):
                        yield line
            finally:
                times.close()
            if left[0] <= 0:
                return


def _ends_a_line(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return True
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"
    except OSError:
        return True


def _newest(run_dir: Path, stream: str) -> float:
    try:
        return (run_dir / f"{stream}.log").stat().st_mtime
    except OSError:
        return float("inf")


def _decode(raw: bytes) -> str:
    text = raw[: MAX_LINE * 4].decode("utf-8", "replace").rstrip("\r")
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…"


def merged(
    sources: Iterable[Iterator[LogLine]], lines: int
) -> list[LogLine]:
    """The newest `lines` lines of all sources (each newest first), oldest first."""
    if lines <= 0:
        return []
    newest_first = heapq.merge(*sources, key=lambda line: -line.time)
    picked = []
    for line in newest_first:
        picked.append(line)
        if len(picked) >= lines:
            break
    picked.reverse()
    return picked


def line_filter(grep: re.Pattern[str] | None, streams: frozenset[str] = frozenset(STREAMS)) -> LineFilter:
    """What the merged view keeps: lines of `streams` that `grep` finds something in."""
    if grep is None:
        return lambda line: line.stream in streams
    search = grep.search
    return lambda line: line.stream in streams and search(line.text) is not None
