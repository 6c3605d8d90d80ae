"""What bench_memory, bench_scale and bench_log_throughput share: which pmtop to run, a config of N
sleepers, and a daemon's children as /proc tells them (read directly: these run inside timed loops,
where psutil's per-call overhead would be measured too)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def pmtop_command() -> list[str]:
    """`$PMTOP_EXE` (another build, to compare), else the pmtop beside this interpreter."""
    if os.environ.get("PMTOP_EXE"):
        return [os.environ["PMTOP_EXE"]]
    here = Path(sys.executable).parent / "pmtop"
    return [str(here)] if here.exists() else [sys.executable, "-m", "pmtop.cli.main"]


def write_config(path: Path, n: int) -> None:
    """A pmtop.toml of instance `bench` with `n` processes running `sleep 600`."""
    lines = ["[daemon]", 'instance = "bench"', 'host = "127.0.0.1"', 'port = "auto"', "",
             "[defaults]", 'restart = "on-failure"', 'stop_timeout = "5s"', ""]
    for i in range(n):
        lines += [f"[process.p{i:04d}]", 'command = ["sleep", "600"]', ""]
    path.write_text("\n".join(lines))


def children(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                pids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return pids


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""
