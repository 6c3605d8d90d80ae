"""Races: many clients at once, a reload in the middle, a process crash-looping all along.

An observer thread counts, many times a second, the live processes of each name (each child's
environment names it: `PMTOP_PROCESS_NAME`): never two at once. Operations on one name are issued
one after the other (a client waits for the previous answer on that name), so "the last operation"
is well defined; across names, ten clients run at once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

from tests.faults.conftest import Home, poll

NAMES = [f"w{i}" for i in range(8)]
OPS = ("start", "stop", "restart")
CRASHER = '["python3", "-c", "raise SystemExit(3)"]'


class Observer(threading.Thread):
    """Counts the run leaders of each name (the daemon's children) until stopped; remembers the worst."""

    def __init__(self, daemon_pid: int) -> None:
        super().__init__(daemon=True)
        self.daemon_process = psutil.Process(daemon_pid)
        self.done = threading.Event()
        self.worst: dict[str, list[int]] = {}
        self.looks = 0

    def run(self) -> None:
        while not self.done.is_set():
            seen: dict[str, list[int]] = {}
            for child in self.daemon_process.children():
                try:
                    if child.status() == psutil.STATUS_ZOMBIE:
                        continue
                    name = child.environ().get("PMTOP_PROCESS_NAME")
                except (psutil.Error, OSError):
                    continue
                if name is not None:
                    seen.setdefault(name, []).append(child.pid)
            for name, pids in seen.items():
                if len(pids) > len(self.worst.get(name, [])):
                    self.worst[name] = pids
            self.looks += 1


def test_concurrent_clients_a_reload_and_a_crash_loop(home: Home) -> None:
    tables = "".join(f'[process.{n}]\ncommand = ["sleep", "600"]\nstop_timeout = "5s"\n' for n in NAMES)
    crasher = f'[process.crasher]\ncommand = {CRASHER}\nrestart = "always"\nbackoff = ["0.05s"]\nmax_restarts = 1000000\n'
    config = home.config(tables + crasher)
    info = home.detach()
    poll(lambda: all(home.processes()[n]["state"] == "running" for n in NAMES), "all running")
    observer = Observer(info["pid"])
    observer.start()
    rng = random.Random(100)
    plan = [(rng.choice(NAMES), rng.choice(OPS)) for _ in range(100)]
    locks = {n: threading.Lock() for n in NAMES}
    last: dict[str, str] = {}
    answers: list[int] = []

    def act(step: tuple[str, str]) -> None:
        name, op = step
        with locks[name]:
            answer = home.api("POST", f"/processes/{name}/{op}")
            answers.append(answer.status_code)
            last[name] = op

    reloaded = threading.Event()

    def reload_midway() -> None:
        poll(lambda: len(answers) >= 40, "forty answers")
        config.write_text(config.read_text() + '[process.added]\ncommand = ["sleep", "601"]\n')
        os.kill(info["pid"], signal.SIGHUP)
        reloaded.set()

    with ThreadPoolExecutor(11) as pool:
        reload = pool.submit(reload_midway)
        list(pool.map(act, plan))
        reload.result()
    assert reloaded.is_set() and answers.count(200) == 100, answers

    def settled() -> dict[str, Any] | None:
        statuses = home.processes()
        want = {n: "stopped" if last.get(n) == "stop" else "running" for n in NAMES}
        ok = all(statuses[n]["state"] == want[n] for n in NAMES) and statuses.get("added", {}).get("state") == "running"
        return statuses if ok else None

    statuses = poll(settled, "the end state of each name = its last operation")
    observer.done.set()
    observer.join()
    assert observer.looks > 10
    assert all(len(pids) == 1 for pids in observer.worst.values()), f"two at once: {observer.worst}"
    assert statuses["crasher"]["restarts"] > 0
    log = home.daemon_logs()
    assert "Traceback" not in log and "unexpected error" not in log and "Exception" not in log, log[-3000:]


def test_fifty_concurrent_registrations(home: Home) -> None:
    config = home.config('[process.first]\ncommand = ["sleep", "600"]\n')
    home.detach()

    def register(i: int) -> int:
        if i % 2:
            return home.api("POST", "/processes", json={"name": f"api{i}", "command": ["sleep", "602"]}).status_code
        return home.run("add", f"cli{i}", "--", "sleep", "603").returncode

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(register, range(50)))
    assert results.count(201) == 25 and results.count(0) == 25, results
    statuses = poll(lambda: (s := home.processes()) and len(s) == 51 and all(p["state"] == "running" for p in s.values())
                    and s, "all 51 running")
    saved = set(tomllib.loads(config.read_text())["process"])  # valid TOML, every table whole
    assert {f"cli{i}" for i in range(0, 50, 2)} <= saved, "every pmtop add of a project process is in pmtop.toml"
    registry = poll(lambda: (r := json.loads((home.state_dir() / "registry.json").read_text()))
                    and len(r["live"]) == 51 and r, "the registry up to date")
    assert set(registry["live"]) == set(statuses)
    assert saved | set(registry["added"]) == set(statuses), "each registration kept once, in one place"
    assert not saved & set(registry["added"])
