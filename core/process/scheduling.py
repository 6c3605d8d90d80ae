"""A scheduled process's timer and what happens at each of its times (SPEC §11).

One `loop.call_at` per scheduled process, for its next time: an idle supervisor wakes only when
something is due. The wait is cut into slices of at most `RECHECK` seconds, each ending with a look at
the wall clock, because the loop's clock is monotonic: after a suspend or a clock change the wall-clock
time of a cron line would otherwise be missed by however long the machine slept.

The schedule runs whatever state the process is in (PM2's `cron_restart` only acts while the app
runs): a stopped or failed process is started, a running one is handled by `overlap`; only a disabled
process is off its schedule. A clean exit ends a scheduled run (even under `restart = "always"`); a
failed one follows the restart policy until the next time comes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

from ..model import ACTIVE_STATES, EndReason, Overlap, ProcessState, ScheduleSpec
from ..schedule import IntervalSchedule, Missed, Schedule, clock, missed_between, parse_schedule

log = logging.getLogger("pmtop.core")

RECHECK: Final = 60.0
"""Longest single sleep towards a due time, in seconds (see the module docstring)."""
EARLY: Final = 0.01
"""A timer this close to its time counts as due (the loop may wake a hair early)."""


class ScheduleTimer:
    """Calls `on_due(due)` at each time of `schedule`, one timer at a time, never in a loop."""

    def __init__(self, schedule: Schedule, on_due: Callable[[float], None], clock: Callable[[], float] = time.time):
        self.schedule = schedule
        self._on_due = on_due
        self._clock = clock
        self.next_at: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, after: float) -> float:
        """Wait for the first time after `after`; returns it."""
        self.cancel()
        self.next_at = self.schedule.next_after(after)
        self._sleep()
        return self.next_at

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.next_at = None

    def _sleep(self) -> None:
        assert self.next_at is not None
        loop = asyncio.get_running_loop()
        delay = max(0.0, min(self.next_at - self._clock(), RECHECK))
        self._handle = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        due = self.next_at
        if due is None:
            return
        if self._clock() < due - EARLY:
            self._sleep()
            return
        self.next_at = None
        self._on_due(due)


class Scheduled(Protocol):
    """What a schedule needs of its process (`ProcessRunner`)."""

    @property
    def name(self) -> str: ...

    state: ProcessState

    async def start(self, note: str | None = None) -> None: ...

    async def stop(self, reason: str = ..., end_reason: EndReason = ...) -> None: ...

    def note(self, text: str) -> None: ...

    def publish(self) -> None: ...


class ScheduledRuns:
    """The schedule of one process: arms its timer, starts its runs, applies `overlap`."""

    def __init__(self, runner: Scheduled, spec: ScheduleSpec, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        self.spec = spec
        self._clock = clock
        self.schedule = parse_schedule(spec.rule)
        self.timer = ScheduleTimer(self.schedule, self._due, clock)
        self.handled: float | None = None
        """The latest time accounted for (run, skipped, queued; or when the schedule was armed): kept in
        the registry, so a successor can tell which times passed while no supervisor ran."""
        self.queued: float | None = None
        """With `overlap = "queue"`: the time whose run waits for the current one to end."""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def next_at(self) -> float | None:
        return self.timer.next_at

    @property
    def armed(self) -> bool:
        return self.timer.next_at is not None

    def arm(self, handled: float | None = None, *, boot: bool = False) -> Missed | None:
        """Start keeping the schedule. `handled` is the last time a predecessor accounted for (from the
        registry): times since then were missed, are reported, and with `catch_up` run once now.
        `boot` (start-up, enable, add): also run now if `run_on_start`."""
        now = self._clock()
        if isinstance(self.schedule, IntervalSchedule):
            self.schedule = self.timer.schedule = self.schedule.anchored(now)
        missed = missed_between(self.schedule, handled, now) if handled is not None else None
        self.handled = now
        self.timer.arm(now)
        if missed is not None:
            what = missed.describe()
            log.warning("%s: %s%s", self.runner.name, what, "; catching up once now" if self.spec.catch_up else "")
            if self.spec.catch_up:
                self._start_task(self._run(missed.last, f"catching up: {what}"))
                return missed
            self.runner.note(what)
        if boot and self.spec.run_on_start:
            self._start_task(self._run(now, "run_on_start"))
        else:
            self.runner.publish()  # next_run_at changed
        return missed

    def disarm(self) -> None:
        self.timer.cancel()
        self.queued = None
        self.runner.publish()

    def close(self) -> None:
        self.timer.cancel()
        for task in self._tasks:
            task.cancel()

    def _due(self, due: float) -> None:
        self.handled = due
        self.timer.arm(max(due, self._clock()))
        self._start_task(self._run(due, f"scheduled run of {clock(due)}"))

    def _start_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"pmtop:schedule:{self.runner.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, due: float, why: str) -> None:
        runner = self.runner
        if runner.state is ProcessState.DISABLED:
            return
        if runner.state not in ACTIVE_STATES:
            await runner.start(note=why)
            return
        overlap = self.spec.overlap
        if overlap is Overlap.SKIP:
            log.info("%s: %s skipped: the previous run is still going", runner.name, why)
            runner.note(f"skipped the {clock(due)} run: the previous one is still going")
        elif overlap is Overlap.QUEUE:
            if self.queued is not None:
                log.info("%s: %s dropped: a run already waits for the current one", runner.name, why)
            self.queued = due
            runner.note(f"the {clock(due)} run waits for this one to end")
        else:
            await runner.stop(f"replaced by the {clock(due)} run", EndReason.STOP)
            await runner.start(note=why)

    def run_ended(self, by_user: bool) -> None:
        """The lifecycle came to rest: a queued run goes now (unless the user stopped this one)."""
        due, self.queued = self.queued, None
        if due is not None and not by_user:
            self._start_task(self._run(due, f"queued run of {clock(due)}"))
