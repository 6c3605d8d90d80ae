"""Health probes: `http`, `tcp` and `exec` checks, each one answer to "is this process healthy now?".

Invariants:
- A probe never outlives its `timeout`: `probe_once` bounds it with `asyncio.timeout`, and an `exec`
  probe that overruns is killed with its whole process group (and reaped) before the result is known.
- `probe_once` never raises: every failure, expected or not, becomes a `ProbeResult` whose `detail`
  says what was seen, in the words a reason line uses.
- `httpx` costs about 100 ms to import, so it is imported on the first `http` probe only. All http probes
  share one `AsyncClient` (per event loop), closed by `close_probes()` at supervisor shutdown.

Scheduling (startup check, interval, consecutive failures) is `health_monitor.py`'s job.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..system import spawner
from ..model import HealthCheckType, HealthSpec, describe_exit

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str
    """What the probe saw, in the words of a reason line: `HTTP 500`, `connection refused`, `exec exit 3`."""


class Probe(Protocol):
    """One kind of check. `check` may take any time and raise anything; `probe_once` bounds and catches."""

    async def check(self) -> ProbeResult: ...


async def probe_once(probe: Probe, timeout: float) -> ProbeResult:
    """Run one probe within `timeout`; every failure (including a bug in a probe) becomes a result."""
    try:
        async with asyncio.timeout(timeout):
            return await probe.check()
    except TimeoutError:
        return ProbeResult(False, f"timed out after {timeout:g}s")
    except Exception as exc:  # a failed probe is a finding about the process, never a supervisor error
        return ProbeResult(False, describe_error(exc))


# -- probes -----------------------------------------------------------------------------------------


class HttpProbe:
    """GET `url`; healthy on 2xx or 3xx. Redirects are not followed (a 3xx is an answer)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    async def check(self) -> ProbeResult:
        client = _http_client()
        import httpx  # already imported by _http_client; bound here for the exception class

        try:
            # Streamed and closed unread: the status line is the answer, and a large body costs nothing.
            async with client.stream("GET", self.url, timeout=self.timeout) as response:
                status = response.status_code
        except httpx.TimeoutException:  # httpx's own per-phase timeout can beat probe_once's by a hair
            return ProbeResult(False, f"timed out after {self.timeout:g}s")
        return ProbeResult(200 <= status < 400, f"HTTP {status}")


class TcpProbe:
    """Connect to `host:port` (or `[v6]:port`); healthy once the connection is accepted."""

    def __init__(self, address: str) -> None:
        self.host, self.port = parse_address(address)

    async def check(self) -> ProbeResult:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:  # a reset while closing says nothing about whether it accepted connections
            pass
        return ProbeResult(True, "connected")


class ExecProbe:
    """Run a command (never through a shell) in its own process group; healthy on exit 0.

    Started with `spawner.spawn`, so its exit is noticed through a pidfd rather than a thread per
    child; output goes to /dev/null. If the probe is cancelled (its timeout, or the monitor stopping),
    the whole group gets SIGKILL and is reaped before the cancellation completes.
    """

    def __init__(self, command: Sequence[str], *, cwd: str | None, env: Mapping[str, str] | None) -> None:
        self.command = tuple(command)
        self.cwd = cwd
        self.env = env

    async def check(self) -> ProbeResult:
        try:
            child = spawner.spawn(self.command, cwd=self.cwd, env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except spawner.SpawnError as exc:
            return ProbeResult(False, str(exc))
        try:
            code = await asyncio.shield(child.exited)
        finally:
            if not child.exited.done():
                spawner.signal_group(child.pgid, signal.SIGKILL)
                await _reaped(child)
            spawner.kill_leftovers(child)
        return ProbeResult(code == 0, f"exec {describe_exit(code)}")


REAP_GRACE = 5.0
"""How long a SIGKILLed probe may take to die before we stop waiting (it is then in the kernel's
uninterruptible sleep; the pidfd still reaps it whenever it goes)."""


async def _reaped(child: spawner.Child) -> None:
    """Wait for a SIGKILLed probe to be reaped, through any further cancellation (re-raised after).

    The kernel takes a moment to tear a killed process down. Whoever cancelled the probe (its timeout,
    a stop) goes on only once it is gone, so no probe outlives the check that started it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REAP_GRACE
    cancelled = False
    while not child.exited.done() and loop.time() < deadline:
        try:
            await asyncio.wait((child.exited,), timeout=deadline - loop.time())
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def make_probe(spec: HealthSpec, *, cwd: str | None, env: Mapping[str, str] | None) -> Probe:
    """The probe for a `[health]` table; `cwd` and `env` are the process's own (for `exec`)."""
    if spec.type is HealthCheckType.HTTP:
        assert spec.url is not None, "the config loader requires url for http checks"
        return HttpProbe(spec.url, spec.timeout)
    if spec.type is HealthCheckType.TCP:
        assert spec.address is not None, "the config loader requires address for tcp checks"
        return TcpProbe(spec.address)
    return ExecProbe(spec.command, cwd=cwd, env=env)


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f'address must be "host:port" or "[ipv6]:port" (got {address!r})')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


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


# -- the shared http client -----------------------------------------------------------------------

_shared: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def _http_client() -> httpx.AsyncClient:
    """The one client of this event loop, made on first use (importing httpx only then).

    `trust_env=False`: a health check asks the process itself, never through a proxy from the
    environment. Redirects are not followed (httpx's default, made explicit).
    """
    global _shared
    loop = asyncio.get_running_loop()
    if _shared is not None and _shared[0] is loop and not _shared[1].is_closed:
        return _shared[1]
    import httpx

    client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    _shared = (loop, client)
    return client


async def close_probes() -> None:
    """Close the shared http client, if this event loop made one. Call at supervisor shutdown.

    Safe to call any number of times; a probe that runs afterwards makes a fresh client.
    """
    global _shared
    if _shared is None:
        return
    loop, client = _shared
    _shared = None
    if loop is asyncio.get_running_loop():
        await client.aclose()
