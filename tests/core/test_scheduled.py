"""Scheduled processes against real children: timers, history, overlap, missed runs, disable."""

from __future__ import annotations

import time
from collections.abc import Callable

from pmtop.core.model import EndReason, Overlap, ProcessState, RestartPolicy, ScheduleSpec
from pmtop.core.process.scheduling import ScheduleTimer
from pmtop.core.schedule import parse_schedule
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]


def job(name: str, code: str = "print('tick')", rule: str = "every 1s", **kw: object):  # type: ignore[no-untyped-def]
    schedule = ScheduleSpec(rule=rule, overlap=kw.pop("overlap", Overlap.SKIP),  # type: ignore[arg-type]
                            run_on_start=bool(kw.pop("run_on_start", False)), catch_up=bool(kw.pop("catch_up", False)))
    return spec(name, code, schedule=schedule, **kw)


async def test_a_scheduled_process_waits_for_its_time_then_each_run_joins_the_history(make_supervisor: Make) -> None:
    sup = make_supervisor(job("tick"))
    seen: list = []
    async with sup.subscribe() as events:
        await sup.boot()
        first = (await sup.processes())[0]
        assert first.state is S.STOPPED and first.pid is None, "not run at start-up"
        assert first.next_run_at is not None and first.next_run_at > time.time() - 0.5
        assert first.reason == "scheduled: every 1s"
        await wait_for(events, lambda s: s.state is S.RUNNING, what="the first scheduled run", seen=seen)
        await wait_for(events, lambda s: s.state is S.STOPPED and s.exit_code == 0, what="its end", seen=seen)
        await wait_for(events, lambda s: s.state is S.RUNNING, what="the second run", seen=seen)
        await wait_for(events, lambda s: s.state is S.STOPPED and s.exit_code == 0, what="its end", seen=seen)
    running = [s for s in seen if s.state is S.RUNNING]
    assert running[0].reason.startswith("running (scheduled run of ")
    history = await sup.history("tick")
    assert len(history) >= 2 and all(r.end_reason is EndReason.EXIT for r in history)
    resting = (await sup.processes())[0]
    assert resting.next_run_at is not None and resting.next_run_at > history[-1].ended_at


async def test_run_on_start(make_supervisor: Make) -> None:
    sup = make_supervisor(job("now", rule="0 0 1 1 *", run_on_start=True))
    async with sup.subscribe() as events:
        await sup.boot()
        running = await wait_state(events, "now", S.RUNNING)
        assert "run_on_start" in running.reason
        stopped = await wait_state(events, "now", S.STOPPED)
    assert stopped.next_run_at is not None and stopped.next_run_at > time.time() + 86400


async def test_a_manual_start_runs_it_now_and_the_schedule_stays(make_supervisor: Make) -> None:
    sup = make_supervisor(job("yearly", rule="@yearly"))
    async with sup.subscribe() as events:
        await sup.boot()
        await sup.start("yearly")
        stopped = await wait_for(events, lambda s: s.state is S.STOPPED and s.exit_code is not None, what="the run")
    assert stopped.exit_code == 0 and stopped.next_run_at is not None


async def test_a_clean_exit_ends_the_run_even_under_always(make_supervisor: Make) -> None:
    sup = make_supervisor(job("once", rule="@yearly", policy=RestartPolicy.ALWAYS, backoff=(0.0,)))
    async with sup.subscribe() as events:
        await sup.boot()
        await sup.start("once")
        stopped = await wait_for(events, lambda s: s.state is S.STOPPED and s.exit_code is not None, what="the run")
    assert stopped.restarts == 0 and len(await sup.history("once")) == 1


async def test_overlap_skip_lets_the_run_finish(make_supervisor: Make) -> None:
    sup = make_supervisor(job("slow", "import time; time.sleep(2.6)", overlap=Overlap.SKIP))
    async with sup.subscribe() as events:
        await sup.boot()
        running = await wait_state(events, "slow", S.RUNNING)
        skipped = await wait_for(events, lambda s: "skipped the" in s.reason, what="a skipped time")
        assert skipped.state is S.RUNNING and skipped.pid == running.pid
        stopped = await wait_state(events, "slow", S.STOPPED, timeout=20)
    assert stopped.exit_code == 0, "the run was left to finish"


async def test_overlap_queue_runs_once_more_right_after(make_supervisor: Make) -> None:
    sup = make_supervisor(job("queued", "import time; time.sleep(2.6)", overlap=Overlap.QUEUE))
    seen: list = []
    async with sup.subscribe() as events:
        await sup.boot()
        first = await wait_state(events, "queued", S.RUNNING, seen=seen)
        await wait_for(events, lambda s: "waits for this one to end" in s.reason, what="a queued time", seen=seen)
        await wait_state(events, "queued", S.STOPPED, seen=seen, timeout=20)
        second = await wait_state(events, "queued", S.RUNNING, seen=seen)
    assert second.pid != first.pid
    assert "queued run of" in second.reason
    assert all(r.end_reason is EndReason.EXIT for r in await sup.history("queued"))


async def test_overlap_replace_stops_the_old_run(make_supervisor: Make) -> None:
    sup = make_supervisor(job("replaced", "import time; time.sleep(60)", overlap=Overlap.REPLACE))
    async with sup.subscribe() as events:
        await sup.boot()
        first = await wait_state(events, "replaced", S.RUNNING)
        stopping = await wait_state(events, "replaced", S.STOPPING)
        assert stopping.reason.startswith("replaced by the ")
        second = await wait_state(events, "replaced", S.RUNNING)
    assert second.pid != first.pid
    [run, *_] = await sup.history("replaced")
    assert run.end_reason is EndReason.STOP and run.pid == first.pid


async def test_a_failed_run_does_not_stop_the_schedule(make_supervisor: Make) -> None:
    sup = make_supervisor(job("broken", "import sys; sys.exit(3)", policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.boot()
        failed = await wait_state(events, "broken", S.FAILED)
        assert failed.next_run_at is not None
        again = await wait_state(events, "broken", S.RUNNING)
        assert "scheduled run of" in again.reason
        await wait_state(events, "broken", S.FAILED)


async def test_disable_takes_it_off_its_schedule_and_enable_puts_it_back(make_supervisor: Make) -> None:
    sup = make_supervisor(job("pausable", rule="@daily"))
    await sup.boot()
    disabled = await sup.disable("pausable")
    assert disabled.state is S.DISABLED and disabled.next_run_at is None
    enabled = await sup.enable("pausable")
    assert enabled.state is S.STOPPED and enabled.next_run_at is not None


async def test_missed_runs_are_reported_and_caught_up_once(paths) -> None:  # type: ignore[no-untyped-def]
    """A predecessor accounted for the schedule until 10 minutes ago: 9 or 10 one-minute times passed."""
    handled = time.time() - 600
    caught = Supervisor([job("catchy", rule="* * * * *", catch_up=True)], paths=paths, schedules={"catchy": handled})
    quiet = Supervisor([job("quiet", rule="* * * * *")], paths=paths, schedules={"quiet": handled})
    try:
        async with caught.subscribe() as events:
            await caught.boot()
            running = await wait_state(events, "catchy", S.RUNNING)
            assert "catching up: missed" in running.reason and "while pmtop was not running" in running.reason
            await wait_state(events, "catchy", S.STOPPED)
        assert len(await caught.history("catchy")) == 1, "caught up once, not once per missed time"
        await quiet.boot()
        [status] = await quiet.processes()
        assert status.state is S.STOPPED and status.reason.startswith("missed ")
        assert await quiet.history("quiet") == []
        assert quiet.schedule_memos()["quiet"] >= handled + 600 - 5, "the new supervisor accounts from now on"
    finally:
        await caught.shutdown()
        await quiet.shutdown()


async def test_the_timer_looks_at_the_wall_clock_before_it_fires() -> None:
    """The loop's clock is monotonic; a timer that wakes while the wall clock says "not yet" (a clock
    set back, a suspend) sleeps again instead of firing early."""
    fired: list[float] = []
    now = [1000.0]
    looks = [0]

    def clock() -> float:
        looks[0] += 1
        return now[0]

    timer = ScheduleTimer(parse_schedule("every 1s").anchored(1000.0), fired.append, clock=clock)  # type: ignore[union-attr]
    due = timer.arm(1000.0)
    assert due == 1001.0
    now[0] = 1000.79  # when the loop wakes a second later, the wall clock says it is not time yet
    armed = looks[0]
    await poll_until(lambda: looks[0] >= armed + 2, what="the timer to wake and look twice")
    assert fired == [], "woken before its wall-clock time: not fired"
    now[0] = 1001.0
    await poll_until(lambda: bool(fired), what="the timer to fire once its time has come")
    assert fired == [1001.0]
    timer.cancel()


async def test_a_run_going_at_boot_keeps_its_schedule(make_supervisor: Make) -> None:
    """A run adopted from a predecessor (here: started before boot) is running when the schedule is
    armed: the schedule is armed all the same, and `run_on_start` does not start a second run."""
    sup = make_supervisor(job("long", "import time; time.sleep(600)", rule="@daily", run_on_start=True))
    async with sup.subscribe() as events:
        await sup.start("long")
        running = await wait_state(events, "long", S.RUNNING)
        await sup.boot()
    status = await sup.status("long")
    assert status.next_run_at is not None and status.pid == running.pid
    assert len(await sup.history("long")) == 0
