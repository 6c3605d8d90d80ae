"""The supervisor's dev-loop services: file watching with its cascades, and hooks (SPEC §11).

Both exist only when some process (or the global `[hooks]`) asks for them: a supervisor without watches
imports no watchfiles and runs no watcher thread; one without hooks has no subscriber on the bus.
`refresh` brings them in line with the processes after anything that changes the set (boot, reload,
add, remove, scale, enable, disable).

They act on processes only through the `Host` (the supervisor): restarts go through its `stop_many`
and the runners' own `start`, so a watch-triggered restart is ordered and reported like any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Iterable, Mapping
from typing import Protocol

from .events import EventBus
from .locations import InstancePaths
from .model import ACTIVE_STATES, EndReason, HookSpec, ProcessSpec, ProcessState, ProcessStatus
from .process.hooks import Hooks
from .process.machine import ProcessRunner
from .process.watchset import WatchSet

log = logging.getLogger("pmtop.core")


class Host(Protocol):
    """What the services need of the supervisor."""

    @property
    def runners(self) -> Mapping[str, ProcessRunner]: ...

    @property
    def specs(self) -> Mapping[str, ProcessSpec]: ...

    def stop_many(self, names: Iterable[str] | None = None, *, reason: str = ...,
                  end_reason: EndReason = ...) -> Awaitable[list[ProcessStatus]]: ...

    def in_background(self, coro: Awaitable[None]) -> None: ...


class DevLoopServices:
    def __init__(self, host: Host, bus: EventBus, paths: InstancePaths, global_hooks: HookSpec | None) -> None:
        self._host = host
        self._bus = bus
        self._paths = paths
        self.global_hooks = global_hooks
        self.hooks: Hooks | None = None
        self._hooks_task: asyncio.Task[None] | None = None
        self.watches: WatchSet | None = None

    async def refresh(self) -> None:
        """Start what is newly needed; point the watcher at exactly the watched processes' folders."""
        runners = self._host.runners
        if self.hooks is None and (self.global_hooks is not None or any(s.hooks for s in self._host.specs.values())):
            self.hooks = Hooks(instance=self._paths.instance, hooks_of=self._hooks_of, on_result=self._hook_result)
            for runner in runners.values():
                self.hooks.events.seen(runner.status())
            self._hooks_task = asyncio.get_running_loop().create_task(self._feed_hooks(), name="pmtop:hooks")
        await self._refresh_watches()

    def forget(self, name: str) -> None:
        if self.hooks is not None:
            self.hooks.events.forget(name)

    async def stop_watching(self) -> None:
        """No changed file restarts anything from now on (the supervisor is stopping everything)."""
        watches, self.watches = self.watches, None
        if watches is not None:
            await watches.aclose()

    async def aclose(self) -> None:
        await self.stop_watching()
        if self._hooks_task is not None:
            self._hooks_task.cancel()
            await asyncio.gather(self._hooks_task, return_exceptions=True)
        if self.hooks is not None:
            await self.hooks.aclose()

    # -- hooks ------------------------------------------------------------------------------------

    async def _feed_hooks(self) -> None:
        assert self.hooks is not None
        async with self._bus.subscribe() as events:
            async for event in events:
                if isinstance(event, ProcessStatus):
                    self.hooks.observe(event)

    def _hooks_of(self, name: str) -> list[tuple[HookSpec, str | None]]:
        runner = self._host.runners.get(name)
        if runner is None:
            return []
        found = [(self.global_hooks, runner.spec.cwd)] if self.global_hooks is not None else []
        if runner.spec.hooks is not None:
            found.append((runner.spec.hooks, runner.spec.cwd))
        return found

    def _hook_result(self, name: str, error: str | None) -> None:
        """Show the last failure on the process's status; a hook that works again clears it."""
        runner = self._host.runners.get(name)
        if runner is not None and runner.hook_error != error and (error is not None or runner.hook_error):
            runner.hook_error = error
            runner.publish()

    # -- watch ------------------------------------------------------------------------------------

    async def _refresh_watches(self) -> None:
        runners = self._host.runners
        wanted = {r.name: (r.spec.watch, r.spec.cwd or os.getcwd()) for r in runners.values()
                  if r.spec.watch is not None and r.state is not ProcessState.DISABLED}
        if not wanted and self.watches is None:
            return
        if self.watches is None:
            self.watches = WatchSet(self._fired, ignore_paths=(str(self._paths.state_dir), str(self._paths.log_dir)),
                                    on_error=self._watch_failed)
        await self.watches.update({name: (watch, cwd) for name, (watch, cwd) in wanted.items() if watch is not None})
        for runner in runners.values():
            watching = runner.name in wanted and self.watches.watcher.running
            if runner.watching != watching:
                runner.watching = watching
                runner.publish()

    def _watch_failed(self, message: str) -> None:
        for runner in self._host.runners.values():
            if runner.watching:
                runner.watching = False
                runner.publish()

    def _fired(self, name: str, paths: list[str]) -> None:
        self._host.in_background(self.restart_for_change(name, paths))

    async def restart_for_change(self, name: str, paths: list[str]) -> None:
        """A burst of changes to `name`'s files: restart it (and with `cascade`, what depends on it)."""
        runners = self._host.runners
        runner = runners.get(name)
        if runner is None or not restartable(runner):
            return
        what = f"{paths[0]} changed" + (f" (and {len(paths) - 1} more)" if len(paths) > 1 else "")
        targets = [name]
        if runner.spec.watch is not None and runner.spec.watch.cascade:
            targets += [d for d in dependents(runners, name) if runners[d].state in ACTIVE_STATES]
        log.info("%s: %s; restarting %s", name, what, ", ".join(targets))
        await self._host.stop_many(targets, reason=f"{what}: restarting")
        for target in targets:  # in dependency order (each also waits for what it depends on)
            again = runners.get(target)
            if again is not None and again.state in (ProcessState.STOPPED, ProcessState.FAILED):
                note = f"restarted: {what}" if target == name else f"restarted with {name}: {what}"
                await again.start(note=note)


def dependents(runners: Mapping[str, ProcessRunner], name: str) -> list[str]:
    """Every process that depends on `name` (or on its group of replicas), transitively, nearest first."""
    replica = runners[name].spec.replica
    frontier = {name} | ({replica.group} if replica is not None else set())
    found: list[str] = []
    while frontier:
        step = [n for n, r in runners.items() if n not in found and n != name and set(r.spec.depends_on) & frontier]
        found += step
        frontier = set(step) | {r.spec.replica.group for r in (runners[n] for n in step) if r.spec.replica is not None}
    return found


def restartable(runner: ProcessRunner) -> bool:
    """May a changed file restart it? Running or trying to (a fix may be what it waits for), failed,
    or ended on its own; not stopped by the user, not disabled, not never started."""
    state = runner.state
    if state in ACTIVE_STATES or state is ProcessState.FAILED:
        return True
    return state is ProcessState.STOPPED and runner.ended_on_its_own
