"""`StatusStore`: the dashboard's one copy of every process's status, kept by following the core.

The App owns one. It follows the core with one exclusive worker that only records events into
`_pending` (the newest per process, so a burst from 1,000 processes coalesces); `_flush` applies them
at most ten times a second and publishes `changed` with the names that changed. The first event after
a quiet spell is applied within `FIRST_FLUSH_DELAY`, so a key press shows its effect at once while a
burst still costs one repaint. Widgets render from the store and subscribe to `changed`; none of them
is the source of truth for a process's state.

Replicas (`web-1`, `web-2`...) can be folded into one row per group (`fold`): `view` is then what the
table shows, a synthetic status per group summing up its replicas, and `changed` names the groups
whose replicas changed. Unfolded, `view` is `statuses` itself.

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
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final, Literal

from textual.app import App
from textual.signal import Signal
from textual.timer import Timer

from pmtop.core.controller import Controller, Fleet
from pmtop.core.errors import DaemonUnavailable, PmtopError
from pmtop.core.model import (
    Health,
    HostLink,
    ProcessEvent,
    ProcessRemoved,
    ProcessState,
    ProcessStatus,
    SupervisorInfo,
)
from pmtop.core.states import ATTENTION_ORDER, UP_STATES

Mode = Literal["local", "attached", "fleet"]
"""Local: the dashboard runs the supervisor in-process. Attached: it is a client of a daemon. Fleet: of
several daemons at once (`pmtop --attach URL...`, `pmtop --fleet`)."""

FLUSH_INTERVAL: Final = 0.1
"""At most this often the statuses are updated from the event stream."""
FIRST_FLUSH_DELAY: Final = 0.01
"""After a quiet spell, wait this long for the rest of a burst before applying the first event."""
RECONNECT_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 5.0)
INFO_REFRESH: Final = 3.0
"""Seconds between two looks at who supervises (for the partner's state; its watch checks every 3 s)."""
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
        self.scheduled: set[str] = set()
        """Scheduled processes between runs: their `next run in` ticks (once a second)."""
        self.groups: dict[str, list[str]] = {}
        """Group of replicas -> its replicas' names, in order."""
        self.fold = False
        """Show one row per group of replicas (`view`), not one per replica."""
        self.view: dict[str, ProcessStatus] = self.statuses
        """What the table shows: `statuses`, or with `fold` a row per group instead of its replicas."""
        self.view_order: dict[str, int] = self.order
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

    def members(self, name: str) -> list[str]:
        """The processes a row stands for: a folded group's replicas, else itself."""
        if self.fold and name in self.groups and name not in self.statuses:
            return list(self.groups[name])
        return [name] if name in self.statuses else []

    def row_of(self, name: str) -> str:
        """The row that shows a process: its group's, when replicas are folded."""
        status = self.statuses.get(name)
        return status.group if self.fold and status is not None and status.group is not None else name

    def ticking(self, *, scheduled: bool) -> set[str]:
        """Rows with a countdown: retrying ones (every tick), or with `scheduled` those waiting for a
        scheduled run (once a second)."""
        return {self.row_of(n) for n in (self.scheduled if scheduled else self.retrying)}

    def set_fold(self, fold: bool) -> None:
        """Fold replicas into one row per group, or unfold them; every row is shown anew."""
        self.fold = fold
        if fold:
            self.view, self.view_order = {}, {}
            for name in self.statuses:
                self._place(name)
        else:
            self.view, self.view_order = self.statuses, self.order
        self.changed.publish(set(self.statuses) | set(self.groups))

    @property
    def hosts(self) -> tuple[str, ...]:
        """The fleet's hosts, in its order (empty for one supervisor)."""
        return tuple(link.host for link in self.links)

    def greyed(self, name: str) -> bool:
        """Is `name` shown as last seen, its daemon not reached now?"""
        if not self.down:
            return False
        status = self.view.get(name)
        return status is not None and status.host in self.down

    def link_of(self, name: str) -> HostLink | None:
        """The link of the daemon `name` lives on (fleet only)."""
        status = self.view.get(name)
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

    def refresh_info(self) -> None:
        """Ask who supervises again: the partner's state (SPEC §9) is no process event. The dashboard,
        which samples facts every second while it is open anyway, asks every `INFO_REFRESH`."""
        if self.info is not None and self.lost is None:
            self._app.run_worker(self._refresh_info(), name="refresh-info", group="refresh-info", exclusive=True,
                                 exit_on_error=False)

    async def _refresh_info(self) -> None:
        with contextlib.suppress(PmtopError, OSError):
            info = await self.controller.info()
            if info != self.info and self.lost is None:
                self._connected(info)

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
                    self.scheduled.discard(name)
                    changed.add(self._ungroup(old))
                continue
            if old is None:
                self.order[name] = self._position(event)
            self.statuses[name] = event
            self._counts[event.state] += 1
            if event.state is ProcessState.RETRYING:
                self.retrying.add(name)
            else:
                self.retrying.discard(name)
            if event.next_run_at is not None and event.state not in UP_STATES:
                self.scheduled.add(name)
            else:
                self.scheduled.discard(name)
            if event.group is not None and name not in self.groups.setdefault(event.group, []):
                self.groups[event.group].append(name)
            changed.add(self._place(name) if self.fold else name)
        if changed:
            self.changed.publish(changed)

    def _ungroup(self, old: ProcessStatus) -> str:
        """A process went away: out of its group (and the folded view); the row name that changed."""
        name, group = old.name, old.group
        if group is not None and name in self.groups.get(group, []):
            self.groups[group].remove(name)
            if not self.groups[group]:
                del self.groups[group]
        if not self.fold:
            return name
        if group is None:
            self.view.pop(name, None)
            self.view_order.pop(name, None)
            return name
        if group in self.groups:
            self.view[group] = folded(group, [self.statuses[m] for m in self.groups[group]])
        else:
            self.view.pop(group, None)
            self.view_order.pop(group, None)
        return group

    def _place(self, name: str) -> str:
        """Put a process (or the row of its group) into the folded view; the row's name."""
        status = self.statuses[name]
        row = status.group or name
        if status.group is None:
            self.view[name] = status
        else:
            self.view[row] = folded(row, [self.statuses[m] for m in self.groups.get(row, [name])])
        if row not in self.view_order:
            self.view_order[row] = self.order[name]
        return row


def folded(group: str, members: list[ProcessStatus]) -> ProcessStatus:
    """One row for a group of replicas: the state that needs attention most, the sums of the counters,
    and a reason that counts the replicas by state (`3 replicas: 2 running, 1 retrying`)."""
    rank = {state: i for i, state in enumerate(ATTENTION_ORDER)}
    state = min((m.state for m in members), key=rank.__getitem__, default=ProcessState.STOPPED)
    if all(m.state is ProcessState.RUNNING for m in members):
        state = ProcessState.RUNNING
    by_state = Counter(m.state.value for m in members)
    health = (Health.UNHEALTHY if any(m.health is Health.UNHEALTHY for m in members) else
              Health.HEALTHY if members and all(m.health is Health.HEALTHY for m in members) else Health.UNKNOWN)
    cpu = [m.cpu_percent for m in members if m.cpu_percent is not None]
    rss = [m.memory_rss for m in members if m.memory_rss is not None]
    retries = [m.next_retry_at for m in members if m.next_retry_at is not None]
    runs = [m.next_run_at for m in members if m.next_run_at is not None]
    started = [m.started_at for m in members if m.started_at is not None and m.pid is not None]
    return ProcessStatus(
        name=group,
        state=state,
        reason=f"{len(members)} replica{'s' if len(members) != 1 else ''}: "
               + ", ".join(f"{n} {s}" for s, n in by_state.items()),
        ports=tuple(sorted({p for m in members for p in m.ports})),
        health=health,
        restarts=sum(m.restarts for m in members),
        started_at=min(started) if started else None,
        pid=members[0].pid if len(members) == 1 else None,
        next_retry_at=min(retries) if retries else None,
        next_run_at=min(runs) if runs else None,
        cpu_percent=sum(cpu) if cpu else None,
        memory_rss=sum(rss) if rss else None,
        scope=members[0].scope if members else ProcessStatus(name=group, state=state).scope,
        command=members[0].command if members else (),
        group=group,
        watching=any(m.watching for m in members),
        hook_error=next((m.hook_error for m in members if m.hook_error), None),
    )

