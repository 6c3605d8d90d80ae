"""`StatusStore`: the dashboard's one copy of every process's status, kept by following the core.

The App owns one. It follows the core with one exclusive worker that only records events into
`_pending` (the newest per process, so a burst from 1,000 processes coalesces); `_flush` applies them
at most ten times a second and publishes `changed` with the names that changed. The first event after
a quiet spell is applied within `FIRST_FLUSH_DELAY`, so a key press shows its effect at once while a
burst still costs one repaint. Widgets render from the store and subscribe to `changed`; none of them
is the source of truth for a process's state.

In attached mode a lost daemon (`DaemonUnavailable`, or the event stream ending) is a connection state
(`lost`, published on `connection_changed`): the worker waits with a growing backoff, subscribes again,
and resyncs from a fresh snapshot, in which processes that went away meanwhile are dropped.

In fleet mode (the core is a `Fleet`: several daemons, processes named `HOST/NAME`) the fleet reconnects
each daemon itself and its stream never ends; a second worker follows its `links` (published on
`connection_changed`). The processes of a daemon that is not up stay as last seen, and `greyed` says
so: when a daemon goes or comes back, the names of its processes are published on `changed`, so the
table greys or restores their rows.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final, Literal

from textual.app import App
from textual.signal import Signal
from textual.timer import Timer

from pmtop.core.controller import Controller, Fleet
from pmtop.core.errors import DaemonUnavailable
from pmtop.core.model import HostLink, ProcessEvent, ProcessRemoved, ProcessState, ProcessStatus, SupervisorInfo

Mode = Literal["local", "attached", "fleet"]
"""Local: the dashboard runs the supervisor in-process. Attached: it is a client of a daemon. Fleet: of
several daemons at once (`pmtop --attach URL...`, `pmtop --fleet`)."""

FLUSH_INTERVAL: Final = 0.1
"""At most this often the statuses are updated from the event stream."""
FIRST_FLUSH_DELAY: Final = 0.01
"""After a quiet spell, wait this long for the rest of a burst before applying the first event."""
RECONNECT_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 5.0)
FOLLOW_GROUP: Final = "core-events"
LINKS_GROUP: Final = "fleet-links"
HOST_STRIDE: Final = 1 << 40
"""Positions of each fleet host's processes start this far apart, so the rows group by host."""


class StatusStore:
    """The newest status of every process the core told us about, in the core's order."""

    def __init__(self, app: App[Any], controller: Controller, mode: Mode) -> None:
        self._app = app
        self.controller = controller
        self.mode = mode
        self.statuses: dict[str, ProcessStatus] = {}
        self.order: dict[str, int] = {}
        """Name -> position in the core's order (declaration order, newcomers last; over a fleet, grouped
        by host in the fleet's order, whichever daemon answered first)."""
        self.retrying: set[str] = set()
        """The processes in `retrying`: their countdowns tick."""
        self.info: SupervisorInfo | None = None
        """Who supervises, once known (after each (re)connection)."""
        self.lost: str | None = None
        """Why the core cannot be followed, while it cannot (attached mode)."""
        self.links: tuple[HostLink, ...] = ()
        """A fleet's daemons, each as it is reached now (empty unless the core is a `Fleet`)."""
        self.down: frozenset[str] = frozenset()
        """The hosts of the fleet that are not up: their processes show as last seen (`greyed`)."""
        self.changed: Signal[set[str]] = Signal(app, "statuses-changed")
        """Published after each batch of updates, with the names that changed (removed ones included)."""
        self.connection_changed: Signal[None] = Signal(app, "connection-changed")
        """Published when `info`, `lost` or `links` changes."""
        self._counts: Counter[ProcessState] = Counter()
        self._positions = itertools.count()
        self._pending: dict[str, ProcessEvent] = {}
        self._flush_timer: Timer | None = None
        self._last_flush = 0.0

    # -- reading ----------------------------------------------------------------------------------

    def get(self, name: str) -> ProcessStatus | None:
        return self.statuses.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.statuses

    @property
    def counts(self) -> dict[ProcessState, int]:
        """How many processes are in each state (states with none left out)."""
        return {state: n for state, n in self._counts.items() if n}

    def in_states(self, states: Iterable[ProcessState]) -> list[str]:
        wanted = frozenset(states)
        return [name for name, status in self.statuses.items() if status.state in wanted]

    @property
    def hosts(self) -> tuple[str, ...]:
        """The fleet's hosts, in its order (empty for one supervisor)."""
        return tuple(link.host for link in self.links)

    def greyed(self, name: str) -> bool:
        """Is `name` shown as last seen, its daemon not reached now?"""
        if not self.down:
            return False
        status = self.statuses.get(name)
        return status is not None and status.host in self.down

    def link_of(self, name: str) -> HostLink | None:
        """The link of the daemon `name` lives on (fleet only)."""
        status = self.statuses.get(name)
        if status is None or status.host is None:
            return None
        return next((link for link in self.links if link.host == status.host), None)

    # -- following the core -----------------------------------------------------------------------

    def follow(self) -> None:
        """Start following the core (again): one worker at a time."""
        self._app.run_worker(self._follow(), name="follow-core", group=FOLLOW_GROUP, exclusive=True,
                             exit_on_error=False)
        if self.mode == "fleet":
            fleet = self.fleet
            self.set_links(fleet.links())
            self._app.run_worker(self._follow_links(fleet), name="follow-links", group=LINKS_GROUP,
                                 exclusive=True, exit_on_error=False)

    @property
    def fleet(self) -> Fleet:
        """The core as a `Fleet` (fleet mode only)."""
        if not isinstance(self.controller, Fleet):
            raise TypeError(f"fleet mode needs a Fleet controller, not {type(self.controller).__name__}")
        return self.controller

    async def _follow_links(self, fleet: Fleet) -> None:
        async with fleet.watch_links() as updates:
            async for links in updates:
                self.set_links(links)

    def set_links(self, links: Iterable[HostLink]) -> None:
        """A fleet's links changed: the header follows, and the rows of each host that went or came back."""
        self.links = tuple(links)
        down = frozenset(link.host for link in self.links if not link.up)
        flipped, self.down = down ^ self.down, down
        self.connection_changed.publish(None)
        if flipped:
            names = {name for name, status in self.statuses.items() if status.host in flipped}
            if names:
                self.changed.publish(names)

    async def _follow(self) -> None:
        controller = self.controller
        attempt = 0
        while True:
            try:
                async with controller.subscribe(facts=True) as events:
                    info = await controller.info()
                    snapshot = await controller.processes()
                    self._connected(info)
                    attempt = 0
                    self._resync(snapshot)
                    async for event in events:
                        self._pending[event.name] = event
                        self._schedule_flush()
                if self.mode == "local":
                    return  # the supervisor shut down (quitting): nothing more will happen
                raise DaemonUnavailable("the daemon closed the event stream")
            except (DaemonUnavailable, OSError) as exc:
                self._lost(f"daemon lost — reconnecting (attempt {attempt + 1})", f"event stream lost: {exc}")
            except Exception as exc:  # a bug or a garbled answer: shown, and following starts over
                self._app.notify(f"Lost the event stream: {exc!r}", severity="error")
                self._lost("event stream failed — reconnecting", f"event stream failed: {exc!r}")
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    def _connected(self, info: SupervisorInfo) -> None:
        self.info, self.lost = info, None
        self.connection_changed.publish(None)

    def _lost(self, why: str, detail: str) -> None:
        self._app.log.warning(detail)
        self.lost = why
        self.connection_changed.publish(None)

    def _resync(self, snapshot: Iterable[ProcessStatus]) -> None:
        """After (re)subscribing the snapshot wins over anything pending, and processes no longer
        in it are dropped."""
        fresh = {s.name: s for s in snapshot}
        self._pending = {name: ProcessRemoved(name) for name in self.statuses if name not in fresh}
        self._pending.update(fresh)
        self._flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            delay = max(FIRST_FLUSH_DELAY, self._last_flush + FLUSH_INTERVAL - time.monotonic())
            self._flush_timer = self._app.set_timer(delay, self._flush, name="flush")

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        events, self._pending = self._pending, {}
        self.apply(events.values())

    def _position(self, status: ProcessStatus) -> int:
        position = next(self._positions)
        if status.host is not None and status.host in (hosts := self.hosts):
            position += HOST_STRIDE * hosts.index(status.host)
        return position

    def apply(self, events: Iterable[ProcessEvent]) -> None:
        """Record coalesced events and announce the names that changed."""
        changed: set[str] = set()
        for event in events:
            name = event.name
            old = self.statuses.get(name)
            if old is not None:
                self._counts[old.state] -= 1
            if isinstance(event, ProcessRemoved):
                if old is not None:
                    del self.statuses[name]
                    del self.order[name]
                    self.retrying.discard(name)
                    changed.add(name)
                continue
            if old is None:
                self.order[name] = self._position(event)
            self.statuses[name] = event
            self._counts[event.state] += 1
            if event.state is ProcessState.RETRYING:
                self.retrying.add(name)
            else:
                self.retrying.discard(name)
            changed.add(name)
        if changed:
            self.changed.publish(changed)

