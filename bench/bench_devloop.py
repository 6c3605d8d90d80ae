#!/usr/bin/env python3
"""What the dev loop costs an idle daemon: CPU with schedules, with a watch over 10,000 files, and without.

    python bench/bench_devloop.py [--seconds 30] [--files 10000] [--json FILE]

Each scenario is a real `pmtop --headless` (run with this interpreter) in a throwaway PMTOP_HOME, with
20 idle processes (`sleep 600`) and:

1. nothing else (the baseline: pmtop's promise is 0.00 % for an unwatched daemon);
2. five scheduled jobs (`every 1h`, `0 3 * * *`): timers only, so still nothing between their times;
3. one process watching a tree of `--files` files in 100 folders (`watch = { paths = ["tree/**"] }`):
   the one watchfiles watcher, whose thread looks for news every 100 ms.

After start-up settles (5 s), the daemon's own CPU time (all threads, from /proc/PID/task/*/schedstat,
nanoseconds) is read over `--seconds`, with its context switches (how often it woke up). Nothing is
asserted: the figures are printed, and on a machine shared with other work they are noisy (say so
when quoting them). Every process started is stopped by PID (the daemon is sent SIGTERM and waited
for; it stops its children).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETTLE = 5.0
PROCESSES = 20


def cpu_ns(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def wakeups(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith((b"voluntary_ctxt",
                                                                                    b"nonvoluntary_ctxt")))
        except (OSError, ValueError):
            pass
    return total


def config(extra: str) -> str:
    lines = ['[daemon]', 'instance = "bench-devloop"', 'port = "auto"', "", "[defaults]", 'stop_timeout = "5s"', ""]
    for i in range(PROCESSES):
        lines += [f"[process.idle{i:02d}]", 'command = ["sleep", "600"]', ""]
    return "\n".join(lines) + extra


def make_tree(root: Path, files: int) -> None:
    folders = 100
    for d in range(folders):
        folder = root / f"d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(files // folders):
            (folder / f"f{f:04d}.py").write_text("x = 1\n")


def measure(name: str, text: str, work: Path, seconds: float) -> dict[str, Any]:
    folder = work / name
    folder.mkdir()
    (folder / "pmtop.toml").write_text(text)
    if "tree/**" in text:
        make_tree(folder / "tree", ARGS.files)
    env = dict(os.environ, PMTOP_HOME=str(folder / "home"))
    env.pop("PMTOP_CONFIG", None)
    log = open(folder / "daemon.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pmtop.cli.main", "--headless", "--config", str(folder / "pmtop.toml")],
                            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not list((folder / "home" / "state").glob("*/daemon.json")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name}: the daemon did not start: {(folder / 'daemon.out').read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(SETTLE)
        c0, w0, t0 = cpu_ns(proc.pid), wakeups(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, w1, t1 = cpu_ns(proc.pid), wakeups(proc.pid), time.monotonic()
        threads = len(os.listdir(f"/proc/{proc.pid}/task"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    elapsed = t1 - t0
    return {"scenario": name, "seconds": round(elapsed, 1), "cpu_percent": 100 * (c1 - c0) / 1e9 / elapsed,
            "wakeups_per_s": (w1 - w0) / elapsed, "threads": threads}


ARGS = argparse.Namespace()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--only", metavar="NAME", help="one scenario: idle, schedules or watch (a pmtop before "
                        "the dev loop has only idle)")
    parser.parse_args(argv, namespace=ARGS)
    schedules = "".join(f'[process.job{i}]\ncommand = ["true"]\nschedule = "{rule}"\n\n'
                        for i, rule in enumerate(["every 1h", "0 3 * * *", "*/59 * * * *", "@weekly", "every 6h"]))
    watch = '[process.watched]\ncommand = ["sleep", "600"]\nwatch = { paths = ["tree/**"] }\n'
    scenarios = [("idle", config("")), ("schedules", config(schedules)), (f"watch-{ARGS.files}-files", config(watch))]
    if ARGS.only:
        scenarios = [s for s in scenarios if s[0].startswith(ARGS.only)]
    work = Path(tempfile.mkdtemp(prefix="pmtop-bench-devloop-"))
    results = []
    try:
        print(f"pmtop dev-loop idle cost: {PROCESSES} idle processes, {ARGS.seconds:g} s each, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
        for name, text in scenarios:
            result = measure(name, text, work, ARGS.seconds)
            results.append(result)
            print(f"  {name:<22} CPU {result['cpu_percent']:.3f} % of one core, "
                  f"{result['wakeups_per_s']:.1f} wake-ups/s, {result['threads']} threads", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"(load at the end {os.getloadavg()[0]:.2f}; figures on a shared machine are noisy)")
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
