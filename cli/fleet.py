"""The client commands over a fleet (SPEC §12): `pmtop ps --fleet` and `pmtop instances --fleet`.

Every daemon of `fleet.toml` is asked at once, one thread each, with the light client (no httpx, no
asyncio: `pmtop ps --fleet` keeps `pmtop ps`'s budget), so the slowest daemon, not their sum, sets the
time. A daemon that does not answer or refuses us is named on stderr, one line each; the others are
listed all the same, and the exit code is 1.
"""

from __future__ import annotations

import sys
import threading

from pmtop.core.api.sync_client import TIMEOUT, Client
from pmtop.core.config.fleet import FleetDaemon, choose, load_fleet, read_token
from pmtop.core.errors import ApiError, DaemonUnavailable, PmtopError, ProtocolError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Callable, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")


class FleetClient(Client):
    """The light client, with what a fleet's user needs to hear when a daemon fails: which one, and why."""

    def __init__(self, daemon: FleetDaemon, token: str | None, timeout: float) -> None:
        super().__init__(daemon.host, daemon.port, token=token, timeout=timeout)
        self.daemon = daemon

    def unavailable(self, exc: BaseException | None = None) -> DaemonUnavailable:
        if isinstance(exc, TimeoutError):
            return DaemonUnavailable(f"no answer from {self.daemon.url} within {self.timeout:g}s")
        if isinstance(exc, ProtocolError):
            return DaemonUnavailable(f"what answers at {self.daemon.url} is not a pmtop daemon ({exc})")
        return DaemonUnavailable(f"no pmtop daemon answers at {self.daemon.url}")

    def error(self, status: int, body: bytes) -> PmtopError:
        error = super().error(status, body)
        if status == 401:
            given = "its token_file in fleet.toml" if self.daemon.token_file else "$PMTOP_TOKEN, or a token_file in fleet.toml"
            error.message = f"refused: wrong token (check {given})"
        return error


def ask_all(daemons: Sequence[FleetDaemon], ask: Callable[[Client], T],
            timeout: float = TIMEOUT) -> list[T | PmtopError]:
    """`ask(client)` of every daemon at once; each answer, or the `PmtopError` it ended with, in order."""
    results: list[T | PmtopError] = [DaemonUnavailable("not asked")] * len(daemons)

    def one(index: int, daemon: FleetDaemon) -> None:
        try:
            with FleetClient(daemon, read_token(daemon), timeout) as client:
                results[index] = ask(client)
        except PmtopError as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i, d), daemon=True) for i, d in enumerate(daemons)]
    for thread in threads[1:]:
        thread.start()
    if threads:
        threads[0].run()  # this thread asks the first daemon itself
    for thread in threads[1:]:
        thread.join()
    return results


def the_fleet() -> tuple[FleetDaemon, ...]:
    """Every daemon of fleet.toml (`UsageError` when it has none; `ConfigError` when it is wrong),
    from the state folder's copy while the file is unchanged (no TOML to parse on `ps`'s budget)."""
    return choose(load_fleet(cached=True))


def link_state(result: object) -> str:
    """`up`, `refused` (a wrong or missing token, an unreadable token file, 403) or `unreachable`:
    the words of the dashboard's header."""
    if not isinstance(result, PmtopError):
        return "up"
    if isinstance(result, UsageError) or (isinstance(result, ApiError) and result.status in (401, 403)):
        return "refused"
    return "unreachable"


def report_unreachable(daemons: Sequence[FleetDaemon], results: Sequence[object]) -> list[dict[str, Any]]:
    """One `Error:` line on stderr per daemon that failed; the same as JSON objects."""
    failed = []
    for daemon, result in zip(daemons, results, strict=True):
        if isinstance(result, PmtopError):
            message = " ".join(result.message.split())
            print(f"Error: {daemon.label} ({daemon.url}): {message}", file=sys.stderr, flush=True)
            failed.append({"host": daemon.label, "url": daemon.url, "error": message})
    return failed
