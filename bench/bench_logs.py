"""Logs: reading the end of a big log, and (`--drain`) how fast pmtop takes a process's output in.

    python bench/bench_logs.py            `pmtop logs NAME -n 200` on a 100 MB stdout.log
    python bench/bench_logs.py --drain    a process printing 100 MB, and one printing 200,000 flushed
                                          lines: seconds until all of it is on disk, with the time
                                          index of the merged view (SPEC §11) and without it

Prints figures; asserts nothing. Everything is made in temporary folders and removed afterwards.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from pmtop.core.process.logs import tail_lines

SIZE_MB = 100
RUNS = 20


def make_log(path: Path) -> int:
    line = b"2026-11-21 12:00:00.000 INFO worker handled a request in 3 ms, all is well\n"
    block = line * (1 << 14)
    with open(path, "wb") as f:
        while f.tell() < SIZE_MB * 1_000_000:
            f.write(block)
        return f.tell()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pmtop-bench-logs-") as folder:
        path = Path(folder) / "stdout.log"
        size = make_log(path)
        for lines in (200, 10_000):
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                got = tail_lines(path, lines)
                times.append(time.perf_counter() - start)
                assert len(got) == lines
            print(f"tail of {lines:>6} lines of a {size / 1e6:.0f} MB log: "
                  f"{statistics.median(times) * 1000:6.2f} ms (median of {RUNS}, warm page cache)")
    return 0


if __name__ == "__main__" and "--drain" not in sys.argv:
    sys.exit(main())


# ----------------------------------------------------------------------------- draining (SPEC §11)

DRAIN_RUNS = 11
BULK = "import sys\nblock = (b'x' * 79 + b'\\n') * 819\nfor _ in range({n}):\n    sys.stdout.buffer.write(block)\n"
LINES = "import sys\nfor i in range({n}):\n    print(f'line {{i:07d}} of a chatty process', flush=True)\n"


async def drain_time(code: str, expected: int, index: bool) -> float:
    """Seconds from start until everything the process wrote is in its log file (and stamped)."""
    import asyncio
    import os

    from pmtop.core.locations import instance_paths
    from pmtop.core.model import LogSpec, ProcessSpec, ProcessState, RestartPolicy, RestartSpec
    from pmtop.core.process import logs
    from pmtop.core.supervisor import Supervisor

    original = getattr(logs, "TimeIndex", None)  # (a pmtop before the index has none: that is "without")
    if not index and original is not None:
        logs.TimeIndex = lambda *args, **kwargs: None  # type: ignore[assignment,misc]
    try:
        spec = ProcessSpec("chatty", (sys.executable, "-c", code), restart=RestartSpec(policy=RestartPolicy.NO),
                           logs=LogSpec(max_bytes=1 << 30))
        sup = Supervisor([spec], paths=instance_paths("bench-logs"))
        try:
            async with sup.subscribe() as events:
                start = time.perf_counter()
                await sup.start("chatty")
                async for event in events:
                    if getattr(event, "state", None) in (ProcessState.STOPPED, ProcessState.FAILED):
                        break
            run = sup._runners["chatty"].run_dir  # (the private name: also there in a pmtop before the dev loop)
            assert run is not None
            while os.path.getsize(run / "stdout.log") < expected:
                await asyncio.sleep(0.001)
            return time.perf_counter() - start
        finally:
            await sup.shutdown()
    finally:
        if original is not None:
            logs.TimeIndex = original  # type: ignore[misc]


def drains() -> None:
    import asyncio
    import os

    with tempfile.TemporaryDirectory(prefix="pmtop-bench-drain-") as home:
        os.environ["PMTOP_HOME"] = home
        cases = [("100 MB in 64 KB writes", BULK.format(n=1600), 1600 * 819 * 80),
                 ("200,000 lines, each flushed", LINES.format(n=200_000), 200_000 * 33)]
        for what, code, size in cases:
            from pmtop.core.process import logs

            variants = (False, True) if hasattr(logs, "TimeIndex") else (False,)
            samples: dict[bool, list[float]] = {v: [] for v in variants}
            for _ in range(DRAIN_RUNS):  # interleaved, so that both see the same load
                for index in variants:
                    samples[index].append(asyncio.run(drain_time(code, size, index)))
            figures = {index: statistics.median(times) for index, times in samples.items()}
            mb = size / 1e6
            line = f"{what:<30} without the time index {figures[False]:6.3f} s ({mb / figures[False]:6.1f} MB/s)"
            if True in figures:
                line += (f", with it {figures[True]:6.3f} s ({mb / figures[True]:6.1f} MB/s): "
                         f"{100 * (figures[True] / figures[False] - 1):+.1f} %")
            print(line + f" (medians of {DRAIN_RUNS}, interleaved)")
            index_files = list(Path(home).rglob("stdout.times"))
            if index_files:
                biggest = max(p.stat().st_size for p in index_files)
                print(f"{'':<30} its stdout.times: {biggest / 1024:.1f} KB for {mb:.0f} MB of output")


if __name__ == "__main__" and "--drain" in sys.argv:
    drains()
