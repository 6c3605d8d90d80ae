#!/usr/bin/env python3
"""Benchmarks of pmtop's core: restart latency, bulk cold start, idle cost, graceful shutdown.

    python bench/bench_core.py [--quick] [--json FILE]

Run it with the interpreter pmtop is installed into (e.g. /work/venv/bin/python). It prints an aligned
table of figures next to their targets, then a Markdown block for the README.

What is measured, and how:

1. Crash-to-restart latency (backoff "0s"). An in-process `Supervisor` runs `sleep 600`; the bench
   SIGKILLs the child and waits on `Supervisor.subscribe()` for `running` with a new PID. The figure is
   kill -> the new program exec'd: the event's `started_at`, the wall clock the spawner reads as soon as
   `subprocess.Popen` returned (it returns only once the exec succeeded). The floor is a ~20-line
   respawner (`os.waitpid` + `subprocess.Popen` in a separate Python process) that writes each new PID
   to a pipe after its Popen returned; it is measured the same way, interleaved sample by sample with
   the supervisor so that both see the same load. A second pmtop figure, kill -> the `running` event,
   adds the supervisor's yield to the new program (`spawner.spawn`'s `yield_cpu`: it has its CPU back
   once the program blocks or its time slice ends), the head start (`machine.HEADSTART`, 1 ms) and
   the bookkeeping after it.
2. Bulk cold start. The real command `pmtop --headless --config FILE` with 200 `sleep 600` processes,
   timed from just before launching it until all 200 children have exec'd (their cmdline reads
   `sleep 600`), polling `/proc/<pid>/task/*/children` every 2 ms.
3. Idle cost. With those 200 running, the supervisor's own CPU time over 20 s (5 s with --quick), read
   from `/proc/<pid>/task/*/schedstat` (nanoseconds; psutil's cpu_times ticks at 10 ms, which is the
   whole budget of 0.05 % over 20 s), and its RSS.
4. Graceful shutdown. SIGTERM to pmtop, timed until pmtop has exited and all 200 sleep PIDs are gone.
5. Log throughput. An in-process `Supervisor` runs a child that writes 64 MB of 100-byte lines to stdout
   as fast as it can (restart = "no"); timed from the start until all of it is in `stdout.log`, with the
   event loop thread's own CPU time (RUSAGE_THREAD) per MB: the cost of draining a chatty process.
   `--ready-log-line RE` measures the same with that setting (RE never matching: every line searched).

`--parts restart,logs` runs only those figures (`daemon` = 2-4), for before/after comparisons of one
change; interleave runs of the two builds in the same quiet moment, the machine's load moves the figures.

Safety: loopback only (the generated config pins host 127.0.0.1 and port "auto"); every process the
bench starts, directly or through a supervisor it started, is killed by PID (checked with psutil's
create-time identity) in `finally` blocks, also on Ctrl-C and SIGTERM. Nothing is killed by name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

perf = time.perf_counter

SLEEP_ARGV = ("sleep", "600")
SLEEP_CMDLINE = b"sleep\x00600\x00"
POLL_INTERVAL = 0.002
STALL_TIMEOUT = 10.0
"""Give up on a cold start when no new child has exec'd for this long."""
SAMPLE_GAP = 0.01
"""Idle time before each restart sample (also lets the previous run's bookkeeping finish)."""

# Targets and reference figures (other supervisors) shown next to the measurements.
TARGET_RESTART_RATIO = 1.5
TARGET_COLD_START_S = 0.5
TARGET_IDLE_CPU_PCT = 0.05
TARGET_FACTS_CPU_PCT = 3.0
TARGET_RSS_MB = 40.0
TARGET_SHUTDOWN_S = 0.1
REF_RESTART = "supervisord ≈ 1 s, PM2 ≈ 7 ms"
REF_COLD_START = "circus 0.9 s"
REF_IDLE_CPU = "supervisord 0.07 %"
REF_RSS = "supervisord 28 MB"
REF_SHUTDOWN = "circus 0.18 s"


# ----------------------------------------------------------------------------------------- safety


class Interrupted(BaseException):
    """SIGTERM/SIGHUP to the bench: unwind through every `finally` so that nothing is left running."""


def _on_terminate(signum: int, _frame: object) -> None:
    raise Interrupted(f"received {signal.Signals(signum).name}")


@dataclass
class Registry:
    """Every process the bench is responsible for, as psutil handles (PID + create time)."""

    procs: list[psutil.Process] = field(default_factory=list)

    def add(self, pid: int) -> psutil.Process | None:
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            return None
        self.procs.append(proc)
        return proc

    def add_many(self, pids: Iterable[int]) -> None:
        for pid in pids:
            self.add(pid)

    def kill_all(self) -> int:
        """SIGKILL whatever is still alive (psutil refuses a PID that was reused). Returns how many."""
        killed = 0
        for proc in self.procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
                    killed += 1
            except psutil.Error:
                pass
        self.procs.clear()
        return killed


REGISTRY = Registry()


# ---------------------------------------------------------------------------------------- helpers


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1])."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def children_pids(pid: int) -> list[int]:
    """Direct children of `pid` via /proc/<pid>/task/*/children (cheap), else psutil."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    pids: list[int] = []
    found_file = False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                pids.extend(int(x) for x in f.read().split())
            found_file = True
        except OSError:
            continue
    if not found_file:  # kernel without CONFIG_PROC_CHILDREN
        try:
            return [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    return pids


def read_cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def cpu_ns(pid: int) -> int:
    """CPU time of all threads of `pid`, in nanoseconds (schedstat), 0 if unavailable."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def ctx_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of all threads (how often the process woke up)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"voluntary_ctxt_switches", b"nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def proc_state(pid: int) -> str | None:
    """The one-letter state of `pid` ("Z" = zombie), None when the PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:][:1].decode() or None


def pmtop_command() -> list[str]:
    here = Path(sys.executable).parent / "pmtop"
    if here.exists():
        return [str(here)]
    found = shutil.which("pmtop")
    if found:
        return [found]
    return [sys.executable, "-m", "pmtop.cli.main"]


def wall_time(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = perf()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times.append(perf() - t0)
    return times


@contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# ------------------------------------------------------------------ 1. crash-to-restart latency

FLOOR_RESPAWNER = r"""
import ctypes, os, signal, subprocess, sys
try:  # die with the bench even if it is SIGKILLed
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
child = None
def bye(*_):
    if child is not None:
        try:
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
        except OSError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, bye)
out = sys.stdout.fileno()
while True:
    child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    os.write(out, b"%d\n" % child.pid)
    os.waitpid(child.pid, 0)
"""


@dataclass
class RestartResult:
    pmtop_ms: list[float]
    """Kill -> the new program exec'd (the spawner's clock when Popen returned)."""
    news_ms: list[float]
    """Kill -> the `running` event with the new PID."""
    floor_ms: list[float]
    run_dir_missing: int
    """Restarts after which the new run's log folder did not exist (pruned while in use)."""
    exe_mismatch: int
    """Restarts whose new PID was not running `sleep 600` (5 ms after the event)."""
    exec_unfinished: int
    """Restarts whose new PID's cmdline still read empty at the event (kernel finishing the exec)."""

    def summary(self) -> dict[str, Any]:
        pm, fl = statistics.median(self.pmtop_ms), statistics.median(self.floor_ms)
        return {
            "samples": len(self.pmtop_ms),
            "pmtop_median_ms": pm,
            "pmtop_p95_ms": quantile(self.pmtop_ms, 0.95),
            "news_median_ms": statistics.median(self.news_ms),
            "news_p95_ms": quantile(self.news_ms, 0.95),
            "floor_median_ms": fl,
            "floor_p95_ms": quantile(self.floor_ms, 0.95),
            "ratio_median": pm / fl if fl > 0 else float("nan"),
            "run_dir_missing_after_restart": self.run_dir_missing,
            "new_pid_not_sleep": self.exe_mismatch,
            "exec_unfinished_at_event": self.exec_unfinished,
            "pmtop_samples_ms": self.pmtop_ms,
            "floor_samples_ms": self.floor_ms,
        }


class FloorRespawner:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FLOOR_RESPAWNER], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            start_new_session=True,
        )
        REGISTRY.add(self.proc.pid)
        self.pid = self.next_pid()
        REGISTRY.add(self.pid)

    def next_pid(self) -> int:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"floor respawner exited ({self.proc.poll()})")
        return int(line)

    def sample(self) -> float:
        old = self.pid
        t0 = perf()
        os.kill(old, signal.SIGKILL)
        self.pid = self.next_pid()
        elapsed = (perf() - t0) * 1000
        REGISTRY.add(self.pid)
        return elapsed

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # it SIGKILLs and reaps its current child, then exits
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def restart_latency(samples: int, warmup: int, home: Path) -> RestartResult:
    from pmtop.core.locations import instance_paths
    from pmtop.core.model import ProcessSpec, ProcessState, ProcessStatus, RestartPolicy, RestartSpec
    from pmtop.core.supervisor import Supervisor

    with env_var("PMTOP_HOME", str(home)):
        paths = instance_paths("bench")
    spec = ProcessSpec(
        name="sleeper",
        command=SLEEP_ARGV,
        restart=RestartSpec(policy=RestartPolicy.ON_FAILURE, backoff=(0.0,), max_restarts=10**9),
        stop_timeout=2.0,
    )
    supervisor = Supervisor([spec], paths=paths)
    floor: FloorRespawner | None = None
    pmtop_ms: list[float] = []
    news_ms: list[float] = []
    floor_ms: list[float] = []
    missing = mismatch = late = 0
    try:
        async with supervisor.subscribe() as events:

            async def next_running(old: int | None) -> ProcessStatus:
                async with asyncio.timeout(10):
                    while True:
                        event = await events.__anext__()
                        if (isinstance(event, ProcessStatus) and event.state is ProcessState.RUNNING
                                and event.pid is not None and event.pid != old):
                            return event

            await supervisor.start("sleeper")
            pid = (await next_running(None)).pid
            assert pid is not None
            REGISTRY.add(pid)
            floor = FloorRespawner()
            runner = getattr(supervisor, "_runners", {}).get("sleeper")  # private: only for a check
            for i in range(warmup + samples):
                # Same idle gap before every sample, on both sides, in alternating order: on a VM the
                # first wake-up after an idle CPU costs up to a millisecond or more, so a sample taken
                # right after another one would look faster than it is.
                if i % 2:
                    await asyncio.sleep(SAMPLE_GAP)
                    floor_elapsed = floor.sample()
                await asyncio.sleep(SAMPLE_GAP)
                wall, t0 = time.time(), perf()
                os.kill(pid, signal.SIGKILL)
                event = await next_running(pid)
                news = (perf() - t0) * 1000
                assert event.pid is not None and event.started_at is not None
                elapsed = (event.started_at - wall) * 1000
                pid = event.pid
                REGISTRY.add(pid)
                run_dir = getattr(runner, "run_dir", None)
                if run_dir is not None and not Path(run_dir).is_dir():
                    missing += 1
                if read_cmdline(pid) != SLEEP_CMDLINE:
                    # Popen returns once the exec passed its point of no return (close-on-exec of
                    # its error pipe); the kernel may still be setting up the new image, during which
                    # /proc/PID/cmdline reads empty. Only a wrong program after that is a problem.
                    late += 1
                    await asyncio.sleep(0.005)
                    if read_cmdline(pid) != SLEEP_CMDLINE:
                        mismatch += 1
                if not i % 2:
                    await asyncio.sleep(SAMPLE_GAP)
                    floor_elapsed = floor.sample()
                if i >= warmup:
                    pmtop_ms.append(elapsed)
                    news_ms.append(news)
                    floor_ms.append(floor_elapsed)
            try:
                async with asyncio.timeout(10):
                    await supervisor.shutdown()
            except TimeoutError:
                pass
    finally:
        if floor is not None:
            floor.close()
        for r in getattr(supervisor, "_runners", {}).values():
            child = getattr(r, "_child", None)
            if child is not None:
                REGISTRY.add(child.pid)
        REGISTRY.kill_all()
    return RestartResult(pmtop_ms, news_ms, floor_ms, missing, mismatch, late)


# --------------------------------------------------------------------------------- 5. log throughput

LOG_WRITER = r"""
import os, sys
line = b"2026-11-21 12:00:00.000 INFO worker handled request 4242 in 3 ms; all is well, nothing to see\n"
block = line * (65536 // len(line))
total, out = int(sys.argv[1]), sys.stdout.fileno()
left = total
while left > 0:
    chunk = block[:left]
    left -= os.write(out, chunk)
"""


@dataclass
class LogResult:
    mb: float
    seconds: list[float]
    cpu_ms_per_mb: list[float]

    def summary(self) -> dict[str, Any]:
        return {
            "mb": self.mb,
            "median_s": statistics.median(self.seconds),
            "mb_per_s_median": self.mb / statistics.median(self.seconds),
            "cpu_ms_per_mb_median": statistics.median(self.cpu_ms_per_mb),
            "runs_s": self.seconds,
            "cpu_ms_per_mb_runs": self.cpu_ms_per_mb,
        }


async def log_throughput(mb: float, runs: int, home: Path, ready_log_line: str | None) -> LogResult:
    from dataclasses import replace

    from pmtop.core.locations import instance_paths
    from pmtop.core.model import LogSpec, ProcessSpec, ProcessState, ProcessStatus, RestartPolicy, RestartSpec
    from pmtop.core.supervisor import Supervisor

    size = int(mb * 1024 * 1024)
    with env_var("PMTOP_HOME", str(home)):
        paths = instance_paths("bench-logs")
    spec = ProcessSpec(name="writer", command=(sys.executable, "-c", LOG_WRITER, str(size)),
                       restart=RestartSpec(policy=RestartPolicy.NO), stop_timeout=2.0,
                       logs=LogSpec(max_bytes=2 * size))  # no rotation: the file's size says when all is in
    if ready_log_line is not None:
        spec = replace(spec, ready_log_line=ready_log_line)  # type: ignore[call-arg]
    supervisor = Supervisor([spec], paths=paths)
    seconds: list[float] = []
    cpu: list[float] = []
    try:
        async with supervisor.subscribe() as events:
            for _ in range(runs):
                thread = resource.getrusage(resource.RUSAGE_THREAD)
                t0 = perf()
                await supervisor.start("writer")
                async with asyncio.timeout(120):
                    while True:
                        event = await events.__anext__()
                        if isinstance(event, ProcessStatus) and event.state in (
                                ProcessState.STOPPED, ProcessState.FAILED) and event.exit_code is not None:
                            break
                runner = supervisor._runners["writer"]  # private: only to find the run's file
                assert runner.run_dir is not None
                log = runner.run_dir / "stdout.log"
                while log.stat().st_size < size:  # the exit can beat the last drained bytes
                    await asyncio.sleep(0.001)
                seconds.append(perf() - t0)
                after = resource.getrusage(resource.RUSAGE_THREAD)
                used = (after.ru_utime + after.ru_stime) - (thread.ru_utime + thread.ru_stime)
                cpu.append(used * 1000 / mb)
                await asyncio.sleep(0.2)
            async with asyncio.timeout(10):
                await supervisor.shutdown()
    finally:
        for r in getattr(supervisor, "_runners", {}).values():
            child = getattr(r, "_child", None)
            if child is not None:
                REGISTRY.add(child.pid)
        REGISTRY.kill_all()
    return LogResult(mb, seconds, cpu)


# ---------------------------------------------- 2-4. cold start, idle cost, graceful shutdown of N


def write_config(path: Path, n: int) -> None:
    lines = [
        "# generated by bench/bench_core.py",
        "[daemon]",
        'instance = "bench"',
        'host = "127.0.0.1"',
        'port = "auto"',
        "",
        "[defaults]",
        'restart = "on-failure"',
        'stop_timeout = "5s"',
        "",
    ]
    for i in range(n):
        lines += [f"[process.p{i:03d}]", 'command = ["sleep", "600"]', ""]
    path.write_text("\n".join(lines))


@dataclass
class DaemonRound:
    cold_start_s: float = float("nan")
    first_exec_s: float = float("nan")
    idle: dict[str, float] | None = None
    idle_facts: dict[str, float] | None = None
    shutdown_s: float = float("nan")
    shutdown_pmtop_exit_s: float = float("nan")
    shutdown_children_gone_s: float = float("nan")
    leftovers: int = 0
    exit_code: int | None = None


class Daemon:
    """One `pmtop --headless` run, and everything it spawned, cleaned up whatever happens."""

    def __init__(self, config: Path, home: Path, log: Path) -> None:
        self.config, self.home, self.log_path = config, home, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.children: list[int] = []

    def launch(self) -> float:
        env = dict(os.environ, PMTOP_HOME=str(self.home))
        env.pop("PMTOP_CONFIG", None)
        self.log = open(self.log_path, "wb")
        argv = [*pmtop_command(), "--headless", "--config", str(self.config)]
        t0 = perf()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return t0

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_all_exec(self, n: int, t0: float, timeout: float) -> tuple[float, float]:
        """Poll until `n` children run `sleep 600`; returns (first, last) exec times since t0."""
        assert self.proc is not None
        pid = self.proc.pid
        execd: dict[int, float] = {}
        seen: set[int] = set()
        progress = perf()
        while True:
            now = perf()
            for child in children_pids(pid):
                if child in execd:
                    continue
                if read_cmdline(child) == SLEEP_CMDLINE:
                    execd[child] = progress = now
                    if child not in seen:
                        seen.add(child)
                        self.children.append(child)
            if len(execd) >= n:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"pmtop exited with {self.proc.returncode} after starting "
                                   f"{len(execd)}/{n}:\n{self.log_tail()}")
            if now - t0 > timeout or now - progress > STALL_TIMEOUT:
                raise RuntimeError(f"only {len(execd)}/{n} children exec'd after {now - t0:.1f} s "
                                   f"(pmtop's last output below):\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL)
        REGISTRY.add_many(self.children)
        times = sorted(execd.values())
        return times[0] - t0, times[-1] - t0

    def idle(self, seconds: float, settle: float) -> dict[str, float]:
        assert self.proc is not None
        pid = self.proc.pid
        ps = psutil.Process(pid)
        time.sleep(settle)
        ns0, ct0, cs0, w0 = cpu_ns(pid), ps.cpu_times(), ctx_switches(pid), perf()
        time.sleep(seconds)
        ns1, ct1, cs1, w1 = cpu_ns(pid), ps.cpu_times(), ctx_switches(pid), perf()
        wall = w1 - w0
        mem = ps.memory_full_info()
        ticks = (ct1.user + ct1.system) - (ct0.user + ct0.system)
        return {
            "seconds": wall,
            "cpu_percent": (ns1 - ns0) / 1e9 / wall * 100 if ns1 else ticks / wall * 100,
            "cpu_percent_psutil_ticks": ticks / wall * 100,
            "wakeups_per_s": (cs1 - cs0) / wall,
            "rss_mb": mem.rss / 2**20,
            "uss_mb": mem.uss / 2**20,
            "fds": float(ps.num_fds()),
            "threads": float(ps.num_threads()),
        }

    def idle_watched(self, seconds: float, settle: float) -> dict[str, float]:
        """The idle cost while a client watches with live facts (`/events?facts=1`, as the
        dashboard does): the 1 Hz sampler runs and every change is streamed."""
        import http.client
        import threading

        info_path = self.home / "state" / "bench" / "daemon.json"
        deadline = perf() + 30
        while not info_path.exists():  # written once the API serves, after the children started
            if perf() > deadline:
                raise RuntimeError("pmtop never wrote daemon.json")
            time.sleep(POLL_INTERVAL)
        info = json.loads(info_path.read_text())
        conn = http.client.HTTPConnection(info["host"], info["port"], timeout=seconds + settle + 30)
        token = (info_path.parent / "token").read_text().strip()
        conn.request("GET", "/events?facts=1", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        events = [0]

        def read() -> None:
            while True:
                try:
                    line = response.fp.readline()
                except (OSError, ValueError):
                    return
                if not line:
                    return
                if line.startswith(b"data:"):
                    events[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            result = self.idle(seconds, settle)
            result["events_per_s"] = events[0] / (seconds + settle)
        finally:
            conn.close()
        return result

    def shutdown(self) -> tuple[float, float, float, int]:
        """SIGTERM; returns (all done, pmtop exited, children gone) in seconds, and leftovers.

        While pmtop runs, a child is gone once it left pmtop's children list (reaped): one read per
        poll instead of one per child. Whatever is left when pmtop exits is checked in /proc.
        """
        assert self.proc is not None
        pid = self.proc.pid
        remaining = set(self.children)
        t_exit = t_gone = None
        t0 = perf()
        self.proc.send_signal(signal.SIGTERM)
        deadline = t0 + 15
        while perf() < deadline:
            now = perf()
            if t_exit is None and self.proc.poll() is not None:
                t_exit = now
            if t_exit is None:
                remaining &= set(children_pids(pid))
            else:
                remaining = {c for c in remaining if os.path.exists(f"/proc/{c}")}
            if t_gone is None and not remaining:
                t_gone = now
            if t_exit is not None and t_gone is not None:
                break
            time.sleep(POLL_INTERVAL)
        nan = float("nan")
        done = max(t_exit, t_gone) - t0 if t_exit is not None and t_gone is not None else nan
        return (done, t_exit - t0 if t_exit is not None else nan,
                t_gone - t0 if t_gone is not None else nan, len(remaining))

    def cleanup(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:  # whatever it spawned that we have not seen yet
                self.children += [c.pid for c in psutil.Process(proc.pid).children()]
                REGISTRY.add_many(self.children)
            except psutil.Error:
                pass
            proc.terminate()  # lets pmtop stop its own children first
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        REGISTRY.kill_all()
        if hasattr(self, "log"):
            self.log.close()


def daemon_round(n: int, workdir: Path, index: int, idle_s: float, settle: float) -> DaemonRound:
    config = workdir / "pmtop.toml"
    if not config.exists():
        write_config(config, n)
    home = workdir / f"home{index}"
    daemon = Daemon(config, home, workdir / f"pmtop{index}.out")
    result = DaemonRound()
    try:
        t0 = daemon.launch()
        result.first_exec_s, result.cold_start_s = daemon.wait_all_exec(n, t0, timeout=60)
        if idle_s > 0:
            result.idle = daemon.idle(idle_s, settle)
            result.idle_facts = daemon.idle_watched(idle_s, settle)
        else:
            time.sleep(settle)
        (result.shutdown_s, result.shutdown_pmtop_exit_s, result.shutdown_children_gone_s,
         result.leftovers) = daemon.shutdown()
        assert daemon.proc is not None
        result.exit_code = daemon.proc.poll()
    finally:
        daemon.cleanup()
        shutil.rmtree(home, ignore_errors=True)
    return result


# ----------------------------------------------------------------------------------------- output


def fmt_ms(v: float) -> str:
    return f"{v:.2f} ms"


def fmt_s(v: float) -> str:
    return f"{v:.3f} s"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    headers = ("figure", "measured", "target", "", "reference")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(5)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def some_parts(args: argparse.Namespace, parts: set[str]) -> int:
    """Only the chosen figures, as a short table (for before/after comparisons of one change)."""
    samples, warmup = (30, 3) if args.quick else (200, 10)
    runs = 3 if args.quick else 7
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_terminate)
    out: dict[str, Any] = {"quick": args.quick, "loadavg_start": os.getloadavg()}
    rows: list[tuple[str, str, str, str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="pmtop-bench-"))
    try:
        if "restart" in parts:
            print(f"[1] crash-to-restart latency: {samples} SIGKILLs (+{warmup} warm-up) ...", flush=True)
            rs = asyncio.run(restart_latency(samples, warmup, workdir / "restart-home")).summary()
            out["restart"] = rs
            rows += [
                ("restart latency, median / p95 (pmtop)",
                 f"{fmt_ms(rs['pmtop_median_ms'])} / {fmt_ms(rs['pmtop_p95_ms'])}", "", "", ""),
                ("restart latency, median / p95 (floor)",
                 f"{fmt_ms(rs['floor_median_ms'])} / {fmt_ms(rs['floor_p95_ms'])}", "", "", ""),
                ("kill -> `running` event, median / p95 (pmtop)",
                 f"{fmt_ms(rs['news_median_ms'])} / {fmt_ms(rs['news_p95_ms'])}", "", "", ""),
                ("restart latency, ratio of medians", f"{rs['ratio_median']:.2f}x", f"<= {TARGET_RESTART_RATIO}x",
                 verdict(rs["ratio_median"] <= TARGET_RESTART_RATIO), ""),
            ]
        if "logs" in parts:
            what = f" with ready_log_line {args.ready_log_line!r}" if args.ready_log_line else ""
            print(f"[5] log throughput: {args.log_mb:g} MB x {runs}{what} ...", flush=True)
            ls = asyncio.run(log_throughput(args.log_mb, runs, workdir / "logs-home", args.ready_log_line)).summary()
            out["logs"] = ls
            rows += [
                (f"log throughput{what}, median of {runs}", f"{ls['mb_per_s_median']:.0f} MB/s", "", "", ""),
                ("  event loop CPU per MB drained, median", f"{ls['cpu_ms_per_mb_median']:.2f} ms", "", "", ""),
            ]
        if "daemon" in parts:
            n, rounds = args.processes, (1 if args.quick else 3)
            idle_s = 5.0 if args.quick else 20.0
            print(f"[2-4] {rounds} round(s): cold start of {n} + idle {idle_s:g} s (first) + shutdown ...", flush=True)
            done = [daemon_round(n, workdir, r, idle_s if r == 0 else 0.0, 0.5 if args.quick else 1.0)
                    for r in range(rounds)]
            idle = done[0].idle or {}
            out["daemon"] = {"cold_start_s": [x.cold_start_s for x in done], "shutdown_s": [x.shutdown_s for x in done],
                             "idle": idle}
            rows += [
                (f"cold start of {n}, runs", " / ".join(fmt_s(x.cold_start_s) for x in done), "", "", ""),
                (f"idle CPU with {n} running", f"{idle.get('cpu_percent', float('nan')):.4f} %", "", "", ""),
                (f"RSS with {n} running", f"{idle.get('rss_mb', float('nan')):.1f} MB", "", "", ""),
                (f"graceful shutdown of {n}, runs", " / ".join(fmt_s(x.shutdown_s) for x in done), "", "", ""),
            ]
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}); cleaned up", file=sys.stderr)
        return 130
    finally:
        REGISTRY.kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
    out["loadavg_end"] = os.getloadavg()
    print()
    print_table(rows)
    print(f"(load {out['loadavg_start'][0]:.2f} -> {out['loadavg_end'][0]:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, for smoke runs (< 40 s)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("-n", "--processes", type=int, default=200, help="processes for figures 2-4")
    parser.add_argument("--parts", default="restart,daemon,logs",
                        help="which figures: restart (1), daemon (2-4), logs (5); comma-separated")
    parser.add_argument("--log-mb", type=float, default=64.0, help="MB written for the log throughput")
    parser.add_argument("--ready-log-line", metavar="RE", help="log throughput with this ready_log_line")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"restart", "daemon", "logs"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if parts != {"restart", "daemon", "logs"}:
        return some_parts(args, parts)
    quick = args.quick
    n = args.processes
    samples, warmup = (30, 3) if quick else (200, 10)
    rounds = 1 if quick else 3
    idle_s = 5.0 if quick else 20.0
    settle = 0.5 if quick else 1.0
    ctx_runs = 3 if quick else 7

    try:
        import pmtop.core.supervisor  # noqa: F401
    except ImportError:
        print(f"pmtop is not importable from {sys.executable}; run with the venv's python", file=sys.stderr)
        return 2

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_terminate)

    # pmtop holds about 5 descriptors per running process (2 pipes, 2 log files, 1 pidfd).
    soft_fds, hard_fds = resource.getrlimit(resource.RLIMIT_NOFILE)
    fd_note = ""
    if soft_fds != resource.RLIM_INFINITY and soft_fds < 5 * n + 64:
        fd_note = (f"RLIMIT_NOFILE soft limit is {soft_fds} (hard {hard_fds}); pmtop needs about "
                   f"{5 * n + 64} descriptors for {n} processes unless it raises its own soft limit")

    started = perf()
    out: dict[str, Any] = {
        "quick": quick, "python": sys.version.split()[0], "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(), "processes": n, "rlimit_nofile": [soft_fds, hard_fds],
    }
    workdir = Path(tempfile.mkdtemp(prefix="pmtop-bench-"))
    try:
        print(f"pmtop core bench ({'quick' if quick else 'full'}): {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}, Python {out['python']}", flush=True)

        print(f"[1/4] crash-to-restart latency: {samples} SIGKILLs (+{warmup} warm-up) ...", flush=True)
        restart = asyncio.run(restart_latency(samples, warmup, workdir / "restart-home"))
        rs = restart.summary()
        out["restart"] = rs

        print(f"      context: interpreter start-up ({ctx_runs} runs each) ...", flush=True)
        py_pass = wall_time([sys.executable, "-c", "pass"], ctx_runs)
        py_import = wall_time([sys.executable, "-c", "import pmtop.core.supervisor"], ctx_runs)
        py_headless = wall_time([sys.executable, "-c", "import pmtop.cli.main, pmtop.cli.daemon_main"],
                                ctx_runs)
        out["context"] = {
            "python_c_pass_s": statistics.median(py_pass),
            "import_supervisor_s": statistics.median(py_import),
            "import_headless_path_s": statistics.median(py_headless),
        }

        rounds_out: list[DaemonRound] = []
        for r in range(rounds):
            what = f"+ idle {idle_s:g} s " if r == 0 else ""
            print(f"[2-4] round {r + 1}/{rounds}: cold start of {n} {what}+ shutdown ...", flush=True)
            rounds_out.append(daemon_round(n, workdir, r, idle_s if r == 0 else 0.0, settle))
        cold = [x.cold_start_s for x in rounds_out]
        down = [x.shutdown_s for x in rounds_out]
        idle = rounds_out[0].idle or {}
        out["cold_start"] = {
            "median_s": statistics.median(cold), "runs_s": cold,
            "first_child_execd_s": [x.first_exec_s for x in rounds_out],
        }
        out["idle"] = idle
        idle_facts = rounds_out[0].idle_facts or {}
        out["idle_facts"] = idle_facts
        out["shutdown"] = {
            "median_s": statistics.median(down), "runs_s": down,
            "pmtop_exit_s": [x.shutdown_pmtop_exit_s for x in rounds_out],
            "children_gone_s": [x.shutdown_children_gone_s for x in rounds_out],
            "leftover_children": [x.leftovers for x in rounds_out],
            "exit_codes": [x.exit_code for x in rounds_out],
        }
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}); cleaned up", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        if fd_note:
            print(f"note: {fd_note}", file=sys.stderr)
        return 1
    finally:
        REGISTRY.kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
    out["elapsed_s"] = perf() - started
    out["loadavg_end"] = os.getloadavg()

    # ------------------------------------------------------------------------------- the table
    ratio = rs["ratio_median"]
    cold_med = out["cold_start"]["median_s"]
    down_med = out["shutdown"]["median_s"]
    first = statistics.median(out["cold_start"]["first_child_execd_s"])
    ctx = out["context"]
    rows: list[tuple[str, str, str, str, str]] = [
        ("restart latency, median (pmtop)", fmt_ms(rs["pmtop_median_ms"]),
         f"<= {TARGET_RESTART_RATIO}x floor", verdict(ratio <= TARGET_RESTART_RATIO), REF_RESTART),
        ("restart latency, p95 (pmtop)", fmt_ms(rs["pmtop_p95_ms"]), "", "", ""),
        ("restart latency, median (floor)", fmt_ms(rs["floor_median_ms"]), "", "", ""),
        ("restart latency, p95 (floor)", fmt_ms(rs["floor_p95_ms"]), "", "", ""),
        ("kill -> `running` event, median (pmtop)", fmt_ms(rs["news_median_ms"]), "", "", ""),
        ("restart latency, ratio of medians", f"{ratio:.2f}x", f"<= {TARGET_RESTART_RATIO}x",
         verdict(ratio <= TARGET_RESTART_RATIO), ""),
        (f"cold start of {n} (median of {rounds})", fmt_s(cold_med), f"< {TARGET_COLD_START_S} s",
         verdict(cold_med < TARGET_COLD_START_S), REF_COLD_START),
        ("  first child exec'd", fmt_s(first), "", "", ""),
        ("  python -c pass", fmt_s(ctx["python_c_pass_s"]), "", "", ""),
        ("  python -c 'import pmtop.core.supervisor'", fmt_s(ctx["import_supervisor_s"]), "", "", ""),
        ("  python -c 'import pmtop.cli.main, ...daemon_main'", fmt_s(ctx["import_headless_path_s"]),
         "", "", ""),
        (f"idle CPU with {n} running ({idle.get('seconds', 0):.0f} s)",
         f"{idle.get('cpu_percent', float('nan')):.4f} %", f"< {TARGET_IDLE_CPU_PCT} %",
         verdict(idle.get("cpu_percent", 1e9) < TARGET_IDLE_CPU_PCT), REF_IDLE_CPU),
        ("  wake-ups per second", f"{idle.get('wakeups_per_s', float('nan')):.2f}", "", "", ""),
        ("  the same, watched with facts (/events?facts=1)",
         f"{idle_facts.get('cpu_percent', float('nan')):.3f} %", f"< {TARGET_FACTS_CPU_PCT:g} %",
         verdict(idle_facts.get("cpu_percent", 1e9) < TARGET_FACTS_CPU_PCT), ""),
        (f"RSS with {n} running", f"{idle.get('rss_mb', float('nan')):.1f} MB", f"< {TARGET_RSS_MB:g} MB",
         verdict(idle.get("rss_mb", 1e9) < TARGET_RSS_MB), REF_RSS),
        ("  USS / open fds / threads",
         f"{idle.get('uss_mb', float('nan')):.1f} MB / {idle.get('fds', 0):.0f} / "
         f"{idle.get('threads', 0):.0f}", "", "", ""),
        (f"graceful shutdown of {n} (median of {rounds})", fmt_s(down_med), f"< {TARGET_SHUTDOWN_S} s",
         verdict(down_med < TARGET_SHUTDOWN_S), REF_SHUTDOWN),
        ("  pmtop exited / all children reaped",
         f"{statistics.median(out['shutdown']['pmtop_exit_s']):.3f} s / "
         f"{statistics.median(out['shutdown']['children_gone_s']):.3f} s", "", "", ""),
    ]
    print()
    print_table(rows)
    notes = []
    if fd_note:
        notes.append(fd_note)
    if restart.run_dir_missing:
        notes.append(f"{restart.run_dir_missing}/{warmup + samples} restarts: the new run's log folder was "
                     "already gone when `running` arrived (pruned while in use)")
    if restart.exe_mismatch:
        notes.append(f"{restart.exe_mismatch} restarts: the new PID was not running `sleep 600` 5 ms after "
                     "the event")
    if restart.exec_unfinished:
        notes.append(f"{restart.exec_unfinished}/{warmup + samples} restarts: the kernel was still loading "
                     "`sleep` when `running` arrived (exec past its point of no return, cmdline not set yet)")
    if any(out["shutdown"]["leftover_children"]):
        notes.append(f"children left after shutdown: {out['shutdown']['leftover_children']}")
    if any(code not in (0, None) for code in out["shutdown"]["exit_codes"]):
        notes.append(f"pmtop exit codes after SIGTERM: {out['shutdown']['exit_codes']}")
    for note in notes:
        print(f"note: {note}")
    out["notes"] = notes

    print()
    print("Markdown (README):")
    print()
    md = [
        "| figure | measured | target | reference |",
        "| --- | --- | --- | --- |",
        f"| crash-to-restart latency (backoff 0), median / p95 | {rs['pmtop_median_ms']:.1f} ms / "
        f"{rs['pmtop_p95_ms']:.1f} ms ({ratio:.2f}x a bare `waitpid`+`Popen` loop: "
        f"{rs['floor_median_ms']:.1f} ms) | <= {TARGET_RESTART_RATIO}x the bare loop | {REF_RESTART} |",
        f"| cold start of {n} processes, interpreter included | {cold_med:.2f} s | "
        f"< {TARGET_COLD_START_S} s | {REF_COLD_START} |",
        f"| idle CPU with {n} running | {idle.get('cpu_percent', float('nan')):.3f} % of one core | "
        f"< {TARGET_IDLE_CPU_PCT} % | {REF_IDLE_CPU} |",
        f"| idle CPU with {n} running, watched with live facts | "
        f"{idle_facts.get('cpu_percent', float('nan')):.2f} % of one core | < {TARGET_FACTS_CPU_PCT:g} % | |",
        f"| supervisor RSS with {n} running | {idle.get('rss_mb', float('nan')):.0f} MB | "
        f"< {TARGET_RSS_MB:g} MB | {REF_RSS} |",
        f"| graceful shutdown of {n} | {down_med:.3f} s | < {TARGET_SHUTDOWN_S} s | {REF_SHUTDOWN} |",
    ]
    print("\n".join(md))
    print()
    print(f"({'quick' if quick else 'full'} run, {out['elapsed_s']:.1f} s, {os.cpu_count()} CPUs, load "
          f"{out['loadavg_start'][0]:.2f} -> {out['loadavg_end'][0]:.2f}; "
          f"`python bench/bench_core.py{' --quick' if quick else ''}`)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
