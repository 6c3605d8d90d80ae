"""One process's state machine: the runner task that walks the transition table (`states.TRANSITIONS`).

Every state change goes through `ProcessRunner._transition`, which checks it against `TRANSITIONS`
and publishes the new status: one place, so no change can go unannounced. Time-based edges (backoff,
`reset_after`, `stop_timeout`) are awaited deadlines inside the runner's own task, never a global tick,
so an idle supervisor does no work at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .. import checks
from ..checks.monitor import RUNNING_REASON, HealthMonitor, HealthReport, Unhealthy
from ..errors import ActionRefused, IllegalTransition, SpawnError
from ..events import EventBus
from ..model import (
    DependencyCondition,
    EndReason,
    FailAction,
    Health,
    LiveChild,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    RestartPolicy,
    RunRecord,
    describe_exit,
)
from ..states import ACTIVE_STATES, STARTABLE_STATES, TRANSITIONS
from ..system import spawner
from . import dependencies, launch, logs
from .policy import GiveUp, Outcome, Rest, Retry, decide
from .runs import Runs
from .scheduling import ScheduledRuns

if TYPE_CHECKING:
    from ..system.facts import Facts

S = ProcessState
log = logging.getLogger("pmtop.core")


DependencyLookup = dependencies.Lookup


class RunEnd(NamedTuple):
    """How one run ended, as `_run_once` tells the lifecycle."""

    outcome: Outcome
    ran: float | None
    """Seconds it ran; None when it never ran, or was ended by its health check."""
    detail: str
    action: FailAction = FailAction.RESTART
    """`restart`: ask the restart policy; otherwise a startup check's `fail_action`."""


class ProcessRunner:
    """Owns one process: its child, its lifecycle task and the facts that make up its status.

    User commands (`start`, `stop`, ...) are serialised by a lock; the lifecycle task (spawn, wait,
    decide, back off, spawn again) runs between them and is the only place that reacts to an exit.
    """

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        bus: EventBus,
        log_dir: Path,
        lookup: DependencyLookup,
        output: logs.OutputHub | None = None,
    ) -> None:
        self.spec = spec
        self._bus = bus
        self._lookup = lookup
        self._output = output
        self.state = S.STOPPED if spec.enabled else S.DISABLED
        self.reason = self._resting_reason() if spec.enabled else "disabled in config"
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self.next_retry_at: float | None = None
        self.health = Health.UNKNOWN
        self.restarts = 0
        self.failures = 0
        self.completed = False
        """True once a run ended with exit 0 (what `depends_on = {x = "completed"}` waits for)."""
        self.runs = Runs(log_dir / spec.name)
        self._child: spawner.Child | None = None
        self._run: launch.Run | None = None
        self._env = launch.merged_env(spec)
        self.facts: Facts | None = None
        """Live CPU, memory and ports of the current run, from the supervisor's sampler."""
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: tuple[str, EndReason] | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._reset_timer: asyncio.TimerHandle | None = None
        self._monitor: HealthMonitor | None = None
        self._launched = asyncio.Event()
        """Set once the current start got as far as it can on its own: spawned (or failed to), or
        waiting for a dependency. `Supervisor.boot` waits for it before doing slow work."""
        # -- the dev loop (issue 12) --
        self.schedule = ScheduledRuns(self, spec.schedule) if spec.schedule is not None else None
        self.watching = False
        """Set by the supervisor while a file watch covers this process."""
        self.hook_error: str | None = None
        self._note: str | None = None
        """Why the current run was started, when not by the user or the restart policy: a scheduled
        time, a file that changed. Shown in the `running` reason."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def history(self) -> deque[RunRecord]:
        return self.runs.history

    @property
    def run_dir(self) -> Path | None:
        return self.runs.current

    # -- status -----------------------------------------------------------------------------------

    def status(self, sampled: Facts | None = None) -> ProcessStatus:
        """The current status; `sampled` (an on-demand sample of this run) wins over the watcher's facts."""
        facts = (sampled or self.facts) if self.pid is not None else None
        return ProcessStatus(
            name=self.spec.name,
            state=self.state,
            reason=self.reason,
            pid=self.pid,
            health=self.health,
            restarts=self.restarts,
            consecutive_failures=self.failures,
            exit_code=self.exit_code,
            started_at=self.started_at,
            next_retry_at=self.next_retry_at,
            scope=self.spec.scope,
            command=self.spec.command,
            cpu_percent=facts.cpu_percent if facts is not None else None,
            memory_rss=facts.memory_rss if facts is not None else None,
            ports=facts.ports if facts is not None else (),
            next_run_at=self.schedule.next_at if self.schedule is not None else None,
            group=self.spec.replica.group if self.spec.replica is not None else None,
            watching=self.watching,
            hook_error=self.hook_error,
        )

    def publish(self) -> None:
        """Announce the current status, and wake anyone waiting on this process (dependents)."""
        self._bus.publish(self.status())
        self._changed.set()
        self._changed = asyncio.Event()

    def _transition(self, new: ProcessState, reason: str) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.name, self.state, new)
        log.info("%s: %s -> %s (%s)", self.name, self.state, new, reason)
        self.state = new
        self.reason = reason
        self.publish()

    def _on_output(self, stream: str, data: bytes) -> None:
        if self._output is not None:
            self._output.feed(self.spec.name, stream, data)

    @property
    def ended_on_its_own(self) -> bool:
        """Stopped after a run that ended without anyone asking (not a user's stop, not never run)."""
        return self.state is S.STOPPED and self._stop_reason is None and bool(self.history)

    def flush_times(self) -> None:
        """Write out the pending output time stamps of the current run, and of ended runs whose last
        output is still being drained (before their logs are read)."""
        if self._run is not None:
            self._run.logs.flush_times()
        for run_logs in self.runs.draining:
            run_logs.flush_times()

    def note(self, text: str) -> None:
        """A new reason without a change of state (a schedule's news about a run still going)."""
        self.reason = text
        self.publish()

    def _resting_reason(self) -> str:
        if self.spec.schedule is not None:
            return f"scheduled: {self.spec.schedule.rule}"
        return "not started"

    def _running_reason(self) -> str:
        return f"running ({self._note})" if self._note else "running"

    async def launched(self) -> None:
        """Until the current start has spawned, failed to, or is waiting for a dependency."""
        if self._task is not None and not self._task.done():
            waiter = asyncio.ensure_future(self._launched.wait())
            await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    # -- commands ---------------------------------------------------------------------------------

    async def start(self, note: str | None = None) -> None:
        """Start; on `failed` or `retrying`, retry at once with a fresh failure count.

        `note` says why, when it was not the user (a scheduled time, a changed file).
        """
        async with self._lock:
            if self.state is S.DISABLED:
                raise ActionRefused(f"{self.name} is disabled; enable it first")
            if self.state not in STARTABLE_STATES:
                return  # already starting, running or on its way down under another command
            await self._cancel_task()
            self.failures = 0
            self.next_retry_at = None
            self._stop_reason = None
            self._note = note
            self._launched.clear()
            self._transition(S.STARTING, f"starting ({note})" if note else "starting")
            self._task = asyncio.create_task(self._lifecycle(), name=f"pmtop:{self.name}")

    async def stop(self, reason: str = "stopped by user", end_reason: EndReason = EndReason.STOP) -> None:
        async with self._lock:
            await self._stop_locked(reason, end_reason)

    async def restart(self) -> None:
        async with self._lock:
            if self.state is S.DISABLED:
                raise ActionRefused(f"{self.name} is disabled; enable it first")
            await self._stop_locked("restarting", EndReason.STOP)
        await self.start()

    async def disable(self) -> None:
        async with self._lock:
            if self.state is S.DISABLED:
                return
            await self._stop_locked("disabled by user", EndReason.STOP)
            self._transition(S.DISABLED, "disabled by user")

    async def enable(self) -> bool:
        """Back to `stopped`; True when the caller should start it (autostart processes)."""
        async with self._lock:
            if self.state is not S.DISABLED:
                return False
            self._transition(S.STOPPED, "enabled")
        return self.spec.autostart

    async def _stop_locked(self, reason: str, end_reason: EndReason) -> None:
        task = self._task
        if task is None or task.done():
            if self.state is S.FAILED:
                self._transition(S.STOPPED, reason)
            return
        self._stop_reason = (reason, end_reason)
        if self._monitor is not None:
            self._monitor.cancel()  # from here on no probe result can restart the process
        child = self._child
        if child is None:  # waiting for dependencies or backing off: nothing to kill
            await self._cancel_task()
            self.next_retry_at = None
            self._transition(S.STOPPED, reason)
            return
        self._transition(S.STOPPING, f"{reason}: {self._stop_words()}")
        await spawner.stop_group(child, self.spec.stop_signal, self.spec.stop_timeout)
        await asyncio.shield(task)  # the lifecycle records the run and lands in `stopped`

    def _stop_words(self) -> str:
        return f"sent SIG{self.spec.stop_signal.name.removeprefix('SIG')}, SIGKILL after {self.spec.stop_timeout:g}s"

    async def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def kill_now(self) -> None:
        """Last resort at supervisor exit: SIGKILL the group without waiting out `stop_timeout`."""
        if self._child is not None:
            spawner.signal_group(self._child.pgid, signal.SIGKILL)

    # -- hand-over between supervisors -------------------------------------------------------------

    def adopt(self, live: LiveChild) -> bool:
        """Take over the run an earlier supervisor left; False if that process is gone."""
        if self.state is not S.STOPPED or self._task is not None:
            return False
        run = launch.adopt_run(self.spec, live, process_dir=self.runs.process_dir,
                               loop=asyncio.get_running_loop(), on_output=self._on_output)
        if run is None:
            return False
        self.restarts = live.restarts
        self.failures = live.consecutive_failures
        self._stop_reason = None
        self._transition(S.STARTING, f"adopting pid {live.pid}")
        self._task = asyncio.create_task(self._lifecycle(run), name=f"pmtop:{self.name}")
        return True

    def live_child(self) -> LiveChild | None:
        """What a successor needs to adopt the current run (None when nothing runs)."""
        run = self._run
        return run.live_child(self.restarts, self.failures) if run is not None else None

    def detach(self) -> None:
        """Let go of the process without stopping it (a successor will adopt it)."""
        task, self._task = self._task, None
        if self._monitor is not None:
            self._monitor.cancel()
        if task is not None and not task.done():
            task.cancel()
        self._disarm_reset_timer()
        run, self._run = self._run, None
        if run is not None:
            spawner.forget(run.child)
            run.logs.close()

    def replace_spec(self, spec: ProcessSpec) -> None:
        """A reloaded config changed this process; only while it is not active."""
        assert self.state not in ACTIVE_STATES
        if self.schedule is not None:
            self.schedule.close()
        self.schedule = ScheduledRuns(self, spec.schedule) if spec.schedule is not None else None
        self.spec = spec
        self._env = launch.merged_env(spec)
        if not spec.enabled and self.state is not S.DISABLED:
            self._transition(S.DISABLED, "disabled in config")
        elif spec.enabled and self.state is S.DISABLED and self.reason == "disabled in config":
            self._transition(S.STOPPED, "enabled in config")
        else:
            self.publish()

    # -- lifecycle --------------------------------------------------------------------------------

    async def _lifecycle(self, adopted: launch.Run | None = None) -> None:
        try:
            await self._live(adopted)
        finally:
            if self.schedule is not None and self.state in (S.STOPPED, S.FAILED):
                self.schedule.run_ended(by_user=self._stop_reason is not None)

    async def _live(self, adopted: launch.Run | None) -> None:
        while True:
            if adopted is None:
                await self._wait_for_dependencies()
            outcome, ran, detail, action = await self._run_once(adopted)
            adopted = None
            if self._stop_reason is not None:
                self._transition(S.STOPPED, self._stop_reason[0])
                return
            if action is not FailAction.RESTART:  # a startup check's fail_action: no restart decision
                final = S.DISABLED if action is FailAction.DISABLE else S.FAILED
                self._transition(final, f"{detail}; startup check failed (fail_action = {action})")
                return
            if self.spec.schedule is not None and outcome is Outcome.CLEAN_EXIT:
                decision: Rest | Retry | GiveUp = Rest()  # a scheduled run is done: the next time starts it again
            else:
                decision = decide(outcome, self.failures, self.spec.restart)
            summary = f"{detail} after {ran:.1f}s" if ran is not None else detail
            if isinstance(decision, Rest):
                self._transition(S.STOPPED, summary)
                return
            if self.state is not S.CRASHED:  # already crashed: failed health, the group was stopped
                self._transition(S.CRASHED, summary)
            if isinstance(decision, GiveUp):
                self.failures = decision.failures
                why = "restart = no" if self.spec.restart.policy is RestartPolicy.NO else (
                    f"gave up after {decision.failures} consecutive failures"
                )
                self._transition(S.FAILED, f"{summary}; {why}")
                return
            assert isinstance(decision, Retry)
            self.failures = decision.attempt
            limit = f"{decision.attempt}/{decision.limit}" if decision.limit is not None else (
                f"{decision.attempt}, retrying forever"
            )
            if decision.delay > 0:
                self.next_retry_at = time.time() + decision.delay
                # No countdown in the reason: it would go stale. Faces show one from next_retry_at.
                self._transition(S.RETRYING, f"{summary}; retry {limit}")
                log.info("%s: waiting %.1fs for retry %s", self.name, decision.delay, limit)
                await asyncio.sleep(decision.delay)
                self.next_retry_at = None
            self.restarts += 1
            self._note = None
            ended_how = describe_exit(self.exit_code) if ran is not None else detail
            self._transition(S.STARTING, f"restart {limit} after {ended_how}")

    async def _wait_for_dependencies(self) -> None:
        while True:
            waiting = dependencies.unmet(self.spec.depends_on, self._lookup)
            if not waiting:
                return
            self._launched.set()
            reason = "waiting for " + ", ".join(waiting)
            if self.state is not S.STARTING or self.reason != reason:  # a dependency's probe is no news
                self._transition(S.STARTING, reason)
            await dependencies.any_changed(self.spec.depends_on, self._lookup)

    def satisfies(self, condition: DependencyCondition) -> bool:
        return dependencies.satisfies(self, condition)

    async def _run_once(self, adopted: launch.Run | None = None) -> RunEnd:
        """Spawn (or take over `adopted`), wait for the exit or a health verdict, record the run."""
        spec = self.spec
        loop = asyncio.get_running_loop()
        if adopted is not None:
            run = adopted
        else:
            if self.state is not S.STARTING:
                self._transition(S.STARTING, "starting")
            try:
                run = launch.start_run(spec, env=self._env, run_dir=self.runs.new_folder(), loop=loop,
                                       on_output=self._on_output)
            except SpawnError as exc:
                self._launched.set()
                loop.call_soon(self.runs.prune, spec.logs.keep_runs)
                now = time.time()
                self.exit_code = None
                self.runs.record(RunRecord(None, now, now, None, EndReason.CRASH, (exc.message,)))
                return RunEnd(Outcome.FAILURE, None, exc.message)
        self._launched.set()
        child, run_logs = run.child, run.logs
        self._run = run
        self.runs.current = run.run_dir
        self._child = child
        self.pid = child.pid
        self.started_at = child.started_at
        self.exit_code = None
        check = spec.health
        if adopted is not None:
            self.health = Health.HEALTHY if check is None else Health.UNKNOWN
            self._transition(S.RUNNING, f"adopted: left running by an earlier supervisor (pid {child.pid})")
            self._arm_reset_timer()
        elif check is not None and check.startup is not None:
            self._transition(S.STARTING, f"spawned; startup check every {check.startup.interval:g}s, "
                                         f"up to {check.startup.max_attempts} attempts")
        else:
            self.health = Health.HEALTHY if check is None else Health.UNKNOWN  # see HealthMonitor
            self._transition(S.RUNNING, self._running_reason())
            self._arm_reset_timer()
        if adopted is None:  # after the news is out: the restart path does not wait for an rmtree
            loop.call_soon(self.runs.prune, spec.logs.keep_runs)
        try:
            verdict = await self._watch_health(child) if spec.health is not None else None
            if verdict is not None:
                await self._stop_unhealthy(child, verdict)
            exit_code = await asyncio.shield(child.exited)
        finally:
            self._disarm_reset_timer()
        spawner.kill_leftovers(child)
        ended = time.time()
        self._child = None
        self._run = None
        self.facts = None
        self.pid = None
        self.health = Health.UNKNOWN
        self.exit_code = exit_code
        self.completed = exit_code == 0 and verdict is None
        if verdict is not None:
            end_reason = EndReason.HEALTH
        elif self._stop_reason is not None:
            end_reason = self._stop_reason[1]
        else:
            end_reason = EndReason.EXIT if exit_code == 0 else EndReason.CRASH
        self.runs.record(RunRecord(child.pid, child.started_at, ended, exit_code, end_reason,
                                   run_logs.stderr_tail.lines()), run_logs)
        if verdict is not None:
            return RunEnd(Outcome.FAILURE, None, verdict.reason, verdict.action)
        outcome = Outcome.CLEAN_EXIT if exit_code == 0 else Outcome.FAILURE
        return RunEnd(outcome, ended - child.started_at, describe_exit(exit_code))

    # -- health -----------------------------------------------------------------------------------

    async def _watch_health(self, child: spawner.Child) -> Unhealthy | None:
        """Until the child exits, or its health check gives up on it (the verdict)."""
        assert self.spec.health is not None
        probe = checks.make_probe(self.spec.health, cwd=self.spec.cwd, env={**os.environ, **self.spec.env})
        self._monitor = HealthMonitor(self.spec.health, probe, self._on_health)
        try:
            return await self._monitor.watch(child.exited)
        finally:
            self._monitor = None

    def _on_health(self, report: HealthReport) -> None:
        """A change seen by the monitor: publish it, once (a repeat of the same news publishes nothing)."""
        if self._stop_reason is not None or self.state not in (S.STARTING, S.RUNNING):
            return
        new = S.RUNNING if report.started else S.STARTING
        reason = self._running_reason() if report.reason == RUNNING_REASON else report.reason
        if (new, report.health, reason) == (self.state, self.health, self.reason):
            return
        became_running = new is S.RUNNING and self.state is not S.RUNNING
        self.health = report.health
        self._transition(new, reason)
        if became_running:
            self._arm_reset_timer()

    async def _stop_unhealthy(self, child: spawner.Child, verdict: Unhealthy) -> None:
        """Failed health: `crashed`, and the whole group stopped as a stop request would, then decide."""
        self.health = Health.UNHEALTHY
        self._transition(S.CRASHED, f"{verdict.reason}; stopping it: {self._stop_words()}")
        await spawner.stop_group(child, self.spec.stop_signal, self.spec.stop_timeout)

    def _arm_reset_timer(self) -> None:
        if self.failures and self.spec.restart.reset_after > 0:
            loop = asyncio.get_running_loop()
            self._reset_timer = loop.call_later(self.spec.restart.reset_after, self._reset_failures)

    def _disarm_reset_timer(self) -> None:
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None

    def _reset_failures(self) -> None:
        self._reset_timer = None
        if self.state is S.RUNNING and self.failures:
            self.failures = 0
            self._transition(S.RUNNING, f"running; stable for {self.spec.restart.reset_after:g}s, "
                                        "failure count reset")

    async def wait_stopped(self) -> None:
        """Until the lifecycle task (if any) has finished."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)
