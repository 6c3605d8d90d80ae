#!/usr/bin/env python3
"""What one browser session of `pmtop web` costs: memory and CPU of its dashboard process and of the
web server, and how long a tab takes to show the table.

    python bench/bench_web.py [--processes 20] [--seconds 20] [--tabs 3]

A real daemon (`pmtop --headless`, `--processes` Python sleepers) and a real `pmtop web` under a
throwaway PMTOP_HOME; Debian's Chromium (headless, Playwright) opens the printed link. Figures:

1. the web server alone: RSS and USS (memory only this process holds) with no session;
2. per session: the dashboard process's RSS and USS, and how much the web server grows, averaged over
   `--tabs` tabs opened one after another;
3. CPU over `--seconds` with one tab showing the table (facts change every second, the uptime ticks):
   the session's dashboard, the web server, the daemon; and the same daemon with no tab open;
4. time from opening the link to the table on screen (a new Python process, Textual, attaching).

Chromium's own cost is not counted: it is the user's browser. Every process started here is stopped
in `finally` (by PID).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.browser import CATCH_TERMINALS, CHROMIUM, CHROMIUM_ARGS, wait_screen  # noqa: E402

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]
MB = 1024 * 1024


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_web: timed out waiting for {what}")
        time.sleep(0.05)
    return value


def answers(port: int, service: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(json.loads(answer.read()).get("service") == service)
    except (OSError, ValueError):
        return False


def memory(proc: psutil.Process) -> tuple[float, float]:
    info = proc.memory_full_info()
    return info.rss / MB, info.uss / MB


def cpu_percent(procs: list[psutil.Process], seconds: float) -> list[float]:
    before = [p.cpu_times() for p in procs]
    start = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    elapsed = time.monotonic() - start
    after = [p.cpu_times() for p in procs]
    return [100 * ((a.user + a.system) - (b.user + b.system)) / elapsed for a, b in zip(after, before, strict=True)]


def sessions(web: psutil.Process) -> list[psutil.Process]:
    return [c for c in web.children() if "--web-session" in c.cmdline()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tabs", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"bench_web: no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="pmtop-bench-web-"))
    daemon_port, web_port = free_port(), free_port()
    sleeper = json.dumps([sys.executable, "-c", "import time; time.sleep(3600)"])
    config = f"[daemon]\nport = {daemon_port}\n" + "".join(
        f"[process.p{i:02d}]\ncommand = {sleeper}\n" for i in range(args.processes))
    (folder / "pmtop.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
    env["PMTOP_HOME"] = str(folder / "home")
    started: list[subprocess.Popen[bytes]] = []
    try:
        daemon = subprocess.Popen([*PMTOP, "--headless"], cwd=folder, env=env, stdout=subprocess.DEVNULL)
        started.append(daemon)
        until(lambda: answers(daemon_port, "pmtop"), "the daemon")
        web_proc = subprocess.Popen([*PMTOP, "web", "--no-browser", "--port", str(web_port)], cwd=folder, env=env,
                                    stdout=subprocess.DEVNULL)
        started.insert(0, web_proc)
        until(lambda: answers(web_port, "pmtop-web"), "pmtop web")
        web, daemon_ps = psutil.Process(web_proc.pid), psutil.Process(daemon.pid)
        token = (folder / "home" / "state" / "default" / "token").read_text().strip()
        time.sleep(1)  # settle after start-up
        web_alone = memory(web)
        daemon_idle_cpu, web_idle_cpu = cpu_percent([daemon_ps, web], args.seconds / 2)

        rows: dict[str, Any] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 800})
            context.add_init_script(CATCH_TERMINALS)
            first_frames, session_mem, web_growth = [], [], []
            pages = []
            for tab in range(args.tabs):
                before = memory(web)
                page = context.new_page()
                start = time.monotonic()
                page.goto(f"http://127.0.0.1:{web_port}/?token={token}")
                wait_screen(page, lambda s: "p00" in s and "running" in s, "the table", timeout=60)
                first_frames.append(time.monotonic() - start)
                pages.append(page)
                until(lambda want=tab + 1: len(sessions(web)) == want, "the session process")
                time.sleep(2)  # the dashboard settles (first facts, layout)
                newest = max(sessions(web), key=lambda p: p.create_time())
                session_mem.append(memory(newest))
                web_growth.append(memory(web)[0] - before[0])
                if tab == 0:
                    session = newest
                    cpu_session, cpu_web, cpu_daemon = cpu_percent([session, web, daemon_ps], args.seconds)
                    rows["cpu"] = (cpu_session, cpu_web, cpu_daemon)
            for page in pages:
                page.close()
            browser.close()
        until(lambda: not sessions(web), "the sessions to end")
        cpu_session, cpu_web, cpu_daemon = rows["cpu"]
        print(f"bench_web: {args.processes} processes, {args.tabs} tabs, CPU over {args.seconds:g} s "
              f"(load {os.getloadavg()[0]:.2f}; a shared 2-core machine: noisy)\n")
        print("| figure | measured |")
        print("| --- | --- |")
        print(f"| web server, no session: RSS / USS | {web_alone[0]:.1f} MB / {web_alone[1]:.1f} MB |")
        print(f"| web server, no session: CPU | {web_idle_cpu:.2f} % of one core |")
        print(f"| per session: the dashboard process, RSS / USS | "
              f"{statistics.mean(m[0] for m in session_mem):.1f} MB / {statistics.mean(m[1] for m in session_mem):.1f} MB |")
        print(f"| per session: the web server grows by (RSS) | {statistics.mean(web_growth):.1f} MB |")
        print(f"| CPU, one tab showing the table: dashboard / web server | {cpu_session:.2f} % / {cpu_web:.2f} % of one core |")
        print(f"| CPU of the daemon: watched by the tab / no tab | {cpu_daemon:.2f} % / {daemon_idle_cpu:.2f} % of one core |")
        print(f"| link opened to table shown, median of {args.tabs} | {statistics.median(first_frames):.2f} s |")
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
