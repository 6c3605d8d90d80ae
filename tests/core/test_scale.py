"""Hundreds of real children: all start, all stop, nothing is left behind, no thread per child."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import psutil

from pmtop.core.model import ProcessState
from pmtop.core.supervisor import Supervisor
from tests.waiting import poll_until, wait_for

S = ProcessState
COUNT = 200


async def test_200_processes_start_and_stop_cleanly(make_supervisor: Make) -> None:
    specs = [_sleeper(f"p{i:03d}") for i in range(COUNT)]
    sup = make_supervisor(*specs)
    running: set[str] = set()
    threads_before = threading.active_count()
    async with sup.subscribe() as events:
        await sup.boot()

        def all_running(s) -> bool:
            if s.state is S.RUNNING:
                running.add(s.name)
            return len(running) == COUNT

        await wait_for(events, all_running, what=f"{COUNT} running", timeout=60)
        pids = [s.pid for s in await sup.processes()]
        assert len(set(pids)) == COUNT
        assert threading.active_count() - threads_before < 20, "exit is awaited without a thread per child"
        await sup.stop_many()
    statuses = await sup.processes()
    assert {s.state for s in statuses} == {S.STOPPED}
    me = psutil.Process(os.getpid())
    await poll_until(lambda: not me.children(), what="every child reaped")


def _sleeper(name: str):
    from pmtop.core.model import ProcessSpec

    return ProcessSpec(name=name, command=("sleep", "600"), stop_timeout=5.0)


Make = Callable[..., Supervisor]
