"""Fan-out of status changes to any number of subscribers, none of which can slow the supervisor.

Each subscriber has its own queue. Normally it sees every change in order, so a test (or a log) can
watch `running -> crashed -> retrying`. When a subscriber falls `max_pending` events behind, its queue is
compacted to the newest event per process: memory stays bounded by the number of processes and the
reader still converges on the current truth.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .model import ProcessEvent

DEFAULT_MAX_PENDING = 4096


class Subscription:
    """An async iterator of events; ends when the bus closes."""

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._queue: deque[ProcessEvent] = deque()
        self._max_pending = max_pending
        self._wakeup = asyncio.Event()
        self._closed = False
        self.compactions = 0
        """How often this subscriber fell behind and was coalesced (observable in tests)."""

    def push(self, event: ProcessEvent) -> None:
        self._queue.append(event)
        if len(self._queue) > self._max_pending:
            self._compact()
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def _compact(self) -> None:
        latest: dict[str, ProcessEvent] = {}
        for event in self._queue:
            latest.pop(event.name, None)  # re-insert so the order is that of the last change
            latest[event.name] = event
        self._queue = deque(latest.values())
        self.compactions += 1

    def __aiter__(self) -> AsyncIterator[ProcessEvent]:
        return self

    async def __anext__(self) -> ProcessEvent:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: ProcessEvent) -> None:
        for sub in self._subscribers:
            sub.push(event)

    @asynccontextmanager
    async def subscribe(self, max_pending: int = DEFAULT_MAX_PENDING) -> AsyncIterator[Subscription]:
        """Registered on entry, so nothing published after `__aenter__` is missed."""
        sub = Subscription(max_pending)
        if self._closed:
            sub.close()
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscriber's iteration (supervisor shutdown)."""
        self._closed = True
        for sub in self._subscribers:
            sub.close()
