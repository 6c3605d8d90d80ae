"""Live facts of running processes: CPU %, RSS and listening TCP ports of each whole process tree.

Why it is built this way: facts cost system calls, so one `FactsSampler` samples every process at once, in
one worker-thread call per tick (1 Hz), from one asyncio task that exists only while someone watches. A
headless supervisor that nobody watches pays nothing. A process is measured as its tree (root PID plus all
descendants), since the work often runs under a shell, `npm` or a master; RSS is summed as top does.

Linux fast path (bench/bench_facts.py; CPU ms per sample for 200 roots on a machine of ~340 processes):
- Tree, CPU and RSS: `/proc/<pid>/stat` of our trees' PIDs only, found through
  `/proc/<pid>/task/<tid>/children` (2.6 ms; 0.25 ms for 20 roots): the cost follows our trees, not the
  machine. Kernels without those files get one pass over all of /proc (2 ms; ~6 µs per process on the
  machine). psutil's `children(recursive=True)` rescans /proc per call (550 ms); `process_iter`, 15 ms.
- Listeners: one netlink sock_diag dump that the kernel filters to LISTEN (0.04 ms), else
  `/proc/net/tcp{,6}` (3 ms even when empty: the kernel walks its whole connection hash), matched to
  processes by the `socket:[inode]` links in `/proc/<pid>/fd` (2 ms; 13 ms at 30 fds each). Those fds are
  read again only for a new PID, when a new listener appears anywhere, or every `FULL_WALK_EVERY` samples
  (which catches fds handed between processes).
Elsewhere (macOS): psutil's `process_iter`, and `net_connections` per process.

A process that vanishes mid-sample, a zombie, or one the OS will not describe is skipped or gets None;
sampling never raises for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from .ports import netlink_listeners as _netlink_listeners
from .ports import proc_net_listeners as _proc_net_listeners

log = logging.getLogger("pmtop.core.system.facts")

HAS_PROC: Final = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
FULL_WALK_EVERY: Final = 10
"""Every this many samples, every tree PID's fds are read again, even if nothing suggests a change."""

_CLK_TCK: Final = os.sysconf("SC_CLK_TCK") if HAS_PROC else 100
_PAGE: Final = os.sysconf("SC_PAGE_SIZE") if HAS_PROC else 4096
_PSUTIL_ATTRS: Final = ["ppid", "create_time", "cpu_times", "memory_info", "status"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What one process tree uses right now."""

    cpu_percent: float | None
    """Summed over the tree; 100 is one core fully busy (as in top). None until there are two samples."""
    memory_rss: int | None
    """Resident bytes, summed over the tree."""
    ports: tuple[int, ...] = ()
    """The TCP ports the tree listens on, IPv4 and IPv6, sorted and unique."""


class _Row(NamedTuple):
    """One process in one scan. With the PID, `start` identifies it: PIDs are reused."""

    ppid: int
    start: float
    cpu: float | None
    """User plus system CPU seconds."""
    rss: int | None
    zombie: bool


def _read(path: str, size: int = 4096) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _stat_row(pid: int) -> _Row | None:
    try:
        data = _read(f"/proc/{pid}/stat")
        f = data[data.rindex(b")") + 2 :].split()  # after comm, which may hold spaces and parentheses
        cpu = (int(f[11]) + int(f[12])) / _CLK_TCK
        return _Row(int(f[1]), int(f[19]) / _CLK_TCK, cpu, int(f[21]) * _PAGE, f[0] == b"Z")
    except (OSError, ValueError, IndexError):  # gone
        return None


def _scan_children(roots: Iterable[int]) -> dict[int, _Row]:
    """Our trees only, via /proc/<pid>/task/<tid>/children, so the cost follows our trees, not the machine."""
    rows: dict[int, _Row] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in rows or (row := _stat_row(pid)) is None:
            continue
        rows[pid] = row
        with suppress(OSError):  # gone since
            for tid in [] if row.zombie else os.listdir(f"/proc/{pid}/task"):
                # a child belongs to the thread that forked it
                todo.extend(map(int, _read(f"/proc/{pid}/task/{tid}/children", 65536).split()))
    return rows


def _scan_all(roots: Iterable[int]) -> dict[int, _Row]:
    """Every process on the machine: for kernels built without CONFIG_PROC_CHILDREN."""
    rows: dict[int, _Row] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (row := _stat_row(int(name))) is not None:
            rows[int(name)] = row
    return rows


def _scan_psutil(roots: Iterable[int]) -> dict[int, _Row]:
    import psutil  # not on Linux's fast path: there it would cost the daemon ~1 MB of RSS for nothing

    rows: dict[int, _Row] = {}
    for proc in psutil.process_iter(_PSUTIL_ATTRS, ad_value=None):
        info = proc.info
        if info["ppid"] is None or info["create_time"] is None:
            continue
        times, mem = info["cpu_times"], info["memory_info"]
        cpu = None if times is None else times.user + times.system
        rss = None if mem is None else int(mem.rss)
        zombie = info["status"] == psutil.STATUS_ZOMBIE
        rows[proc.pid] = _Row(int(info["ppid"]), float(info["create_time"]), cpu, rss, zombie)
    return rows


Source = Literal["children", "all", "psutil"]
_SCANS: Final[Mapping[Source, Callable[[Iterable[int]], dict[int, _Row]]]] = {
    "children": _scan_children, "all": _scan_all, "psutil": _scan_psutil,
}


def _default_source() -> Source:
    if not HAS_PROC:
        return "psutil"
    return "children" if os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children") else "all"


def _held_listeners(pid: int, listening: Mapping[int, int]) -> frozenset[int]:
    """The inodes among `listening` that `pid` has open. Empty if the process is gone or unreadable."""
    base, held = f"/proc/{pid}/fd", set()
    with suppress(OSError):
        for name in os.listdir(base):
            try:
                link = os.readlink(f"{base}/{name}")
            except OSError:  # closed since listdir
                continue
            if link.startswith("socket:[") and (inode := int(link[8:-1])) in listening:
                held.add(inode)
    return frozenset(held)


def _psutil_ports(pid: int) -> Iterable[int]:
    import psutil

    try:
        return [c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        return ()


def _tree(root: int, rows: Mapping[int, _Row], children: Mapping[int, list[int]]) -> list[int]:
    """`root` and its living descendants."""
    tree, todo, seen = [], [root], {root}
    while todo:
        pid = todo.pop()
        tree.append(pid)
        for child in children.get(pid, ()):
            if child not in seen and not rows[child].zombie:
                seen.add(child)
                todo.append(child)
    return tree


class _Scan(NamedTuple):
    monotonic: float
    rows: dict[int, _Row]


class _Reader:
    """The blocking half: one `sample` call per tick, in a worker thread. Keeps what deltas need."""

    def __init__(self, source: Source | None = None, *, netlink: bool = HAS_PROC) -> None:
        self.source: Source = source or _default_source()
        self.netlink = netlink
        """Cleared for good after the first netlink failure; /proc/net is used from then on."""
        self._lock = threading.Lock()  # sample_now() and the task may overlap
        self._prev: _Scan | None = None
        self._held: dict[tuple[int, float], frozenset[int]] = {}
        self._listening: frozenset[int] = frozenset()
        self._count = 0

    def forget(self) -> None:
        """Drop the CPU baseline, so that the next figures are not averaged over an idle gap."""
        self._prev = None

    def sample(self, roots: Mapping[str, int]) -> dict[str, Facts]:
        with self._lock:
            scan = _Scan(time.monotonic(), _SCANS[self.source](set(roots.values())))
            prev, self._prev = self._prev, scan
            rows = scan.rows
            children: defaultdict[int, list[int]] = defaultdict(list)
            for pid, row in rows.items():
                children[row.ppid].append(pid)
            trees = {
                name: _tree(root, rows, children)
                for name, root in roots.items()
                if root in rows and not rows[root].zombie
            }
            ports = self._ports(trees, rows)
            out: dict[str, Facts] = {}
            for name, tree in trees.items():
                rss = [r for p in tree if (r := rows[p].rss) is not None]
                cpu = _cpu(tree, scan, prev, complete=self.source != "children")
                out[name] = Facts(cpu, sum(rss) if rss else None, ports[name])
            return out

    def _ports(self, trees: Mapping[str, list[int]], rows: Mapping[int, _Row]) -> dict[str, tuple[int, ...]]:
        if self.source == "psutil":
            return {n: tuple(sorted({port for p in t for port in _psutil_ports(p)})) for n, t in trees.items()}
        listening = self._listeners()
        self._count += 1
        full = not listening.keys() <= self._listening or self._count % FULL_WALK_EVERY == 0
        self._listening = frozenset(listening)
        held: dict[tuple[int, float], frozenset[int]] = {}
        result: dict[str, tuple[int, ...]] = {}
        for name, tree in trees.items():
            found: set[int] = set()
            for pid in tree:
                key = (pid, rows[pid].start)
                inodes = None if full else self._held.get(key)
                if inodes is None:
                    inodes = _held_listeners(pid, listening) if listening else frozenset()
                held[key] = inodes
                found.update(listening[i] for i in inodes if i in listening)
            result[name] = tuple(sorted(found))
        self._held = held
        return result

    def _listeners(self) -> dict[int, int]:
        if self.netlink:
            try:
                return _netlink_listeners()
            except OSError as exc:
                log.debug("sock_diag unavailable (%s); reading /proc/net/tcp instead", exc)
                self.netlink = False
        return _proc_net_listeners()


def _cpu(tree: list[int], scan: _Scan, prev: _Scan | None, *, complete: bool) -> float | None:
    """CPU % of the tree since `prev`; None if no member has a baseline there.

    A PID that `prev` lacks was born since, and all its CPU time counts, if `prev` saw every process
    (`complete`) or at least this tree (same root). Otherwise it is an old process new to us: no baseline.
    """
    if prev is None or scan.monotonic <= prev.monotonic:
        return None
    root, old_root = scan.rows[tree[0]], prev.rows.get(tree[0])
    complete = complete or (old_root is not None and old_root.start == root.start)
    used: float | None = None
    for pid in tree:
        row, old = scan.rows[pid], prev.rows.get(pid)
        if row.cpu is None:
            continue
        if old is not None and old.start == row.start and old.cpu is not None:
            used = (used or 0.0) + max(0.0, row.cpu - old.cpu)
        elif old is not None or complete:  # a reused PID, or a PID born since `prev`
            used = (used or 0.0) + row.cpu
    return None if used is None else round(used / (scan.monotonic - prev.monotonic) * 100, 1)


class FactsSampler:
    """Samples every running process's facts at `interval` seconds, but only while watched.

    `roots()` is called on the event loop and returns name -> root PID for every running process.
    `on_sample(changed)` is called on the event loop with only the entries whose facts (or root PID)
    changed since the previous sample. A process that stopped is never reported: clearing its facts is
    the caller's job. When the last watcher leaves, the sampler forgets everything, so the next start
    reports every process again.
    """

    def __init__(
        self,
        roots: Callable[[], Mapping[str, int]],
        on_sample: Callable[[dict[str, Facts]], None],
        interval: float = 1.0,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self._roots = roots
        self._on_sample = on_sample
        self.interval = interval
        self._reader = _Reader()
        self.watchers = 0
        """How many `acquire()`s are not yet released. Read only."""
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, tuple[int, Facts]] = {}
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the sampling task exists and has not finished."""
        return self._task is not None and not self._task.done()

    def acquire(self) -> None:
        """Add a watcher. The first one starts the task, which samples at once. Call on the loop."""
        if self.watchers == 0 and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pmtop-facts")
        self.watchers += 1

    def release(self) -> None:
        """Remove a watcher. The last one cancels the task."""
        if self.watchers == 0:
            raise RuntimeError("FactsSampler.release() without acquire()")
        self.watchers -= 1
        if self.watchers == 0:
            self._stop()

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """`acquire()` for the duration of the block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    async def sample_now(self, roots: Mapping[str, int] | None = None) -> dict[str, Facts]:
        """Facts of `roots` (default: `roots()`) as of now, whether or not the task runs.

        RSS and ports are current. `cpu_percent` is the average since the previous sample, taken by
        the task or an earlier `sample_now`. It is None when there is no previous sample (nobody
        watching, no earlier call). Nothing is reported to `on_sample`.
        """
        wanted = dict(self._roots() if roots is None else roots)
        return await asyncio.to_thread(self._reader.sample, wanted)

    async def aclose(self) -> None:
        """Stop for good (shutdown), whatever the watcher count, and wait until the task has ended.

        Watchers still out may release as usual; `acquire()` starts nothing any more.
        """
        self._closed = True
        task = self._task
        self._stop()
        if task is not None:
            with suppress(asyncio.CancelledError):
                await task

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._last.clear()
        self._reader.forget()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                roots = dict(self._roots())
                facts = await asyncio.to_thread(self._reader.sample, roots)
                self._report(roots, facts)
            except Exception:
                log.exception("sampling process facts failed")
            await asyncio.sleep(max(0.0, began + self.interval - loop.time()))

    def _report(self, roots: Mapping[str, int], facts: Mapping[str, Facts]) -> None:
        now = self._roots()  # while we sampled, a process may have stopped or restarted: drop it
        current = {n: (roots[n], f) for n, f in facts.items() if now.get(n) == roots[n]}
        changed = {n: pf[1] for n, pf in current.items() if self._last.get(n) != pf}
        self._last = current
        if changed:
            self._on_sample(changed)
