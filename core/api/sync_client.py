"""A small synchronous client for the daemon's HTTP API: the client commands, and the daemon's own
start-up checks (is a pmtop daemon of this instance already answering here?).

Speed shapes it: `pmtop ps` must finish in under 100 ms, interpreter start included. So no httpx
(~80 ms to import) and not even `http.client` (~21 ms of CPU: it loads the `email` parser and `ssl`);
the client speaks the small HTTP/1.1 subset of `wire.py`, and imports nothing from `typing` or
`dataclasses` at run time.

Errors come back as the `PmtopError` classes the server raised (`errors.from_wire`), exactly as the
dashboard's client rebuilds them. A daemon that does not answer is always `DaemonUnavailable`, with a
line that says how to start one.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from ..errors import ApiError, DaemonUnavailable, PmtopError, ProtocolError, from_wire
from ..locations import DEFAULT_INSTANCE, endpoint_url
from .protocol import (
    DEFAULT_HEARTBEAT,
    HEARTBEAT_HEADER,
    SILENT_HEARTBEATS,
    EventParser,
    end_reason,
    process_path,
    read_error_body,
)
from .wire import Connection, Response

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Iterator
    from types import TracebackType
    from typing import Any, Final

TIMEOUT: Final = 10.0
"""Seconds to connect, and to wait for an answer to anything that is not an action."""


# ----------------------------------------------------------------------------------------- client

class Client:
    """One keep-alive connection to a daemon. Use as a context manager, or call `close()`."""

    def __init__(
        self, host: str, port: int, *, token: str | None = None, instance: str = DEFAULT_INSTANCE,
        timeout: float = TIMEOUT, verify_instance: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.instance = instance
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: Connection | None = None
        self._verify = verify_instance

    @property
    def url(self) -> str:
        return endpoint_url(self.host, self.port)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------

    def unavailable(self, exc: BaseException | None = None) -> DaemonUnavailable:
        where = f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"
        if isinstance(exc, TimeoutError):
            return DaemonUnavailable(f"the pmtop daemon at {where} did not answer within {self.timeout:g}s")
        if isinstance(exc, ProtocolError):
            return DaemonUnavailable(f"what answers at {where} is not a pmtop daemon ({exc})")
        start = "pmtop --headless --detach" + (f" --instance {self.instance}" if self.instance != DEFAULT_INSTANCE else "")
        return DaemonUnavailable(f"no pmtop daemon for instance {self.instance!r} at {where} — start one with `{start}`")

    def _send(self, method: str, path: str, body: bytes | None, read_timeout: float | None) -> Response:
        """The answer's head; its body is the caller's to read."""
        if self._verify:
            self._verify = False
            self._check_instance()
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        while True:
            if self._conn is None:
                self._conn = Connection(self.host, self.port, self.timeout)
            conn = self._conn
            reused = conn.used
            try:
                return conn.request(method, path, headers, body, read_timeout)
            except (BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if not reused:
                    raise self.unavailable(exc) from None
                # the daemon closed an idle keep-alive connection: once more on a fresh one
            except (OSError, ProtocolError) as exc:
                self.close()
                raise self.unavailable(exc) from None

    def error(self, status: int, body: bytes) -> PmtopError:
        """The `PmtopError` the server raised, with a word on what to do about a refusal."""
        wire = read_error_body(body)
        if wire is None:
            return ApiError(status, "http_error", f"HTTP {status} from the pmtop daemon at {self.url}")
        error = from_wire(status, wire)
        if status == 401:
            error.message += "; on another machine give it with --token-file FILE or $PMTOP_TOKEN"
        elif status == 403:
            error.message = f"refused by the pmtop daemon at {self.url}: {error.message}"
        return error

    def request(self, method: str, path: str, body: Any = None, *, wait: bool = False) -> Any:
        """The decoded JSON answer (text for anything else). `wait`: an action that may take as long
        as a process's stop timeout, so only connecting is bounded by `timeout`."""
        data = json.dumps(body).encode() if body is not None else None
        response = self._send(method, path, data, None if wait else self.timeout)
        try:
            raw = response.read()
        except (OSError, ProtocolError) as exc:
            self.close()
            raise self.unavailable(exc) from None
        if self._conn is not None and not self._conn.reusable(response):
            self.close()
        if response.status >= 400:
            raise self.error(response.status, raw)
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                return json.loads(raw)
            except ValueError:
                raise self.unavailable(ProtocolError("its JSON does not parse")) from None
        return raw.decode("utf-8", "replace")

    def _check_instance(self) -> None:
        """Is what answers here the daemon of our instance? (`/health` is open to every client.)"""
        health = self.health()
        if health.get("instance") != self.instance:
            other = health.get("instance")
            raise DaemonUnavailable(f"{self.unavailable().message} (what answers there is pmtop instance {other!r})")

    # -- the API --------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        data = self.request("GET", "/health")
        if not isinstance(data, dict) or data.get("service") != "pmtop":
            raise self.unavailable(ProtocolError("its /health does not say pmtop"))
        return data

    def processes(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/processes?facts=1")["processes"])

    def act(self, name: str, verb: str) -> dict[str, Any]:
        return dict(self.request("POST", process_path(name, verb), wait=True))

    def alive(self) -> bool:
        """Does anything answer `/alive` now? (A fresh connection each time: used while it goes away.)"""
        conn = Connection(self.host, self.port, min(self.timeout, 1.0))
        try:
            response = conn.request("GET", "/alive", {}, None, min(self.timeout, 1.0))
            response.read()
            return response.status == 200
        except (OSError, ProtocolError):
            return False
        finally:
            conn.close()

    def events(self, path: str) -> Iterator[tuple[str, str]]:
        """Server-Sent Events from `path`, as `(event, data)`, until the daemon ends the stream.

        Comments (`: keepalive`) only prove the daemon lives; silence for three heartbeats, or a
        dropped connection, is `DaemonUnavailable`.
        """
        response = self._send("GET", path, None, self.timeout)
        conn, self._conn = self._conn, None  # this connection now belongs to the stream
        try:
            if response.status >= 400:
                raise self.error(response.status, response.read())
            try:
                heartbeat = float(response.headers.get(HEARTBEAT_HEADER.lower()) or DEFAULT_HEARTBEAT)
            except ValueError:
                heartbeat = DEFAULT_HEARTBEAT
            silence = max(heartbeat * SILENT_HEARTBEATS, self.timeout)
            if conn is not None and conn.sock is not None:
                conn.sock.settimeout(silence)
            parser = EventParser()
            while True:
                try:
                    raw = response.readline()
                except TimeoutError:
                    raise DaemonUnavailable(f"the pmtop daemon at {self.url} went silent (nothing for {silence:g}s)") from None
                except (OSError, ProtocolError):
                    raw = b""
                if not raw:
                    raise DaemonUnavailable(f"lost the connection to the pmtop daemon at {self.url}")
                message = parser.feed(raw.decode("utf-8", "replace"))
                if message is not None:
                    yield message
        finally:
            if conn is not None:
                conn.close()

    def follow_merged(self, query: str) -> Iterator[dict[str, Any]]:
        """Lines of `GET /logs?...&follow=1` as `{"time", "name", "stream", "line"}`, until the daemon goes."""
        for event, data in self.events(f"/logs?{query}"):
            if event == "message":
                yield dict(json.loads(data))
            elif event == "end":
                raise DaemonUnavailable(f"the pmtop daemon at {self.url} closed the log stream (shutting down)")

    def follow_logs(self, name: str, stream: str, lines: int) -> Iterator[str]:
        """The last `lines` lines of `stream`, then each new one; ends when the process is removed."""
        query = urlencode({"stream": stream, "lines": lines, "follow": 1})
        for event, data in self.events(f"{process_path(name, 'logs')}?{query}"):
            if event == "message":
                yield str(json.loads(data))
            elif event == "end":
                if end_reason(data) == "removed":
                    return
                raise DaemonUnavailable(f"the pmtop daemon at {self.url} closed the log stream (shutting down)")
