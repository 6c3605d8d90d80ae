"""The in-process supervisor: owns one runner per process and implements `Controller`.

It adds what no single runner can know: dependency order across processes (start pulls in what a
process depends on; stopping everything goes in reverse `depends_on` order), registration and removal
at run time, and the shared event bus.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import checks
from .config.schema import spec_to_table
from .config.writer import add_process_table, remove_process_table
from .errors import ActionRefused, ConfigError, NoSuchProcess, ProcessExists
from .events import EventBus
from .locations import InstancePaths
from .model import (
    ACTIVE_STATES,
    STREAMS,
    EndReason,
    LiveChild,
    ProcessEvent,
    ProcessRemoved,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    RunRecord,
    Scope,
    SupervisorInfo,
)
from .process import logs
from .process.machine import ProcessRunner
from .system import foreign, notify, strays
from .system.sessions import SessionWatch
from .version import __version__

if TYPE_CHECKING:
    from .system.facts import Facts, FactsSampler


FACTS_MAX_AGE = 1.0
"""Seconds an on-demand sample of facts stays fresh enough to answer another request (SPEC §6)."""


HUNT_SPACING = 1.0
"""Seconds between two looks for escaped processes: a crash loop costs one scan a second at most."""


class Supervisor:
    def __init__(
        self,
        specs: Iterable[ProcessSpec],
        *,
        paths: InstancePaths,
        config_path: Path | None = None,
        runtime: Iterable[ProcessSpec] = (),
    ) -> None:
        """`specs` come from the config file at `config_path`; `runtime` were registered at run time
        by an earlier supervisor (from the registry)."""
        self.paths = paths
        self.config_path = config_path
        self.started_at = time.time()
        self.address: tuple[str, int] | None = None
        """Set by whoever serves the API for this supervisor."""
        self.read_only = False
        self.partner: Callable[[], str | None] | None = None
        """Set by the daemon: its partner's state word for the header (SPEC §9)."""
        self._bus = EventBus()
        self._notify_dir = notify.socket_folder(paths.state_dir)
        """Where `notify` checks' sockets are bound (private to the owner; see `system.notify`)."""
        self.output = logs.OutputHub()
        """Live output of every run, for `follow`."""
        self._runners: dict[str, ProcessRunner] = {}
        for spec in specs:
            self._runners[spec.name] = self._make_runner(spec)
        self._declared: set[str] = set(self._runners)
        """Processes declared in the config file (by the user, or persisted there by `add`)."""
        for spec in runtime:
            if spec.name not in self._runners:
                self._runners[spec.name] = self._make_runner(spec)
        self._facts: FactsSampler | None = None
        self._sampled: dict[str, tuple[int, Facts]] = {}
        self._sampled_at = -FACTS_MAX_AGE
        """The last on-demand sample (`_fresh_facts`) and its monotonic time."""
        """Created by the first subscriber that wants facts (psutil is not even imported before)."""
        self._sessions = SessionWatch(self._session_ended)
        self._background: set[asyncio.Task[None]] = set()
        self._hunt: asyncio.TimerHandle | asyncio.Task[list[int]] | None = None
        self._hunt_again = False
        self._hunted_at = -HUNT_SPACING
        self._closing = False

    def _make_runner(self, spec: ProcessSpec) -> ProcessRunner:
        return ProcessRunner(
            spec, bus=self._bus, log_dir=self.paths.log_dir, lookup=self._runners.get, output=self.output,
            on_run_end=self._schedule_hunt, notify_dir=self._notify_dir,
        )

    def _runner(self, name: str) -> ProcessRunner:
        try:
            return self._runners[name]
        except KeyError:
            raise NoSuchProcess(name) from None

    @property
    def names(self) -> list[str]:
        return list(self._runners)

    # -- whole-supervisor operations --------------------------------------------------------------

    async def boot(self) -> None:
        """Start every enabled `autostart` process; each waits for its own dependencies.

        Session processes whose session already ended (while no supervisor ran) are removed first.
        """
        for runner in list(self._runners.values()):
            pid = runner.spec.session_pid
            if pid is not None and not self._sessions.watch(pid):
                await self.remove(runner.name)
        started = await self.start_many(
            n for n, r in self._runners.items() if r.spec.autostart and r.state is ProcessState.STOPPED
        )
        # Let every process spawn before the caller goes on to slow work (importing the API server).
        await asyncio.gather(*(self._runners[s.name].launched() for s in started if s.name in self._runners))

    async def start_many(self, names: Iterable[str]) -> list[ProcessStatus]:
        wanted = list(names)
        for name in wanted:
            self._runner(name)
        await asyncio.gather(*(self.start(n) for n in wanted))
        return [self._runners[n].status() for n in wanted]

    async def stop_many(
        self,
        names: Iterable[str] | None = None,
        *,
        reason: str = "stopped by user",
        end_reason: EndReason = EndReason.STOP,
    ) -> list[ProcessStatus]:
        """Stop in reverse dependency order: a process stops only after its dependents have."""
        wanted = list(self._runners) if names is None else list(names)
        for name in wanted:
            self._runner(name)
        chosen = set(wanted)
        dependents: dict[str, list[str]] = {name: [] for name in wanted}
        for name in wanted:
            for dep in self._runners[name].spec.depends_on:
                if dep in chosen:
                    dependents[dep].append(name)
        tasks: dict[str, asyncio.Future[None]] = {}

        async def stop_one(name: str) -> None:
            if dependents[name]:
                await asyncio.gather(*(tasks[d] for d in dependents[name]), return_exceptions=True)
            await self._runners[name].stop(reason, end_reason)

        for name in wanted:
            tasks[name] = asyncio.ensure_future(stop_one(name))
        await asyncio.gather(*tasks.values())
        return [self._runners[n].status() for n in wanted]

    async def shutdown(self) -> None:
        """Stop everything in reverse dependency order, then end every subscription."""
        await self.stop_many(reason="supervisor exiting", end_reason=EndReason.SUPERVISOR_EXIT)
        if self._hunt is not None:  # runs ended: nothing they left may outlive the supervisor
            await self._cancel_hunt()
            await self.hunt_strays()
        await self._close()

    def kill_all(self) -> None:
        """SIGKILL every process group now (a second Ctrl-C): stops under way end at once."""
        for runner in self._runners.values():
            runner.kill_now()

    async def detach(self) -> None:
        """Let go of every process without stopping it: a successor will adopt them (registry)."""
        for runner in self._runners.values():
            runner.detach()
        await self._close()

    async def _close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._sessions.close()
        if self._facts is not None:
            await self._facts.aclose()
        await checks.close_probes()
        self.output.close()
        self._bus.close()
        await self._cancel_hunt()

    async def _cancel_hunt(self) -> None:
        self._closing = True
        hunt, self._hunt = self._hunt, None
        if isinstance(hunt, asyncio.TimerHandle):
            hunt.cancel()
        elif hunt is not None:
            await asyncio.wait([hunt])

    # -- hand-over, reload, sessions --------------------------------------------------------------

    async def adopt(self, live: dict[str, LiveChild]) -> list[str]:
        """Take over processes an earlier supervisor of this instance left running; their names."""
        return [name for name, child in live.items() if name in self._runners and self._runners[name].adopt(child)]

    def live_children(self) -> dict[str, LiveChild]:
        children = {}
        for name, runner in self._runners.items():
            child = runner.live_child()
            if child is not None:
                children[name] = child
        return children

    async def apply_config(self, specs: Iterable[ProcessSpec]) -> dict[str, list[str]]:
        """A reloaded config: add, change and remove its processes; unchanged ones keep running."""
        new = {s.name: s for s in specs}
        removed = [n for n in self._declared if n not in new]
        changed = [n for n in new if n in self._runners and self._runners[n].spec != new[n]]
        added = [n for n in new if n not in self._runners]
        if removed:
            await self.stop_many(removed, reason="removed from the config")
            for name in removed:
                self._forget(name)
        to_start = []
        for name in changed:
            runner = self._runners[name]
            was_active = runner.state in ACTIVE_STATES
            await runner.stop("config changed")
            runner.replace_spec(new[name])
            self._declared.add(name)
            if was_active or new[name].autostart:
                to_start.append(name)
        for name in added:
            runner = self._make_runner(new[name])
            self._runners[name] = runner
            self._declared.add(name)
            runner.publish()
            if new[name].autostart:
                to_start.append(name)
        await self.start_many(n for n in to_start if self._runners[n].state is not ProcessState.DISABLED)
        return {"added": added, "changed": changed, "removed": removed}

    def _forget(self, name: str) -> None:
        self._runners.pop(name).close()
        self._declared.discard(name)
        self.output.close(name)
        self._bus.publish(ProcessRemoved(name))

    def _session_ended(self, pid: int) -> None:
        """A session PID exited: stop and remove its processes (stop signal, SIGKILL after stop_timeout)."""
        for name, runner in list(self._runners.items()):
            if runner.spec.session_pid == pid:
                task = asyncio.get_running_loop().create_task(self._remove_quietly(name))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _remove_quietly(self, name: str) -> None:
        try:
            await self.remove(name)
        except (NoSuchProcess, ActionRefused) as exc:
            import logging

            logging.getLogger("pmtop.core").warning("session ended, but %s stays: %s", name, exc)

    # -- escaped processes ------------------------------------------------------------------------

    def _schedule_hunt(self) -> None:
        """A run ended: look for processes that escaped it, soon, in a thread, one look at a time."""
        if self._hunt is not None:
            self._hunt_again = True
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._hunted_at + HUNT_SPACING - loop.time())
        self._hunt = loop.call_later(delay, self._start_hunt)

    def _start_hunt(self) -> None:
        self._hunt_again = False
        self._hunted_at = asyncio.get_running_loop().time()
        task = asyncio.get_running_loop().create_task(self.hunt_strays(), name="pmtop:strays")
        self._hunt = task
        task.add_done_callback(self._hunt_done)

    def _hunt_done(self, task: asyncio.Task[list[int]]) -> None:
        self._hunt = None
        if not task.cancelled() and task.exception() is not None:
            import logging

            logging.getLogger("pmtop.core").error("looking for escaped processes failed: %s", task.exception())
        if self._hunt_again and not self._closing:
            self._schedule_hunt()

    async def hunt_strays(self) -> list[int]:
        """Kill what escaped an ended run (provably ours: `system.strays`); their PIDs.

        A process still belongs to its runner while that run goes on (its group, its session, or
        started by it); anything else marked with this instance's log folder is left over."""
        log_dir = str(self.paths.log_dir)
        found = await asyncio.to_thread(strays.find_marked, log_dir)
        killed: dict[str, list[int]] = {}
        for marked in found:
            name = Path(marked.run_dir).parent.name
            runner = self._runners.get(name)
            if runner is not None and runner.owns(marked.pid, marked.pgid, marked.sid, marked.run_dir):
                continue
            if await asyncio.to_thread(strays.kill_marked, marked, log_dir):
                killed.setdefault(name, []).append(marked.pid)
        for name, pids in killed.items():
            runner = self._runners.get(name)
            if runner is not None:
                runner.note_escapees(pids)
            else:
                import logging

                logging.getLogger("pmtop.core").warning("killed pid %s, left running by %s (no longer registered)",
                                                        ", ".join(map(str, pids)), name)
        return [pid for pids in killed.values() for pid in pids]

    # -- facts ------------------------------------------------------------------------------------

    def _fact_roots(self) -> dict[str, int]:
        return {name: r.pid for name, r in self._runners.items() if r.pid is not None}

    def _on_facts(self, changed: dict[str, Facts]) -> None:
        for name, facts in changed.items():
            runner = self._runners.get(name)
            if runner is not None and runner.pid is not None:
                runner.facts = facts
                runner.publish()

    # -- Controller -------------------------------------------------------------------------------

    async def info(self) -> SupervisorInfo:
        host, port = self.address if self.address is not None else (None, None)
        return SupervisorInfo(
            instance=self.paths.instance,
            pid=os.getpid(),
            started_at=self.started_at,
            version=__version__,
            config=str(self.config_path) if self.config_path is not None else None,
            host=host,
            port=port,
            read_only=self.read_only,
            partner=self.partner() if self.partner is not None else None,
        )

    async def processes(self, *, facts: bool = False) -> list[ProcessStatus]:
        """Every process; with `facts`, with CPU, memory and ports at most `FACTS_MAX_AGE` old."""
        if not facts:
            return [r.status() for r in self._runners.values()]
        sampled = await self._fresh_facts()
        return [r.status(self._sample_of(r, sampled)) for r in self._runners.values()]

    async def status(self, name: str, *, facts: bool = False) -> ProcessStatus:
        runner = self._runner(name)
        if not facts:
            return runner.status()
        return runner.status(self._sample_of(runner, await self._fresh_facts()))

    async def _fresh_facts(self) -> dict[str, tuple[int, Facts]]:
        """An on-demand sample of every process (name -> (pid, facts)), unless a watcher's sampler
        keeps the runners' own facts fresh (then empty). A sample under `FACTS_MAX_AGE` old is reused,
        so a burst of requests or scrapes costs one sample, and an idle, unwatched supervisor none.
        CPU % is the average since the previous sample, unknown on the first.

        The sample is kept here, not in the runners: a status published later must not carry facts
        from whenever someone last asked."""
        if self._facts is not None and self._facts.watchers:
            return {}
        if time.monotonic() - self._sampled_at >= FACTS_MAX_AGE:
            roots = self._fact_roots()
            found = await self._sampler().sample_now(roots)
            self._sampled = {name: (roots[name], facts) for name, facts in found.items() if name in roots}
            self._sampled_at = time.monotonic()
        return self._sampled

    @staticmethod
    def _sample_of(runner: ProcessRunner, sampled: dict[str, tuple[int, Facts]]) -> Facts | None:
        entry = sampled.get(runner.name)
        return entry[1] if entry is not None and entry[0] == runner.pid else None

    async def spec(self, name: str) -> ProcessSpec:
        return self._runner(name).spec

    async def start(self, name: str) -> ProcessStatus:
        """Start `name`, and first whatever it depends on that is simply stopped (not failed or disabled)."""
        runner = self._runner(name)
        if runner.state is ProcessState.DISABLED:
            raise ActionRefused(f"{name} is disabled; enable it first")
        for dep_name in self._dependencies_to_start(runner):
            await self._runners[dep_name].start()
        await runner.start()
        return runner.status()

    def _dependencies_to_start(self, runner: ProcessRunner) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(r: ProcessRunner) -> None:
            for dep_name in r.spec.depends_on:
                dep = self._runners.get(dep_name)
                if dep is None or dep_name in seen:
                    continue
                seen.add(dep_name)
                visit(dep)
                if dep.state is ProcessState.STOPPED and not dep.completed:
                    order.append(dep_name)

        visit(runner)
        return order

    async def stop(self, name: str) -> ProcessStatus:
        runner = self._runner(name)
        await runner.stop()
        return runner.status()

    async def restart(self, name: str) -> ProcessStatus:
        runner = self._runner(name)
        await runner.restart()
        return runner.status()

    async def enable(self, name: str) -> ProcessStatus:
        runner = self._runner(name)
        if await runner.enable():
            await self.start(name)
        return runner.status()

    async def disable(self, name: str) -> ProcessStatus:
        runner = self._runner(name)
        await runner.disable()
        return runner.status()

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus:
        """Register a process at run time. A `project` process of this supervisor's config folder is
        also written into its pmtop.toml (so it survives a restart), before anything else changes."""
        if spec.name in self._runners:
            raise ProcessExists(spec.name)
        unknown = [d for d in spec.depends_on if d not in self._runners]
        if unknown:
            raise ConfigError(f"unknown process {unknown[0]!r}", key_path=f"process.{spec.name}.depends_on")
        if spec.session_pid is not None and not self._sessions.watch(spec.session_pid):
            raise ActionRefused(f"session PID {spec.session_pid} is not running")
        config_file = self._config_file_for(spec)
        if config_file is not None:
            add_process_table(config_file, spec.name, spec_to_table(spec, base_dir=config_file.parent))
            self._declared.add(spec.name)
        runner = self._make_runner(spec)
        self._runners[spec.name] = runner
        runner.publish()
        if start and spec.autostart and runner.state is ProcessState.STOPPED:
            await self.start(spec.name)
        return runner.status()

    async def adopt_pid(self, spec: ProcessSpec, pid: int) -> ProcessStatus:
        """Put a process someone else started under watch as `spec` (`pmtop adopt`): state, facts,
        health and history as for any other. A run-time registration: never written to a config file."""
        if spec.name in self._runners:
            raise ProcessExists(spec.name)
        refusal = foreign.refusal(pid)
        if refusal is not None:
            raise ActionRefused(f"cannot adopt pid {pid}: {refusal}")
        for name, other in self._runners.items():
            if other.pid == pid:
                raise ActionRefused(f"cannot adopt pid {pid}: pmtop already supervises it as {name}")
        unknown = [d for d in spec.depends_on if d not in self._runners]
        if unknown:
            raise ConfigError(f"unknown process {unknown[0]!r}", key_path=f"process.{spec.name}.depends_on")
        if spec.session_pid is not None and not self._sessions.watch(spec.session_pid):
            raise ActionRefused(f"session PID {spec.session_pid} is not running")
        runner = self._runners[spec.name] = self._make_runner(spec)
        if not runner.adopt_pid(pid, foreign.cmdline(pid)):
            del self._runners[spec.name]
            raise ActionRefused(f"cannot adopt pid {pid}: it is no longer running")
        return runner.status()

    async def remove(self, name: str) -> None:
        runner = self._runner(name)
        dependents = [n for n, r in self._runners.items() if name in r.spec.depends_on]
        if dependents:
            raise ActionRefused(f"cannot remove {name}: {', '.join(dependents)} depend(s) on it")
        if self.config_path is not None and name in self._declared:
            remove_process_table(self.config_path, name)
        await runner.stop("removed", EndReason.STOP)
        if self._runners.get(name) is runner:
            self._forget(name)

    def _config_file_for(self, spec: ProcessSpec) -> Path | None:
        """This supervisor's config file, when `spec` is a project process of its folder."""
        if self.config_path is None or spec.scope is not Scope.PROJECT or spec.project is None:
            return None
        same = Path(spec.project).resolve() == self.config_path.parent.resolve()
        return self.config_path if same else None

    @property
    def runtime_specs(self) -> list[ProcessSpec]:
        """Processes registered at run time that no config file holds (for the registry)."""
        return [r.spec for n, r in self._runners.items() if n not in self._declared]

    async def logs(self, name: str, stream: str = "stdout", lines: int = 200) -> list[str]:
        return self._tail(name, stream, lines)

    def _tail(self, name: str, stream: str, lines: int) -> list[str]:
        runner = self._runner(name)
        if stream not in STREAMS:
            raise ActionRefused(f"unknown stream {stream!r} (use stdout or stderr)")
        run_dir = runner.run_dir
        if run_dir is None:  # not run since this supervisor started: show the last run on disk
            latest = logs.run_dirs(self.paths.process_log_dir(name))
            if not latest:
                return []
            run_dir = runner.runs.current = latest[-1]
        return logs.tail_lines(run_dir / f"{stream}.log", lines)

    @asynccontextmanager
    async def follow(self, name: str, stream: str = "stdout", lines: int = 10) -> AsyncIterator[AsyncIterator[str]]:
        """The last `lines` lines, then every new line as it is written, across rotations and restarts.

        Registering and reading the tail happen in one step of the event loop, so no line is lost
        or repeated between the two.
        """
        initial = self._tail(name, stream, lines)
        with self.output.follow(name, stream, initial) as follower:
            yield follower

    async def history(self, name: str) -> list[RunRecord]:
        return list(self._runner(name).history)

    def subscribe(self, *, facts: bool = False) -> AbstractAsyncContextManager[AsyncIterator[ProcessEvent]]:
        """Status changes; with `facts`, also live CPU, memory and ports, sampled once a second
        for as long as at least one such subscriber is connected (and never otherwise)."""
        return self._subscribe(facts)

    @asynccontextmanager
    async def _subscribe(self, facts: bool) -> AsyncIterator[AsyncIterator[ProcessEvent]]:
        async with self._bus.subscribe() as events:
            if not facts:
                yield events
                return
            sampler = self._sampler()
            sampler.acquire()
            try:
                yield events
            finally:
                sampler.release()
                if sampler.watchers == 0:  # nobody keeps them fresh: stale facts must not be shown
                    for runner in self._runners.values():
                        runner.facts = None

    def _sampler(self) -> FactsSampler:
        if self._facts is None:
            from .system.facts import FactsSampler

            self._facts = FactsSampler(roots=self._fact_roots, on_sample=self._on_facts)
        return self._facts

    @property
    def subscriber_count(self) -> int:
        return self._bus.subscriber_count
