"""A small HTTP/1.1 server for the daemon's API: h11 reads and frames the protocol; this module routes
each request to its handler and writes the answer.

Why not aiohttp, round 1's server: its server half alone weighed 9.5 MB in a daemon that must weigh less
than supervisord (issue 15), for features the API never uses (multipart, cookies, static files, web
sockets, access logs). No well-kept lighter asyncio server does the job: microdot closes the connection
after every request and is built for microcontrollers; uvicorn needs an ASGI framework on top and
imports ssl and click. h11 (python-hyper; the protocol engine of httpx and uvicorn, installed with httpx
anyway) does all of HTTP/1.1's parsing and framing: request heads, Content-Length and chunked bodies,
keep-alive, `Connection: close`, HTTP/1.0 peers, `100-continue` and the protocol's error states. Written
here is only what h11 leaves to its user: the asyncio protocol around it, a router of `{name}` paths, and
request and response objects with what the API needs.

What to know:
- One request at a time on a connection (keep-alive; pipelined requests wait their turn); an idle
  connection is closed after `KEEPALIVE_TIMEOUT`, as aiohttp did.
- A body is read whole before the handler runs, up to `App.max_body` (beyond: 413, and the connection
  closes without reading the rest).
- A peer that closes its side has said all it will: a request it sent whole is still answered, then the
  connection closes; `Request.disconnected` turns true (an event stream stops). A peer that drops is
  gone: writes raise `ConnectionResetError`. Handlers are never cancelled for either (a stream notices
  within its next look).
- While a request is being handled, at most `MAX_HEAD` bytes of what the client sends next are
  buffered; then reading pauses until the answer is out.
- `Server.close()` stops listening, runs the app's `on_shutdown` hooks (the API ends its event streams),
  waits up to `shutdown_timeout` for handlers still running, cancels what is left and closes every
  connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final, Generic, TypeVar
from urllib.parse import parse_qsl, unquote

import h11

log = logging.getLogger("pmtop.api")

C = TypeVar("C")
KEEPALIVE_TIMEOUT: Final = 75.0
"""Seconds an idle keep-alive connection is kept open (aiohttp's default)."""
LINGER: Final = 5.0
"""Seconds the rest of a refused request is still read (and dropped) after the answer and our end of the
connection, until the client closes its end: a client still sending its body would otherwise get a
reset instead of the answer (a "lingering close", as nginx and Apache do it)."""
MAX_HEAD: Final = 64 * 1024
"""Bytes a request line and its headers may take (h11's default is 16 KiB; aiohttp allowed 8 KiB a line)."""


class HttpError(Exception):
    """An HTTP error status, raised by a handler or answered by the router (404, 405 with `allowed`)."""

    def __init__(self, status: int, message: str = "", *, headers: Mapping[str, str] | None = None,
                 allowed: Iterable[str] = ()) -> None:
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.allowed = frozenset(allowed)
        if self.allowed:
            self.headers.setdefault("Allow", ", ".join(sorted(self.allowed)))
        super().__init__(self.message)


class Headers:
    """A request's headers, read case-insensitively; a repeated header's values are joined with `, `."""

    __slots__ = ("_items",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        items: dict[str, str] = {}
        for name, value in raw:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            items[key] = f"{items[key]}, {text}" if key in items else text
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def items(self) -> Iterable[tuple[str, str]]:
        return self._items.items()


class Response:
    """A whole response, sent at once with its Content-Length."""

    __slots__ = ("status", "headers", "body", "sent")

    def __init__(self, body: bytes = b"", *, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.sent = False


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data).encode(), status=status,
                    headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def text_response(text: str, *, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(text.encode(), status=status, headers={"Content-Type": content_type})


class StreamResponse(Response):
    """A response written as it comes (chunked): `await prepare(request)`, `write(...)`, `write_eof()`.
    A handler that returns it unfinished has it finished for it."""

    __slots__ = ("_connection", "finished")

    def __init__(self, *, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status=status, headers=headers)
        self._connection: _Connection | None = None
        self.finished = False

    async def prepare(self, request: Request[Any]) -> None:
        self._connection = request.connection
        self._connection.send_head(self)
        await self._connection.drain()

    async def write(self, data: bytes) -> None:
        connection = self._live()
        connection.send(h11.Data(data=data))
        await connection.drain()

    async def write_eof(self) -> None:
        if not self.finished:
            self.finished = True
            connection = self._live()
            connection.send(h11.EndOfMessage())
            await connection.drain()

    def _live(self) -> _Connection:
        connection = self._connection
        if connection is None:
            raise RuntimeError("write before prepare()")
        if connection.gone:
            raise ConnectionResetError("the client is gone")
        return connection


class Route(Generic[C]):
    """`method path` (with `{param}` segments) -> handler; `name` is how the API's table knows it."""

    __slots__ = ("method", "path", "handler", "name", "pattern")

    def __init__(self, method: str, path: str, handler: Handler[C], name: str | None) -> None:
        self.method, self.path, self.handler, self.name = method, path, handler, name
        parts = re.split(r"\{(\w+)\}", path)  # literal, param, literal, param, ..., literal
        self.pattern = re.compile("".join(
            f"(?P<{part}>[^/]+)" if odd else re.escape(part) for odd, part in
            ((i % 2 == 1, p) for i, p in enumerate(parts))))


class Router(Generic[C]):
    """The routes in the order they were added: the first whose path and method match wins."""

    def __init__(self) -> None:
        self.routes: list[Route[C]] = []

    def add_route(self, method: str, path: str, handler: Handler[C], *, name: str | None = None) -> None:
        self.routes.append(Route(method.upper(), path, handler, name))

    def add_get(self, path: str, handler: Handler[C], *, name: str | None = None) -> None:
        self.add_route("GET", path, handler, name=name)

    def resolve(self, method: str, raw_path: str) -> tuple[Route[C] | None, dict[str, str], HttpError | None]:
        """The route, its decoded path parameters, or why there is none (404, or 405 with what is allowed)."""
        allowed: set[str] = set()
        for route in self.routes:
            found = route.pattern.fullmatch(raw_path)
            if found is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, None
            allowed.add(route.method)
        if allowed:
            return None, {}, HttpError(405, allowed=allowed)
        return None, {}, HttpError(404)


class App(Generic[C]):
    """Routes, the middlewares every request goes through (outermost first), and `context`: what the
    handlers share (the API's controller, settings, ...)."""

    def __init__(self, context: C, *, middlewares: Sequence[Middleware[C]] = (), max_body: int = 1024 * 1024,
                 error_response: Callable[[int, str], Response] | None = None) -> None:
        self.context = context
        self.router: Router[C] = Router()
        self.middlewares = tuple(middlewares)
        self.max_body = max_body
        self.on_shutdown: list[Callable[[App[C]], Awaitable[None]]] = []
        self.error_response = error_response or (lambda status, message: text_response(message, status=status))
        """How an error found before any handler runs (a malformed request, a body too big) is answered."""

    async def dispatch(self, request: Request[C]) -> Response:
        route, params, error = self.router.resolve(request.method, request.raw_path)
        request.route, request.match_info, request.routing_error = route, params, error

        async def endpoint(req: Request[C]) -> Response:
            if route is None:
                assert error is not None
                raise error
            return await route.handler(req)

        handler: Handler[C] = endpoint
        for middleware in reversed(self.middlewares):
            handler = _wrap(middleware, handler)
        return await handler(request)


def _wrap(middleware: Middleware[C], inner: Handler[C]) -> Handler[C]:
    async def handler(request: Request[C]) -> Response:
        return await middleware(request, inner)

    return handler


class Request(Generic[C]):
    """One request, its body already read."""

    __slots__ = ("app", "method", "raw_path", "path", "query", "headers", "body", "remote", "local",
                 "route", "match_info", "routing_error", "trusted", "connection")

    def __init__(self, app: App[C], connection: _Connection, head: h11.Request, headers: Headers, body: bytes) -> None:
        self.app = app
        self.connection = connection
        self.method = head.method.decode("ascii", "replace")
        target = head.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        self.raw_path = raw_path
        self.path = unquote(raw_path)
        self.query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            self.query.setdefault(key, value)
        self.headers = headers
        self.body = body
        self.remote, self.local = connection.peer, connection.sockname
        self.route: Route[C] | None = None
        self.match_info: dict[str, str] = {}
        self.routing_error: HttpError | None = None
        self.trusted = False
        """Set by the API's security check: the peer is one of the trusted hosts."""

    @property
    def context(self) -> C:
        return self.app.context

    @property
    def content_length(self) -> int | None:
        raw = self.headers.get("content-length")
        return int(raw) if raw is not None and raw.isdigit() else None

    async def read(self) -> bytes:
        return self.body

    @property
    def disconnected(self) -> bool:
        """The client closed its side or dropped (a stream stops writing to it)."""
        return self.connection.gone or self.connection.peer_closed

    async def respond_now(self, response: Response) -> None:
        """Send `response` before the handler returns it (an answer that must leave before what follows)."""
        self.connection.send_response(response, self.method)
        await self.connection.drain()


Handler = Callable[[Request[C]], Awaitable[Response]]
Middleware = Callable[[Request[C], Handler[C]], Awaitable[Response]]


class _Connection(asyncio.Protocol):
    """One client connection: h11 turns its bytes into requests; each is handled in turn."""

    def __init__(self, server: Server[Any]) -> None:
        self.server = server
        self.app = server.app
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.sockname: str | None = None
        self.gone = False
        self.peer_closed = False
        """The client closed its side (EOF): answer what it sent whole, then close."""
        self.task: asyncio.Task[None] | None = None
        self._head: h11.Request | None = None
        self._headers: Headers | None = None
        self._body = bytearray()
        self._writable = asyncio.Event()
        self._writable.set()
        self._idle: asyncio.TimerHandle | None = None
        self._discarding = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else None
        self.sockname = str(local[0]) if isinstance(local, tuple) else None
        self.server.connections.add(self)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self.h11.receive_data(data)
        if self.task is None:
            self._next()
        elif len(self.h11.trailing_data[0]) > MAX_HEAD and self.transport is not None:
            self.transport.pause_reading()  # a pipelining client waits for its turn (resumed after the answer)

    def eof_received(self) -> bool:
        """The client closed its side: what it sent whole is still answered (our side stays open for it)."""
        self.peer_closed = True
        if self._discarding:
            return False
        self.h11.receive_data(b"")
        if self.task is None:
            self._next()
        return self.task is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self._writable.set()
        self.server.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- requests -----------------------------------------------------------------------------------

    def _next(self) -> None:
        """Read events until a whole request is in (then handle it), more data is needed, or the end."""
        while self.task is None and not self.gone:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, f"malformed request: {exc}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._disarm_idle()
                self._head, self._headers, self._body = event, Headers(event.headers), bytearray()
                length = self._headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > self.app.max_body:
                    self._fail(413, f"the request body exceeds the limit of {self.app.max_body} bytes")
                    return
                if self.h11.client_is_waiting_for_100_continue:
                    self.send(h11.InformationalResponse(status_code=100, headers=[]))
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self.app.max_body:
                    self._fail(413, f"the request body exceeds the limit of {self.app.max_body} bytes")
                    return
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None and self._headers is not None
                request = Request(self.app, self, self._head, self._headers, bytes(self._body))
                self._head, self._headers, self._body = None, None, bytearray()
                self.task = asyncio.get_running_loop().create_task(self._handle(request))
                self.server.tasks.add(self.task)
                self.task.add_done_callback(self.server.tasks.discard)
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    async def _handle(self, request: Request[Any]) -> None:
        try:
            try:
                response = await self.app.dispatch(request)
            except Exception:
                log.exception("unexpected error in %s %s", request.method, request.path)
                response = self.app.error_response(500, "internal error (see the daemon log)")
            if isinstance(response, StreamResponse) and response._connection is not None:
                if not response.finished and not self.gone:
                    await response.write_eof()
            elif not response.sent:
                self.send_response(response, request.method)
                await self.drain()
        except (ConnectionError, h11.LocalProtocolError):
            self._close()
        finally:
            self.task = None
        self._after_response()

    def _after_response(self) -> None:
        if self.gone:
            return
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE and not self.peer_closed:
            self.h11.start_next_cycle()
            self._arm_idle()
            if self.transport is not None:
                self.transport.resume_reading()
            self._next()
        else:  # MUST_CLOSE (HTTP/1.0, `Connection: close`), the client's side closed, or a broken exchange
            self._close()

    def _fail(self, status: int, message: str) -> None:
        """Answer a request that never reaches a handler, then close once the client has stopped sending
        (what it still sends is dropped, for at most `LINGER` seconds)."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response = self.app.error_response(status, message)
            response.headers["Connection"] = "close"
            with contextlib.suppress(h11.LocalProtocolError):
                self.send_response(response, self._head.method.decode("ascii", "replace") if self._head else "GET")
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is all: the client sees the end right after it
        self._discarding = True
        self._disarm_idle()
        self._idle = asyncio.get_running_loop().call_later(LINGER, self._close)

    # -- writing ------------------------------------------------------------------------------------

    def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data and self.transport is not None and not self.gone:
            self.transport.write(data)

    def send_head(self, response: Response) -> None:
        if response.sent:
            raise RuntimeError("the response was sent already")
        response.sent = True
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()]
        self.send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))

    def send_response(self, response: Response, method: str) -> None:
        response.headers["Content-Length"] = str(len(response.body))
        self.send_head(response)
        if response.body and method != "HEAD":
            self.send(h11.Data(data=response.body))
        self.send(h11.EndOfMessage())

    async def drain(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()
        if self.gone:
            raise ConnectionResetError("the client is gone")

    # -- idle and closing ---------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        self._disarm_idle()
        self._idle = asyncio.get_running_loop().call_later(KEEPALIVE_TIMEOUT, self._idle_timeout)

    def _disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self) -> None:
        if self.task is None:
            self._close()

    @property
    def idle(self) -> bool:
        return self.task is None

    def _close(self) -> None:
        self.gone = True
        self._writable.set()
        self._disarm_idle()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # what is buffered is still written first


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class Server(Generic[C]):
    """`app` served on a socket: `await start(sock)` (or `start_tcp(host, port)`), then `await close()`."""

    def __init__(self, app: App[C], *, shutdown_timeout: float = 60.0) -> None:
        self.app = app
        self.shutdown_timeout = shutdown_timeout
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket (the daemon binds before it imports this)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock)

    async def start_tcp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for hook in self.app.on_shutdown:
            await hook(self.app)
        for connection in list(self.connections):
            if connection.idle:
                connection._close()
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=self.shutdown_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        for connection in list(self.connections):
            connection._close()
        await server.wait_closed()
