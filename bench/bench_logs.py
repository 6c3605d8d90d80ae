"""How long reading the end of a big log takes: `pmtop logs NAME -n 200` on a 100 MB stdout.log.

    python bench/bench_logs.py

Prints figures; asserts nothing. The log is made in a temporary folder and removed afterwards.
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


if __name__ == "__main__":
    sys.exit(main())
