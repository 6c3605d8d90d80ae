"""Client-side figures: `pmtop ps` as a whole process, `GET /processes` at 1,000 processes, the
latency of a status event on `/events`, and `pmtop ps --fleet` over three daemons. Prints figures;
asserts nothing.

    python bench/bench_cli.py [--only ps,list,fleet]

Each daemon is a real `pmtop --headless --port auto` subprocess with PMTOP_HOME in a temporary folder,
running `sleep` children; everything is stopped (SIGTERM, then SIGKILL by PID) and removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pmtop.core.api.sync_client import Client

RUNS = 20
EVENTS = 50
SLEEP = shutil.which("sleep") or "/bin/sleep"


def pmtop_command() -> list[str]:
    """The installed console script when there is one (what a user runs), else `python -m`."""
    script = Path(sys.executable).parent / "pmtop"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pmtop.cli.main"]


def config(count: int) -> str:
    lines = ['[defaults]', 'stop_timeout = "5s"', ""]
    for i in range(count):
        lines += [f"[process.p{i:04d}]", f'command = ["{SLEEP}", "3600"]', ""]
    return "\n".join(lines)


@contextmanager
def daemon(root: Path, count: int, tag: str = "") -> Iterator[tuple[Path, dict[str, str], int, str]]:
    """A daemon running `count` sleeps; yields (its folder, the environment to reach it, its port, its
    token, read from the instance's token file as every client does)."""
    tag = tag or str(count)
    folder = root / f"project-{tag}"
    folder.mkdir()
    (folder / "pmtop.toml").write_text(config(count))
    env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
    env["PMTOP_HOME"] = str(root / f"home-{tag}")
    log = open(root / f"daemon-{tag}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pmtop.cli.main", "--headless", "--port", "auto"], cwd=folder,
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        info_path = Path(env["PMTOP_HOME"]) / "state" / "default" / "daemon.json"
        deadline = time.monotonic() + 120
        port, token = 0, ""
        while True:  # a process we cannot await: poll with a deadline
            if proc.poll() is not None:
                raise SystemExit(f"the daemon exited: {(root / f'daemon-{tag}.log').read_text()}")
            try:
                info = json.loads(info_path.read_text())
                if info["pid"] == proc.pid:
                    port = int(info["port"])
                    token = (info_path.parent / "token").read_text().strip()
                    with Client("127.0.0.1", port, token=token) as client:
                        if sum(s["state"] == "running" for s in client.processes()) == count:
                            break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the daemon did not get all its processes running within 120s")
            time.sleep(0.1)
        yield folder, env, port, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f})"


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> list[float]:
    """Wall times of `command` as a whole process, after one warm-up run (which also writes the
    bytecode caches, as an installed package has them: PYTHONDONTWRITEBYTECODE is dropped)."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def bench_ps(folder: Path, env: dict[str, str]) -> None:
    baseline = wall([sys.executable, "-c", "pass"], folder, env)
    ps = wall([*pmtop_command(), "ps"], folder, env)
    ps_json = wall([*pmtop_command(), "ps", "--json"], folder, env)
    print(f"python -c pass                   {median_ms(baseline)}")
    print(f"pmtop ps (200 processes)         {median_ms(ps)}   target < 100 ms")
    print(f"pmtop ps --json (200 processes)  {median_ms(ps_json)}")


def bench_list(port: int, token: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    size = 0
    for _ in range(RUNS):
        start = time.perf_counter()
        conn.request("GET", "/processes", headers={"Authorization": f"Bearer {token}"})
        body = conn.getresponse().read()
        json.loads(body)
        times.append(time.perf_counter() - start)
        size = len(body)
    conn.close()
    print(f"GET /processes (1,000 processes) {median_ms(times)}   ({size / 1024:.0f} KiB, keep-alive, parsed)")


def bench_events(port: int, token: str, count: int) -> None:
    """From sending a stop/start to its first status event arriving on an open `/events` stream."""
    name = "p0000"
    stream = Client("127.0.0.1", port, token=token).events("/events")
    seen = 0
    while seen < count:  # the snapshot: one status per process
        event, _ = next(stream)
        seen += event == "status"
    actor = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(EVENTS):
        verb, first_state = ("stop", "stopping") if i % 2 == 0 else ("start", "starting")
        start = time.perf_counter()
        actor.request("POST", f"/processes/{name}/{verb}", headers={"Authorization": f"Bearer {token}"})
        while True:
            event, data = next(stream)
            if event == "status":
                status = json.loads(data)
                if status["name"] == name and status["state"] == first_state:
                    times.append(time.perf_counter() - start)
                    break
        actor.getresponse().read()
        while True:  # let it settle before the next round
            event, data = next(stream)
            status = json.loads(data) if event == "status" else {}
            if status.get("name") == name and status.get("state") in ("stopped", "running"):
                break
    actor.close()
    stream.close()
    print(f"SSE latency, action -> event     {median_ms(times)}   ({EVENTS} stop/start rounds, {count} processes)")


def bench_ps_fleet(root: Path, counts: tuple[int, ...]) -> None:
    """`pmtop ps --fleet` over one daemon per count (each in its own PMTOP_HOME), as a whole process."""
    with ExitStack() as stack:
        daemons = [stack.enter_context(daemon(root, count, f"fleet-{sum(counts)}-{i}")) for i, count in enumerate(counts)]
        home = root / f"fleet-user-{len(counts)}-{sum(counts)}"
        (home / "config").mkdir(parents=True)
        lines = ["[fleet]", "daemons = ["]
        for i, (_, env, port, _) in enumerate(daemons):
            token = Path(env["PMTOP_HOME"]) / "state" / "default" / "token"
            lines.append(f'  {{ url = "http://127.0.0.1:{port}", token_file = "{token}", name = "host{i}" }},')
        (home / "config" / "fleet.toml").write_text("\n".join([*lines, "]"]) + "\n")
        env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
        env["PMTOP_HOME"] = str(home)
        times = wall([*pmtop_command(), "ps", "--fleet"], home, env)
        shape = " + ".join(map(str, counts))
        print(f"pmtop ps --fleet ({len(counts)} daemons, {shape} processes) {median_ms(times)}   target < 100 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ps,list,fleet", help="some of ps,list,fleet (default: all)")
    only = parser.parse_args().only.split(",")
    root = Path(tempfile.mkdtemp(prefix="pmtop-bench-cli-"))
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
              f"medians of {RUNS} runs")
        if "ps" in only:
            with daemon(root, 200) as (folder, env, port, token):
                bench_ps(folder, env)
                bench_events(port, token, 200)
        if "list" in only:
            with daemon(root, 1000) as (_, _, port, token):
                bench_list(port, token)
        if "fleet" in only:
            bench_ps_fleet(root, (67, 67, 66))
            bench_ps_fleet(root, (200, 200, 200))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
