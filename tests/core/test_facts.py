"""Live process facts from real processes: tree RSS, CPU, listening ports, churn, and the sampler's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psutil
import pytest

from pmtop.core.system import facts as facts_mod
from pmtop.core.system.facts import Facts, FactsSampler, _Reader
from tests.waiting import poll_until

MB = 1024 * 1024
INTERVAL = 0.1
SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"

Spawn = Callable[[str], Awaitable[tuple[int, str]]]
"""Starts `python -c code` and returns its PID and its first line of output (stdin and stdout are pipes,
kept in `spawned`)."""


@pytest.fixture
async def spawn(spawned: list[asyncio.subprocess.Process]) -> AsyncIterator[Spawn]:
    """Children started here are killed afterwards, by PID, together with every descendant they reported."""
    tracked: list[psutil.Process] = []

    async def start(code: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        spawned.append(proc)
        tracked.append(psutil.Process(proc.pid))
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        for word in line.split():
            if word.startswith("pid="):  # a grandchild announcing itself: ours to kill too
                with contextlib.suppress(psutil.NoSuchProcess):
                    tracked.append(psutil.Process(int(word[4:])))
        return proc.pid, line

    try:
        yield start
    finally:
        for p in tracked:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()  # psutil checks the create time, so a reused PID is never hit
        for proc in spawned:  # close both pipes, so that no transport outlives the loop
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            await asyncio.wait_for(proc.stdout.read(), 10)
            await proc.wait()


@pytest.fixture
def spawned() -> list[asyncio.subprocess.Process]:
    return []


def readers() -> list[Any]:
    """Every way of reading facts that this machine supports: each must give the same answers."""
    modes = [pytest.param(dict(source="psutil", netlink=False), id="psutil")]
    if facts_mod.HAS_PROC:
        modes.insert(0, pytest.param(dict(source="all", netlink=False), id="all-proc-net-tcp"))
    if facts_mod._default_source() == "children":
        modes.insert(0, pytest.param(dict(source="children", netlink=True), id="children-netlink"))
    return modes


@pytest.mark.parametrize("mode", readers())
async def test_rss_of_the_whole_tree(spawn: Spawn, mode: dict[str, Any]) -> None:
    child = "import time; b = b'x' * (30 << 20); time.sleep(600)"
    pid, _ = await spawn(
        "import subprocess, sys, time\n"
        f"kids = [subprocess.Popen([sys.executable, '-c', {child!r}]) for _ in range(2)]\n"
        "print('ready', *[f'pid={k.pid}' for k in kids], flush=True); time.sleep(600)"
    )
    reader = _Reader(**mode)
    own = psutil.Process(pid).memory_info().rss
    await poll_until(
        lambda: (reader.sample({"t": pid})["t"].memory_rss or 0) >= 60 * MB + own,
        what="two 30 MB children counted in the tree's RSS",
    )


async def test_rss_of_a_50_mb_process_via_sample_now(spawn: Spawn) -> None:
    pid, _ = await spawn("import time; b = b'x' * (50 << 20); print('ready', flush=True); time.sleep(600)")
    sampler = FactsSampler(lambda: {"big": pid}, lambda changed: None)
    got = await sampler.sample_now()
    assert got["big"].memory_rss is not None and got["big"].memory_rss >= 40 * MB, got
    assert got["big"].cpu_percent is None, "one sample cannot give a CPU figure"
    assert not sampler.running


@pytest.mark.parametrize("mode", readers())
async def test_cpu_of_a_busy_loop(spawn: Spawn, mode: dict[str, Any]) -> None:
    pid, _ = await spawn("print('ready', flush=True)\nwhile True: pass")
    reader = _Reader(**mode)
    seen: list[float | None] = []

    def busy() -> bool:
        seen.append(reader.sample({"busy": pid})["busy"].cpu_percent)
        return (seen[-1] or 0.0) > 20

    try:
        await poll_until(busy, what="a busy loop above 20 % CPU")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; saw {seen[-5:]}") from None
    assert seen[0] is None


@pytest.mark.parametrize("mode", readers())
async def test_cpu_of_a_child_born_between_samples_counts_from_its_birth(
    spawn: Spawn, spawned: list[asyncio.subprocess.Process], mode: dict[str, Any]
) -> None:
    pid, _ = await spawn(
        "import subprocess, sys, time\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "print(f'pid={kid.pid}', flush=True); time.sleep(600)"
    )
    proc = spawned[-1]
    assert proc.stdin is not None and proc.stdout is not None
    reader = _Reader(**mode)
    reader.sample({"p": pid})
    proc.stdin.write(b"go\n")
    kid = psutil.Process(int((await asyncio.wait_for(proc.stdout.readline(), 20)).split(b"=")[1]))
    try:
        await poll_until(lambda: sum(kid.cpu_times()[:2]) > 0.05, what="the new child to use some CPU")
        cpu = reader.sample({"p": pid})["p"].cpu_percent
        assert cpu is not None and cpu > 0, "a child born since the last sample counts from its birth"
    finally:
        kid.kill()


@pytest.mark.parametrize("mode", readers())
async def test_cpu_of_an_old_process_new_to_the_sampler_is_not_its_lifetime(
    spawn: Spawn, mode: dict[str, Any]
) -> None:
    idle, _ = await spawn(SLEEPER)
    busy, _ = await spawn("print('ready', flush=True)\nwhile True: pass")
    await poll_until(lambda: sum(psutil.Process(busy).cpu_times()[:2]) > 0.5, what="0.5 s of CPU")
    reader = _Reader(**mode)
    reader.sample({"idle": idle})
    used = sum(psutil.Process(busy).cpu_times()[:2])
    await poll_until(lambda: sum(psutil.Process(busy).cpu_times()[:2]) > used + 0.2, what="0.2 s more")
    cpu = reader.sample({"idle": idle, "busy": busy})["busy"].cpu_percent
    assert cpu is None or cpu <= 150, f"{cpu} %: its lifetime's CPU, not the last interval's"


GRANDCHILD = (
    "import os, socket, time\n"
    "s = socket.socket(socket.{family}); s.bind(({host!r}, 0)); s.listen()\n"
    "print('port', s.getsockname()[1], f'pid={{os.getpid()}}', flush=True); time.sleep(600)"
)


def _listener_tree(family: str, host: str) -> str:
    """A child whose grandchild listens, and that passes on the grandchild's announcement."""
    grandchild = GRANDCHILD.format(family=family, host=host)
    return (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(600)"
    )


@pytest.mark.parametrize("mode", readers())
async def test_port_of_a_grandchild_listener(spawn: Spawn, mode: dict[str, Any]) -> None:
    other, _ = await spawn(SLEEPER)
    pid, line = await spawn(_listener_tree("AF_INET", "127.0.0.1"))
    port = int(line.split()[1])
    got = _Reader(**mode).sample({"web": pid, "other": other})
    assert got["web"].ports == (port,), got
    assert got["other"].ports == ()


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("mode", readers())
async def test_port_of_an_ipv6_listener(spawn: Spawn, mode: dict[str, Any]) -> None:
    pid, line = await spawn(_listener_tree("AF_INET6", "::1"))
    port = int(line.split()[1])
    assert _Reader(**mode).sample({"v6": pid})["v6"].ports == (port,)


@pytest.mark.skipif(not facts_mod.HAS_PROC, reason="Linux only")
async def test_netlink_and_proc_net_agree(spawn: Spawn) -> None:
    _, line = await spawn(_listener_tree("AF_INET", "127.0.0.1"))
    port = int(line.split()[1])
    netlink, proc_net = facts_mod._netlink_listeners(), facts_mod._proc_net_listeners()
    mine = {inode for inode, p in netlink.items() if p == port}
    assert len(mine) == 1 and {inode for inode, p in proc_net.items() if p == port} == mine


@pytest.mark.skipif(not facts_mod.HAS_PROC, reason="Linux only")
async def test_a_new_listener_in_a_known_process_is_found(
    spawn: Spawn, spawned: list[asyncio.subprocess.Process]
) -> None:
    """The fd cache must not hide a socket that a process opens after its fds were first read."""
    pid, _ = await spawn(
        "import socket, sys, time\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(600)"
    )
    reader = _Reader()
    assert reader.sample({"late": pid})["late"].ports == ()
    proc = spawned[-1]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"go\n")
    port = int(await asyncio.wait_for(proc.stdout.readline(), 20))
    assert reader.sample({"late": pid})["late"].ports == (port,)


@pytest.mark.parametrize("mode", readers())
async def test_vanished_zombie_and_churning_processes_are_skipped(
    spawn: Spawn, mode: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its PID names nobody (or, rarely, someone else: then it is simply measured)
    zombie = psutil.Popen([sys.executable, "-c", "pass"])
    try:
        await poll_until(lambda: zombie.status() == psutil.STATUS_ZOMBIE, what="an unreaped child")
        # forks children that hold a listener and exit at once, so the tree changes mid-sample
        churn, _ = await spawn(
            "import os, socket\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('ready', flush=True)\n"
            "while True:\n"
            "    pid = os.fork()\n"
            "    if pid == 0: os._exit(0)\n"
            "    os.waitpid(pid, 0)"
        )
        reader = _Reader(**mode)
        for _ in range(30):
            got = reader.sample({"gone": gone.pid, "zombie": zombie.pid, "churn": churn})
            assert "zombie" not in got
            assert len(got["churn"].ports) == 1
        samples = 0

        def roots() -> dict[str, int]:
            nonlocal samples
            samples += 1
            return {"gone": gone.pid, "zombie": zombie.pid, "churn": churn}

        sampler = FactsSampler(roots, lambda changed: None, interval=0.01)
        sampler._reader = reader
        with caplog.at_level(logging.WARNING, logger="pmtop.core.system.facts"):
            async with sampler.watching():
                await poll_until(lambda: samples >= 2 * 20, what="20 samples by the task")
        assert not caplog.records, caplog.text
    finally:
        zombie.wait()


async def test_on_sample_reports_only_changes(spawn: Spawn) -> None:
    a, _ = await spawn(SLEEPER)
    b, _ = await spawn(SLEEPER)
    reports: list[dict[str, Facts]] = []
    threads: set[int] = set()
    samples = 0

    def roots() -> dict[str, int]:
        nonlocal samples
        samples += 1  # twice per sample: before and after the thread call
        return {"a": a, "b": b}

    def on_sample(changed: dict[str, Facts]) -> None:
        threads.add(threading.get_ident())
        reports.append(changed)

    sampler = FactsSampler(roots, on_sample, interval=INTERVAL)
    async with sampler.watching():
        await poll_until(lambda: samples >= 2 * 8, what="8 samples")
    assert threads == {threading.get_ident()}, "on_sample runs on the event loop"
    for name in ("a", "b"):
        mine = [r[name] for r in reports if name in r]
        assert mine[0].cpu_percent is None and mine[1].cpu_percent is not None
        assert all(x != y for x, y in zip(mine, mine[1:], strict=False)), f"{name} reported without a change: {mine}"
        assert len(mine) <= 3, f"an idle process is reported again and again: {mine}"


async def test_facts_of_a_process_that_restarted_mid_sample_are_dropped(spawn: Spawn) -> None:
    a, _ = await spawn(SLEEPER)
    b, _ = await spawn(SLEEPER)
    calls = 0

    def roots() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"p": a if calls % 2 else b}  # a new root PID between the two calls of every sample

    reports: list[dict[str, Facts]] = []
    sampler = FactsSampler(roots, reports.append, interval=INTERVAL)
    async with sampler.watching():
        await poll_until(lambda: calls >= 6, what="3 samples")
    assert reports == []


async def test_the_task_runs_only_while_watched(spawn: Spawn) -> None:
    pid, _ = await spawn(SLEEPER)
    calls = 0

    def roots() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"p": pid}

    reports: list[dict[str, Facts]] = []
    sampler = FactsSampler(roots, reports.append, interval=INTERVAL)
    assert not sampler.running and _facts_tasks() == set()
    await sampler.sample_now()  # a one-shot sample starts nothing
    assert not sampler.running and _facts_tasks() == set()
    assert calls == 1

    async with sampler.watching():
        async with sampler.watching():
            assert sampler.watchers == 2 and sampler.running
            await poll_until(lambda: len(reports) >= 1, what="a first report")
        assert sampler.watchers == 1 and sampler.running
        (task,) = _facts_tasks()
    assert sampler.watchers == 0 and not sampler.running
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()
    after = calls
    assert _facts_tasks() == set(), "no task is left to sample with zero watchers"

    sampler.acquire()  # and it starts again, reporting every process afresh (this one is idle)
    before = len(reports)
    await poll_until(lambda: len(reports) > before, what="sampling to resume")
    assert calls > after
    await sampler.aclose()  # shutdown, with a watcher still out
    assert not sampler.running and _facts_tasks() == set()
    sampler.release()
    with pytest.raises(RuntimeError):
        sampler.release()
    sampler.acquire()
    assert not sampler.running, "a closed sampler starts nothing"


async def test_a_failing_callback_does_not_stop_sampling(spawn: Spawn, caplog: pytest.LogCaptureFixture) -> None:
    pid, _ = await spawn("print('ready', flush=True)\nwhile True: pass")  # busy: changes every sample
    calls = 0

    def on_sample(changed: dict[str, Facts]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    sampler = FactsSampler(lambda: {"p": pid}, on_sample, interval=INTERVAL)
    with caplog.at_level(logging.ERROR, logger="pmtop.core.system.facts"):
        async with sampler.watching():
            await poll_until(lambda: calls >= 3, what="three callbacks despite errors")
    assert "sampling process facts failed" in caplog.text


def _facts_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name() == "pmtop-facts" and not t.done()}


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FactsSampler(dict, lambda changed: None, interval=0)


async def test_sample_now_without_loop_gives_cpu_on_a_second_call(spawn: Spawn) -> None:
    pid, _ = await spawn(SLEEPER)
    sampler = FactsSampler(lambda: {"p": pid}, lambda changed: None)
    assert (await sampler.sample_now())["p"].cpu_percent is None
    assert (await sampler.sample_now())["p"].cpu_percent == 0.0
