"""The one interface through which every face of pmtop drives a supervisor.

`Supervisor` implements it in-process; the HTTP client implements it over the API; `FleetController`
(core/api/fleet.py) over several daemons at once, which it also implements `Fleet` for. The dashboard,
the API server and the CLI depend only on these Protocols, so the same screens drive a local core, an
attached daemon or a fleet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .model import HostLink, LogLine, ProcessEvent, ProcessSpec, ProcessStatus, RunRecord, SupervisorInfo


@runtime_checkable
class Controller(Protocol):
    async def info(self) -> SupervisorInfo:
        """Instance, PID, start time, version, config file and API address of the supervisor."""
        ...

    async def processes(self, *, facts: bool = False) -> list[ProcessStatus]:
        """Every managed process, in declaration order; with `facts`, with CPU, memory and ports at
        most a second old even when no facts subscriber keeps them fresh."""
        ...

    async def status(self, name: str, *, facts: bool = False) -> ProcessStatus: ...

    async def spec(self, name: str) -> ProcessSpec: ...

    async def start(self, name: str) -> ProcessStatus:
        """Start; on a `failed` or `retrying` process, retry at once with a fresh failure count."""
        ...

    async def stop(self, name: str) -> ProcessStatus: ...

    async def stop_many(self, names: list[str] | None = None) -> list[ProcessStatus]:
        """Stop several processes (default: all), each only after what depends on it (SPEC §3)."""
        ...

    async def restart(self, name: str) -> ProcessStatus: ...

    async def enable(self, name: str) -> ProcessStatus: ...

    async def disable(self, name: str) -> ProcessStatus: ...

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus: ...

    async def adopt_pid(self, spec: ProcessSpec, pid: int) -> ProcessStatus:
        """Watch `pid`, a process someone else started, as `spec` (whose command, if any, is what the
        restart policy runs once it has exited)."""
        ...

    async def remove(self, name: str) -> None:
        """Stop the process and forget it."""
        ...

    async def logs(self, name: str, stream: str = "stdout", lines: int = 200) -> list[str]:
        """The last `lines` lines of the current (or last) run's `stream`."""
        ...

    def follow(
        self, name: str, stream: str = "stdout", lines: int = 10
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The last `lines` lines of `stream`, then each new line as it is written (across restarts)."""
        ...

    async def history(self, name: str) -> list[RunRecord]: ...

    # -- the dev loop (SPEC §11) --

    async def scale(self, name: str, replicas: int) -> list[ProcessStatus]:
        """Run `replicas` instances of a `replicas` process (new ones start, the highest stop first);
        the statuses of the instances left."""
        ...

    async def merged_logs(self, names: list[str] | None = None, lines: int = 200, *, grep: str | None = None,
                          since: float | None = None) -> list[LogLine]:
        """Every process's output (or that of `names`; a group's name means its replicas), oldest first,
        in the order it was written: the last `lines` lines at or after `since` that `grep` finds."""
        ...

    def follow_merged(
        self, names: list[str] | None = None, lines: int = 10, *, grep: str | None = None, since: float | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[LogLine]]:
        """`merged_logs`, then each new line as it is written."""
        ...

    def subscribe(self, *, facts: bool = False) -> AbstractAsyncContextManager[AsyncIterator[ProcessEvent]]:
        """Status changes (and removals), registered on entry, so that

            async with ctl.subscribe() as statuses:
                await ctl.start("web")

        cannot miss the event. A slow subscriber never blocks the supervisor: its queue is bounded
        and, when full, coalesced to the latest status per process. With `facts`, live CPU, memory
        and ports arrive too (sampled once a second only while such a subscriber is connected).
        """
        ...


@runtime_checkable
class Fleet(Controller, Protocol):
    """A `Controller` over several supervisors (SPEC §12), each reached over its own link.

    Its processes are named `HOST/NAME` (labels never hold a `/`, names never do) and carry their
    `host`; every action goes to the daemon of its name's host. A lost daemon never ends `subscribe()`:
    the fleet reconnects to it on its own, and says how each daemon is reached through `links`.
    """

    def links(self) -> list[HostLink]:
        """Every daemon of the fleet, in the fleet's order, as reached now."""
        ...

    def watch_links(self) -> AbstractAsyncContextManager[AsyncIterator[list[HostLink]]]:
        """`links()` now, then again after each change (coalesced: a slow reader gets the latest)."""
        ...
