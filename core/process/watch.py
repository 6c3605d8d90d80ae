"""One run, judged while it lives: when it counts as up, how healthy it is, and whether it must go.

What keeps a fresh run `starting`, all of which must pass before it is `running` (SPEC §10):
- its readiness gates: a line of output matching `ready_log_line`, and `READY=1` from a `notify` check;
- its startup check, if its `[health]` has one (probed by the `HealthMonitor` from the spawn on).

The gates are bounded together by the startup check's budget (`initial_delay` + `max_attempts` x
`interval`), or `DEFAULT_READY_WAIT` without one; when it runs out, the verdict carries the startup
check's `fail_action`. Periodic health (or a `notify` check's watchdog) is probed from the spawn when
there is a startup check, else from the moment the gates open: a process that has not said it is ready
is not yet held to its health.

`RunWatch` decides and reports; it never touches the process. The runner turns each `WatchReport` into
a state and a reason, and acts on the verdict (stop the group, then the restart policy or `fail_action`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import checks
from ..checks.monitor import HealthMonitor, HealthReport, Unhealthy
from ..model import FailAction, Health, ProcessSpec
from ..system.notify import NotifyState
from .readiness import LogLineMatcher, shown

DEFAULT_READY_WAIT: Final = 60.0
"""Seconds a run may take to pass its gates when there is no startup check to bound them."""
READY_GATE: Final = "READY=1"


@dataclass(frozen=True, slots=True)
class WatchReport:
    up: bool
    """Past every gate and the startup check: the process is `running` (else still `starting`)."""
    health: Health
    reason: str


def _seconds(value: float) -> str:
    return f"{value:g}s"


def budget(spec: ProcessSpec) -> tuple[float, FailAction]:
    """How long the gates may take, and what to do when they do not open in time."""
    startup = spec.health.startup if spec.health is not None else None
    if startup is None:
        return DEFAULT_READY_WAIT, FailAction.RESTART
    return startup.initial_delay + startup.max_attempts * startup.interval, startup.fail_action


class RunWatch:
    """Gates, startup check and health of one run; `run()` returns the verdict when the run must go."""

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        report: Callable[[WatchReport], None],
        env: Mapping[str, str] | None,
        started_at: float,
        matcher: LogLineMatcher | None = None,
        notify: NotifyState | None = None,
        adopted: bool = False,
    ) -> None:
        self.spec = spec
        self._report = report
        self._env = env
        self._started_at = started_at
        self._notify = notify
        loop = asyncio.get_running_loop()
        health = spec.health
        monitored = checks.monitored(health) if health is not None else None
        if adopted and monitored is not None:  # already past its start: held to its health from now on
            monitored = dataclasses.replace(monitored, startup=None)
        self._monitored = monitored
        self._gates: dict[str, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[None] = loop.create_future()
        if not adopted:
            if matcher is not None:
                self._gates[f"log line {shown(matcher.pattern)}"] = matcher.matched
            if notify is not None and health is not None and health.type == "notify":
                self._gates[READY_GATE] = self._ready
        self._healthy_when_up = monitored is None or READY_GATE in self._gates
        """Up without a probe's word yet: healthy when nothing is probed, or when READY=1 said so."""
        self._startup_pending = monitored is not None and monitored.startup is not None
        self._had_startup = self._startup_pending
        self._probe: HealthReport | None = None
        self._status: str | None = None
        self.stopping = False
        """The process said `STOPPING=1`."""
        self._up = False
        self._last: WatchReport | None = None
        self._verdict: asyncio.Future[Unhealthy | None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._monitor: HealthMonitor | None = None
        self._monitor_task: asyncio.Task[Unhealthy | None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._running = False
        self._refresh(tell=False)

    # -- what the runner shows ---------------------------------------------------------------------

    def current(self) -> WatchReport:
        """What the run looks like now (the runner shows it right after the spawn)."""
        assert self._last is not None
        return self._last

    @property
    def up(self) -> bool:
        return self._up

    @property
    def idle(self) -> bool:
        """Nothing to wait for and nothing to probe: up at once, and no verdict can ever come."""
        return not self._gates and self._monitored is None

    # -- life --------------------------------------------------------------------------------------

    async def run(self) -> Unhealthy | None:
        """Until a verdict (the run must go), or None after `cancel()`. Called once."""
        loop = asyncio.get_running_loop()
        self._running = True
        for gate in self._gates.values():
            gate.add_done_callback(self._gate_done)
        if self._startup_pending or self._up:
            self._start_monitor()
        if self._gates:
            seconds, action = budget(self.spec)
            self._timers.append(loop.call_later(seconds, self._out_of_time, seconds, action))
        try:
            return await self._verdict
        finally:
            self.cancel()
            if self._monitor_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._monitor_task  # an exec probe in flight is killed and reaped first

    def cancel(self) -> None:
        """A stop began, or the run ended: no more reports, no verdict."""
        if self._closed.done():
            return
        self._closed.set_result(None)
        for timer in self._timers:
            timer.cancel()
        if self._monitor is not None:
            self._monitor.cancel()
        if not self._verdict.done():
            self._verdict.set_result(None)

    def _decide(self, verdict: Unhealthy) -> None:
        if not self._verdict.done() and not self._closed.done():
            self._verdict.set_result(verdict)

    def _start_monitor(self) -> None:
        health = self._monitored
        if health is None or self._monitor is not None or self._closed.done():
            return
        probe = checks.make_probe(health, cwd=self.spec.cwd, env=self._env, started_at=self._started_at,
                                  notify=self._notify)
        self._monitor = HealthMonitor(health, probe, self._on_probe)
        self._monitor_task = asyncio.create_task(self._monitor.watch(self._closed), name="pmtop:health")
        self._monitor_task.add_done_callback(self._monitor_done)

    def _monitor_done(self, task: asyncio.Task[Unhealthy | None]) -> None:
        if not task.cancelled() and task.exception() is None and (verdict := task.result()) is not None:
            self._decide(verdict)

    # -- what happens ------------------------------------------------------------------------------

    def _gate_done(self, _: asyncio.Future[Any]) -> None:
        if not self._closed.done():
            self._refresh()

    def _out_of_time(self, seconds: float, action: FailAction) -> None:
        waiting = self._waiting()
        if waiting and not self.stopping:
            self._decide(Unhealthy(f"no {' and no '.join(_missing(w) for w in waiting)} within "
                                   f"{_seconds(seconds)}", action))

    def _on_probe(self, report: HealthReport) -> None:
        if report.started:
            self._startup_pending = False
        self._probe = report
        self._refresh()

    def ready(self) -> None:
        """`READY=1`."""
        if not self._ready.done():
            self._ready.set_result(None)

    def status(self, text: str) -> None:
        """`STATUS=...`: the process's own words, shown as its reason."""
        self._status = text or None
        self._refresh()

    def trigger(self) -> None:
        """`WATCHDOG=trigger`: the process asks for its watchdog to fire now."""
        if not self.stopping:
            self._decide(Unhealthy("health: the process sent WATCHDOG=trigger", FailAction.RESTART))

    def stopping_now(self, grace: float) -> None:
        """`STOPPING=1`: no more health verdicts (as systemd disables the watchdog while a unit stops);
        still running `grace` seconds later, it is stopped and counts as failed."""
        if self.stopping or self._closed.done():
            return
        self.stopping = True
        for timer in self._timers:
            timer.cancel()
        if self._monitor is not None:
            self._monitor.cancel()
        loop = asyncio.get_running_loop()
        self._timers = [loop.call_later(grace, self._decide, Unhealthy(
            f"said STOPPING=1 but was still running {_seconds(grace)} later (stop_timeout)", FailAction.RESTART))]
        self._refresh()

    # -- reports -----------------------------------------------------------------------------------

    def _waiting(self) -> list[str]:
        return [name for name, gate in self._gates.items() if not gate.done() or gate.cancelled()]

    def _refresh(self, *, tell: bool = True) -> None:
        waiting = self._waiting()
        if not self._up and not waiting and not self._startup_pending:
            self._up = True
            if self._running:
                self._start_monitor()  # periodic health (or the watchdog) counts from the moment it is up
        report = self._up_report() if self._up else self._starting_report(waiting)
        if report != self._last:
            self._last = report
            if tell and not self._closed.done():
                self._report(report)

    def _up_report(self) -> WatchReport:
        probe = self._probe
        if probe is not None and (probe.started or not self._had_startup):
            health = probe.health
        else:
            health = Health.HEALTHY if self._healthy_when_up else Health.UNKNOWN
        if self.stopping:
            reason = "stopping (it sent STOPPING=1)" + (f": {self._status}" if self._status else "")
        elif probe is not None and probe.health is Health.UNHEALTHY:
            reason = probe.reason
        else:
            reason = self._status or "running"
        return WatchReport(True, health, reason)

    def _starting_report(self, waiting: list[str]) -> WatchReport:
        health = self.spec.health
        startup = health.startup if health is not None else None
        probing = self._probe.reason if self._probe is not None and not self._probe.started else (
            f"startup check every {_seconds(startup.interval)}, up to {startup.max_attempts} attempts"
            if startup is not None else "")
        if not waiting:  # only the startup check is left: as it always read
            reason = self._probe.reason if self._probe is not None else f"spawned; {probing}"
        else:
            reason = "waiting for " + " and ".join(waiting)
            if self._status:
                reason += f" (status: {self._status})"
            if self._startup_pending and probing:
                reason += f"; {probing}"
            elif self._had_startup:
                reason += "; startup check passed"
        if self.stopping:
            reason = "stopping (it sent STOPPING=1) before it was ready"
        return WatchReport(False, Health.UNKNOWN, reason)


def _missing(gate: str) -> str:
    return gate.replace("log line ", "log line matching ", 1) if gate.startswith("log line ") else gate

