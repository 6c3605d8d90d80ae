"""The health check of one run: startup check, then periodic probes, then (maybe) a verdict.

Invariants:
- At most one probe per process is in flight: the monitor probes, then sleeps `interval` after the
  probe finished (as Docker's HEALTHCHECK does), so a probe slower than `interval` delays the next one
  instead of piling up. Each probe is bounded by `timeout` (`base.probe_once`).
- The monitor reports only changes (of phase, health or reason), never a repeat: an idle, healthy
  process costs one probe per `interval` and publishes nothing.
- The monitor never stops or restarts anything. It returns an `Unhealthy` verdict and the runner, which
  owns the child and knows whether a stop has begun, acts on it. After `cancel()` it reports nothing
  more and `watch` gives no verdict, so a stop is never raced by a health restart.

Health is `unknown` until the first probe answers: during the startup check, and, without a startup
check, for the first `interval` (the first periodic probe runs after `interval`: a process that has just
been spawned would likely fail an immediate probe, and that failure would count).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model import FailAction, Health, HealthSpec, StartupCheck
from .base import Probe, ProbeResult, probe_once

RUNNING_REASON = "running"


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What the runner should show now."""

    started: bool
    """Past the startup check (or there is none): the process is `running`, else still `starting`."""
    health: Health
    reason: str


@dataclass(frozen=True, slots=True)
class Unhealthy:
    """The verdict: the process must go. The runner stops its group, then applies `action`."""

    reason: str
    """`health: HTTP 500 (2/2 failures)`, `health: connection refused (startup 30/30)`."""
    action: FailAction
    """`restart` (through the restart policy) for periodic failures; the startup `fail_action` else."""


class HealthMonitor:
    """Probes one run of one process and reports what changes through `report`."""

    def __init__(self, spec: HealthSpec, probe: Probe, report: Callable[[HealthReport], None]) -> None:
        self.spec = spec
        self.probe = probe
        self._report = report
        self._last: HealthReport | None = None
        self._task: asyncio.Task[Unhealthy] | None = None
        self._cancelled = False
        self.probes = 0
        """Probes run so far."""

    async def watch(self, exited: asyncio.Future[Any]) -> Unhealthy | None:
        """Probe until the child exits (None), the check gives up on it (the verdict) or `cancel()`.

        Called once: a monitor watches one run.
        """
        if self._cancelled:
            return None
        task = self._task = asyncio.create_task(self.run(), name="pmtop:health")
        try:
            await asyncio.wait((exited, task), return_when=asyncio.FIRST_COMPLETED)
            if exited.done() or self._cancelled or task.cancelled():
                return None
            return task.result()
        finally:
            self.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # an exec probe in flight is killed and reaped before the run is recorded

    def cancel(self) -> None:
        """A stop has begun (or the run ended): from now on nothing is reported and no verdict given.

        The task is cancelled once only: a second cancellation would interrupt an exec probe's cleanup.
        """
        if self._cancelled:
            return
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> Unhealthy:
        if self.spec.startup is not None:
            verdict = await self._startup(self.spec.startup)
            if verdict is not None:
                return verdict
        return await self._periodic()

    def _tell(self, report: HealthReport) -> None:
        if report != self._last and not self._cancelled:
            self._last = report
            self._report(report)

    async def _probe(self) -> ProbeResult:
        self.probes += 1
        return await probe_once(self.probe, self.spec.timeout)

    async def _startup(self, check: StartupCheck) -> Unhealthy | None:
        await asyncio.sleep(check.initial_delay)
        for attempt in range(1, check.max_attempts + 1):
            result = await self._probe()
            if result.ok:
                self._tell(HealthReport(True, Health.HEALTHY, RUNNING_REASON))
                return None
            reason = f"health: {result.detail} (startup {attempt}/{check.max_attempts})"
            if attempt == check.max_attempts:
                return Unhealthy(reason, check.fail_action)
            self._tell(HealthReport(False, Health.UNKNOWN, reason))
            await asyncio.sleep(check.interval)
        raise AssertionError("unreachable: max_attempts >= 1")  # pragma: no cover

    async def _periodic(self) -> Unhealthy:
        failures = 0
        while True:
            await asyncio.sleep(self.spec.interval)
            result = await self._probe()
            if result.ok:
                failures = 0
                self._tell(HealthReport(True, Health.HEALTHY, RUNNING_REASON))
                continue
            failures += 1
            reason = f"health: {result.detail} ({failures}/{self.spec.failures} failures)"
            if failures >= self.spec.failures:
                return Unhealthy(reason, FailAction.RESTART)
            # Unhealthy from the first failure (health is what the last probe saw); the restart waits
            # for `failures` in a row, and a success in between brings back `healthy` and `running`.
            self._tell(HealthReport(True, Health.UNHEALTHY, reason))
