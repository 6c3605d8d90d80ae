"""What every health check kind is: a probe that answers "is this process healthy now?", bounded by
its timeout, and the rules of its own keys in a `[health]` table.

Invariants:
- A probe never outlives its `timeout`: `probe_once` bounds it with `asyncio.timeout`.
- `probe_once` never raises: every failure, expected or not, becomes a `ProbeResult` whose `detail`
  says what was seen, in the words a reason line uses.

A kind is one module of this package with one `CheckKind`; `checks.KINDS` is the registry.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..model import CheckParams, HealthSpec
from ..system.notify import NotifyState
from ..values import KeyPath

P = TypeVar("P", bound=CheckParams)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str
    """What the probe saw, in the words of a reason line: `HTTP 500`, `connection refused`, `exec exit 3`."""


class Probe(Protocol):
    """One check of one run. `check` may take any time and raise anything; `probe_once` bounds and catches."""

    async def check(self) -> ProbeResult: ...


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """What a probe may need of the process it checks."""

    cwd: str | None
    """The process's working folder (an exec probe runs there; a relative path is taken from it)."""
    env: Mapping[str, str] | None
    """The process's environment (an exec probe gets it)."""
    timeout: float
    """The check's own `timeout`, for probes that bound a phase of their own."""
    started_at: float | None = None
    """When the run began (Unix time): a heartbeat counts its age from here until the first beat."""
    notify: NotifyState | None = None
    """What the process said over its sd_notify socket this run (a `notify` check's watchdog reads it)."""


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of the dashboard's add form for this kind."""

    key: str
    label: str
    placeholder: str


class CheckKind(Generic[P]):
    """One kind of health check. Subclasses fill in the class attributes and the four methods."""

    name: ClassVar[str]
    """The `type` that selects it in a `[health]` table."""
    params: ClassVar[type[CheckParams]]
    keys: ClassVar[tuple[str, ...]]
    """Its own keys in the `[health]` table, beside the common ones (interval, timeout, failures, startup)."""
    example: ClassVar[str]
    """How a user writes it, for error messages and the starter config: `url = "http://host:port/"`."""
    form: ClassVar[tuple[FormField, ...]] = ()
    """The inputs the dashboard's add form shows for it (the first is the one it asks for)."""
    json_schema: ClassVar[Mapping[str, Any]] = {}
    """The JSON schema of each of its keys (for the API's OpenAPI document)."""
    unused: ClassVar[tuple[str, ...]] = ()
    """Common `[health]` keys this kind has no use for (a `notify` check is timed by its watchdog):
    written anyway, they are a mistake worth a message."""
    optional: ClassVar[tuple[str, ...]] = ()
    """Those of its `keys` that may be left out."""

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> P:
        """Its params from a `[health]` table whose common keys are already checked; raise `Invalid`."""
        raise NotImplementedError

    def to_table(self, params: P) -> dict[str, Any]:
        """Its keys, as `parse` reads them back (for `spec_to_table`)."""
        raise NotImplementedError

    def probe(self, params: P, context: ProbeContext) -> Probe:
        raise NotImplementedError

    def target(self, params: P) -> str:
        """What it checks, in a few words: the URL, the address, the command."""
        raise NotImplementedError

    def describe(self, params: P) -> str:
        """One line on what the check does (an export's report, the API's words)."""
        raise NotImplementedError

    def monitored(self, params: P, health: HealthSpec) -> HealthSpec | None:
        """What the health monitor probes, and when: `health` itself for a kind that is probed (the
        default); a kind whose process reports on its own says what is left to probe (None: nothing)."""
        return health


async def probe_once(probe: Probe, timeout: float) -> ProbeResult:
    """Run one probe within `timeout`; every failure (including a bug in a probe) becomes a result."""
    try:
        async with asyncio.timeout(timeout):
            return await probe.check()
    except TimeoutError:
        return ProbeResult(False, f"timed out after {timeout:g}s")
    except Exception as exc:  # a failed probe is a finding about the process, never a supervisor error
        return ProbeResult(False, describe_error(exc))


def describe_error(exc: BaseException) -> str:
    """The one-line cause of a failed connection: `connection refused`, `cannot resolve host ...`.

    httpx wraps the socket error two or three levels deep, so the chain is searched for the first
    `OSError` that carries an errno.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve host: {seen.strerror or seen}"
        if isinstance(seen, OSError) and seen.errno is not None:
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            return (seen.strerror or os.strerror(seen.errno)).lower()
        if isinstance(seen, OSError) and f"[Errno {errno.ECONNREFUSED}]" in str(seen):
            return "connection refused"  # asyncio's "Multiple exceptions" (every address refused)
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
