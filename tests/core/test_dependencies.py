"""`depends_on`: start in dependency order, stop in reverse, and say what is being waited for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pmtop.core.model import DependencyCondition, EndReason, ProcessState, RestartPolicy
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import DEFAULT_TIMEOUT, wait_for, wait_state

S = ProcessState
D = DependencyCondition
Make = Callable[..., Supervisor]


async def test_waits_for_completed_dependency(make_supervisor: Make) -> None:
    sup = make_supervisor(
        spec("migrate", "import time; time.sleep(0.3)", policy=RestartPolicy.NO),
        spec("web", depends_on={"migrate": D.COMPLETED}),
    )
    seen: list = []
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "web", S.RUNNING, seen=seen)
    order = [(s.name, s.state) for s in seen]
    waiting = next(s for s in seen if s.name == "web" and s.state is S.STARTING and "waiting" in s.reason)
    assert waiting.reason == "waiting for migrate (completed)"
    assert order.index(("migrate", S.STOPPED)) < order.index(("web", S.RUNNING))


async def test_started_dependency_orders_start_and_stop(make_supervisor: Make) -> None:
    sup = make_supervisor(
        spec("web", depends_on={"api": D.STARTED}),
        spec("api", depends_on={"db": D.HEALTHY}),
        spec("db"),
    )
    seen: list = []
    async with sup.subscribe() as events:
        await sup.boot()
        for name in ("db", "api", "web"):
            await wait_state(events, name, S.RUNNING, seen=seen)
        running_order = [s.name for s in seen if s.state is S.RUNNING]
        assert running_order == ["db", "api", "web"]
        seen.clear()
        await sup.shutdown()
        stopped = [s.name for s in seen]  # nothing more is read after the bus closes; use history
    ends = {name: (await sup.history(name))[-1] for name in ("db", "api", "web")}
    assert all(r.end_reason is EndReason.SUPERVISOR_EXIT for r in ends.values())
    assert ends["web"].ended_at <= ends["api"].ended_at <= ends["db"].ended_at
    del stopped


async def test_stop_order_is_reverse_of_dependencies(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("db"), spec("api", depends_on={"db": D.STARTED}))
    seen: list = []
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "api", S.RUNNING)
        await sup.stop_many()
        await wait_state(events, "db", S.STOPPED, seen=seen)
    stopped = [s.name for s in seen if s.state is S.STOPPED]
    assert stopped == ["api", "db"]


async def test_start_pulls_in_stopped_dependencies(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("db", autostart=False), spec("web", autostart=False, depends_on={"db": D.STARTED}))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_state(events, "db", S.RUNNING)
        await wait_state(events, "web", S.RUNNING)


async def test_waiting_reason_names_a_failed_dependency(make_supervisor: Make) -> None:
    from dataclasses import replace

    never_runs = replace(spec("db", policy=RestartPolicy.NO), command=("/nonexistent/pmtop-db",))
    sup = make_supervisor(never_runs, spec("web", depends_on={"db": D.HEALTHY}))
    async with sup.subscribe() as events:
        await sup.boot()
        waiting = await wait_for(events, lambda s: s.name == "web" and "db is failed" in s.reason,
                                 what="web saying db failed")
    assert waiting.state is S.STARTING
    assert waiting.reason == "waiting for db (healthy): db is failed"
    stopped = await sup.stop("web")
    assert stopped.state is S.STOPPED


async def test_remove_refuses_while_others_depend(make_supervisor: Make) -> None:
    import pytest

    from pmtop.core.errors import ActionRefused

    sup = make_supervisor(spec("db", autostart=False), spec("web", autostart=False, depends_on={"db": D.STARTED}))
    with pytest.raises(ActionRefused, match="cannot remove db: web"):
        await sup.remove("db")


async def test_a_change_published_before_the_waiter_first_runs_still_wakes_it(make_supervisor: Make) -> None:
    """`wait_changed()` registers at the call: a dependent wraps it in a task, and the dependency may
    publish (spawned, then running) before that task's first step."""
    sup = make_supervisor(spec("db"))
    runner = sup._runners["db"]  # noqa: SLF001
    waiter = asyncio.ensure_future(runner.wait_changed())
    runner.publish()  # before the waiter has run at all
    await asyncio.wait_for(waiter, DEFAULT_TIMEOUT)
