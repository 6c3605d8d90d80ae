"""The wall clock stepped an hour forward or back during `starting`, a backoff, `reset_after` and a
startup check: every timer runs on the monotonic clock, so none fires early and none waits an hour.

The machine's clock is never touched: `time.time` is replaced by a fake wall clock for the test (the
event loop's timers use `time.monotonic`, which the fake leaves alone, as a real clock step does).
Each check is a lower bound on monotonic time (a timer that fired early is a failure) plus the
test's deadline (a timer that waits for the wall clock to come back would never fire in time).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pmtop.core.checks.exec import ExecCheck
from pmtop.core.model import HealthSpec, ProcessState, StartupCheck
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
HOUR = 3600.0


class WallClock:
    """`time.time` with a step in it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def step(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    return WallClock(monkeypatch)


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "back"])
async def test_backoff_and_reset_after_keep_monotonic_time(make_supervisor: Make, wall: WallClock, step: float,
                                                           tmp_path: Path) -> None:
    """Fails once (a backoff of 1 s follows), then runs (reset_after = 1 s forgives the failure)."""
    marker = tmp_path / "failed-once"
    code = (f"import os, sys, time\nif not os.path.exists({str(marker)!r}):\n"
            f"    open({str(marker)!r}, 'w').close(); sys.exit(1)\ntime.sleep(600)")
    sup = make_supervisor(spec("job", code, backoff=(1.0,), reset_after=1.0))
    async with sup.subscribe() as events:
        await sup.start("job")
        retrying = await wait_state(events, "job", S.RETRYING)
        crashed_at = time.monotonic()
        wall.step(step)  # during the backoff
        running = await wait_state(events, "job", S.RUNNING)
        assert time.monotonic() - crashed_at >= 1.0 - 0.01, "the backoff did not end early"
        assert running.consecutive_failures == 1 and retrying.next_retry_at is not None
        up_at = time.monotonic()
        wall.step(-step)  # during reset_after
        reset = await wait_for(events, lambda s: s.name == "job" and s.consecutive_failures == 0,
                               what="the failure count reset after reset_after")
        assert time.monotonic() - up_at >= 1.0 - 0.01, "reset_after did not fire early"
        assert reset.state is S.RUNNING and "failure count reset" in reset.reason


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "back"])
async def test_starting_and_the_startup_check_keep_monotonic_time(make_supervisor: Make, wall: WallClock,
                                                                  step: float) -> None:
    check = HealthSpec(ExecCheck((sys.executable, "-c", "pass")), timeout=5.0,
                       interval=600.0, startup=StartupCheck(initial_delay=1.0, interval=0.2, max_attempts=3))
    sup = make_supervisor(spec("web", health=check))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_for(events, lambda s: s.name == "web" and s.state is S.STARTING and "spawned" in s.reason,
                       what="web in its startup check")
        spawned_at = time.monotonic()
        wall.step(step)  # during `starting`, before the startup check's first probe
        running = await wait_state(events, "web", S.RUNNING)
        assert time.monotonic() - spawned_at >= 1.0 - 0.01, "the initial delay did not end early"
        assert running.health.value == "healthy"
