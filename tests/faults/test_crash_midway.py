"""SIGKILL of the supervisor in the middle of starting, stopping and restarting processes, and while
`registry.json` is being written: the next supervisor adopts or starts each process once, none twice.

What the killed supervisor had spawned but not yet recorded runs on unwatched; the next one finds it
by the `PMTOP_RUN_DIR` in its environment and kills it before starting anything (`system.strays`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading

import psutil

from tests.faults.conftest import Home, pid_alive, poll, processes_of, wait_gone

N = 30
SLEEPERS = "".join(f'[process.s{i:02d}]\ncommand = ["sleep", "{700 + i}"]\n' for i in range(N))
STUBBORN = ('["python3", "-c", "import signal, sys, time\\nsignal.signal(signal.SIGTERM, lambda *a: None)\\n'
            'print(\'up\', flush=True)\\ntime.sleep(600)"]')
"""Ignores SIGTERM once it says `up`: its `ready_log_line`, so that `running` means a stop finds it stubborn
(a SIGTERM during the interpreter's start-up would end it at once, and the test would wait in vain)."""


def copies(home: Home) -> dict[str, list[int]]:
    """`sleep 7NN` and stubborn processes of this home, by the command's last word."""
    found: dict[str, list[int]] = {}
    for proc in processes_of(home.root):
        try:
            cmdline = proc.cmdline()
            if cmdline[:1] == ["sleep"] or (len(cmdline) > 2 and "SIGTERM" in cmdline[2]):
                key = cmdline[-1] if cmdline[0] == "sleep" else proc.environ().get("PMTOP_PROCESS_NAME", "?")
                found.setdefault(key, []).append(proc.pid)
        except psutil.Error:  # gone meanwhile (the crash loop)
            continue
    return found


def one_each(home: Home, expected: int) -> dict[str, dict[str, object]]:
    """Every process running, once: the PID the daemon reports is the only copy there is."""
    statuses = poll(lambda: (s := home.processes()) and all(p["state"] == "running" for p in s.values()) and s,
                    "every process running")
    assert len(statuses) == expected
    live = poll(lambda: (c := copies(home)) and sum(map(len, c.values())) == expected and c,
                "no leftover copies", timeout=15)
    assert all(len(pids) == 1 for pids in live.values()), live
    assert sorted(p for pids in live.values() for p in pids) == sorted(int(s["pid"]) for s in statuses.values())
    return statuses


def registry_ok(home: Home) -> dict[str, object]:
    data = json.loads((home.state_dir() / "registry.json").read_text())
    assert data["version"] == 1 and isinstance(data["live"], dict)
    return data


def kill_foreground(home: Home, args: tuple[str, ...], when: object) -> None:
    """Start `pmtop --headless` in the foreground and SIGKILL it as soon as `when(daemon)` holds."""
    daemon = home.spawn("--headless", *args)
    poll(lambda: daemon.poll() is None and when(daemon), "the moment to strike")  # type: ignore[operator]
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait()


def test_killed_while_starting(home: Home) -> None:
    home.config(SLEEPERS)

    def some_spawned(daemon: object) -> bool:
        return len(psutil.Process(daemon.pid).children()) >= 3  # type: ignore[attr-defined]

    kill_foreground(home, (), some_spawned)
    home.detach()
    one_each(home, N)
    registry_ok(home)


def test_killed_while_stopping_and_restarting(home: Home) -> None:
    home.config(f'[defaults]\nstop_timeout = "30s"\n{SLEEPERS}'
                + "".join(f"[process.stubborn{i}]\ncommand = {STUBBORN}\nready_log_line = \"^up$\"\n" for i in range(3)))
    info = home.detach()
    before = one_each(home, N + 3)
    poll(lambda: len(registry_ok(home)["live"]) == N + 3, "every process in the registry")
    stopper = threading.Thread(target=lambda: home.try_api("POST", "/processes/*/stop", json={
        "names": [f"stubborn{i}" for i in range(3)] + [f"s{i:02d}" for i in range(0, N, 2)]}))
    stopper.start()
    poll(lambda: sum(s["state"] == "stopping" for s in home.processes().values()) == 3, "the stubborn ones stopping")
    restarter = threading.Thread(target=lambda: [home.try_api("POST", f"/processes/s{i:02d}/restart")
                                                 for i in range(1, N, 2)])
    restarter.start()
    poll(lambda: any(s["pid"] != before[n]["pid"] for n, s in home.processes().items()
                     if n in {f"s{i:02d}" for i in range(1, N, 2)}), "restarts under way")
    os.kill(info["pid"], signal.SIGKILL)
    stopper.join()
    restarter.join()
    poll(lambda: not pid_alive(info["pid"]), "the supervisor to die")
    registry_ok(home)
    home.detach()
    statuses = home.processes()
    live = copies(home)
    for name, status in statuses.items():
        key = name if name.startswith("stubborn") else str(700 + int(name[1:]))
        pids = live.get(key, [])
        assert len(pids) <= 1, f"{name} runs twice: {pids}"
        if status["state"] == "running":
            assert pids == [status["pid"]], (name, status, pids)
        else:
            assert not pids, (name, status, pids)
    for name in statuses:  # and whatever state each was left in, it starts once
        home.api("POST", f"/processes/{name}/start")
    one_each(home, N + 3)


def test_killed_while_writing_the_registry(home: Home) -> None:
    """A crash loop rewrites registry.json many times a second; the supervisor dies at random moments."""
    home.config('[process.loop]\ncommand = ["python3", "-c", "pass"]\nrestart = "always"\nbackoff = ["0s"]\n'
                f'max_restarts = 1000000\n{SLEEPERS}')
    rng = random.Random(7)
    pause = threading.Event()
    for _ in range(4):
        info = home.detach()
        one_each_but_loop(home)
        pause.wait(rng.uniform(0.0, 0.3))  # a random moment in the crash loop's churn (fault timing)
        os.kill(info["pid"], signal.SIGKILL)
        wait_gone(info["pid"])
        registry_ok(home)
    (home.state_dir() / ".registry.json.killedwriter.tmp").write_text('{"version": 1, "li')  # as a kill leaves it
    left = {p.name for p in home.state_dir().iterdir() if p.name.endswith(".tmp")}
    home.detach()
    one_each_but_loop(home)
    registry_ok(home)
    now = {p.name for p in home.state_dir().iterdir() if p.name.endswith(".tmp")}  # (the new one may be writing)
    assert not left & now, "half-written files of the dead supervisor are removed"


def one_each_but_loop(home: Home) -> None:
    statuses = poll(lambda: (s := home.processes()) and all(p["state"] == "running" for n, p in s.items()
                                                            if n != "loop") and s, "every sleeper running")
    live = poll(lambda: (c := copies(home)) and sum(map(len, c.values())) == N and c, "one copy each", timeout=15)
    assert all(len(p) == 1 for p in live.values()), live
    assert sorted(p[0] for p in live.values()) == sorted(int(s["pid"]) for n, s in statuses.items() if n != "loop")
