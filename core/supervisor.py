"""The in-process supervisor: owns one runner per process and implements `Controller`.

It adds what no single runner can know: dependency order across processes (start pulls in what a
process depends on; stopping everything goes in reverse `depends_on` order), registration and removal
at run time, and the shared event bus. And the dev loop's cross-process parts (SPEC §11): replica
groups and their scale, the one file watcher with its cascades, hooks, the merged view of all output.

Names: `_specs` holds what was declared or registered (a `replicas` process once, as its template),
`_runners` what runs (each replica on its own: `web-1`, `web-2`); `_groups` ties the two together.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import checks
from .config.devloop import MAX_REPLICAS
from .config.schema import spec_to_table
from .config.writer import add_process_table, remove_process_table
from .devloop import DevLoopServices
from .errors import ActionRefused, ConfigError, NoSuchProcess, ProcessExists, UsageError
from .events import EventBus
from .locations import InstancePaths
from .model import (
    ACTIVE_STATES,
    STREAMS,
    EndReason,
    HookSpec,
    LiveChild,
    LogLine,
    ProcessEvent,
    ProcessRemoved,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    RunRecord,
    Scope,
    SupervisorInfo,
)
from .process import logs, timeline
from .process.machine import ProcessRunner
from .process.replicas import ReplicaGroup, instance_specs
from .system import foreign, notify, strays
from .system.sessions import SessionWatch
from .version import __version__

if TYPE_CHECKING:
    from .system.facts import Facts, FactsSampler


log = logging.getLogger("pmtop.core")

FACTS_MAX_AGE = 1.0
"""Seconds an on-demand sample of facts stays fresh enough to answer another request (SPEC §6)."""
FOLLOW_BACKLOG_BYTES = 8 * 1024 * 1024
"""What the start of a merged follow may read of one stream (it is read in the event loop's turn)."""


HUNT_SPACING = 1.0
"""Seconds between two looks for escaped processes: a crash loop costs one scan a second at most."""
HUNT_DELAY = 0.05
"""Seconds from a run's end to the look for what escaped it. The look reads every process's environment
(milliseconds of CPU, in a thread): started at once, it ran beside the restart that the same exit
caused, and on a busy machine the new program waited for a CPU to finish its exec. `settle_strays` does
not wait for it (a port check starts a pending look at once)."""


class Supervisor:
    def __init__(
        self,
        specs: Iterable[ProcessSpec],
        *,
        paths: InstancePaths,
        config_path: Path | None = None,
        runtime: Iterable[ProcessSpec] = (),
        hooks: HookSpec | None = None,
        schedules: Mapping[str, float] | None = None,
        scaled: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """`specs` come from the config file at `config_path`; `runtime` were registered at run time
        by an earlier supervisor (from the registry), as were `schedules` (name -> the last scheduled
        time it accounted for) and `scaled` (group -> its replica count after a `scale`, and the
        `replicas` declared then: a config whose count changed since wins). `hooks` is the config's
        global `[hooks]` table."""
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
        self._specs: dict[str, ProcessSpec] = {}
        """What was declared or registered, by name; a `replicas` process is here once, as its template."""
        self._runners: dict[str, ProcessRunner] = {}
        self._groups: dict[str, ReplicaGroup] = {}
        self._scaled: dict[str, int] = {}
        """Group -> replica count, for groups scaled away from their declared `replicas`."""
        self._saved_scale = dict(scaled or {})
        for spec in specs:
            self._install(spec)
        self._declared: set[str] = set(self._specs)
        """Processes declared in the config file (by the user, or persisted there by `add`)."""
        for spec in runtime:
            if spec.name not in self._specs:
                self._install(spec)
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
        self._schedules_handled = dict(schedules or {})
        self._services = DevLoopServices(self, self._bus, paths, hooks)

    def _make_runner(self, spec: ProcessSpec) -> ProcessRunner:
        return ProcessRunner(
            spec, bus=self._bus, log_dir=self.paths.log_dir, lookup=self._lookup, output=self.output,
            on_run_end=self._schedule_hunt, settle=self.settle_strays, notify_dir=self._notify_dir,
        )

    def _install(self, spec: ProcessSpec) -> list[ProcessRunner]:
        """Add a declared or registered process: its runner, or (replicas) its group and instances."""
        self._specs[spec.name] = spec
        if spec.replicas is None:
            runner = self._runners[spec.name] = self._make_runner(spec)
            return [runner]
        self._groups[spec.name] = ReplicaGroup(spec, lambda: self._members(spec.name))
        saved = self._saved_scale.pop(spec.name, None)
        if saved is not None and saved[1] == spec.replicas:
            self._scaled[spec.name] = saved[0]
        count = self._scaled.get(spec.name, spec.replicas)
        made = []
        for instance in instance_specs(spec, count):
            made.append(self._make_runner(instance))
            self._runners[instance.name] = made[-1]
        return made

    def _members(self, group: str) -> list[ProcessRunner]:
        return [r for r in self._runners.values() if r.spec.replica is not None and r.spec.replica.group == group]

    def _lookup(self, name: str) -> ProcessRunner | ReplicaGroup | None:
        """A dependency by name: a process, or a group of replicas (met when all of them are)."""
        return self._runners.get(name) or self._groups.get(name)

    def _runner(self, name: str) -> ProcessRunner:
        try:
            return self._runners[name]
        except KeyError:
            raise NoSuchProcess(name) from None

    def _expand(self, names: Iterable[str]) -> list[str]:
        """Process names, with a group's name standing for its replicas."""
        out: list[str] = []
        for name in names:
            if name in self._groups and name not in self._runners:
                out.extend(r.name for r in self._members(name))
            else:
                out.append(name)
        return out

    def _dependency_names(self, runner: ProcessRunner) -> list[str]:
        """The processes `runner` depends on, a group's replicas spelled out."""
        return [n for n in self._expand(runner.spec.depends_on) if n in self._runners]

    @property
    def names(self) -> list[str]:
        return list(self._runners)

    @property
    def runners(self) -> Mapping[str, ProcessRunner]:
        return self._runners

    @property
    def specs(self) -> Mapping[str, ProcessSpec]:
        return self._specs

    # -- whole-supervisor operations --------------------------------------------------------------

    async def boot(self) -> None:
        """Start every enabled `autostart` process; each waits for its own dependencies. Scheduled
        processes arm their timers instead (and run now only with `run_on_start` or a catch-up).

        Session processes whose session already ended (while no supervisor ran) are removed first.
        """
        for name, spec in list(self._specs.items()):
            pid = spec.session_pid
            if pid is not None and not self._sessions.watch(pid):
                await self.remove(name)
        await self._services.refresh()
        for runner in self._runners.values():  # (an adopted run keeps running: its schedule goes on too)
            if runner.schedule is not None and runner.state is not ProcessState.DISABLED:
                runner.schedule.arm(self._schedules_handled.get(runner.name),
                                    boot=runner.state is ProcessState.STOPPED)
        started = await self.start_many(
            n for n, r in self._runners.items()
            if r.spec.autostart and r.spec.schedule is None and r.state is ProcessState.STOPPED
        )
        # Let every process spawn before the caller goes on to slow work (importing the API server).
        await asyncio.gather(*(self._runners[s.name].launched() for s in started if s.name in self._runners))

    async def start_many(self, names: Iterable[str]) -> list[ProcessStatus]:
        wanted = self._expand(names)
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
        wanted = list(self._runners) if names is None else self._expand(names)
        for name in wanted:
            self._runner(name)
        chosen = set(wanted)
        dependents: dict[str, list[str]] = {name: [] for name in wanted}
        for name in wanted:
            for dep in self._dependency_names(self._runners[name]):
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
        await self._stop_starters()
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
        await self._stop_starters()
        for runner in self._runners.values():
            runner.detach()
        await self._close()

    async def _stop_starters(self) -> None:
        """Before every process is stopped or let go: nothing may start one again behind that. Schedules
        and the file watch stop, and a restart a changed file began is cancelled (else it could start
        its process after the stop, and that process would outlive the supervisor)."""
        for runner in self._runners.values():
            if runner.schedule is not None:
                runner.schedule.close()
        await self._services.stop_watching()
        pending = [task for task in self._background if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._sessions.close()
        await self._services.aclose()
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

    def schedule_memos(self) -> dict[str, float]:
        """Scheduled process -> the last time of its schedule accounted for (kept for a successor)."""
        return {name: r.schedule.handled for name, r in self._runners.items()
                if r.schedule is not None and r.schedule.handled is not None}

    def scaled_counts(self) -> dict[str, tuple[int, int]]:
        """Group -> (replica count, declared `replicas`), for groups scaled away from their declaration."""
        return {name: (len(self._members(name)), spec.replicas) for name, spec in self._specs.items()
                if spec.replicas is not None and len(self._members(name)) != spec.replicas}

    async def apply_config(self, specs: Iterable[ProcessSpec], hooks: HookSpec | None = None) -> dict[str, list[str]]:
        """A reloaded config: add, change and remove its processes; unchanged ones keep running.

        A `replicas` process whose template is unchanged keeps the count it was scaled to; a changed
        `replicas` value in the file wins.
        """
        self._services.global_hooks = hooks
        new = {s.name: s for s in specs}
        removed = [n for n in self._declared if n not in new]
        changed = [n for n in new if n in self._specs and self._specs[n] != new[n]]
        added = [n for n in new if n not in self._specs]
        if removed:
            await self.stop_many(removed, reason="removed from the config")
            for name in removed:
                self._forget_declared(name)
        to_start = []
        for name in changed:
            old, spec = self._specs[name], new[name]
            if (old.replicas is None) != (spec.replicas is None):  # a process became a group, or back
                any_active = any(r.state in ACTIVE_STATES for r in self._runners_of(name))
                await self.stop_many([name], reason="config changed")
                self._forget_declared(name)
                self._scaled.pop(name, None)
                made = self._install(spec)
                self._declared.add(name)
                for runner in made:
                    runner.publish()
                to_start += [r.name for r in made if any_active or spec.autostart]
                continue
            if spec.replicas is not None and _same_but_count(old, spec):
                self._specs[name] = spec
                self._groups[name].template = spec
                self._scaled.pop(name, None)
                await self.scale(name, spec.replicas)
                continue
            if spec.replicas is not None:
                self._specs[name] = spec
                self._groups[name].template = spec
                count = len(self._members(name)) if old.replicas == spec.replicas else spec.replicas
                if old.replicas != spec.replicas:
                    self._scaled.pop(name, None)
                members = self._members(name)
                active = [r.name for r in members if r.state in ACTIVE_STATES]
                await self.stop_many([r.name for r in members], reason="config changed")
                for runner, instance in zip(members, instance_specs(spec, len(members)), strict=True):
                    runner.replace_spec(instance)
                await self.scale(name, count)
                to_start += [n for n in active if n in self._runners]
                if spec.autostart and spec.schedule is None:
                    to_start += [r.name for r in self._members(name)]
                continue
            runner = self._runners[name]
            was_active = runner.state in ACTIVE_STATES
            await runner.stop("config changed")
            runner.replace_spec(spec)
            self._specs[name] = spec
            self._declared.add(name)
            if was_active or spec.autostart:
                to_start.append(name)
        for name in added:
            made = self._install(new[name])
            self._declared.add(name)
            for runner in made:
                runner.publish()
                if new[name].autostart:
                    to_start.append(runner.name)
        for name in [*changed, *added]:
            for runner in self._runners_of(name):
                if runner.schedule is not None and runner.state is ProcessState.STOPPED and not runner.schedule.armed:
                    runner.schedule.arm(boot=True)
        await self.start_many(n for n in dict.fromkeys(to_start)
                              if n in self._runners and self._runners[n].state is ProcessState.STOPPED
                              and self._runners[n].spec.schedule is None)
        await self._services.refresh()
        return {"added": added, "changed": changed, "removed": removed}

    def _runners_of(self, name: str) -> list[ProcessRunner]:
        """The runner of a process, or the replicas of a group."""
        return self._members(name) if name in self._groups else [self._runners[name]] if name in self._runners else []

    def _forget_declared(self, name: str) -> None:
        for runner in self._runners_of(name):
            self._forget(runner.name)
        self._specs.pop(name, None)
        self._groups.pop(name, None)
        self._declared.discard(name)

    def _forget(self, name: str) -> None:
        runner = self._runners.pop(name)
        runner.close()
        if runner.schedule is not None:
            runner.schedule.close()
        if runner.spec.replica is None:
            self._specs.pop(name, None)
        self._declared.discard(name)
        self.output.close(name)
        self._services.forget(name)
        self._bus.publish(ProcessRemoved(name))

    def _session_ended(self, pid: int) -> None:
        """A session PID exited: stop and remove its processes (stop signal, SIGKILL after stop_timeout)."""
        for name, spec in list(self._specs.items()):
            if spec.session_pid == pid:
                self.in_background(self._remove_quietly(name))

    def in_background(self, coro: Awaitable[None]) -> None:
        """Run `coro` as a task this supervisor keeps a hold of (so it is not collected half-way)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _remove_quietly(self, name: str) -> None:
        try:
            await self.remove(name)
        except (NoSuchProcess, ActionRefused) as exc:
            log.warning("session ended, but %s stays: %s", name, exc)

    # -- escaped processes ------------------------------------------------------------------------

    def _schedule_hunt(self) -> None:
        """A run ended: look for processes that escaped it, soon, in a thread, one look at a time."""
        if self._hunt is not None:
            self._hunt_again = True
            return
        loop = asyncio.get_running_loop()
        delay = max(HUNT_DELAY, self._hunted_at + HUNT_SPACING - loop.time())
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
            log.error("looking for escaped processes failed: %s", task.exception())
        if self._hunt_again and not self._closing:
            self._schedule_hunt()

    async def settle_strays(self) -> None:
        """Until no look for escaped processes is pending: one scheduled is made now. Before a port
        check, so that a run's own leftover holding the port is killed rather than blamed."""
        hunt = self._hunt
        if isinstance(hunt, asyncio.TimerHandle):
            hunt.cancel()
            self._start_hunt()
            hunt = self._hunt
        if isinstance(hunt, asyncio.Task):
            await asyncio.wait([hunt])

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
                log.warning("killed pid %s, left running by %s (no longer registered)", ", ".join(map(str, pids)), name)
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
        """A process's spec; a group's name gives the template its replicas are made from."""
        if name in self._groups and name not in self._runners:
            return self._groups[name].template
        return self._runner(name).spec

    async def start(self, name: str) -> ProcessStatus:
        """Start `name` (a scheduled one: run it now), and first whatever it depends on that is simply
        stopped (not failed or disabled)."""
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
            for dep_name in self._dependency_names(r):
                dep = self._runners.get(dep_name)
                if dep is None or dep_name in seen:
                    continue
                seen.add(dep_name)
                visit(dep)
                if dep.state is ProcessState.STOPPED and not dep.completed and dep.spec.schedule is None:
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
            if runner.schedule is not None:
                runner.schedule.arm(boot=True)
            else:
                await self.start(name)
        await self._services.refresh()
        return runner.status()

    async def disable(self, name: str) -> ProcessStatus:
        runner = self._runner(name)
        if runner.schedule is not None:
            runner.schedule.disarm()
        await runner.disable()
        await self._services.refresh()
        return runner.status()

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus:
        """Register a process at run time. A `project` process of this supervisor's config folder is
        also written into its pmtop.toml (so it survives a restart), before anything else changes.

        A `replicas` process answers with the status of its first replica (all of them are published)."""
        if spec.name in self._specs or spec.name in self._runners:
            raise ProcessExists(spec.name)
        group, _, index = spec.name.rpartition("-")
        if group in self._groups and index.isdigit():
            raise ProcessExists(spec.name)
        if spec.replicas is not None:
            clash = [n for n in self._runners if n.rpartition("-")[0] == spec.name and n.rpartition("-")[2].isdigit()]
            if clash:
                raise ActionRefused(f"{clash[0]} exists: the replicas of {spec.name} would clash with it")
        unknown = [d for d in spec.depends_on if self._lookup(d) is None]
        if unknown:
            raise ConfigError(f"unknown process {unknown[0]!r}", key_path=f"process.{spec.name}.depends_on")
        if spec.session_pid is not None and not self._sessions.watch(spec.session_pid):
            raise ActionRefused(f"session PID {spec.session_pid} is not running")
        config_file = self._config_file_for(spec)
        if config_file is not None:
            add_process_table(config_file, spec.name, spec_to_table(spec, base_dir=config_file.parent))
            self._declared.add(spec.name)
        made = self._install(spec)
        for runner in made:
            runner.publish()
        await self._services.refresh()
        for runner in made:
            if runner.schedule is not None:
                runner.schedule.arm(boot=start)
            elif start and spec.autostart and runner.state is ProcessState.STOPPED:
                await self.start(runner.name)
        if not made:  # replicas = 0
            return ProcessStatus(name=spec.name, state=ProcessState.STOPPED, reason="0 replicas",
                                 scope=spec.scope, command=spec.command, group=spec.name)
        return made[0].status()

    async def adopt_pid(self, spec: ProcessSpec, pid: int) -> ProcessStatus:
        """Put a process someone else started under watch as `spec` (`pmtop adopt`): state, facts,
        health and history as for any other. A run-time registration: never written to a config file."""
        if spec.name in self._specs or spec.name in self._runners:
            raise ProcessExists(spec.name)
        if spec.replicas is not None or spec.schedule is not None:
            raise ActionRefused("an adopted process is one PID: `replicas` and `schedule` do not apply")
        refusal = foreign.refusal(pid)
        if refusal is not None:
            raise ActionRefused(f"cannot adopt pid {pid}: {refusal}")
        for name, other in self._runners.items():
            if other.pid == pid:
                raise ActionRefused(f"cannot adopt pid {pid}: pmtop already supervises it as {name}")
        unknown = [d for d in spec.depends_on if self._lookup(d) is None]
        if unknown:
            raise ConfigError(f"unknown process {unknown[0]!r}", key_path=f"process.{spec.name}.depends_on")
        if spec.session_pid is not None and not self._sessions.watch(spec.session_pid):
            raise ActionRefused(f"session PID {spec.session_pid} is not running")
        [runner] = self._install(spec)
        if not runner.adopt_pid(pid, foreign.cmdline(pid)):
            del self._runners[spec.name], self._specs[spec.name]
            raise ActionRefused(f"cannot adopt pid {pid}: it is no longer running")
        await self._services.refresh()
        return runner.status()

    async def remove(self, name: str) -> None:
        """Stop and forget a process, or a group with all its replicas (one replica alone: `scale`)."""
        if name in self._runners and self._runners[name].spec.replica is not None:
            group = self._runners[name].spec.replica
            assert group is not None
            raise ActionRefused(f"{name} is a replica of {group.group}: scale {group.group} instead "
                                f"(pmtop scale {group.group} N), or remove {group.group}")
        if name not in self._specs:
            raise NoSuchProcess(name)
        members = {r.name for r in self._runners_of(name)} | {name}
        dependents = [n for n, r in self._runners.items() if n not in members
                      and (set(r.spec.depends_on) & members)]
        if dependents:
            raise ActionRefused(f"cannot remove {name}: {', '.join(dependents)} depend(s) on it")
        if self.config_path is not None and name in self._declared:
            remove_process_table(self.config_path, name)
        runners = self._runners_of(name)
        await self.stop_many([r.name for r in runners], reason="removed")
        if self._specs.get(name) is not None:
            self._forget_declared(name)
        self._scaled.pop(name, None)
        await self._services.refresh()

    def _config_file_for(self, spec: ProcessSpec) -> Path | None:
        """This supervisor's config file, when `spec` is a project process of its folder."""
        if self.config_path is None or spec.scope is not Scope.PROJECT or spec.project is None:
            return None
        same = Path(spec.project).resolve() == self.config_path.parent.resolve()
        return self.config_path if same else None

    @property
    def runtime_specs(self) -> list[ProcessSpec]:
        """Processes registered at run time that no config file holds (for the registry)."""
        return [spec for name, spec in self._specs.items() if name not in self._declared]

    # -- replicas ---------------------------------------------------------------------------------

    async def scale(self, name: str, replicas: int) -> list[ProcessStatus]:
        """Run `replicas` instances of `name`: new ones start (if the group runs), the highest go first.

        Not written to the config file: a reload keeps the new count unless the file's `replicas`
        changed (the registry keeps it across a daemon restart).
        """
        group = self._groups.get(name)
        if group is None:
            if name in self._runners:
                raise ActionRefused(f"{name} has no replicas setting; add `replicas = N` to its table to scale it")
            raise NoSuchProcess(name)
        if not 0 <= replicas <= MAX_REPLICAS:
            raise ConfigError(f"must be from 0 to {MAX_REPLICAS} (got {replicas})", key_path="replicas")
        members = self._members(name)
        template = group.template
        if replicas > len(members):
            running = any(r.state in ACTIVE_STATES for r in members) or (not members and template.autostart)
            made = []
            for index in range(len(members) + 1, replicas + 1):
                spec = instance_specs(template, index)[-1]
                runner = self._runners[spec.name] = self._make_runner(spec)
                runner.publish()
                made.append(runner)
            group.resized()
            for runner in made:
                if not template.enabled:
                    continue
                if runner.schedule is not None:
                    runner.schedule.arm(boot=True)
                elif running:
                    await self.start(runner.name)
        elif replicas < len(members):
            going = list(reversed(members[replicas:]))  # the highest first
            await asyncio.gather(*(r.stop(f"scaled {name} to {replicas}", EndReason.STOP) for r in going))
            for runner in going:
                self._forget(runner.name)
            group.resized()
        if replicas == template.replicas:
            self._scaled.pop(name, None)
        else:
            self._scaled[name] = replicas
        await self._services.refresh()
        return [r.status() for r in self._members(name)]

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
        initial = self._tail(name, stream, lines + 1)
        run_dir = self._runner(name).run_dir
        unfinished = logs.unfinished_line(run_dir / f"{stream}.log") if run_dir is not None else b""
        if unfinished:  # the line being written comes whole, when it ends
            initial = initial[:-1]
        with self.output.follow(name, stream, initial[-lines:] if lines else [], unfinished) as follower:
            yield follower

    # -- one merged log view ----------------------------------------------------------------------

    def _log_sources(self, names: Iterable[str] | None, accept: timeline.LineFilter, since: float | None,
                     budget: int, *, whole: bool = False) -> list[Iterator[LogLine]]:
        chosen = list(self._runners) if names is None else self._expand(names)
        for name in chosen:
            self._runner(name)
        for name in chosen:
            self._runners[name].flush_times()
        sources = []
        for name in chosen:
            dirs = logs.run_dirs(self.paths.process_log_dir(name))
            for stream in STREAMS:
                sources.append(timeline.source_lines(name, stream, dirs, since=since, accept=accept, budget=budget,
                                                     whole=whole))
        return sources

    async def merged_logs(self, names: list[str] | None = None, lines: int = 200, *, grep: str | None = None,
                          since: float | None = None) -> list[LogLine]:
        """Every process's output (or that of `names`; a group's name means its replicas) in the order
        it was written: the last `lines` lines, those at or after `since`, those `grep` finds."""
        accept = timeline.line_filter(_grep(grep))
        sources = self._log_sources(names, accept, since, timeline.MAX_BYTES_PER_SOURCE)
        return await asyncio.to_thread(timeline.merged, sources, lines)

    @asynccontextmanager
    async def follow_merged(self, names: list[str] | None = None, lines: int = 10, *, grep: str | None = None,
                            since: float | None = None) -> AsyncIterator[AsyncIterator[LogLine]]:
        """`merged_logs`, then each new line as it is written. The backlog is read and the follower
        registered in one turn of the event loop, so no line is lost or repeated between the two."""
        accept = timeline.line_filter(_grep(grep))
        sources = self._log_sources(names, accept, since, FOLLOW_BACKLOG_BYTES, whole=True)
        initial = timeline.merged(sources, lines)
        unfinished = {}
        for name in self._expand(names) if names is not None else list(self._runners):
            run_dir = self._runners[name].run_dir
            if run_dir is None:
                continue
            for stream in STREAMS:
                piece = logs.unfinished_line(run_dir / f"{stream}.log")
                if piece:
                    unfinished[(name, stream)] = piece
        wanted = frozenset(self._expand(names)) if names is not None else None
        groups = frozenset(n for n in names or () if n in self._groups)
        if groups:  # replicas a scale adds later belong to the view too
            wanted = None if wanted is None else wanted | frozenset(
                f"{g}-{i}" for g in groups for i in range(1, MAX_REPLICAS + 1))
        with self.output.follow_merged(initial, wanted, accept, unfinished) as follower:
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


def _grep(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"invalid --grep pattern {pattern!r}: {exc}") from None


def _same_but_count(old: ProcessSpec, new: ProcessSpec) -> bool:
    """Two templates that differ at most in `replicas` (a reload that only rescales)."""
    import dataclasses

    return dataclasses.replace(old, replicas=new.replicas) == new

