#!/usr/bin/env python3
"""Crash to the new program's `main()`: what a restart costs the program, not what an observer sees.

    python bench/bench_restart_main.py [--kills N] [--pmtop EXE] [--pmtop-b EXE]

The peer benchmark times SIGKILL -> a new PID with the program's argv in /proc, polled every 1 ms: a
watcher that competes for the same CPUs and rounds to its own polling. Here the restarted program says
when it got going: a 15-line C program (`restart_main/stamp.c`, compiled with `cc` into a temporary
folder) writes CLOCK_MONOTONIC at the top of `main()` into a file named after its PID, then sleeps.
The bench takes the clock, SIGKILLs one of ten such programs, and reads the new one's file when it
appears (it looks every 2 ms; the figure is the clock written by the program, so that delay is not in
it). Both pmtop builds (`--pmtop`, default `pmtop` next to this interpreter, and `--pmtop-b`) run as
daemons side by side with the floor, the peer benchmark's own `os.wait` + `subprocess.Popen` respawner; the kills
rotate between them, so all see the same load.

This is the figure behind `core.process.machine.HEADSTART` (the supervisor's own work for a new run
waits 1 ms, so that it does not compete with the program's exec and dynamic loader) and behind
`spawner.spawn`'s `yield_cpu` (the supervisor hands its CPU to a restarted program as soon as `Popen`
returns, so that it does not preempt the program's exec; `trace_restart.py` shows that step).

Safety: loopback only (`127.0.0.1`, a fixed port per daemon), everything under a temporary folder;
each supervisor is stopped with SIGTERM and every program the bench saw is killed by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
from run import RESPAWNER as FLOOR  # noqa: E402 - the peer benchmark's own floor, the same lines

PROGRAMS = 10


class Side:
    """One supervisor under test and its ten stamping programs."""

    def __init__(self, name: str, work: Path, stamp: Path) -> None:
        self.name = name
        self.out = work / name / "out"
        self.out.mkdir(parents=True)
        self.argv = [[str(stamp), str(self.out), f"p{i}"] for i in range(PROGRAMS)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.samples: list[float] = []
        self.seen: set[int] = set()

    def live(self) -> dict[str, int]:
        found = {}
        for path in self.out.iterdir():
            tag, _, pid = path.name.rpartition(".")
            if os.path.exists(f"/proc/{pid}"):
                found[tag] = int(pid)
                self.seen.add(int(pid))
        return found

    def wait_all(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.live()) < PROGRAMS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: not all {PROGRAMS} programs started")
            time.sleep(0.05)

    def kill_one(self, tag: str, timeout: float = 5.0) -> None:
        old = self.live()[tag]
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [p for p in self.out.glob(f"{tag}.*") if p.name != f"{tag}.{old}"]
            text = fresh[0].read_text() if fresh else ""
            if text:
                self.samples.append((float(text) - t0) * 1000)
                (self.out / f"{tag}.{old}").unlink()
                return
            time.sleep(0.002)
        raise RuntimeError(f"{self.name}: {tag} did not come back within {timeout:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if self.name != "floor" else signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.live()  # the programs it started last, by the PIDs in their files
        for pid in self.seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_pmtop(side: Side, exe: str, work: Path, port: int) -> None:
    lines = ['[daemon]\nhost = "127.0.0.1"\n']
    for i, argv in enumerate(side.argv):
        lines.append(f'[process.p{i}]\ncommand = {json.dumps(argv)}\nrestart = "always"\nbackoff = ["0s"]\n'
                     'retry_forever = true\nmax_restarts = 1000000\n')
    config = work / side.name / "pmtop.toml"
    config.write_text("".join(lines))
    env = dict(os.environ, PMTOP_HOME=str(work / side.name / "home"))
    with open(work / side.name / "daemon.out", "wb") as out:
        side.proc = subprocess.Popen([exe, "--headless", "--standalone", "--config", str(config), "--port", str(port)],
                                     env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_floor(side: Side, work: Path) -> None:
    cmds = work / "floor" / "cmds.json"
    cmds.write_text(json.dumps(side.argv))
    side.proc = subprocess.Popen([sys.executable, "-c", FLOOR, str(cmds)], start_new_session=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per supervisor (default 100)")
    parser.add_argument("--pmtop", default=str(Path(sys.executable).with_name("pmtop")))
    parser.add_argument("--pmtop-b", help="a second pmtop build, measured in the same rotation")
    args = parser.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("bench_restart_main: needs a C compiler (cc) for the stamping program; skipped", file=sys.stderr)
        return 0
    work = Path(tempfile.mkdtemp(prefix="pmtop-restart-main-"))
    stamp = work / "stamp"
    subprocess.run([cc, "-O2", "-o", str(stamp), str(HERE / "restart_main" / "stamp.c")], check=True)
    sides = [Side("pmtop", work, stamp)]
    if args.pmtop_b:
        sides.append(Side("pmtop-b", work, stamp))
    sides.append(Side("floor", work, stamp))
    try:
        for port, side in enumerate(sides, start=18930):
            if side.name == "floor":
                start_floor(side, work)
            else:
                start_pmtop(side, args.pmtop if side.name == "pmtop" else args.pmtop_b, work, port)
        for side in sides:
            side.wait_all()
        time.sleep(0.5)
        for k in range(args.kills):
            order = sides if k % 2 == 0 else sides[::-1]
            for side in order:
                side.kill_one(f"p{k % PROGRAMS}")
                time.sleep(0.1 + random.uniform(0, 0.1))  # idle between kills, at a random phase
    finally:
        for side in sides:
            side.stop()
        shutil.rmtree(work, ignore_errors=True)
    floor = statistics.quantiles(sides[-1].samples, n=4)[1]
    print(f"SIGKILL -> the new program's main(), {args.kills} kills each, load {os.getloadavg()[0]:.2f}")
    print(f"{'supervisor':<10} {'median':>9} {'q1':>9} {'q3':>9} {'/ floor':>8}")
    for side in sides:
        q1, med, q3 = statistics.quantiles(side.samples, n=4)
        print(f"{side.name:<10} {med:>7.2f}ms {q1:>7.2f}ms {q3:>7.2f}ms {med / floor:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
