"""`depends_on`: when a dependency counts as met, and how a waiting process says what it waits for.

Pure functions over a small view of each dependency, so the rules read in one place:
`started` is met by a spawned process (or one that completed), `healthy` by a running one whose
health check passes (without a check, a running process is healthy), `completed` by one that
exited 0 and is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from ..model import DependencyCondition, Health, ProcessState

S = ProcessState
UNREGISTERED_RECHECK = 1.0
"""Seconds between looks for a dependency that is not registered at all (no events to wait on)."""


class Dependency(Protocol):
    state: ProcessState
    health: Health
    pid: int | None
    completed: bool

    async def wait_changed(self) -> None: ...


def satisfies(dep: Dependency, condition: DependencyCondition) -> bool:
    if condition is DependencyCondition.COMPLETED:
        return dep.state is S.STOPPED and dep.completed
    if condition is DependencyCondition.HEALTHY:
        return dep.state is S.RUNNING and dep.health is Health.HEALTHY
    return dep.state is S.RUNNING or (dep.state is S.STARTING and dep.pid is not None) or (
        dep.state is S.STOPPED and dep.completed
    )


def unmet(
    depends_on: Mapping[str, DependencyCondition], lookup: Callable[[str], Dependency | None]
) -> list[str]:
    """What is still awaited, in the words of a reason: `db (healthy)`, `db (healthy): db is failed`."""
    waiting = []
    for name, condition in depends_on.items():
        dep = lookup(name)
        if dep is None:
            waiting.append(f"{name} ({condition}): not registered")
        elif not satisfies(dep, condition):
            suffix = f": {name} is {dep.state}" if dep.state in (S.FAILED, S.DISABLED, S.STOPPED) else ""
            waiting.append(f"{name} ({condition}){suffix}")
    return waiting


async def any_changed(names: Mapping[str, object], lookup: Callable[[str], Dependency | None]) -> None:
    """Until one of the named dependencies changes (any status it publishes)."""
    deps = [d for d in (lookup(n) for n in names) if d is not None]
    waiters = [asyncio.ensure_future(d.wait_changed()) for d in deps]
    if not waiters:  # rare: none of them is registered (yet); look again in a second
        await asyncio.sleep(UNREGISTERED_RECHECK)
        return
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
