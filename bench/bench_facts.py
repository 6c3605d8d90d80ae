#!/usr/bin/env python3
"""What live process facts cost: `FactsSampler` over 200 `sleep 600` processes.

    python bench/bench_facts.py [--count 200] [--duration 10] [--fds 0]

Run it with the interpreter pmtop is installed into (e.g. /work/venv/bin/python). It prints:

1. The cost of each part of one sample, in CPU ms per sample (mean over repetitions), next to the
   alternatives that were measured to choose them: the tree through /proc/<pid>/task/*/children versus
   one pass over all of /proc/*/stat, psutil's `process_iter` and `children(recursive=True)` per root;
   listeners from netlink sock_diag versus /proc/net/tcp{,6}; the fd walk with and without its cache.
2. The sampler as the supervisor runs it: `FactsSampler.watching()` at 1 Hz for `--duration` seconds,
   as this process's CPU time delta (all threads, so the worker thread is included) over wall time,
   for each source of the process table. The psutil one is what macOS uses; on Linux its ports come from
   psutil's `net_connections`, which re-reads /proc/net/tcp for every process, so with `--fds` (a
   listener in every tree) it is far dearer here than on macOS, where psutil asks the kernel per fd.

`--fds N` gives every sleeper N extra inherited fds, one of them a listening socket, so that the fd walk
has realistic work (a server holds tens of fds). Every process is started here with its own session and
killed by PID (psutil checks the create time) in `finally`, also on Ctrl-C. Nothing is killed by name.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping

import psutil

from pmtop.core.system import facts
from pmtop.core.system.facts import Facts, FactsSampler, _Reader

TARGET_PCT = 3.0


def cpu_ms(fn: Callable[[], object], reps: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - start) / reps * 1000


def breakdown(roots: Mapping[str, int], reps: int) -> None:
    pids = list(roots.values())
    print(f"one sample, CPU ms ({len(pids)} roots, {len(os.listdir('/proc'))} entries in /proc):")
    rows: list[tuple[str, float]] = []
    if facts.HAS_PROC:
        rows.append(("tree+cpu+rss: task/*/children walk (chosen)", cpu_ms(lambda: facts._scan_children(pids), reps)))
        rows.append(("tree+cpu+rss: all of /proc/*/stat (fallback)", cpu_ms(lambda: facts._scan_all(pids), reps)))
    rows.append(("tree+cpu+rss: psutil.process_iter (macOS path)", cpu_ms(lambda: facts._scan_psutil(pids), reps)))
    rows.append((
        "tree only: psutil children(recursive=True) per root",
        cpu_ms(lambda: [psutil.Process(p).children(recursive=True) for p in pids], max(1, reps // 10)),
    ))
    if facts.HAS_PROC:
        rows.append(("listeners: netlink sock_diag (chosen)", cpu_ms(facts._netlink_listeners, reps)))
        rows.append(("listeners: /proc/net/tcp + tcp6 (fallback)", cpu_ms(facts._proc_net_listeners, reps)))
        listening = facts._proc_net_listeners() or {0: 0}
        rows.append(("fd walk of every tree PID", cpu_ms(lambda: [facts._held_listeners(p, listening) for p in pids], reps)))
        warm = _Reader()
        rows.append(("whole sample, fds cached (steady state)", cpu_ms(lambda: warm.sample(roots), reps)))
        uncached = _Reader()
        uncached._count = -1  # with FULL_WALK_EVERY = 10, force a full fd walk on every sample
        rows.append(("whole sample, fds walked every time", cpu_ms(lambda: _full(uncached, roots), reps)))
    cold = _Reader("psutil", netlink=False)
    rows.append(("whole sample, psutil path (ports: see below)", cpu_ms(lambda: cold.sample(roots), max(1, reps // 10))))
    for label, ms in rows:
        print(f"  {label:<55} {ms:9.2f}")


def _full(reader: _Reader, roots: Mapping[str, int]) -> None:
    reader._listening = frozenset()  # as if every listener were new
    reader.sample(roots)


async def sampler_cost(roots: Mapping[str, int], duration: float, *, source: facts.Source) -> tuple[float, int, int]:
    """(% of one core, samples, reports) for the sampler at 1 Hz over `duration` seconds."""
    reports = samples = 0

    def count_roots() -> Mapping[str, int]:
        nonlocal samples
        samples += 1
        return roots

    def on_sample(changed: dict[str, Facts]) -> None:
        nonlocal reports
        reports += len(changed)

    sampler = FactsSampler(count_roots, on_sample, interval=1.0)
    sampler._reader = _Reader(source, netlink=source != "psutil")
    wall, cpu = time.perf_counter(), time.process_time()
    async with sampler.watching():
        await asyncio.sleep(duration)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / wall * 100, samples // 2, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--fds", type=int, default=0)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()

    extra: list[int] = []
    listener = None
    if args.fds:
        listener = socket.create_server(("127.0.0.1", 0))
        extra = [listener.fileno()] + [os.open(os.devnull, os.O_RDONLY) for _ in range(args.fds - 1)]
    procs: list[psutil.Process] = []
    try:
        for _ in range(args.count):
            popen = subprocess.Popen(["sleep", "600"], start_new_session=True, pass_fds=extra)
            procs.append(psutil.Process(popen.pid))
        roots = {f"p{i:03d}": p.pid for i, p in enumerate(procs)}
        breakdown(roots, args.reps)
        print(f"\nFactsSampler at 1 Hz for {args.duration:g} s, CPU of this process / wall (target < {TARGET_PCT} %):")
        paths: list[tuple[str, facts.Source]] = [("psutil (macOS path)", "psutil")]
        if facts.HAS_PROC:
            paths[:0] = [("linux, children walk", "children"), ("linux, all of /proc", "all")]
        for label, source in paths:
            pct, samples, reports = asyncio.run(sampler_cost(roots, args.duration, source=source))
            print(f"  {label:<26} {pct:6.2f} %   ({samples} samples, {reports} facts reported)")
    finally:
        for proc in procs:
            try:
                proc.kill()
                proc.wait(5)
            except psutil.Error:
                pass
        for fd in extra[1:]:
            os.close(fd)
        if listener is not None:
            listener.close()


if __name__ == "__main__":
    main()
