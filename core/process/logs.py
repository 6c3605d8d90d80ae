"""Per-run log files: capped, rotated, pruned, and read from the end.

Children write into pipes that the supervisor drains into `RotatingFile`s, so no chatty process can
fill the disk: each stream is capped at `max_bytes` with `backups` rotated files, and only the newest
`keep_runs` run folders of a process are kept. Layout (SPEC §3):
`<log dir>/<process>/<YYYYmmdd_HHMMSS>/stdout.log` and `stderr.log`.

The files hold exactly what the process wrote. When each piece was written goes into a small index
beside each file (`stdout.times`, rotated with it; see `timeline.py`), which is how the merged view of
every process's output (SPEC §11) knows each line's time without touching the output itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from ..files import PRIVATE_DIR, PRIVATE_FILE, private_dir
from ..model import STREAMS, LogLine, LogSpec
from .timeline import TimeIndex, index_path

_READ_CHUNK = 65536
BIG_PIPE = 262144
"""Pipe size (and read size) for a process whose output piles up in its 64 KiB pipe (see `PipeDrain`)."""
_TAIL_LINE_LIMIT = 400
MAX_LINE = 16_384
"""Characters of one line handed to a reader; longer lines are shortened (the file keeps them whole)."""
TAIL_MAX_BYTES = 8 * 1024 * 1024
"""The most `tail_lines` reads from the end of a file."""


class RotatingFile:
    """An append-only file that rotates to `name.1`, `name.2`, ... when it would pass `max_bytes`,
    at the end of a line when the chunk that fills it has one (so no line is cut in two files).

    A full or read-only disk is an `OSError` from `write`, never a broken object: a file that could
    not be opened (or reopened after a rotation) is opened again by the next `write`, so logging
    resumes on its own once the disk has room again.

    With `times`, each write is also stamped in that index (rotated along with the file).
    """

    def __init__(self, path: Path, max_bytes: int, backups: int, times: TimeIndex | None = None) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = backups
        self.times = times
        self._fd = -1
        self._size = 0
        self._full = False
        """Ended early at a line's end: the next write goes to a fresh file."""
        self.at_line_start = True
        """The file ends with a newline (or is empty): a note can start a line of its own."""
        with contextlib.suppress(OSError):  # the first write says it (see PipeDrain)
            self._open(os.O_APPEND)

    def _open(self, mode: int) -> None:
        if not self.path.parent.is_dir():
            private_dir(self.path.parent)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | mode | os.O_CLOEXEC, PRIVATE_FILE)
        self._size = os.fstat(self._fd).st_size
        self._full = False
        if self._size == 0:
            self.at_line_start = True

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            self._open(os.O_APPEND)
        view = memoryview(data)
        times = self.times
        now = time.time() if times is not None else 0.0
        while view:
            if self._size >= self.max_bytes or self._full:
                self._rotate()
            room = self.max_bytes - self._size
            if times is not None:
                times.mark(self._size, now)
            chunk = view[:room]
            if len(view) > room:  # the file fills up here: end it at the end of a line, if there is one
                cut = bytes(chunk).rfind(b"\n") + 1
                if cut:
                    chunk = view[:cut]
                    self._full = True
            written = os.write(self._fd, chunk)
            self._size += written
            if written:
                self.at_line_start = chunk[written - 1] == 0x0A
            view = view[written:]

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        if self.times is not None:
            self.times.rotate(self.backups)
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            self._open(os.O_APPEND)
        else:
            self._open(os.O_TRUNC)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.times is not None:
            self.times.close()


class TailBuffer:
    """The last few lines of a stream, kept in memory for the run history (SPEC §3)."""

    __slots__ = ("_keep", "_lines", "_partial")

    def __init__(self, lines: int = 20) -> None:
        self._keep = max(1, lines)
        self._lines: list[str] = []  # one per run of every process: a list, not a 600-byte deque
        self._partial = b""

    def feed(self, data: bytes) -> None:
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()[-4096:]
        self._lines.extend(
            part[:_TAIL_LINE_LIMIT].decode("utf-8", "replace").rstrip("\r") for part in parts[-self._keep:]
        )
        del self._lines[:-self._keep]

    def lines(self) -> tuple[str, ...]:
        tail = list(self._lines)
        if self._partial:
            tail.append(self._partial[:_TAIL_LINE_LIMIT].decode("utf-8", "replace"))
        return tuple(tail[-self._keep:])


Trouble = Callable[[str | None, int], None]
"""Told `(problem, 0)` once when a stream's output can no longer be saved, and `(None, lost)` once
it is saved again, with the number of bytes that were lost in between."""
RETRY_AFTER = 1.0
"""Seconds between two tries of a log file that failed (full or read-only disk)."""


class PipeDrain:
    """Drains one child pipe into a `RotatingFile` from the event loop, until EOF.

    The pipe is drained whatever happens to the file: when the disk is full or read-only, the output
    is counted and dropped (a child must never block on a full pipe because of the supervisor's
    disk), the trouble is said once, writing is tried again at most once a second, and when it works
    the file gets one line saying how much was lost.

    A pipe holds 64 KiB. A process that fills most of it (a read of over 32 KiB: its writes pile up)
    gets a pipe of `BIG_PIPE` and reads of that size, once: fewer wake-ups per megabyte for a chatty
    process, nothing for quiet ones (a pipe's pages exist only while they hold data; the kernel may
    refuse over the user's pipe quota, which is fine).
    """

    __slots__ = ("_fd", "_sink", "_loop", "_tail", "_on_data", "_on_trouble", "_trouble", "_lost", "_lost_ends_line", "_retry_at",
                 "_chunk", "_grown", "closed")

    def __init__(
        self,
        fd: int,
        sink: RotatingFile,
        loop: asyncio.AbstractEventLoop,
        tail: TailBuffer | None = None,
        on_data: Callable[[bytes], None] | None = None,
        on_trouble: Trouble | None = None,
    ) -> None:
        self._fd = fd
        self._sink = sink
        self._loop = loop
        self._tail = tail
        self._on_data = on_data
        self._on_trouble = on_trouble
        self._trouble: str | None = None
        self._lost = 0
        self._lost_ends_line = True
        self._retry_at = 0.0
        self._chunk = _READ_CHUNK
        self._grown = False
        self.closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, self._chunk)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if not self._grown and len(data) > _READ_CHUNK // 2:  # writes pile up: a chatty process
                self._grow()
            self._save(data)
            if self._tail is not None:
                self._tail.feed(data)
            if self._on_data is not None:
                self._on_data(data)
            return
        self.close()

    def _grow(self) -> None:
        self._grown = True  # asked once, granted or not
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, BIG_PIPE)
        except (OSError, AttributeError):  # over the user's pipe quota, or not Linux: stay small
            return
        self._chunk = BIG_PIPE

    def _save(self, data: bytes) -> None:
        if self._trouble is not None and self._loop.time() < self._retry_at:
            self._drop(data)
            return
        if self._trouble is not None and not self._lost_ends_line:
            # The rest of a line whose start was lost goes too: the log resumes at a line's start.
            end = data.find(b"\n")
            if end < 0:
                self._drop(data)
                return
            self._lost += end + 1
            data = data[end + 1:]
        try:
            if self._trouble is not None:
                cut = b"" if self._sink.at_line_start else b"\n"
                self._sink.write(cut + f"[pmtop] {self._lost} bytes of output lost: {self._trouble}\n".encode())
            self._sink.write(data)
        except OSError as exc:
            self._drop(data)
            self._retry_at = self._loop.time() + RETRY_AFTER
            if self._trouble is None:
                self._trouble = f"{exc.strerror or exc} ({self._sink.path.parent})"
                if self._on_trouble is not None:
                    self._on_trouble(self._trouble, 0)
            return
        if self._trouble is not None:
            lost, self._trouble, self._lost = self._lost, None, 0
            if self._on_trouble is not None:
                self._on_trouble(None, lost)

    def _drop(self, data: bytes) -> None:
        """Output that cannot be saved: counted (for the note that says so), and where it ended."""
        if data:
            self._lost += len(data)
            self._lost_ends_line = data.endswith(b"\n")

    def flush_times(self) -> None:
        if self._sink.times is not None:
            self._sink.times.flush()

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._sink.close()
        if not self.closed.done():
            self.closed.set_result(None)


class RunLogs:
    """The two pipes and files of one run.

    The child gets the write ends as stdout and stderr, and also inherits the read ends ("keeper"
    fds, the same numbers as ours). It never reads them: they only keep each pipe open for reading, so
    that if this supervisor dies the child's writes do not fail with EPIPE; they block once the pipe
    buffer is full, until the next supervisor reopens the pipe through `/proc/<pid>/fd/<keeper>` and
    drains it again (`reattach`).
    """

    def __init__(self, run_dir: Path, drains: dict[str, PipeDrain], stderr_tail: TailBuffer) -> None:
        self.run_dir = run_dir
        self.stderr_tail = stderr_tail
        self.child_fds: list[int] = []
        """Our copies of the write ends the child got as its stdout and stderr, held until the run has
        ended (`close_child_ends`): so its death is one wake-up for the supervisor (its pidfd), not
        three (each pipe's end of file first, while the kernel is still tearing the process down),
        and the end of its output is read after the restart, not before it."""
        self.keeper_fds: dict[str, int] = {}
        self.pipe_inodes: dict[str, int] = {}
        self._drains = drains
        self._undrained: dict[str, int] = {}
        """Our read ends of a new run's pipes until `attach` drains them (the pipes buffer meanwhile)."""

    @classmethod
    def open_pipes(cls, run_dir: Path) -> RunLogs:
        """The two pipes of a new run, not drained yet: all that its child needs before the exec.

        `run_dir` is only named here (the child's environment carries the name, see `system.strays`);
        the folder, its log files and their time indexes are made after the exec (`attach`). On the
        crash-to-restart path the new program so never waits for a mkdir or a file open, and what it
        writes meanwhile waits in the pipe, not lost.
        """
        run_logs = cls(run_dir, {}, TailBuffer())
        for stream in STREAMS:
            read_fd, write_fd = os.pipe()
            run_logs.keeper_fds[stream] = read_fd
            run_logs.pipe_inodes[stream] = os.fstat(read_fd).st_ino
            run_logs._undrained[stream] = read_fd
            run_logs.child_fds.append(write_fd)
        return run_logs

    def attach(
        self,
        spec: LogSpec,
        loop: asyncio.AbstractEventLoop,
        on_output: Callable[[str, bytes], None] | None = None,
        on_trouble: Callable[[str, str | None, int], None] | None = None,
    ) -> None:
        """Make the run's folder and drain the pipes into its files. A folder that cannot be made (full
        or read-only disk) is no error here: the files say so at their first write, and try again."""
        make_run_dir(self.run_dir)
        for stream, fd in list(self._undrained.items()):
            self._drains[stream] = _drain(self.run_dir, stream, spec, loop, fd, self.stderr_tail, on_output, on_trouble)
            del self._undrained[stream]

    @classmethod
    def create(
        cls,
        run_dir: Path,
        spec: LogSpec,
        loop: asyncio.AbstractEventLoop,
        on_output: Callable[[str, bytes], None] | None = None,
        on_trouble: Callable[[str, str | None, int], None] | None = None,
    ) -> RunLogs:
        """Pipes drained into `run_dir` at once (`open_pipes` then `attach`)."""
        run_logs = cls.open_pipes(run_dir)
        run_logs.attach(spec, loop, on_output, on_trouble)
        return run_logs

    @classmethod
    def reattach(
        cls,
        run_dir: Path,
        spec: LogSpec,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        keeper_fds: dict[str, int],
        pipe_inodes: dict[str, int],
        on_output: Callable[[str, bytes], None] | None = None,
        on_trouble: Callable[[str, str | None, int], None] | None = None,
    ) -> RunLogs:
        """Drain an adopted child's pipes again, appending to its run's files.

        A stream whose pipe cannot be reopened (no /proc, the child closed its keeper, the inode
        differs) is simply not captured; the process itself is never disturbed.
        """
        tail = TailBuffer()
        drains: dict[str, PipeDrain] = {}
        for stream in STREAMS:
            fd = _reopen_pipe(pid, keeper_fds.get(stream), pipe_inodes.get(stream))
            if fd is not None:
                drains[stream] = _drain(run_dir, stream, spec, loop, fd, tail, on_output, on_trouble)
        run_logs = cls(run_dir, drains, tail)
        run_logs.keeper_fds = dict(keeper_fds)
        run_logs.pipe_inodes = dict(pipe_inodes)
        return run_logs

    def close_child_ends(self) -> None:
        """Once the run has ended: each pipe reaches its end of file when the last writer left
        (the child, or a descendant that kept its stdout)."""
        for fd in self.child_fds:
            os.close(fd)
        self.child_fds = []

    async def drained(self, timeout: float) -> None:
        """Wait (bounded) until every pipe reached EOF, i.e. everything written is on disk."""
        pending = [d.closed for d in self._drains.values() if not d.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def close(self) -> None:
        self.close_child_ends()
        undrained, self._undrained = self._undrained, {}
        for fd in undrained.values():
            os.close(fd)
        for drain in self._drains.values():
            drain.close()

    def flush_times(self) -> None:
        """Write out the time stamps still held in memory (before the files are read)."""
        for drain in self._drains.values():
            drain.flush_times()


def _drain(
    run_dir: Path,
    stream: str,
    spec: LogSpec,
    loop: asyncio.AbstractEventLoop,
    fd: int,
    tail: TailBuffer,
    on_output: Callable[[str, bytes], None] | None,
    on_trouble: Callable[[str, str | None, int], None] | None = None,
) -> PipeDrain:
    log_path = run_dir / f"{stream}.log"
    sink = RotatingFile(log_path, spec.max_bytes, spec.backups, TimeIndex(index_path(log_path), loop))
    on_data = functools.partial(on_output, stream) if on_output is not None else None
    trouble = functools.partial(on_trouble, stream) if on_trouble is not None else None
    return PipeDrain(fd, sink, loop, tail if stream == "stderr" else None, on_data, trouble)


def _reopen_pipe(pid: int, keeper_fd: int | None, inode: int | None) -> int | None:
    if keeper_fd is None or inode is None:
        return None
    try:
        fd = os.open(f"/proc/{pid}/fd/{keeper_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if os.fstat(fd).st_ino != inode:
        os.close(fd)
        return None
    return fd


def new_run_dir(process_dir: Path, previous: Path | None = None, now: float | None = None) -> Path:
    """A fresh `<YYYYmmdd_HHMMSS>` folder; later runs within the same second get `-2`, `-3`, ...

    The suffix always grows past the ones already used this second (even pruned ones' successors),
    so sorting the names sorts the runs by time. `previous` (the process's last run folder) spares a
    look at the folder on a restart, which is on the crash-to-restart path.
    """
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
    try:
        return _make_run_dir(process_dir, stamp, previous)
    except OSError:  # a full or read-only disk: the run goes on, its log files try again later
        return process_dir / stamp


def next_run_dir(process_dir: Path, previous: Path | None = None, now: float | None = None) -> Path:
    """The next run's folder, named but not made when that takes no look at the disk (see `make_run_dir`).

    After a run of this supervisor (`previous`) the name follows from the previous one: the same second
    gets the next suffix, a later second its plain stamp (no folder of that second can exist yet: only
    this supervisor makes this process's folders, in time order). Otherwise (the first run, a clock
    that went back) the folder is made now, as `new_run_dir` does.
    """
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
    # (strings, not `previous.parent == process_dir`: this is on the crash-to-restart path, and both
    # paths' strings are made already)
    if previous is not None and os.path.dirname(previous) == os.fspath(process_dir):
        last_stamp, n = _run_sort_key(previous)
        if last_stamp == stamp:
            return process_dir / f"{stamp}-{n + 1}"
        if last_stamp < stamp:
            return process_dir / stamp
    return new_run_dir(process_dir, previous, now)


def make_run_dir(run_dir: Path) -> None:
    """Make a folder named by `next_run_dir` (nothing if it exists); a full or read-only disk is left
    for the log files to find and say (they try again)."""
    try:
        run_dir.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        pass
    except FileNotFoundError:  # the process folder is new, or was removed behind our back
        with contextlib.suppress(OSError):
            private_dir(run_dir.parent)
            run_dir.mkdir(mode=PRIVATE_DIR)
    except OSError:
        pass


def _make_run_dir(process_dir: Path, stamp: str, previous: Path | None) -> Path:
    if previous is not None and previous.parent == process_dir and previous.name.startswith(stamp):
        n = _run_sort_key(previous)[1] + 1
    else:
        private_dir(process_dir)
        used = [_run_sort_key(p)[1] for p in process_dir.glob(f"{stamp}*")]
        n = max(used, default=0) + 1
    while True:
        candidate = process_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir(mode=PRIVATE_DIR)  # the mode is all it takes: the umask can only remove bits
            return candidate
        except FileExistsError:
            n += 1
        except FileNotFoundError:  # the process folder was removed behind our back
            private_dir(process_dir)


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


def remove_run(run_dir: Path) -> None:
    """Remove a run's folder and its logs (gone already: nothing to do)."""
    shutil.rmtree(run_dir, ignore_errors=True)


def tail_lines(path: Path, lines: int, *, max_bytes: int = TAIL_MAX_BYTES) -> list[str]:
    """The last `lines` lines of a file, read backwards from its end (never the whole file).

    At most `max_bytes` are read, so a 10 MB line costs no more than that; a line cut by that limit
    (or longer than `MAX_LINE`) comes back shortened, marked with `…`. Bytes that are not UTF-8 are
    replaced, never raised on.
    """
    if lines <= 0:
        return []
    chunks: list[bytes] = []
    newlines = read = 0
    try:
        with open(path, "rb") as f:
            pos = f.seek(0, os.SEEK_END)
            while pos > 0 and newlines <= lines and read < max_bytes:
                step = min(_READ_CHUNK, pos, max_bytes - read)
                pos -= step
                f.seek(pos)
                chunk = f.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
                read += step
    except (FileNotFoundError, IsADirectoryError):
        return []
    buf = b"".join(reversed(chunks))
    if buf.endswith(b"\n"):
        buf = buf[:-1]
    if not buf:
        return []
    parts = buf.split(b"\n")
    cut_first = pos > 0  # the first part may be the end of a longer line
    selected = parts[-lines:]
    out = [decode_line(part) for part in selected]
    if cut_first and len(selected) == len(parts):
        out[0] = "…" + out[0]
    return out


def unfinished_line(path: Path) -> bytes:
    """The bytes after the file's last newline: a line still being written (what a follower that starts
    now must put before the rest of it, when it arrives)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - MAX_LINE * 4))
            tail = f.read()
    except OSError:
        return b""
    return tail.rpartition(b"\n")[2]


def decode_line(raw: bytes) -> str:
    """Text of one log line: invalid UTF-8 replaced, a trailing CR dropped, capped at `MAX_LINE`."""
    text = raw[: MAX_LINE * 4].decode("utf-8", "replace").rstrip("\r")
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…"


class LineSplitter:
    """Turns byte chunks into text lines; a partial line waits for its newline, up to `MAX_LINE`."""

    def __init__(self, partial: bytes = b"") -> None:
        self._partial = partial

    def feed(self, data: bytes) -> list[str]:
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()
        if len(self._partial) > MAX_LINE * 4:  # a huge line without newline: hand it out in pieces
            parts.append(self._partial)
            self._partial = b""
        return [decode_line(p) for p in parts]


T = TypeVar("T")


def _skipped_line(count: int) -> str:
    return f"… {count} lines skipped"


class Follower(Generic[T]):
    """One reader of a live stream: an async iterator of lines with a bounded backlog.

    A reader that falls more than `max_pending` lines behind loses the oldest ones and is told so by
    a line `… N lines skipped` (`skipped_line`); the process writing them is never slowed down.
    """

    def __init__(self, initial: list[T], max_pending: int = 10_000) -> None:
        self._lines: deque[T] = deque(initial)
        self._max_pending = max_pending
        self._skipped = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    def push(self, lines: list[T]) -> None:
        self._lines.extend(lines)
        overflow = len(self._lines) - self._max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._lines.popleft()
            self._skipped += overflow
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def skipped_line(self, count: int) -> T:
        raise NotImplementedError

    def __aiter__(self) -> Follower[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._skipped:
                skipped, self._skipped = self._skipped, 0
                return self.skipped_line(skipped)
            if self._lines:
                return self._lines.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()


class LogFollower(Follower[str]):
    """A follower of one stream of one process."""

    def skipped_line(self, count: int) -> str:
        return _skipped_line(count)


class MergedFollower(Follower[LogLine]):
    """A follower of every process's output at once (or of some: `names`), each line with its time."""

    def __init__(self, initial: list[LogLine], names: frozenset[str] | None, accept: Callable[[LogLine], bool]) -> None:
        super().__init__(initial)
        self.names = names
        self.accept = accept

    def skipped_line(self, count: int) -> LogLine:
        return LogLine(time.time(), "", "", _skipped_line(count))


class OutputHub:
    """Live output of every process, fanned out to followers; costs a dict lookup when nobody follows.

    Every run's pipes feed it, so a follower keeps receiving across rotations and restarts.
    """

    def __init__(self) -> None:
        self._followers: dict[tuple[str, str], set[LogFollower]] = {}
        self._merged: set[MergedFollower] = set()
        self._splitters: dict[tuple[str, str], LineSplitter] = {}

    def feed(self, name: str, stream: str, data: bytes) -> None:
        followers = self._followers.get((name, stream))
        if not followers and not self._merged:
            return
        lines = self._splitters.setdefault((name, stream), LineSplitter()).feed(data)
        if not lines:
            return
        for follower in followers or ():
            follower.push(lines)
        if self._merged:
            now = time.time()
            stamped = [LogLine(now, name, stream, line) for line in lines]
            for merged in self._merged:
                if merged.names is None or name in merged.names:
                    kept = [line for line in stamped if merged.accept(line)]
                    if kept:
                        merged.push(kept)

    def _seed(self, unfinished: dict[tuple[str, str], bytes]) -> None:
        """A follower starts while lines are half written: the first piece that arrives must be joined
        to what is already on disk (the splitter of a stream someone follows already has it)."""
        for key, partial in unfinished.items():
            if key not in self._splitters:
                self._splitters[key] = LineSplitter(partial)

    @contextlib.contextmanager
    def follow_merged(self, initial: list[LogLine], names: frozenset[str] | None,
                      accept: Callable[[LogLine], bool],
                      unfinished: dict[tuple[str, str], bytes] | None = None) -> Iterator[MergedFollower]:
        follower = MergedFollower(initial, names, accept)
        self._seed(unfinished or {})
        self._merged.add(follower)
        try:
            yield follower
        finally:
            self._merged.discard(follower)
            if not self._merged:
                live = {key for key, followers in self._followers.items() if followers}
                for key in list(self._splitters):
                    if key not in live:
                        del self._splitters[key]
            follower.close()

    @contextlib.contextmanager
    def follow(self, name: str, stream: str, initial: list[str], unfinished: bytes = b"") -> Iterator[LogFollower]:
        follower = LogFollower(initial)
        key = (name, stream)
        self._seed({key: unfinished})
        self._followers.setdefault(key, set()).add(follower)
        try:
            yield follower
        finally:
            followers = self._followers.get(key)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[key]
                    if not self._merged:
                        self._splitters.pop(key, None)
            follower.close()

    def close(self, name: str | None = None) -> None:
        """End the followers of one process (removed) or of all (shutdown)."""
        for (proc, _), followers in list(self._followers.items()):
            if name is None or proc == name:
                for follower in followers:
                    follower.close()
        if name is None:
            for merged in self._merged:
                merged.close()
