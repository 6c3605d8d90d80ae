#!/usr/bin/env python3
"""1,000 processes against 200: cold start, `pmtop ps`, the daemon's memory, the dashboard's CPU.

    python bench/bench_scale.py [--quick] [--n 200,1000] [--json FILE]

Run it with the interpreter pmtop is installed into. Each figure is measured at every N and printed
side by side with the ratio to the first N. Timings on a shared 2-core machine are noisy: cold
starts and `pmtop ps` are medians of several runs, printed with their spread and the load average.

1. Cold start: the real `pmtop --headless --config FILE` with N `sleep` processes, from just before
   it is launched until all N children have exec'd (their cmdline reads `sleep 600`, polled every
   2 ms through /proc/<pid>/task/*/children), and until the API serves (`daemon.json` written).
2. `pmtop ps` against that daemon, as a whole process (interpreter start-up included).
3. The daemon's RSS once all N run and it settled (3 s), and what one process costs between the Ns.
4. The dashboard's CPU with N processes whose facts change every second (1 Hz), in a real terminal
   (bench_tui.py's child: a synthetic controller, every frame really rendered), and with nothing
   changing.

Safety: a throwaway PMTOP_HOME per daemon, `port = "auto"` on 127.0.0.1; every daemon is stopped
with SIGTERM and whatever is left is killed by PID (psutil, create-time checked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tui  # noqa: E402  (the dashboard's CPU bench, run here with each N)
from _daemon_proc import children, cmdline, pmtop_command, write_config  # noqa: E402

SETTLE_S = 3.0
POLL_S = 0.002
SLEEP_CMDLINE = b"sleep\x00600\x00"


class Daemon:
    def __init__(self, n: int, workdir: Path, index: int) -> None:
        self.n = n
        self.config = workdir / f"pmtop{n}.toml"
        if not self.config.exists():
            write_config(self.config, n)
        self.home = workdir / f"home{n}-{index}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
        self.env["PMTOP_HOME"] = str(self.home)
        self.out = open(workdir / f"daemon{n}-{index}.out", "wb")
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: list[psutil.Process] = []
        self.port = 0

    def cold_start(self) -> dict[str, float]:
        info = self.home / "state" / "bench" / "daemon.json"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([*pmtop_command(), "--headless", "--config", str(self.config)],
                                     env=self.env, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        execd: set[int] = set()
        all_execd = serving = None
        deadline = t0 + 120
        while all_execd is None or serving is None:
            now = time.perf_counter()
            if all_execd is None:
                for pid in children(self.proc.pid):
                    if pid not in execd and cmdline(pid) == SLEEP_CMDLINE:
                        execd.add(pid)
                if len(execd) >= self.n:
                    all_execd = now - t0
            if serving is None and info.exists():
                serving = now - t0
            if self.proc.poll() is not None or now > deadline:
                raise RuntimeError(f"the daemon with {self.n} did not come up ({len(execd)} exec'd, "
                                   f"exit {self.proc.poll()})")
            time.sleep(POLL_S)
        for pid in execd:
            try:
                self.seen.append(psutil.Process(pid))
            except psutil.Error:
                pass
        self.port = int(json.loads(info.read_text())["port"])
        return {"all_execd_s": all_execd, "serving_s": serving}

    def ps_ms(self, runs: int) -> list[float]:
        # The instance's token file (under this PMTOP_HOME) is how `pmtop ps` gets in, as for any user.
        argv = [*pmtop_command(), "ps", "--instance", "bench", "--port", str(self.port)]
        subprocess.run(argv, env=self.env, stdout=subprocess.DEVNULL, check=True, timeout=60)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(argv, env=self.env, stdout=subprocess.DEVNULL, check=True, timeout=60)
            times.append((time.perf_counter() - t0) * 1000)
        return times

    def memory(self) -> dict[str, float]:
        assert self.proc is not None
        time.sleep(SETTLE_S)
        full = psutil.Process(self.proc.pid).memory_full_info()
        return {"rss_mb": full.rss / 2**20, "uss_mb": full.uss / 2**20}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for child in self.seen:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
            except psutil.Error:
                pass
        self.out.close()
        shutil.rmtree(self.home, ignore_errors=True)


def spread(values: list[float], nd: int = 2) -> str:
    med = statistics.median(values)
    return f"{med:.{nd}f} ({min(values):.{nd}f}-{max(values):.{nd}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 cold start, 5 ps runs, 5 s of dashboard")
    parser.add_argument("--n", default="200,1000", help="process counts (default 200,1000)")
    parser.add_argument("--size", default="250x70", help="dashboard terminal COLSxROWS")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    ns = [int(x) for x in args.n.split(",")]
    starts, ps_runs, dash_s = (1, 5, 5.0) if args.quick else (3, 15, 20.0)
    cols, rows = (int(x) for x in args.size.split("x"))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    load0 = os.getloadavg()
    print(f"pmtop scale bench: {os.cpu_count()} CPUs, load {load0[0]:.2f}, Python {sys.version.split()[0]}, "
          f"N = {', '.join(map(str, ns))}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="pmtop-bench-scale-"))
    out: dict[int, dict[str, Any]] = {n: {"cold": [], "ps_ms": []} for n in ns}
    try:
        for r in range(starts):
            for n in (ns if r % 2 == 0 else ns[::-1]):  # alternate: the same drift for every N
                print(f"[{r + 1}/{starts}] cold start of {n}{', ps, memory' if r == 0 else ''} ...", flush=True)
                daemon = Daemon(n, workdir, r)
                try:
                    out[n]["cold"].append(daemon.cold_start())
                    if r == 0:
                        out[n].update(daemon.memory())
                    out[n]["ps_ms"] += daemon.ps_ms(max(1, ps_runs // starts))
                finally:
                    daemon.stop()
        for n in ns:
            print(f"dashboard CPU with {n} processes, {dash_s:.0f} s changing at 1 Hz ...", flush=True)
            with tempfile.TemporaryDirectory(prefix="pmtop-bench-scale-tui-") as home:
                out[n]["dashboard"] = bench_tui.bench_cpu((cols, rows), dash_s, Path(home), n)
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load1 = os.getloadavg()

    base = ns[0]

    def ratio(key: Any, n: int) -> str:
        a, b = key(out[base]), key(out[n])
        return "" if n == base or not a else f"x{b / a:.2f}"

    table: list[tuple[str, Any]] = [
        ("cold start: all exec'd, s (median, range)",
         lambda d: statistics.median(c["all_execd_s"] for c in d["cold"]),
         lambda d: spread([c["all_execd_s"] for c in d["cold"]])),
        ("cold start: API serving, s",
         lambda d: statistics.median(c["serving_s"] for c in d["cold"]),
         lambda d: spread([c["serving_s"] for c in d["cold"]])),
        ("`pmtop ps`, whole process, ms", lambda d: statistics.median(d["ps_ms"]),
         lambda d: spread(d["ps_ms"], 0)),
        ("daemon RSS, MB", lambda d: d["rss_mb"], lambda d: f"{d['rss_mb']:.1f} (USS {d['uss_mb']:.1f})"),
        ("dashboard CPU, facts change at 1 Hz, % of a core", lambda d: d["dashboard"]["cpu_changing_pct"],
         lambda d: f"{d['dashboard']['cpu_changing_pct']:.1f}"),
        ("dashboard CPU, nothing changing, %", lambda d: d["dashboard"]["cpu_idle_pct"],
         lambda d: f"{d['dashboard']['cpu_idle_pct']:.1f}"),
        ("dashboard RSS, MB", lambda d: d["dashboard"]["rss_mb"], lambda d: f"{d['dashboard']['rss_mb']:.0f}"),
    ]
    print()
    width = max(len(t[0]) for t in table)
    print(f"{'figure'.ljust(width)}  " + "  ".join(f"{'N=' + str(n):>24s}" for n in ns))
    for label, key, show in table:
        cells = [f"{show(out[n]) + (' ' + ratio(key, n) if ratio(key, n) else ''):>24s}" for n in ns]
        print(f"{label.ljust(width)}  " + "  ".join(cells))
    if len(ns) >= 2:
        a, b = ns[0], ns[-1]
        per = (out[b]["rss_mb"] - out[a]["rss_mb"]) * 2**20 / (b - a)
        print(f"one managed process costs the daemon {per / 1024:.1f} KB of RSS (N={a} -> {b})")
    print(f"(load {load0[0]:.2f} -> {load1[0]:.2f}; {starts} cold start(s) and {ps_runs} `pmtop ps` runs per N)")
    if args.json:
        Path(args.json).write_text(json.dumps({str(n): v for n, v in out.items()}, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
