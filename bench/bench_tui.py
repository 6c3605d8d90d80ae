#!/usr/bin/env python3
"""Benchmarks of the dashboard, run in a real pseudo-terminal as a person would see it.

    python bench/bench_tui.py [--quick] [--size 250x70] [--json FILE] [--only cpu,latency,fleet] [--profile FILE]

Run it with the interpreter pmtop is installed into (e.g. /work/venv/bin/python). It prints the figures
next to their targets, then a Markdown block for the README.

1. CPU with 1,000 processes whose facts change every second. The dashboard runs in a child process on
   a pty of `--size` (every frame is really rendered and written; the bench drains the terminal). Its
   controller is synthetic: 1,000 running processes, and once a second a new status for each (CPU %,
   RSS), as the facts sampler publishes them. The dashboard's CPU time (user + system, psutil) is
   measured over 20 s (5 s with --quick) once all 1,000 rows are shown; likewise with nothing changing.
   Target: under 10 % of one core.
2. `x` to `stopped`. The dashboard in a pty over a real in-process Supervisor with one real process
   (Python sleeping; SIGTERM ends it at once). The bench writes `x` to the terminal and times until
   the terminal output contains `stopped`, repeated 20 times (5 with --quick), with `s` in between. The
   child reports when the core published `stopped` (CLOCK_MONOTONIC is shared between processes), which
   splits the figure into the process's own stop (key -> core event) and the dashboard's part (core
   event -> on screen). Target: the dashboard's part under 100 ms.
3. The fleet: CPU with 3 daemons x 300 processes whose facts change every second, the dashboard over
   a real `FleetController` (`pmtop --attach URL URL URL`), so the figure includes what a fleet
   costs on top of figure 1: three HTTP event streams parsed (httpx, JSON), statuses renamed
   `HOST/NAME`, merged, a HOST column. The daemons are stand-ins in another process (aiohttp, the
   API's `/status`, `/processes` and `/events` with pmtop's own event framing), sending 300 new
   statuses each per second, as the facts sampler does: 900 real processes would measure the machine,
   not the dashboard. Their CPU is not counted. Target: under 10 % of one core.

`--profile FILE` also writes a cProfile of the dashboard's main thread over the changing phase of figures
1 and 3 (`FILE.cpu`, `FILE.fleet`; read them with pstats). The profiler slows the dashboard down, so the
CPU figures of such a run are not the dashboard's.

Safety: every process the bench starts runs under a throwaway PMTOP_HOME; the dashboard child and its
descendants are killed by PID in `finally` (psutil, create-time checked), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import fcntl
import itertools
import json
import os
import pty
import random
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil

N_PROCESSES = int(os.environ.get("PMTOP_BENCH_N", "1000"))
"""Processes in the synthetic controller (bench_scale.py also runs it with 200)."""
FLEET_HOSTS, FLEET_EACH = 3, 300
TARGET_CPU_PCT = 10.0
TARGET_UI_LATENCY_MS = 100.0
READY_TIMEOUT = 60.0


# ------------------------------------------------------------------------------------------ child


class Synthetic:
    """A `Controller` of `n` running processes whose CPU and RSS change every second (bench only)."""

    def __init__(self, n: int) -> None:
        from pmtop.core.model import Health, ProcessState, ProcessStatus

        now = time.time()
        self.statuses = {
            f"svc-{i:04d}": ProcessStatus(
                name=f"svc-{i:04d}", state=ProcessState.RUNNING, reason="running", pid=100_000 + i,
                ports=(20_000 + i,), health=Health.HEALTHY, started_at=now - random.uniform(10, 90_000),
                cpu_percent=0.0, memory_rss=50_000_000,
            )
            for i in range(n)
        }
        self.queues: set[asyncio.Queue[Any]] = set()
        self.started_at = now

    async def info(self) -> Any:
        from pmtop.core.model import SupervisorInfo

        return SupervisorInfo(instance="bench", pid=os.getpid(), started_at=self.started_at, version="bench",
                              host="127.0.0.1", port=19881)

    async def processes(self, *, facts: bool = False) -> list[Any]:
        return list(self.statuses.values())

    @asynccontextmanager
    async def subscribe(self, *, facts: bool = False) -> AsyncIterator[AsyncIterator[Any]]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queues.add(queue)

        async def events() -> AsyncIterator[Any]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self.queues.discard(queue)

    async def tick_forever(self, changing: asyncio.Event) -> None:
        # Made in advance, so that the bench measures the dashboard rather than making statuses.
        variants = {
            name: [dataclasses.replace(status, cpu_percent=round(random.uniform(0, 40), 1),
                                       memory_rss=random.randint(20_000_000, 900_000_000)) for _ in range(8)]
            for name, status in self.statuses.items()
        }
        for tick in itertools.count():
            await asyncio.sleep(1.0)
            if not changing.is_set():
                continue
            for name, options in variants.items():
                status = self.statuses[name] = options[tick % len(options)]
                for queue in self.queues:
                    queue.put_nowait(status)

    def __getattr__(self, name: str) -> Any:  # start, stop, logs, ...: not used by this bench
        async def refused(*args: object, **kwargs: object) -> Any:
            from pmtop.core.errors import ActionRefused

            raise ActionRefused("synthetic bench controller")

        return refused


def report(line: str) -> None:
    fd = int(os.environ["PMTOP_BENCH_FD"])
    os.write(fd, (line + "\n").encode())


async def follow_parent(changing: asyncio.Event | None = None) -> None:
    """Obey the parent's lines: `changing`/`still` (the synthetic controller's ticks, when it has them),
    `profile`/`profile-stop` (a cProfile of this thread, written to $PMTOP_BENCH_PROFILE)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 os.fdopen(int(os.environ["PMTOP_BENCH_IN"]), "rb"))
    profiler: cProfile.Profile | None = None
    while raw := await reader.readline():
        line = raw.strip()
        if line == b"changing" and changing is not None:
            changing.set()
        elif line == b"still" and changing is not None:
            changing.clear()
        elif line == b"profile" and "PMTOP_BENCH_PROFILE" in os.environ:
            profiler = cProfile.Profile()
            profiler.enable()
        elif line == b"profile-stop" and profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["PMTOP_BENCH_PROFILE"])
            profiler = None


async def child_cpu() -> None:
    from pmtop.tui.app import PmtopApp

    ctl = Synthetic(N_PROCESSES)
    app = PmtopApp(ctl, mode="attached")  # type: ignore[arg-type]
    changing = asyncio.Event()
    ticker = asyncio.create_task(ctl.tick_forever(changing))

    def shown() -> int:
        try:
            return app.main.table.row_count
        except Exception:  # not composed yet
            return 0

    async def watch() -> None:
        while shown() != N_PROCESSES:
            await asyncio.sleep(0.05)
        report("ready")
        await follow_parent(changing)

    watcher = asyncio.create_task(watch())
    await app.run_async()
    ticker.cancel()
    watcher.cancel()


async def child_fleet_cpu() -> None:
    """The dashboard over stand-in daemons at $PMTOP_BENCH_URLS, through a real FleetController."""
    from pmtop.core.api.fleet import FleetController
    from pmtop.core.config.fleet import choose, load_fleet
    from pmtop.tui.app import PmtopApp

    daemons = choose(load_fleet(), os.environ["PMTOP_BENCH_URLS"].split())
    total = FLEET_HOSTS * FLEET_EACH
    async with FleetController(daemons) as ctl:
        app = PmtopApp(ctl, mode="fleet")

        def shown() -> int:
            try:
                return app.main.table.row_count
            except Exception:  # not composed yet
                return 0

        async def watch() -> None:
            while shown() != total:
                await asyncio.sleep(0.05)
            report("ready")
            await follow_parent()

        watcher = asyncio.create_task(watch())
        await app.run_async()
        watcher.cancel()


async def serve_fleet(hosts: int, each: int) -> None:
    """Stand-in daemons for figure 3: one aiohttp server per host on a free loopback port; prints the
    URLs, then ticks (a new status for each process, once a second) while told `changing` on stdin."""
    from aiohttp import web

    from pmtop.core.api.protocol import HEARTBEAT_HEADER, format_event
    from pmtop.core.model import Health, ProcessState, ProcessStatus

    now = time.time()
    changing = asyncio.Event()
    streams: list[set[web.StreamResponse]] = [set() for _ in range(hosts)]
    statuses = [[ProcessStatus(name=f"svc-{i:03d}", state=ProcessState.RUNNING, reason="running", pid=100_000 + i,
                               ports=(20_000 + i,), health=Health.HEALTHY, started_at=now - random.uniform(10, 90_000),
                               cpu_percent=0.0, memory_rss=50_000_000) for i in range(each)] for _ in range(hosts)]
    # Made in advance, so that the stand-ins spend their CPU sending, not encoding.
    ticks = [[b"".join(format_event(dataclasses.replace(s, cpu_percent=round(random.uniform(0, 40), 1),
                                                         memory_rss=random.randint(20_000_000, 900_000_000)).to_dict(),
                                    "status") for s in host) for _ in range(8)] for host in statuses]

    def app_for(index: int) -> web.Application:
        async def status(request: web.Request) -> web.Response:
            return web.json_response({"instance": f"bench-{index}", "pid": os.getpid(), "started_at": now,
                                      "version": "bench", "host": "127.0.0.1", "port": request.url.port})

        async def processes(request: web.Request) -> web.Response:
            return web.json_response({"processes": [s.to_dict() for s in statuses[index]]})

        async def events(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", HEARTBEAT_HEADER: "15"})
            await response.prepare(request)
            streams[index].add(response)
            try:
                while True:
                    await asyncio.sleep(15)
                    await response.write(b": keepalive\n\n")
            finally:
                streams[index].discard(response)

        app = web.Application()
        app.router.add_get("/status", status)
        app.router.add_get("/processes", processes)
        app.router.add_get("/events", events)
        return app

    urls = []
    for index in range(hosts):
        runner = web.AppRunner(app_for(index), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        urls.append(f"http://127.0.0.1:{port}")
    print(" ".join(urls), flush=True)

    async def tick() -> None:
        for n in itertools.count():
            await asyncio.sleep(1.0)
            if changing.is_set():
                for index in range(hosts):
                    for response in list(streams[index]):
                        await response.write(ticks[index][n % 8])

    ticker = asyncio.create_task(tick())
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    while line := await reader.readline():
        if line.strip() == b"changing":
            changing.set()
        elif line.strip() == b"still":
            changing.clear()
    ticker.cancel()


async def child_latency() -> None:
    from pmtop.core.locations import instance_paths
    from pmtop.core.model import ProcessSpec, ProcessStatus
    from pmtop.core.supervisor import Supervisor
    from pmtop.tui.app import PmtopApp

    spec = ProcessSpec("web", (sys.executable, "-c", "import time; time.sleep(3600)"), stop_timeout=5.0)
    sup = Supervisor([spec], paths=instance_paths("bench"))
    app = PmtopApp(sup, mode="local")

    async def watch() -> None:
        async with sup.subscribe() as events:
            async for event in events:
                if isinstance(event, ProcessStatus):
                    report(f"state {event.state.value} {time.monotonic():.6f}")

    watcher = asyncio.create_task(watch())
    try:
        await app.run_async()
    finally:
        watcher.cancel()
        await sup.shutdown()


# ----------------------------------------------------------------------------------------- parent


class Terminal:
    """A child process on a pty of a given size; its output is drained (and watched) by a thread."""

    def __init__(self, mode: str, size: tuple[int, int], home: Path, env: dict[str, str] | None = None) -> None:
        cols, rows = size
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.report_r, report_w = os.pipe()
        control_r, self.control_w = os.pipe()
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows),
               "PMTOP_HOME": str(home), "PMTOP_BENCH_FD": str(report_w), "PMTOP_BENCH_IN": str(control_r),
               **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", mode], stdin=slave, stdout=slave, stderr=slave, env=env,
            pass_fds=(report_w, control_r), start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)
        os.close(slave)
        os.close(report_w)
        os.close(control_r)
        self._lock = threading.Lock()
        self._needle: bytes | None = None
        self._tail = b""
        self._found: float | None = None
        self._seen = threading.Event()
        self._reports = b""
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                if self._needle is not None and self._found is None:
                    window = self._tail + data
                    if self._needle in window:
                        self._found = now
                        self._seen.set()
                    self._tail = window[-len(self._needle):]

    def watch_for(self, needle: str) -> None:
        with self._lock:
            self._needle, self._tail, self._found = needle.encode(), b"", None
            self._seen.clear()

    def wait_seen(self, timeout: float) -> float:
        if not self._seen.wait(timeout):
            raise TimeoutError(f"never saw {self._needle!r} on the terminal")
        assert self._found is not None
        return self._found

    def press(self, key: str) -> float:
        now = time.monotonic()
        os.write(self.master, key.encode())
        return now

    def send(self, line: str) -> None:
        os.write(self.control_w, (line + "\n").encode())

    def read_report(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._reports:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.report_r], [], [], left)[0]:
                raise TimeoutError("the dashboard child did not report in time")
            chunk = os.read(self.report_r, 4096)
            if not chunk:
                raise RuntimeError(f"the dashboard child exited ({self.proc.poll()})")
            self._reports += chunk
        line, self._reports = self._reports.split(b"\n", 1)
        return line.decode()

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def close(self) -> None:
        """Ask the app to quit (`q`), then kill whatever is left: the child and its descendants, by PID."""
        try:
            descendants = self.ps.children(recursive=True)
        except psutil.Error:
            descendants = []
        try:
            os.write(self.master, b"q")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for proc in [self.ps, *descendants]:
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                pass
        self._stop = True
        self.proc.wait(timeout=10)
        for fd in (self.master, self.report_r, self.control_w):
            try:
                os.close(fd)
            except OSError:
                pass


def bench_cpu(size: tuple[int, int], seconds: float, home: Path, n: int = N_PROCESSES,
              profile: Path | None = None) -> dict[str, float]:
    term = Terminal("cpu", size, home, {"PMTOP_BENCH_N": str(n), **profile_env(profile, "cpu")})
    try:
        return measure_cpu(term, term.send, seconds, profile is not None)
    finally:
        term.close()


def bench_fleet_cpu(size: tuple[int, int], seconds: float, home: Path, profile: Path | None = None) -> dict[str, float]:
    """Figure 3: stand-in daemons in one child, the fleet dashboard in another (only its CPU counted)."""
    servers = subprocess.Popen([sys.executable, __file__, "--child", "servers"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert servers.stdout is not None and servers.stdin is not None
        urls = servers.stdout.readline().strip()
        if not urls:
            raise RuntimeError(f"the stand-in daemons did not start ({servers.poll()})")

        def send(command: str) -> None:
            assert servers.stdin is not None
            servers.stdin.write(command + "\n")
            servers.stdin.flush()

        term = Terminal("fleet", size, home, env={"PMTOP_BENCH_URLS": urls, "PMTOP_TOKEN": "bench",
                                                  **profile_env(profile, "fleet")})
        try:
            return measure_cpu(term, send, seconds, profile is not None)
        finally:
            term.close()
    finally:
        try:
            servers.kill()  # by PID: the child we started
        except OSError:
            pass
        servers.wait(timeout=10)


def profile_env(profile: Path | None, figure: str) -> dict[str, str]:
    return {} if profile is None else {"PMTOP_BENCH_PROFILE": f"{profile}.{figure}"}


def measure_cpu(term: Terminal, send: Any, seconds: float, profile: bool = False) -> dict[str, float]:
    """The dashboard's CPU while the statuses change every second, then while nothing changes (with
    `profile`, the child profiles the changing phase)."""
    if term.read_report(READY_TIMEOUT) != "ready":
        raise RuntimeError("unexpected report from the child")
    figures: dict[str, float] = {}
    for phase, command in (("changing", "changing"), ("idle", "still")):
        send(command)
        time.sleep(2.0)  # settle into the phase (a full second of updates, or of quiet)
        if profile and phase == "changing":
            term.send("profile")
        cpu0, wall0 = term.cpu_seconds(), time.monotonic()
        time.sleep(seconds if phase == "changing" else seconds / 2)
        cpu1, wall1 = term.cpu_seconds(), time.monotonic()
        if profile and phase == "changing":
            term.send("profile-stop")
        figures[f"cpu_{phase}_pct"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    figures["rss_mb"] = term.ps.memory_info().rss / 2**20
    figures["load"] = os.getloadavg()[0]
    return figures


def bench_latency(size: tuple[int, int], samples: int, home: Path) -> dict[str, list[float]]:
    term = Terminal("latency", size, home)
    totals: list[float] = []
    core: list[float] = []
    ui: list[float] = []

    def wait_state(state: str) -> float:
        while True:
            kind, value, at = term.read_report(30.0).split()
            if kind == "state" and value == state:
                return float(at)

    try:
        time.sleep(2.0)  # the first frames
        for _ in range(samples):
            term.press("s")
            wait_state("running")
            time.sleep(0.5)  # let the screen settle: the press is measured from a quiet dashboard
            term.watch_for("stopped")
            pressed = term.press("x")
            on_screen = term.wait_seen(30.0)
            published = wait_state("stopped")
            totals.append(on_screen - pressed)
            core.append(published - pressed)
            ui.append(on_screen - published)
            time.sleep(0.2)
        return {"total": totals, "core": core, "ui": ui}
    finally:
        term.close()


def ms(values: list[float], q: float | None = None) -> float:
    data = sorted(values)
    if q is None:
        return 1000 * statistics.median(data)
    return 1000 * data[min(len(data) - 1, int(round(q * (len(data) - 1))))]


CHILDREN = {"cpu": child_cpu, "latency": child_latency, "fleet": child_fleet_cpu,
            "servers": lambda: serve_fleet(FLEET_HOSTS, FLEET_EACH)}
FIGURES = ("cpu", "latency", "fleet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s of CPU, 5 latency samples")
    parser.add_argument("--size", default="250x70", help="terminal COLSxROWS (default 250x70)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", default=",".join(FIGURES), help=f"some of {','.join(FIGURES)} (default: all)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="write cProfiles of the changing phases to FILE.cpu, FILE.fleet (slows the dashboard)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(CHILDREN[args.child]())
        return 0
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    if not only or set(only) - set(FIGURES):
        parser.error(f"--only takes some of {','.join(FIGURES)}")
    cols, rows = (int(n) for n in args.size.split("x"))
    seconds, samples = (5.0, 5) if args.quick else (20.0, 20)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rows_out: list[tuple[str, str, str]] = []
    figures: dict[str, Any] = {"size": [cols, rows]}
    with tempfile.TemporaryDirectory(prefix="pmtop-bench-tui-") as home:
        print(f"pmtop dashboard bench: {os.cpu_count()} CPUs, terminal {cols}x{rows}, Python {sys.version.split()[0]}, "
              f"load {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
        if "cpu" in only:
            print(f"[cpu] CPU with {N_PROCESSES} processes changing every second, {seconds:.0f} s ...", flush=True)
            cpu = figures["cpu"] = bench_cpu((cols, rows), seconds, Path(home), profile=args.profile)
            rows_out += [
                ("dashboard CPU, 1,000 processes changing every second", f"{cpu['cpu_changing_pct']:.1f} % of a core",
                 f"< {TARGET_CPU_PCT:g} %"),
                ("dashboard CPU, 1,000 processes, nothing changing", f"{cpu['cpu_idle_pct']:.1f} % of a core", ""),
                ("dashboard RSS with 1,000 rows", f"{cpu['rss_mb']:.0f} MB", ""),
            ]
        if "latency" in only:
            print(f"[latency] x -> 'stopped' on screen, {samples} samples ...", flush=True)
            lat = figures["latency_s"] = bench_latency((cols, rows), samples, Path(home))
            rows_out += [
                ("x -> row shows stopped (median, p90)", f"{ms(lat['total']):.0f} ms, {ms(lat['total'], 0.9):.0f} ms", ""),
                ("  of which the process's own stop (key -> core event)", f"{ms(lat['core']):.0f} ms", ""),
                ("  of which the dashboard (core event -> on screen)",
                 f"{ms(lat['ui']):.0f} ms, p90 {ms(lat['ui'], 0.9):.0f} ms", f"< {TARGET_UI_LATENCY_MS:g} ms"),
            ]
        if "fleet" in only:
            total = FLEET_HOSTS * FLEET_EACH
            print(f"[fleet] CPU with {FLEET_HOSTS} daemons x {FLEET_EACH} processes changing every second, "
                  f"{seconds:.0f} s ...", flush=True)
            fleet = figures["fleet"] = bench_fleet_cpu((cols, rows), seconds, Path(home), args.profile)
            rows_out += [
                (f"fleet dashboard CPU, {FLEET_HOSTS} daemons x {FLEET_EACH} processes changing every second",
                 f"{fleet['cpu_changing_pct']:.1f} % of a core", f"< {TARGET_CPU_PCT:g} %"),
                (f"fleet dashboard CPU, {total} processes, nothing changing", f"{fleet['cpu_idle_pct']:.1f} % of a core", ""),
                (f"fleet dashboard RSS with {total} rows", f"{fleet['rss_mb']:.0f} MB", ""),
            ]
        load = os.getloadavg()[0]
    width = max(len(r[0]) for r in rows_out)
    print()
    for label, value, target in rows_out:
        print(f"{label.ljust(width)}  {value.ljust(24)}  {target}")
    print(f"\n(load average at the end: {load:.2f} on {os.cpu_count()} CPUs: a loaded machine makes every figure noisy)")
    print()
    print("Markdown (README):\n")
    print("| dashboard | measured | target |\n| --- | --- | --- |")
    for label, value, target in rows_out:
        print(f"| {label.strip()} | {value} | {target} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
