"""Waiting on the event stream (or on a condition) with a deadline, never with a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from pmtop.core.model import ProcessEvent, ProcessState, ProcessStatus

T = TypeVar("T")
DEFAULT_TIMEOUT = 20.0
POLL_INTERVAL = 0.02
"""Between two looks at a condition in `poll_until`; the deadline, not this, bounds the wait."""


async def wait_for(
    events: AsyncIterator[ProcessEvent],
    pred: Callable[[ProcessStatus], bool],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    seen: list[ProcessStatus] | None = None,
) -> ProcessStatus:
    """The first status from `events` that satisfies `pred`; every status read is added to `seen`."""
    log: list[ProcessStatus] = [] if seen is None else seen
    try:
        async with asyncio.timeout(timeout):
            async for event in events:
                if isinstance(event, ProcessStatus):
                    log.append(event)
                    if pred(event):
                        return event
    except TimeoutError:
        pass
    tail = [(s.name, str(s.state), s.reason) for s in log[-6:]]
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {tail}")


async def wait_state(
    events: AsyncIterator[ProcessEvent],
    name: str,
    state: ProcessState,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    seen: list[ProcessStatus] | None = None,
) -> ProcessStatus:
    return await wait_for(
        events, lambda s: s.name == name and s.state is state, what=f"{name} {state}",
        timeout=timeout, seen=seen,
    )


async def poll_until(cond: Callable[[], bool], *, what: str, timeout: float = DEFAULT_TIMEOUT,
                     interval: float = POLL_INTERVAL) -> None:
    """For facts outside pmtop's events (a PID vanishing): poll `cond` until true or the deadline.
    `interval=0` looks after every step of the event loop, for a moment shorter than `POLL_INTERVAL`."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def poll_sync(cond: Callable[[], T], *, what: str, timeout: float = DEFAULT_TIMEOUT) -> T:
    """For tests outside an event loop (subprocesses, daemons): `cond()`'s first truthy value,
    polled until the deadline, or an AssertionError saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_INTERVAL)
