"""`FleetController`: one `Controller` over several pmtop daemons (SPEC §12), so one dashboard shows a fleet.

Why a third Controller rather than a fleet-aware dashboard: the screens already drive anything that
implements the Protocol, so multiplexing belongs beside the HTTP client it multiplexes. The dashboard
renders statuses and sends actions by name as it always did; only the HOST column and the header's
link states are new to it (through `Fleet.links`).

Names: a process of the fleet is `HOST/NAME`, where HOST is the daemon's label from fleet.toml (or its
URL). Labels never contain `/` and process names never do, so the split is unambiguous, and no two
daemons' processes can collide. Every status carries its `host` for the HOST column. Every action is
routed by the name's host to that daemon's `HttpController`; `spec()` is the spec as its own daemon
holds it (its own name), and `add()` takes a spec named `HOST/NAME` (or a bare name in a fleet of one).

Following: `subscribe()` starts one follower per daemon and merges what they hear into one stream (the
newest event per process, so a burst from 900 processes coalesces). A follower that loses its daemon
sets its link to `reconnecting` and tries again with a growing delay; on reconnecting it publishes the
daemon's fresh snapshot and `ProcessRemoved` for what went away meanwhile. A daemon that refuses us
(401: a wrong or missing token; 403) is `refused` and is retried more slowly, with its token read
afresh each time, so fixing a token file heals it. Nothing one daemon does ever blocks another's
follower, and the merged stream never ends while the fleet is followed. The processes of a daemon that
is not up stay as last seen; the link says so, and the dashboard greys them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..config.fleet import FleetDaemon, read_token
from ..controller import Fleet
from ..errors import ActionRefused, ApiError, DaemonUnavailable, NoSuchProcess, PmtopError, UsageError
from ..model import (
    FLEET_SEPARATOR,
    HostLink,
    LinkState,
    LogLine,
    ProcessEvent,
    ProcessRemoved,
    ProcessSpec,
    ProcessStatus,
    RunRecord,
    SupervisorInfo,
    fleet_name,
)
from ..version import __version__
from .client import HttpController

log = logging.getLogger("pmtop.fleet")
T = TypeVar("T")

RECONNECT_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Between attempts to reach a lost daemon (the last repeats), as the dashboard does for one daemon."""
REFUSED_DELAYS: Final = (2.0, 5.0, 10.0)
"""Between attempts at a daemon that refuses us: a token file fixed by hand is picked up soon enough."""


class _Member:
    """One daemon of the fleet: its link, its HTTP client (remade when its token changes), and the
    newest status of each of its processes that a follower heard."""

    def __init__(self, daemon: FleetDaemon, *, timeout: float, environ: Mapping[str, str] | None) -> None:
        self.daemon = daemon
        self.label = daemon.label
        self.link = HostLink(daemon.label, daemon.url)
        self.known: dict[str, ProcessStatus] = {}
        """Local name -> newest status (qualified): what `processes()` answers while followed."""
        self._timeout = timeout
        self._environ = environ
        self._client: HttpController | None = None
        self._token: str | None = None
        self._retired: list[HttpController] = []

    @property
    def token_given(self) -> bool:
        return self._token is not None

    def client(self) -> HttpController:
        """The daemon's HTTP client, with its token read now (`UsageError` if its file cannot be read)."""
        token = read_token(self.daemon, self._environ)
        if self._client is None or token != self._token:
            if self._client is not None:
                self._retired.append(self._client)
            self._client = HttpController(self.daemon.url, token=token, timeout=self._timeout)
            self._token = token
        return self._client

    def status(self, status: ProcessStatus) -> ProcessStatus:
        return status.on_host(self.label)

    def remember(self, status: ProcessStatus) -> ProcessStatus:
        """`status` (already named as the fleet shows it) as the newest of its process."""
        self.known[status.local_name] = status
        return status

    def forget(self, name: str) -> ProcessRemoved:
        """Process `name` (this daemon's own name for it) went away."""
        self.known.pop(name, None)
        return ProcessRemoved(fleet_name(self.label, name))

    async def aclose(self) -> None:
        clients = [*self._retired, *([self._client] if self._client is not None else [])]
        self._retired, self._client = [], None
        for client in clients:
            await client.aclose()


class _Mailbox:
    """The merged stream of one subscription: the newest event per process, in order of first arrival
    since it was last read. Bounded by the number of processes, however slow its reader."""

    def __init__(self) -> None:
        self._order: deque[str] = deque()
        self._latest: dict[str, ProcessEvent] = {}
        self._ready = asyncio.Event()

    def put(self, event: ProcessEvent) -> None:
        if event.name not in self._latest:
            self._order.append(event.name)
        self._latest[event.name] = event
        self._ready.set()

    def __aiter__(self) -> _Mailbox:
        return self

    async def __anext__(self) -> ProcessEvent:
        while not self._order:
            self._ready.clear()
            await self._ready.wait()
        return self._latest.pop(self._order.popleft())


class FleetController:
    """A `Controller` (and `Fleet`) over the daemons of `daemons`, labelled uniquely (`config.fleet.choose`)."""

    def __init__(self, daemons: Sequence[FleetDaemon], *, timeout: float = 10.0,
                 environ: Mapping[str, str] | None = None, source: str | None = None) -> None:
        labels = [d.label for d in daemons]
        if len(set(labels)) != len(labels) or any(FLEET_SEPARATOR in label for label in labels):
            raise ValueError(f"fleet labels must be unique and hold no {FLEET_SEPARATOR!r}: {labels}")
        self._members = {d.label: _Member(d, timeout=timeout, environ=environ) for d in daemons}
        self._source = source
        self._started_at = time.time()
        self._followers = 0
        self._link_watchers: set[asyncio.Event] = set()

    async def aclose(self) -> None:
        for member in self._members.values():
            await member.aclose()

    async def __aenter__(self) -> FleetController:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- links ---------------------------------------------------------------------------------------

    def links(self) -> list[HostLink]:
        return [member.link for member in self._members.values()]

    @asynccontextmanager
    async def watch_links(self) -> AsyncIterator[AsyncIterator[list[HostLink]]]:
        changed = asyncio.Event()
        changed.set()
        self._link_watchers.add(changed)

        async def updates() -> AsyncIterator[list[HostLink]]:
            while True:
                await changed.wait()
                changed.clear()
                yield self.links()

        try:
            yield updates()
        finally:
            self._link_watchers.discard(changed)

    def _set_link(self, member: _Member, **changes: Any) -> None:
        link = dataclasses.replace(member.link, **changes)
        if link != member.link:
            member.link = link
            for watcher in self._link_watchers:
                watcher.set()

    # -- routing -------------------------------------------------------------------------------------

    def _route(self, name: str) -> tuple[_Member, str]:
        host, separator, local = name.partition(FLEET_SEPARATOR)
        member = self._members.get(host) if separator else None
        if member is None or not local:
            raise NoSuchProcess(name)
        return member, local

    async def _on(self, name: str, call: Callable[[HttpController, str], Awaitable[T]]) -> T:
        """`call` on the daemon of `name`'s host, with `name` as that daemon knows it."""
        member, local = self._route(name)
        try:
            return await call(member.client(), local)
        except NoSuchProcess:
            raise NoSuchProcess(name) from None

    async def _act(self, name: str, call: Callable[[HttpController, str], Awaitable[ProcessStatus]]) -> ProcessStatus:
        member, _ = self._route(name)
        return member.status(await self._on(name, call))

    # -- Controller ----------------------------------------------------------------------------------

    async def info(self) -> SupervisorInfo:
        """The fleet itself: who supervises is per daemon (`links()[i].info`)."""
        return SupervisorInfo(instance="fleet", pid=os.getpid(), started_at=self._started_at, version=__version__,
                              config=self._source)

    async def processes(self, *, facts: bool = False) -> list[ProcessStatus]:
        """While followed: what the followers heard last, every daemon's (a lost one's as last seen).
        Otherwise each daemon is asked at once; one that does not answer contributes nothing."""
        members = list(self._members.values())
        if self._followers:
            return [status for member in members for status in member.known.values()]

        async def ask(member: _Member) -> list[ProcessStatus]:
            try:
                return await member.client().processes(facts=facts, host=member.label)
            except PmtopError:
                return []

        answers = await asyncio.gather(*(ask(m) for m in members))
        return [status for answer in answers for status in answer]

    async def status(self, name: str, *, facts: bool = False) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.status(local, facts=facts))

    async def spec(self, name: str) -> ProcessSpec:
        return await self._on(name, lambda client, local: client.spec(local))

    async def start(self, name: str) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.start(local))

    async def stop(self, name: str) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.stop(local))

    async def restart(self, name: str) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.restart(local))

    async def enable(self, name: str) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.enable(local))

    async def disable(self, name: str) -> ProcessStatus:
        return await self._act(name, lambda client, local: client.disable(local))

    async def stop_many(self, names: list[str] | None = None) -> list[ProcessStatus]:
        """Each daemon stops its own share in its dependency order, all daemons at once; the first
        refusal is raised once every daemon has done what it could."""
        groups: dict[str, list[str] | None] = {}
        if names is None:
            groups = dict.fromkeys(self._members)
        else:
            for name in names:
                member, local = self._route(name)
                share = groups.setdefault(member.label, [])
                assert share is not None
                share.append(local)

        async def stop(label: str, share: list[str] | None) -> list[ProcessStatus]:
            member = self._members[label]
            return [member.status(s) for s in await member.client().stop_many(share)]

        results = await asyncio.gather(*(stop(label, share) for label, share in groups.items()),
                                       return_exceptions=True)
        stopped: list[ProcessStatus] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            stopped.extend(result)
        return stopped

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus:
        """`spec` named `HOST/NAME` goes to HOST's daemon as NAME (a bare name: the only daemon's)."""
        member, local = self._route(self._qualified(spec.name, "add"))
        return member.status(await member.client().add(dataclasses.replace(spec, name=local), start=start))

    def _qualified(self, name: str, verb: str) -> str:
        """`HOST/NAME` as given, or a bare name in a fleet of one daemon."""
        if FLEET_SEPARATOR in name:
            return name
        if len(self._members) != 1:
            hosts = ", ".join(self._members)
            raise ActionRefused(f"name the daemon to {verb} {name!r} on: HOST/{name} (HOST one of {hosts})")
        return fleet_name(next(iter(self._members)), name)

    async def remove(self, name: str) -> None:
        await self._on(name, lambda client, local: client.remove(local))

    async def logs(self, name: str, stream: str = "stdout", lines: int = 200) -> list[str]:
        return await self._on(name, lambda client, local: client.logs(local, stream, lines))

    @asynccontextmanager
    async def follow(self, name: str, stream: str = "stdout", lines: int = 10) -> AsyncIterator[AsyncIterator[str]]:
        member, local = self._route(name)
        try:
            async with member.client().follow(local, stream, lines) as followed:
                yield followed
        except NoSuchProcess:
            raise NoSuchProcess(name) from None

    async def history(self, name: str) -> list[RunRecord]:
        return await self._on(name, lambda client, local: client.history(local))

    async def adopt_pid(self, spec: ProcessSpec, pid: int) -> ProcessStatus:
        """As `add`: `spec` named `HOST/NAME` is adopted by HOST's daemon (the PID is one of its machine's)."""
        member, local = self._route(self._qualified(spec.name, "adopt"))
        return member.status(await member.client().adopt_pid(dataclasses.replace(spec, name=local), pid))

    async def scale(self, name: str, replicas: int) -> list[ProcessStatus]:
        member, _ = self._route(name)
        return [member.status(s) for s in await self._on(name, lambda client, local: client.scale(local, replicas))]

    def _log_asks(self, names: list[str] | None) -> dict[_Member, list[str] | None]:
        """Which daemons a merged log asks, and for which of their names (None: all of them)."""
        if names is None:
            return {member: None for member in self._members.values()}
        asks: dict[_Member, list[str] | None] = {}
        for name in names:
            member, local = self._route(name)
            wanted = asks.setdefault(member, [])
            assert wanted is not None
            wanted.append(local)
        return asks

    async def merged_logs(self, names: list[str] | None = None, lines: int = 200, *, grep: str | None = None,
                          since: float | None = None) -> list[LogLine]:
        """Every daemon's merged log, merged again by time; a daemon out of reach adds nothing (its
        link says why) unless names of it were asked for."""
        asks = self._log_asks(names)

        async def ask(member: _Member, wanted: list[str] | None) -> list[LogLine]:
            try:
                got = await member.client().merged_logs(wanted, lines, grep=grep, since=since)
            except (DaemonUnavailable, ApiError):
                if names is not None:
                    raise
                return []
            return [dataclasses.replace(line, name=fleet_name(member.label, line.name)) for line in got]

        parts = await asyncio.gather(*(ask(m, w) for m, w in asks.items()))
        merged = sorted((line for part in parts for line in part), key=lambda line: line.time)
        return merged[-lines:] if lines > 0 else []

    @asynccontextmanager
    async def follow_merged(
        self, names: list[str] | None = None, lines: int = 10, *, grep: str | None = None, since: float | None = None
    ) -> AsyncIterator[AsyncIterator[LogLine]]:
        """`merged_logs`, then each daemon's new lines as they come (in arrival order across daemons)."""
        queue: asyncio.Queue[LogLine] = asyncio.Queue(maxsize=10_000)
        for line in await self.merged_logs(names, lines, grep=grep, since=since):
            queue.put_nowait(line)
        asks = self._log_asks(names)

        async def pump(member: _Member, wanted: list[str] | None) -> None:
            with contextlib.suppress(DaemonUnavailable, ApiError):
                async with member.client().follow_merged(wanted, 0, grep=grep) as followed:
                    async for line in followed:
                        await queue.put(dataclasses.replace(line, name=fleet_name(member.label, line.name)))

        tasks = [asyncio.create_task(pump(m, w), name=f"fleet-logs-{m.label}") for m, w in asks.items()]

        async def lines_out() -> AsyncIterator[LogLine]:
            while True:
                yield await queue.get()

        try:
            yield lines_out()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @asynccontextmanager
    async def subscribe(self, *, facts: bool = False) -> AsyncIterator[AsyncIterator[ProcessEvent]]:
        """The merged events of every daemon. Each daemon's follower connects in the background, so
        a daemon's events come after its snapshot, once it is up (see `links`)."""
        mailbox = _Mailbox()
        self._followers += 1
        tasks = [asyncio.create_task(self._follow(member, mailbox, facts), name=f"fleet-follow-{member.label}")
                 for member in self._members.values()]
        try:
            yield mailbox
        finally:
            self._followers -= 1
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- following one daemon ------------------------------------------------------------------------

    async def _follow(self, member: _Member, mailbox: _Mailbox, facts: bool) -> None:
        attempt = 0
        heard: set[str] = set()
        """The local names this subscription has published for the daemon."""
        while True:
            try:
                client = member.client()
                async with client.subscribe(facts=facts, host=member.label) as events:
                    info = await client.info()
                    snapshot = await client.processes(host=member.label)
                    fresh = {status.local_name for status in snapshot}
                    for gone in heard - fresh:
                        mailbox.put(member.forget(gone))
                    heard = fresh
                    for status in snapshot:
                        mailbox.put(member.remember(status))
                    self._set_link(member, state=LinkState.UP, detail="", attempt=0, info=info)
                    attempt = 0
                    skip = len(member.label) + 1
                    async for event in events:  # named as the fleet shows them (`host/name`)
                        if isinstance(event, ProcessRemoved):
                            heard.discard(event.name[skip:])
                            mailbox.put(member.forget(event.name[skip:]))
                        else:
                            heard.add(event.local_name)
                            mailbox.put(member.remember(event))
                raise DaemonUnavailable(f"the pmtop daemon at {member.daemon.url} ended its event stream")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is this daemon's link state, never the fleet's end
                state, detail = self._failure(member, exc)
            attempt += 1
            self._set_link(member, state=state, detail=detail, attempt=attempt)
            delays = REFUSED_DELAYS if state is LinkState.REFUSED else RECONNECT_DELAYS
            await asyncio.sleep(delays[min(attempt - 1, len(delays) - 1)])

    def _failure(self, member: _Member, exc: Exception) -> tuple[LinkState, str]:
        """The link state and its one-line detail for what ended (or prevented) following a daemon."""
        if isinstance(exc, UsageError):  # its token file cannot be read
            return LinkState.REFUSED, exc.message
        if isinstance(exc, ApiError) and exc.status == 401:
            if member.token_given:
                return LinkState.REFUSED, "wrong token"
            return LinkState.REFUSED, "no token (give it a token_file in fleet.toml, or $PMTOP_TOKEN)"
        if isinstance(exc, ApiError) and exc.status == 403:
            return LinkState.REFUSED, exc.message
        if isinstance(exc, PmtopError):
            return LinkState.RECONNECTING, exc.message
        if isinstance(exc, OSError):
            return LinkState.RECONNECTING, f"{member.daemon.url}: {exc.strerror or exc}"
        log.warning("following %s failed", member.daemon.url, exc_info=exc)
        return LinkState.RECONNECTING, f"{member.daemon.url}: {exc!r}"


if TYPE_CHECKING:  # mypy proves the Protocols are implemented, signatures included
    _implements: type[Fleet] = FleetController
