"""`depends_on`: when a dependency counts as met, and how a waiting process says what it waits for.

Pure functions over a small view of each dependency, so the rules read in one place:
`started` is met by a spawned process (or one that completed), `healthy` by a running one whose
health check passes (without a check, a running process is healthy), `completed` by one that
exited 0 and is stopped. A group of replicas (`depends_on = ["web"]` with `web` replicated) meets a
condition when every instance does (a group scaled to 0 has nothing to wait for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, cast

from ..model import DependencyCondition, Health, ProcessState

S = ProcessState
UNREGISTERED_RECHECK = 1.0
"""Seconds between looks for a dependency that is not registered at all (no events to wait on)."""


class Dependency(Protocol):
    state: ProcessState
    health: Health
    pid: int | None
    completed: bool

    def wait_changed(self) -> Awaitable[object]:
        """Until the next status published after this call (registered at the call, not when first
        awaited: a publish in between is not missed)."""
        ...


class DependencyGroup(Protocol):
    """The replicas of one process, as one dependency."""

    @property
    def members(self) -> Sequence[Dependency]: ...

    def wait_changed(self) -> Awaitable[object]: ...


Lookup = Callable[[str], "Dependency | DependencyGroup | None"]


def group_members(dep: Dependency | DependencyGroup) -> Sequence[Dependency] | None:
    """The instances, when `dep` is a group of replicas; None for a single process."""
    members: Sequence[Dependency] | None = getattr(dep, "members", None)
    return members


def satisfies(dep: Dependency | DependencyGroup, condition: DependencyCondition) -> bool:
    members = group_members(dep)
    if members is not None:
        return all(_satisfies(member, condition) for member in members)
    return _satisfies(cast(Dependency, dep), condition)


def _satisfies(dep: Dependency, condition: DependencyCondition) -> bool:
    if condition is DependencyCondition.COMPLETED:
        return dep.state is S.STOPPED and dep.completed
    if condition is DependencyCondition.HEALTHY:
        return dep.state is S.RUNNING and dep.health is Health.HEALTHY
    return dep.state is S.RUNNING or (dep.state is S.STARTING and dep.pid is not None) or (
        dep.state is S.STOPPED and dep.completed
    )


def unmet(depends_on: Mapping[str, DependencyCondition], lookup: Lookup) -> list[str]:
    """What is still awaited, in the words of a reason: `db (healthy)`, `db (healthy): db is failed`,
    `web (healthy): 2/3 replicas`."""
    waiting = []
    for name, condition in depends_on.items():
        dep = lookup(name)
        if dep is None:
            waiting.append(f"{name} ({condition}): not registered")
            continue
        members = group_members(dep)
        if members is not None:
            ready = sum(_satisfies(m, condition) for m in members)
            if ready < len(members):
                waiting.append(f"{name} ({condition}): {ready}/{len(members)} replicas")
            continue
        dep = cast(Dependency, dep)
        if not _satisfies(dep, condition):
            suffix = f": {name} is {dep.state}" if dep.state in (S.FAILED, S.DISABLED, S.STOPPED) else ""
            waiting.append(f"{name} ({condition}){suffix}")
    return waiting


async def any_changed(names: Mapping[str, object], lookup: Lookup) -> None:
    """Until one of the named dependencies changes (any status it publishes)."""
    deps = [d for d in (lookup(n) for n in names) if d is not None]
    waiters = [asyncio.ensure_future(d.wait_changed()) for d in deps]
    if not waiters:  # rare: none of them is registered (yet); look again in a second
        await asyncio.sleep(UNREGISTERED_RECHECK)
        return
    await first_of(waiters)


async def first_of(waiters: Sequence[asyncio.Future[object]]) -> None:
    """Until the first of `waiters` is done; the others are cancelled."""
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
