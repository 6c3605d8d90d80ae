"""One process's state machine: the runner task that walks the transition table (`states.TRANSITIONS`).

Every state change goes through `ProcessRunner._transition`, which checks it against `TRANSITIONS`
and publishes the new status: one place, so no change can go unannounced. Time-based edges (backoff,
`reset_after`, `stop_timeout`) are awaited deadlines inside the runner's own task, never a global tick,
so an idle supervisor does no work at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks.monitor import RUNNING_REASON, Unhealthy
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
from ..system import foreign, notify, ports, spawner
from . import dependencies, launch, logs
from .ends import RunEnd, judge_end
from .notifications import Notifications, child_env, socket_for
from .policy import GiveUp, Outcome, Rest, Retry, decide
from .readiness import LogLineMatcher
from .runs import Runs
from .scheduling import ScheduledRuns
from .watch import RunWatch, WatchReport

if TYPE_CHECKING:
    from ..system.facts import Facts

S = ProcessState
log = logging.getLogger("pmtop.core")


DependencyLookup = dependencies.Lookup

HEADSTART = 0.001
"""Seconds a new program gets to itself after its spawn, before the supervisor's own work for it (its
folder and log files, the state changes and their events, the watch). On a busy machine that work
competes with the program's exec and dynamic loader for the CPU it was spawned on: with it right after
the spawn, SIGKILL to the new program's `main()` took 2.5 ms (median, 2 cores, `bench/bench_restart_main.py`:
a C program writes the clock at `main()`); with this head start, 1.6–1.8 ms. A restart now also yields
the CPU to its program at the spawn (`spawner.spawn`'s `yield_cpu`), which alone gives the same figure;
the head start still keeps a boot's execs ahead of everyone's log files. The supervisor stays
responsive meanwhile (a timer, not a sleep), and whatever the program writes waits in its pipe."""


class ProcessRunner:
    """Owns one process: its child, its lifecycle task and the facts that make up its status.

    User commands (`start`, `stop`, ...) are serialised by a lock; the lifecycle task (spawn, wait,
    decide, back off, spawn again) runs between them and is the only place that reacts to an exit.
    """

    # One runner per managed process: slots (no per-instance dict) and a lazily made waiter keep the
    # idle cost of a process small (bench/bench_memory.py measures the bytes per process).
    __slots__ = (
        "spec", "_on_run_end", "_settle", "_log_troubles", "_bus", "_lookup", "_output", "state", "reason", "pid",
        "exit_code", "started_at", "next_retry_at", "health", "restarts", "failures", "completed", "runs",
        "_child", "_run", "_notify_dir", "_notifications", "_env", "_exec_env", "_watch", "_matcher", "_adopted_argv",
        "facts", "_task", "_stop_reason", "_lock", "_changed", "_reset_timer", "_launched", "schedule",
        "watching", "hook_error", "_note",
    )

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        bus: EventBus,
        log_dir: Path,
        lookup: DependencyLookup,
        output: logs.OutputHub | None = None,
        on_run_end: Callable[[], None] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
        notify_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self._on_run_end = on_run_end
        self._settle = settle
        """Awaited before a port check: what escaped the ended runs is dealt with (`Supervisor.settle_strays`)."""
        """Told after each run's group is gone (the supervisor then looks for what escaped it)."""
        self._log_troubles: dict[str, str] = {}
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
        """The current run's main process (the spawned child, until it names another with `MAINPID=`)."""
        self._run: launch.Run | None = None
        self._notify_dir = notify_dir
        self._notifications: Notifications | None = None
        """The sd_notify socket of a `notify` check (made before its first spawn, kept across runs)."""
        self._env = child_env(spec, notify_dir)
        self._exec_env = launch.exec_env(self._env)
        self._watch: RunWatch | None = None
        self._matcher: LogLineMatcher | None = None
        self._adopted_argv: tuple[str, ...] = ()
        """The command line of a process adopted by PID, as the OS shows it (when the spec has none)."""
        self.facts: Facts | None = None
        """Live CPU, memory and ports of the current run, from the supervisor's sampler."""
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: tuple[str, EndReason] | None = None
        self._lock = asyncio.Lock()
        self._changed: asyncio.Event | None = None
        """Made by the first dependent that waits (`wait_changed`), set and dropped by `publish`."""
        self._reset_timer: asyncio.TimerHandle | None = None
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
    def history(self) -> list[RunRecord]:
        return self.runs.history

    @property
    def run_dir(self) -> Path | None:
        return self.runs.current

    # -- status -----------------------------------------------------------------------------------

    def status(self, sampled: Facts | None = None) -> ProcessStatus:
        """The current status; `sampled` (an on-demand sample of this run) wins over the watcher's facts."""
        facts = (sampled or self.facts) if self.pid is not None else None
        reason = self.reason
        for note in self._log_troubles.values():  # until its output is saved again
            reason = f"{reason}; {note}"
        return ProcessStatus(
            name=self.spec.name,
            state=self.state,
            reason=reason,
            pid=self.pid,
            health=self.health,
            restarts=self.restarts,
            consecutive_failures=self.failures,
            exit_code=self.exit_code,
            started_at=self.started_at,
            next_retry_at=self.next_retry_at,
            scope=self.spec.scope,
            command=self.spec.command or self._adopted_argv,
            port=self.spec.port,
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
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

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

    def _on_log_trouble(self, stream: str, problem: str | None, lost: int) -> None:
        """A log file failed (full or read-only disk), or works again: said once each, in the
        reason and the daemon log. The process itself runs on, its output drained and dropped."""
        if problem is not None:
            if stream in self._log_troubles:
                return  # already said (a restart's fresh pipe finds the same full disk)
            self._log_troubles[stream] = f"{stream} not saved: {problem}"
            log.warning("%s: %s", self.name, self._log_troubles[stream])
        elif self._log_troubles.pop(stream, None) is not None:
            log.warning("%s: %s saved again (%d bytes were lost)", self.name, stream, lost)
        else:
            return
        self.publish()

    def _on_output_waiting(self, stream: str, data: bytes) -> None:
        """Output of a run that waits for its `ready_log_line` (only such runs pay for the search)."""
        matcher = self._matcher
        if matcher is not None and matcher.feed(stream, data):
            self._matcher = None
        self._on_output(stream, data)

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

    def wait_changed(self) -> Awaitable[bool]:
        """Until the next status published after this call. The event is made here, not when the result
        is first awaited: a dependent that wraps it in a task would otherwise miss a publish that comes
        before the task's first step (seen when a dependency yields between its spawn and `running`)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed.wait()

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
            self._refuse_without_command()
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
            self._refuse_without_command()
            await self._stop_locked("restarting", EndReason.STOP)
        await self.start()

    def _refuse_without_command(self) -> None:
        if not self.spec.command:
            raise ActionRefused(f"{self.name} was adopted by PID without a command, so pmtop has nothing to "
                                "start (adopt it with `-- CMD ARGS...` to have one)")

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
        if self._watch is not None:
            self._watch.cancel()  # from here on no probe result (or missing log line) can restart it
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
            spawner.signal_child(self._child, signal.SIGKILL)

    # -- hand-over between supervisors -------------------------------------------------------------

    def adopt(self, live: LiveChild) -> bool:
        """Take over the run an earlier supervisor left; False if that process is gone."""
        if self.state is not S.STOPPED or self._task is not None:
            log.info("%s: not adopting pid %s: already %s", self.name, live.pid, self.state)
            return False
        run = launch.adopt_run(self.spec, live, process_dir=self.runs.process_dir,
                               loop=asyncio.get_running_loop(), on_output=self._on_output,
                               on_trouble=self._on_log_trouble)
        if run is None:
            log.info("%s: not adopting pid %s: it is gone (or the PID is another process's now)", self.name, live.pid)
            return False
        self.restarts = live.restarts
        self.failures = live.consecutive_failures
        if live.foreign and not self.spec.command:
            self._adopted_argv = foreign.cmdline(live.pid)
        self._take_over(run)
        return True

    def owns(self, pid: int, pgid: int, sid: int, marker: str) -> bool:
        """Does a process marked as this runner's belong to the run going on now (its group, its
        session, or started by it)? If not, it escaped a run that has ended (`system.strays`)."""
        run = self._run
        if run is None or run.child.exited.done():
            return False
        leaders = {run.child.pid} | ({run.spawned.pid} if run.spawned is not None else set())
        return not leaders.isdisjoint((pid, pgid, sid)) or marker == run.marker

    def note_escapees(self, pids: list[int]) -> None:
        """Escaped processes of an ended run were killed: said once, in the reason and the log."""
        words = ", ".join(map(str, pids))
        note = f"killed {len(pids)} process{'es' if len(pids) > 1 else ''} that escaped an ended run (pid {words})"
        log.warning("%s: %s", self.name, note)
        self.reason = f"{self.reason}; {note}"
        self.publish()

    def adopt_pid(self, pid: int, argv: tuple[str, ...]) -> bool:
        """Watch a process someone else started (`pmtop adopt`); False if it is gone. `argv` is its
        command line as the OS shows it (shown while the spec has no command of its own)."""
        if self.state is not S.STOPPED or self._task is not None:
            return False
        run = launch.adopt_pid(pid, process_dir=self.runs.process_dir)
        if run is None:
            return False
        self._adopted_argv = argv
        self._take_over(run)
        return True

    def _take_over(self, run: launch.Run) -> None:
        self._stop_reason = None
        self.pid = run.child.pid  # known at once: a second adoption of the same PID is refused
        self._transition(S.STARTING, f"adopting pid {run.child.pid}")
        self._task = asyncio.create_task(self._lifecycle(run), name=f"pmtop:{self.name}")

    def live_child(self) -> LiveChild | None:
        """What a successor needs to adopt the current run (None when nothing runs)."""
        run = self._run
        return run.live_child(self.restarts, self.failures) if run is not None else None

    def detach(self) -> None:
        """Let go of the process without stopping it (a successor will adopt it)."""
        task, self._task = self._task, None
        if self._watch is not None:
            self._watch.cancel()
        if task is not None and not task.done():
            task.cancel()
        self._disarm_reset_timer()
        run, self._run = self._run, None
        if run is not None:
            spawner.forget(run.child)
            if run.spawned is not None:
                spawner.forget(run.spawned)
            run.logs.close()
        if self._notifications is not None:  # the successor binds the same path for the child
            self._notifications.close(unlink=False)
            self._notifications = None

    def close(self) -> None:
        """The process is gone for good (removed, or the supervisor exits): release its socket."""
        if self._notifications is not None:
            self._notifications.close()
            self._notifications = None

    def replace_spec(self, spec: ProcessSpec) -> None:
        """A reloaded config changed this process; only while it is not active."""
        assert self.state not in ACTIVE_STATES
        if self.schedule is not None:
            self.schedule.close()
        self.schedule = ScheduledRuns(self, spec.schedule) if spec.schedule is not None else None
        self.spec = spec
        if self._notifications is not None and socket_for(spec, self._notify_dir) is None:
            self.close()
        self._env = child_env(spec, self._notify_dir)
        self._exec_env = launch.exec_env(self._env)
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
        started: launch.Run | SpawnError | RunEnd | None = adopted
        """The run to watch next when it is already under way (adopted, or spawned by the immediate
        restart below), or how its start ended before it began."""
        while True:
            if started is None:
                await self._wait_for_dependencies()
                started = await self._begin()
                if isinstance(started, launch.Run):
                    # Everything starting now execs before anyone's folder and log files are made: a
                    # boot of 200 has them all running ~0.15 s sooner.
                    await self._give_way(started)
            close_run: Callable[[], None] | None = None
            if isinstance(started, SpawnError):
                end = self._spawn_failed(started)
            elif isinstance(started, RunEnd):
                end = started
            else:
                end, close_run = await self._run_once(started)
            started = None
            decision = self._next(end)
            if isinstance(decision, Retry) and decision.delay <= 0 and self._may_spawn_at_once():
                # An immediate restart spawns first: the ended run's bookkeeping, the log lines and
                # events of the crash, and the new run's folder all come after the exec (and its head
                # start), in the same order as ever.
                started = self._spawn(restart=True)
            if close_run is not None:
                close_run()
            ran, detail, action = end.ran, end.detail, end.action
            if self._stop_reason is not None:
                self._transition(S.STOPPED, self._stop_reason[0])
                return
            if end.give_up is not None:
                self._transition(S.FAILED, end.give_up)
                return
            if action is not FailAction.RESTART:  # a startup check's fail_action: no restart decision
                final = S.DISABLED if action is FailAction.DISABLE else S.FAILED
                self._transition(final, f"{detail}; startup check failed (fail_action = {action})")
                return
            summary = f"{detail} after {ran:.1f}s" if ran is not None else detail
            if not self.spec.command:  # adopted by PID, with nothing to start it again
                self._transition(S.STOPPED, f"{summary}; adopted without a command, so nothing restarts it")
                return
            assert decision is not None
            if isinstance(decision, Rest):
                self._transition(S.STOPPED, summary)
                return
            ended_how = describe_exit(self.exit_code) if ran is not None else detail
            if isinstance(started, launch.Run):  # spawned at once, above
                await self._give_way(started, restart=True)
                if self._stop_reason is not None:  # a stop came meanwhile: it ends the new run
                    continue
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
            self._transition(S.STARTING, f"restart {limit} after {ended_how}")

    def _next(self, end: RunEnd) -> Rest | Retry | GiveUp | None:
        """What follows a run's end by the restart policy; None when nothing may start it again (a stop,
        a give-up, a startup check's `fail_action`, a process adopted without a command)."""
        if (self._stop_reason is not None or end.give_up is not None or end.action is not FailAction.RESTART
                or not self.spec.command):
            return None
        if self.spec.schedule is not None and end.outcome is Outcome.CLEAN_EXIT:
            return Rest()  # a scheduled run is done: the next time starts it again
        return decide(end.outcome, self.failures, self.spec.restart)

    async def _give_way(self, run: launch.Run, *, restart: bool = False) -> None:
        """Right after a spawn: the new program's `HEADSTART`, then `_run_once` does the rest.

        The run is this runner's from the spawn on: a stop meanwhile signals it (and `_run_once` then
        records it as stopped), a registry save or a hand-over records it (a successor that finds its
        folder not made yet makes one), and the stray hunt knows it for ours. Its PID is shown at once
        on a start; on a `restart`, with the new run's state, after the news of the crash."""
        self._run, self._child = run, run.child
        if not restart:  # a restart's new PID waits for the crash's news, which comes first
            self.pid = run.child.pid
        await asyncio.sleep(HEADSTART)

    def _may_spawn_at_once(self) -> bool:
        """Can the next run be spawned right now, with no await before it? Not with a port to check
        first (an await), nor while a dependency is unmet (the loop waits for it)."""
        return self.spec.port is None and not dependencies.unmet(self.spec.depends_on, self._lookup)

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

    def _not_begun(self, detail: str, *, give_up: bool = False) -> RunEnd:
        """A start that never got a process: recorded in the history, then judged like a failed run."""
        self._launched.set()
        now = time.time()
        self.exit_code = None
        self.runs.record(RunRecord(None, now, now, None, EndReason.CRASH, (detail,)))
        return RunEnd(Outcome.FAILURE, None, detail, give_up=detail if give_up else None)

    async def _begin(self) -> launch.Run | SpawnError | RunEnd:
        """Start a run once its dependencies are met: `starting`, its port checked, spawned."""
        if self.state is not S.STARTING:
            self._transition(S.STARTING, "starting")
        if self.spec.port is not None and self._settle is not None:
            await self._settle()  # a leftover of an ended run is killed first: it must not hold our port
        if self.spec.port is not None and (taken := await ports.taken(self.spec.port)) is not None:
            return self._not_begun(taken, give_up=True)
        return self._spawn()

    def _spawn(self, *, restart: bool = False) -> launch.Run | SpawnError:
        """The next run's exec with only what must come before it: its sd_notify socket, its pipes, the
        name of its folder (see `launch.start_run`). The rest is `_run_once`'s, after the exec. An
        immediate `restart` also lets the new program finish its exec before anything else runs here
        (`spawner.spawn`'s `yield_cpu`)."""
        spec = self.spec
        self._open_notifications()
        if spec.ready_log_line is not None:
            self._matcher = LogLineMatcher(spec.ready_log_line)
        try:
            return launch.start_run(spec, env=self._exec_env, run_dir=self.runs.new_folder(), yield_cpu=restart)
        except SpawnError as exc:
            if self._matcher is not None:
                self._matcher.close()
                self._matcher = None
            return exc

    def _spawn_failed(self, exc: SpawnError) -> RunEnd:
        asyncio.get_running_loop().call_soon(self.runs.prune, self.spec.logs.keep_runs)
        return self._not_begun(exc.message)

    async def _run_once(self, run: launch.Run) -> tuple[RunEnd, Callable[[], None]]:
        """Watch a run under way (spawned by `_spawn`, or adopted) until it exits or must go; how it
        ended, and its bookkeeping (`_close_run`) for the caller to do. A new run's folder and log
        files are made here, after its exec."""
        spec = self.spec
        loop = asyncio.get_running_loop()
        adopted = run if run.adopted else None
        matcher = self._matcher if adopted is None else None
        if adopted is None:
            launch.attach_logs(run, spec, loop=loop,
                               on_output=self._on_output_waiting if matcher is not None else self._on_output,
                               on_trouble=self._on_log_trouble)
        self._launched.set()
        child = run.child
        self._run = run
        self.runs.current = run.run_dir
        self._child = child
        self.pid = child.pid
        self.started_at = child.started_at
        self.exit_code = None
        notifications = self._notifications if adopted is None or self._open_notifications() else None
        state = notify.NotifyState() if notifications is not None else None
        watch = self._watch = RunWatch(spec, report=self._on_watch, env=self._env or os.environ,
                                       started_at=child.started_at, matcher=matcher, notify=state,
                                       adopted=adopted is not None)
        if notifications is not None and state is not None:
            notifications.begin(child.pid if adopted is None else (child.group or child.pid), watch,
                                grace=spec.stop_timeout, state=state)
        first = watch.current()
        self.health = first.health
        stopping = self.state is S.STOPPING  # a stop came between the exec and here (see `_live`)
        if stopping:  # it goes on; as it would have, it cancels the watch: nothing may restart this run
            watch.cancel()
        elif adopted is not None:
            if run.foreign:
                reach = "its process group" if child.group is not None else "it alone (it does not lead its group)"
                why = f"adopted: started outside pmtop (pid {child.pid}); stop signals {reach}"
            else:
                why = f"adopted: left running by an earlier supervisor (pid {child.pid})"
            self._transition(S.RUNNING, why)
        else:
            reason = self._running_reason() if first.up and first.reason == RUNNING_REASON else first.reason
            self._transition(S.RUNNING if first.up else S.STARTING, reason)
        if first.up and not stopping:
            self._arm_reset_timer()
        if adopted is None:  # after the news is out: the restart path does not wait for an rmtree
            loop.call_soon(self.runs.prune, spec.logs.keep_runs)
        verdict, exit_code = await self._watch_run(watch)
        if matcher is not None:
            matcher.close()
            self._matcher = None
        if notifications is not None:
            notifications.end()
        child = self._child
        assert child is not None
        if not run.foreign:  # no grandchild outlives a process pmtop runs (a foreign one's group is not ours)
            spawner.kill_leftovers(child)
        ended = time.time()
        self.exit_code = exit_code
        stop = self._stop_reason[1] if self._stop_reason is not None else None
        end, end_reason, self.completed = judge_end(child.pid, child.started_at, ended, exit_code, verdict=verdict,
                                                    stop=stop, said_stopping=watch.stopping)
        record = RunRecord(child.pid, child.started_at, ended, exit_code, end_reason, run.logs.stderr_tail.lines())
        return end, functools.partial(self._close_run, record, run.logs)

    def _close_run(self, record: RunRecord, run_logs: logs.RunLogs) -> None:
        """The ended run's bookkeeping: after the next run's spawn, when the policy restarts it at once."""
        if self._on_run_end is not None:
            self._on_run_end()
        self._child = None
        self._run = None
        self._watch = None
        self.facts = None
        self.pid = None
        self.health = Health.UNKNOWN
        self.runs.record(record, run_logs)

    async def _watch_run(self, watch: RunWatch) -> tuple[Unhealthy | None, int | None]:
        """Until the run's main process exits; a verdict first stops its group (as a stop would)."""
        run = self._run
        assert run is not None
        if watch.idle and self._notifications is None:
            # Nothing to judge and nobody to move the main process: the shortest path from an exit to
            # its restart, with no task in between (most processes take it).
            try:
                return None, await asyncio.shield(run.child.exited)
            finally:
                self._disarm_reset_timer()
        judge = asyncio.create_task(watch.run(), name=f"pmtop:{self.name}:watch")
        if self._notifications is not None:  # MAINPID= may move it: follow the main process
            ended: asyncio.Future[int | None] = asyncio.ensure_future(run.main_exit(self._drain_notifications))
        else:
            ended = run.child.exited
        verdict: Unhealthy | None = None
        try:
            await asyncio.wait((judge, ended), return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                verdict = judge.result()  # the run must go; or None: a stop began, and it ends it
                if verdict is not None:
                    await self._stop_unhealthy(verdict)
            return verdict, await asyncio.shield(ended)
        finally:
            self._disarm_reset_timer()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await judge  # an exec probe in flight is killed and reaped before the run is recorded
            if ended is not run.child.exited and not ended.done():
                ended.cancel()

    def follow_main_pid(self, pid: int) -> None:
        """sd_notify `MAINPID=`: the run's main process is now `pid` (checked: of this run's session)."""
        old, run = self._child, self._run
        if old is None or run is None:
            return
        child = spawner.follow(pid, old.started_at, old.group)
        if child is None:
            return
        log.info("%s: main process %s -> %s (MAINPID=)", self.name, old.pid, pid)
        run.move(child)
        self._child = child
        self.pid = pid
        if self._notifications is not None:
            self._notifications.moved(pid)
        self.publish()

    def _drain_notifications(self) -> None:
        """Before an exit is judged: a `MAINPID=` sent just before it is read first (as systemd does)."""
        if self._notifications is not None:
            self._notifications.drain()

    def _open_notifications(self) -> bool:
        """Bind the process's sd_notify socket if its check is `notify` (before the spawn: it may speak
        at once); False when it has none."""
        path = socket_for(self.spec, self._notify_dir)
        if path is None:
            return False
        if self._notifications is None:
            self._notifications = Notifications(self.name, path, self)
        self._notifications.open()
        return True

    # -- health -----------------------------------------------------------------------------------

    def _on_watch(self, report: WatchReport) -> None:
        """A change seen by the run's watch: publish it, once (a repeat of the same news publishes nothing)."""
        if self._stop_reason is not None or self.state not in (S.STARTING, S.RUNNING):
            return
        new = S.RUNNING if report.up else S.STARTING
        if new is S.STARTING and self.state is S.RUNNING:
            return  # never back: a run that was up stays up until it ends
        reason = self._running_reason() if report.up and report.reason == RUNNING_REASON else report.reason
        if (new, report.health, reason) == (self.state, self.health, self.reason):
            return
        became_running = new is S.RUNNING and self.state is not S.RUNNING
        self.health = report.health
        self._transition(new, reason)
        if became_running:
            self._arm_reset_timer()

    async def _stop_unhealthy(self, verdict: Unhealthy) -> None:
        """Failed health (or readiness): `crashed`, and the whole group stopped as a stop request
        would, then decide."""
        child = self._child
        assert child is not None
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

