#!/usr/bin/env python3
"""Log capture under a flood: how fast pmtop takes a chatty process's output to its log files, and
what that flood costs the restart latency of the other processes.

    python bench/bench_log_throughput.py [--quick] [--mb 100] [--json FILE]

Run it with the interpreter pmtop is installed into ($PMTOP_EXE: another pmtop executable). Timings
on a shared 2-core machine are noisy: the figures are medians over several floods, printed with their
spread and the load average.

1. Throughput. A program writes `--mb` MiB of 100-byte lines to its stdout as fast as it can, then an
   end marker, then sleeps. It stamps its start with CLOCK_MONOTONIC (the bench's clock too); the
   bench polls the end of the log file every 2 ms for the marker. MB/s = MiB / (marker on disk -
   start). Measured with rotation out of the way (`log_max_bytes = "1GB"`) and with the default
   rotation (10 MB x 3 backups), and, as a floor, with a 10-line Python pipe-to-file copier (with
   the 256 KiB pipe pmtop gives a chatty process) in place of pmtop. pmtop's own CPU time per
   flood is read from schedstat.
2. Restart latency meanwhile. Ten `sleep` processes (restart always, backoff 0) beside a program
   that floods its stdout without end (default rotation). The bench SIGKILLs one sleep at a time
   and times until a new PID running the same argv shows in /proc (polled every 1 ms: the peer
   benchmark's instrument), alternately with the flood running and paused (SIGSTOP): same daemon,
   same load, kill by kill.

Safety: a throwaway PMTOP_HOME, loopback only (`port = "auto"`); the daemon is stopped with SIGTERM
and every process the bench saw is killed by PID afterwards (psutil, create-time checked).
"""

from __future__ import annotations

import argparse
import http.client
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
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon_proc import children, cmdline, pmtop_command  # noqa: E402

SLEEP = shutil.which("sleep") or "/bin/sleep"
POLL_S = 0.002
KILL_POLL_S = 0.001
SLEEPERS = 10

FLOOD = r"""
import os, sys, time
total, stamp, marker = int(sys.argv[1]), sys.argv[2], ("END " + sys.argv[3] + "\n").encode()
chunk = (b"x" * 99 + b"\n") * 655
with open(stamp, "w") as f:
    f.write(f"{time.monotonic()}\n")
written = 0
while total < 0 or written < total:
    n = os.write(1, chunk if total < 0 else chunk[: total - written])
    written += n
os.write(1, marker)
with open(stamp, "a") as f:
    f.write(f"{time.monotonic()}\n")
time.sleep(3600)
"""

COPIER = r"""
import fcntl, os, sys
fcntl.fcntl(0, fcntl.F_SETPIPE_SZ, 262144)  # the pipe size pmtop gives a chatty process
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
while data := os.read(0, 262144):
    os.write(out, data)
"""


def q(text: str) -> str:
    return json.dumps(text)


def schedstat_s(pid: int) -> float:
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    return total / 1e9


def ends_with(path: Path, marker: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < len(marker):
                return False
            f.seek(size - len(marker))
            return f.read() == marker
    except OSError:
        return False


def wait_stamp(path: Path, lines: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            values = [float(x) for x in path.read_text().split()]
            if len(values) >= lines:
                return values
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no stamp in {path} after {timeout} s")
        time.sleep(POLL_S)


class Bench:
    def __init__(self, workdir: Path, mb: int, floods: int) -> None:
        self.workdir, self.total, self.floods = workdir, mb * 2**20, floods
        self.seen: list[psutil.Process] = []
        self.flood = workdir / "flood.py"
        self.flood.write_text(FLOOD)
        self.home = workdir / "home"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.token = ""

    # -- the daemon ---------------------------------------------------------------------------

    def config(self) -> str:
        lines = ["[daemon]", 'instance = "bench"', 'host = "127.0.0.1"', 'port = "auto"', ""]
        for i in range(SLEEPERS):
            lines += [f"[process.s{i}]", f"command = [{q(SLEEP)}, \"600.{i:04d}\"]", 'restart = "always"',
                      'backoff = ["0s"]', "max_restarts = 1000000", "retry_forever = true", ""]
        for kind, extra in (("big", ['log_max_bytes = "1GB"']), ("rot", [])):
            for k in range(self.floods):
                lines += [f"[process.{kind}{k}]",
                          f"command = [{q(sys.executable)}, {q(str(self.flood))}, \"{self.total}\", "
                          f"{q(str(self.workdir / f'{kind}{k}.stamp'))}, \"{kind}{k}\"]",
                          "autostart = false", 'restart = "no"', *extra, ""]
        lines += ["[process.forever]",
                  f"command = [{q(sys.executable)}, {q(str(self.flood))}, \"-1\", "
                  f"{q(str(self.workdir / 'forever.stamp'))}, \"forever\"]",
                  "autostart = false", 'restart = "no"', ""]
        return "\n".join(lines)

    def start_daemon(self) -> None:
        config = self.workdir / "pmtop.toml"
        config.write_text(self.config())
        env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
        env["PMTOP_HOME"] = str(self.home)
        self.out = open(self.workdir / "daemon.out", "wb")
        self.proc = subprocess.Popen([*pmtop_command(), "--headless", "--config", str(config)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        info = self.home / "state" / "bench" / "daemon.json"
        deadline = time.monotonic() + 60
        while not (info.exists() and len(self.sleepers()) >= SLEEPERS):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not come up (exit {self.proc.poll()})")
            time.sleep(0.02)
        data = json.loads(info.read_text())
        self.port = int(data["port"])
        self.token = (self.home / "state" / "bench" / "token").read_text().strip()
        self.remember(children(self.proc.pid))

    def remember(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                self.seen.append(psutil.Process(pid))
            except psutil.Error:
                pass

    def sleepers(self) -> dict[bytes, int]:
        assert self.proc is not None
        found = {}
        for pid in children(self.proc.pid):
            parts = cmdline(pid).split(b"\0")
            if len(parts) >= 2 and parts[0] == SLEEP.encode():
                found[parts[1]] = pid
        return found

    def api(self, method: str, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {body[:200]!r}")
        return json.loads(body) if body else None

    def log_file(self, name: str, timeout: float = 30.0) -> Path:
        """The newest run's stdout.log (made right after the exec: wait for it)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = sorted((self.home / "log" / "bench" / name).glob("*/stdout.log"))
            if runs:
                return runs[-1]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no log file for {name}")
            time.sleep(POLL_S)

    def stop(self) -> None:
        if self.proc is not None:
            self.remember(children(self.proc.pid))
            if self.proc.poll() is None:
                for child in self.seen:
                    try:
                        child.resume()  # a paused flooder must hear the stop signal
                    except psutil.Error:
                        pass
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.out.close()
        for child in self.seen:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
            except psutil.Error:
                pass

    # -- 1. throughput --------------------------------------------------------------------------

    def flood_once(self, name: str) -> dict[str, float]:
        assert self.proc is not None
        marker = f"END {name}\n".encode()
        cpu0 = schedstat_s(self.proc.pid)
        self.api("POST", f"/processes/{name}/start")
        start = wait_stamp(self.workdir / f"{name}.stamp", 1, 30)[0]
        log = self.log_file(name)
        deadline = time.monotonic() + 120
        while not ends_with(log, marker):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the end marker never reached {log}")
            time.sleep(POLL_S)
            log = self.log_file(name)
        done = time.monotonic()
        cpu = schedstat_s(self.proc.pid) - cpu0
        wrote = wait_stamp(self.workdir / f"{name}.stamp", 2, 30)[1]
        self.api("POST", f"/processes/{name}/stop")
        mib = self.total / 2**20
        return {"mb_s": mib / (done - start), "seconds": done - start, "writer_s": wrote - start,
                "pmtop_cpu_s": cpu}

    def floor_once(self, k: int) -> dict[str, float]:
        """The same flood into a trivial pipe-to-file copier instead of pmtop."""
        target = self.workdir / f"floor{k}.log"
        stamp = self.workdir / f"floor{k}.stamp"
        marker = f"END floor{k}\n".encode()
        copier = subprocess.Popen([sys.executable, "-c", COPIER, str(target)], stdin=subprocess.PIPE,
                                  start_new_session=True)
        assert copier.stdin is not None
        writer = subprocess.Popen([sys.executable, str(self.flood), str(self.total), str(stamp), f"floor{k}"],
                                  stdout=copier.stdin, stdin=subprocess.DEVNULL, start_new_session=True)
        copier.stdin.close()
        self.remember([copier.pid, writer.pid])
        try:
            start = wait_stamp(stamp, 1, 30)[0]
            deadline = time.monotonic() + 120
            while not ends_with(target, marker):
                if time.monotonic() > deadline:
                    raise RuntimeError("floor: the end marker never arrived")
                time.sleep(POLL_S)
            done = time.monotonic()
        finally:
            writer.kill()
            writer.wait()
            copier.wait(10)
            target.unlink(missing_ok=True)
        return {"mb_s": self.total / 2**20 / (done - start), "seconds": done - start}

    # -- 2. restart latency during a flood ----------------------------------------------------

    def restart_ms(self, marker: bytes, old: int) -> float:
        assert self.proc is not None
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        deadline = t0 + 15
        while True:
            for pid in children(self.proc.pid):
                if pid != old and cmdline(pid).split(b"\0")[1:2] == [marker]:
                    return (time.perf_counter() - t0) * 1000
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no restart of {marker!r} within 15 s")
            time.sleep(KILL_POLL_S)

    def restarts_under_flood(self, kills: int) -> dict[str, Any]:
        assert self.proc is not None
        self.api("POST", "/processes/forever/start")
        wait_stamp(self.workdir / "forever.stamp", 1, 30)
        status = self.api("GET", "/processes/forever")
        flooder = psutil.Process(int(status["pid"]))
        self.seen.append(flooder)
        time.sleep(0.5)
        out: dict[str, list[float]] = {"flooding": [], "paused": []}
        cpu: dict[str, list[float]] = {"flooding": [], "paused": []}
        try:
            for k in range(2 * kills):
                phase = ("flooding", "paused")[(k + k // 2) % 2]  # F P P F F P P F ...: no fixed pairing
                if phase == "paused":
                    flooder.suspend()
                else:
                    flooder.resume()
                time.sleep(0.1 + random.uniform(0, 0.1))
                name = f"600.{k % SLEEPERS:04d}".encode()
                old = self.sleepers()[name]
                c0, w0 = schedstat_s(self.proc.pid), time.perf_counter()
                out[phase].append(self.restart_ms(name, old))
                cpu[phase].append((schedstat_s(self.proc.pid) - c0) / (time.perf_counter() - w0) * 100)
                self.remember([p for p in children(self.proc.pid)])
        finally:
            flooder.resume()
            self.api("POST", "/processes/forever/stop")
        return {"restart_ms": out, "pmtop_cpu_pct": cpu}


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return (f"{fmt.format(statistics.median(values))} (min {fmt.format(min(values))}, "
            f"max {fmt.format(max(values))}, n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 floods, 10 kills per phase")
    parser.add_argument("--mb", type=int, default=100, help="MiB per flood (default 100)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    floods, kills = (3, 10) if args.quick else (5, 30)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    load0 = os.getloadavg()
    print(f"pmtop log-throughput bench: {os.cpu_count()} CPUs, load {load0[0]:.2f}, "
          f"Python {sys.version.split()[0]}, {args.mb} MiB per flood", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="pmtop-bench-logs-"))
    bench = Bench(workdir, args.mb, floods)
    result: dict[str, Any] = {"mb": args.mb, "load_start": load0}
    try:
        bench.start_daemon()
        big, rot, floor = [], [], []
        print(f"[1/2] {floods} floods each: rotation off, default rotation, the copier floor ...", flush=True)
        for k in range(floods):  # interleaved: the same load for all three
            big.append(bench.flood_once(f"big{k}"))
            rot.append(bench.flood_once(f"rot{k}"))
            floor.append(bench.floor_once(k))
        result.update(no_rotation=big, rotation=rot, floor=floor)
        print(f"[2/2] restart latency of the other processes, {kills} kills flooding and {kills} paused ...",
              flush=True)
        result["restarts"] = bench.restarts_under_flood(kills)
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_end"] = os.getloadavg()

    def col(rows: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rows]

    r = result["restarts"]
    print()
    print(f"{args.mb} MiB from a process printing as fast as it can, to the log file (median of {floods}):")
    print(f"  pmtop, rotation out of the way   {spread(col(big, 'mb_s'))} MB/s; "
          f"pmtop CPU {statistics.median(col(big, 'pmtop_cpu_s')):.2f} s per flood")
    print(f"  pmtop, default rotation (10 MB)  {spread(col(rot, 'mb_s'))} MB/s; "
          f"pmtop CPU {statistics.median(col(rot, 'pmtop_cpu_s')):.2f} s per flood")
    print(f"  floor: 10-line Python copier     {spread(col(floor, 'mb_s'))} MB/s")
    print("Crash -> restart of the other processes (SIGKILL to the new PID's exec, /proc polled every 1 ms):")
    print(f"  while one floods                 {spread(r['restart_ms']['flooding'], '{:.2f}')} ms; "
          f"pmtop CPU {statistics.median(r['pmtop_cpu_pct']['flooding']):.0f} %")
    print(f"  flood paused                     {spread(r['restart_ms']['paused'], '{:.2f}')} ms")
    print(f"(load {result['load_start'][0]:.2f} -> {result['load_end'][0]:.2f}; timings on a shared machine "
          "are noisy: compare medians of one run)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
