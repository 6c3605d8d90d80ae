"""Children that misbehave with their process group, their output or their descendants.

The group rules, the log caps and the exit decision hold whatever a child does; a process that
escaped its group (double fork, `setsid`, `setpgid`) is killed once its run has ended, because its
environment proves it is ours (`PMTOP_RUN_DIR`), and the reason says so, with its PID.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pmtop.core.locations import InstancePaths
from pmtop.core.model import LogSpec, ProcessState, RestartPolicy
from pmtop.core.supervisor import Supervisor
from pmtop.core.system.strays import find_marked
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]

DOUBLE_FORK = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        time.sleep(600)
    os._exit(0)
os.wait()
print('leader done', flush=True)
"""

SETSID_GRANDCHILD = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    while True:
        print('grandchild', os.getpid(), flush=True)
        time.sleep(0.05)
time.sleep(0.3)
sys.exit(1)
"""

NEW_GROUP = """
import os, time
if os.fork() == 0:
    os.setpgid(0, 0)
    print('moved', os.getpid(), flush=True)
    time.sleep(600)
time.sleep(600)
"""

CLOSES_STDOUT = """
import os, sys, time
print('before', flush=True)
os.close(1)
for i in range(3):
    print('still here', i, file=sys.stderr, flush=True)
time.sleep(600)
"""

PRINTER = """
import sys
line = b'x' * 1023 + b'\\n'
out = sys.stdout.buffer
for _ in range(100 * 1024):
    out.write(line)
out.flush()
"""


def marked(paths: InstancePaths) -> list[int]:
    return [m.pid for m in find_marked(str(paths.log_dir))]


async def test_a_double_forked_daemon_is_killed_and_named(make_supervisor: Make, paths: InstancePaths) -> None:
    sup = make_supervisor(spec("forker", DOUBLE_FORK))
    async with sup.subscribe() as events:
        await sup.start("forker")
        stopped = await wait_state(events, "forker", S.STOPPED)
        assert stopped.exit_code == 0, "the exit decision: a clean exit under on-failure"
        named = await wait_for(events, lambda s: "escaped" in s.reason, what="the escapee named")
    pid = int(re.search(r"pid (\d+)", named.reason).group(1))  # type: ignore[union-attr]
    assert named.state is S.STOPPED and named.reason.startswith("exit 0 after")
    await poll_until(lambda: not marked(paths), what="nothing of it left")
    assert pid not in marked(paths)


async def test_a_setsid_grandchild_holding_stdout(make_supervisor: Make, paths: InstancePaths) -> None:
    sup = make_supervisor(spec("leaky", SETSID_GRANDCHILD, policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("leaky")
        failed = await wait_state(events, "leaky", S.FAILED)
        assert failed.exit_code == 1 and "restart = no" in failed.reason, "the exit decision holds"
        named = await wait_for(events, lambda s: "escaped" in s.reason, what="the grandchild named")
    await poll_until(lambda: not marked(paths), what="the grandchild gone")
    grandchild = re.search(r"pid (\d+)", named.reason).group(1)  # type: ignore[union-attr]
    lines = await sup.logs("leaky", "stdout", 1000)
    assert lines and all(line == f"grandchild {grandchild}" for line in lines), "its output was logged"


async def test_a_child_that_leaves_its_group_is_stopped_too(make_supervisor: Make, paths: InstancePaths) -> None:
    sup = make_supervisor(spec("mover", NEW_GROUP))
    async with sup.subscribe() as events:
        await sup.start("mover")
        await wait_state(events, "mover", S.RUNNING)
        moved = await _line(sup, "mover", "moved")
        assert len(marked(paths)) == 2 and moved in marked(paths), "the moved child is left alone while its run lives"
        await sup.stop("mover")
        named = await wait_for(events, lambda s: "escaped" in s.reason, what="the moved child named")
    assert f"pid {moved}" in named.reason and named.state is S.STOPPED
    await poll_until(lambda: not marked(paths), what="stop leaves nothing behind")


async def test_a_child_that_closes_its_stdout(make_supervisor: Make, paths: InstancePaths) -> None:
    sup = make_supervisor(spec("quiet", CLOSES_STDOUT))
    async with sup.subscribe() as events:
        await sup.start("quiet")
        running = await wait_state(events, "quiet", S.RUNNING)
        await poll_until(lambda: len(_tail(sup, "quiet", "stderr")) == 3, what="its stderr")
        assert (await sup.status("quiet")).state is S.RUNNING, "a closed stdout is no exit"
        assert await sup.logs("quiet", "stdout") == ["before"]
        stopped = await sup.stop("quiet")
    assert stopped.exit_code is not None and stopped.pid is None
    await poll_until(lambda: not marked(paths), what="stop leaves nothing behind")
    assert running.pid not in marked(paths)


@pytest.mark.timeout(180)
async def test_a_100_mb_printer_keeps_to_its_log_caps(make_supervisor: Make, paths: InstancePaths) -> None:
    sup = make_supervisor(spec("printer", PRINTER, logs=LogSpec(max_bytes=1 << 20, backups=2)),
                          spec("bystander", "import time; time.sleep(600)"))
    async with sup.subscribe() as events:
        await sup.start("bystander")
        await wait_state(events, "bystander", S.RUNNING)
        await sup.start("printer")
        stopped = await wait_state(events, "printer", S.STOPPED, timeout=120)
    assert stopped.exit_code == 0 and stopped.reason.startswith("exit 0 after"), "the exit decision holds"
    runner = sup._runners["printer"]  # noqa: SLF001 - the run's folder, to look at the files
    run = runner.run_dir
    assert run is not None
    await poll_until(lambda: not runner.runs.draining, what="the printer's pipes read to their end")
    files = sorted(p.name for p in run.iterdir())
    logs = [name for name in files if ".log" in name]
    assert logs == ["stderr.log", "stdout.log", "stdout.log.1", "stdout.log.2"], files
    # The time index behind merged logs rotates with its log, so it is capped too (one small record
    # per write: far below its log's size).
    assert [name for name in files if ".times" in name] == ["stdout.times", "stdout.times.1", "stdout.times.2"], files
    sizes = {p.name: p.stat().st_size for p in run.iterdir()}
    assert all(size <= 1 << 20 for size in sizes.values()), sizes
    assert sizes["stdout.log"] + sizes["stdout.log.1"] + sizes["stdout.log.2"] >= 2 << 20
    assert (await sup.logs("printer", "stdout", 3)) == ["x" * 1023] * 3
    assert (await sup.status("bystander")).state is S.RUNNING


def _tail(sup: Supervisor, name: str, stream: str) -> list[str]:
    runner = sup._runners[name]  # noqa: SLF001
    if runner.run_dir is None:
        return []
    path = runner.run_dir / f"{stream}.log"
    # Whole lines only: the drain may have written the start of a line whose end is still on its way.
    return path.read_text().split("\n")[:-1] if path.exists() else []


async def _line(sup: Supervisor, name: str, word: str) -> int:
    await poll_until(lambda: any(line.startswith(word) for line in _tail(sup, name, "stdout")), what=word)
    return int(next(line for line in _tail(sup, name, "stdout") if line.startswith(word)).split()[1])
