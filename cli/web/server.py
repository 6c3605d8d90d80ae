"""The web server of `pmtop web`: the token gate in front of textual-serve's page and websocket.

    GET  /health      {"service": "pmtop-web", ...}: how a second `pmtop web` finds this one
    GET  /            the dashboard page (with the session cookie, or `?token=` that buys it),
                      else 401 and a form that asks for the token
    POST /login       the form: the token buys the cookie (303 to /), a wrong one gets 401
    GET  /ws          the terminal's websocket: one dashboard process per connection
    GET  /static/...  textual-serve's script, style sheet and fonts (public files)

Every request must name this server in its `Host` header, as for the API (`core/api/hosts.py`,
against DNS rebinding). Nothing is spawned for a request that has not passed the gate: a refused
websocket is refused before its handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from pmtop.core.api.hosts import HostHeaderCheck
from pmtop.core.errors import PmtopError

from .gate import MAX_TOKEN_LENGTH, Gate
from .pages import CSP, HEADERS, dashboard_page, login_page
from .sessions import DashboardSession

log = logging.getLogger("pmtop.web")

SERVICE: Final = "pmtop-web"
MAX_MESSAGE: Final = 1 << 20
"""Largest websocket message from a browser (a paste), as the API's body limit."""


@dataclass(frozen=True, slots=True)
class SessionCommand:
    """How to run one dashboard: what the launcher decides for each new session."""

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


Launcher = Callable[[], Awaitable[SessionCommand]]
"""Makes sure the daemon runs and says how to attach a dashboard to it; raises `PmtopError`."""


@dataclass(frozen=True, slots=True)
class WebInfo:
    instance: str
    version: str
    pid: int
    port: int


GATE: Final = web.AppKey("gate", Gate)
HOSTS: Final = web.AppKey("hosts", HostHeaderCheck)
INFO: Final = web.AppKey("info", WebInfo)
LAUNCHER: Final[web.AppKey[Launcher]] = web.AppKey("launcher")
SESSIONS: Final[web.AppKey[set[DashboardSession]]] = web.AppKey("sessions")


def make_app(gate: Gate, info: WebInfo, launcher: Launcher) -> web.Application:
    app = web.Application(middlewares=[only_our_host], client_max_size=64 * 1024)
    app[GATE] = gate
    app[HOSTS] = HostHeaderCheck()
    app[INFO] = info
    app[LAUNCHER] = launcher
    app[SESSIONS] = set()
    static = Path(str(files("textual_serve") / "static"))
    app.add_routes([
        web.get("/health", health),
        web.get("/", index),
        web.post("/login", login),
        web.get("/ws", terminal),
        web.static("/static", static),
    ])
    app.on_shutdown.append(stop_sessions)
    return app


@web.middleware
async def only_our_host(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    problem = await request.app[HOSTS].problem(request.headers.get("Host"), str(sockname[0]) if sockname else None)
    if problem is not None:
        return web.Response(status=403, text=f"pmtop web: {problem}\n")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    info = request.app[INFO]
    return web.json_response({"status": "running", "service": SERVICE, "instance": info.instance,
                              "version": info.version, "pid": info.pid, "port": info.port})


# -- the page and the token ------------------------------------------------------------------------

async def index(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    if "token" in request.query:
        if not gate.token_matches(request.query["token"]):
            return _login(request, wrong=True)
        return _with_cookie(_dashboard(request), gate)
    if not gate.cookie_matches(request.cookies.get(gate.cookie_name)):
        return _login(request, wrong=False)
    return _dashboard(request)


async def login(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    if not gate.origin_allowed(request.headers.get("Origin"), request.scheme, request.host):
        return web.Response(status=403, text="pmtop web: a form from another site\n")
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not gate.token_matches(token[:MAX_TOKEN_LENGTH + 1]):
        return _login(request, wrong=True)
    return _with_cookie(web.HTTPSeeOther("/"), gate)


def _dashboard(request: web.Request) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    websocket_url = f"ws://{request.host}/ws"
    try:
        font_size = min(max(int(request.query.get("fontsize", "16")), 6), 64)
    except ValueError:
        font_size = 16
    page = dashboard_page(instance=request.app[INFO].instance, websocket_url=websocket_url,
                          font_size=font_size, nonce=nonce)
    return web.Response(text=page, content_type="text/html",
                        headers={**HEADERS, "Content-Security-Policy": CSP.format(nonce=nonce, ws=websocket_url)})


def _login(request: web.Request, *, wrong: bool) -> web.Response:
    page = login_page(instance=request.app[INFO].instance, wrong=wrong)
    csp = ("default-src 'none'; style-src 'unsafe-inline'; font-src 'self'; img-src data:;"
           " form-action 'self'; frame-ancestors 'none'")
    return web.Response(status=401, text=page, content_type="text/html",
                        headers={**HEADERS, "Content-Security-Policy": csp})


def _with_cookie(response: web.Response, gate: Gate) -> web.Response:
    response.set_cookie(gate.cookie_name, gate.cookie_value(), httponly=True, samesite="Strict", path="/")
    response.headers.update(HEADERS)
    return response


# -- the terminal ----------------------------------------------------------------------------------

async def terminal(request: web.Request) -> web.StreamResponse:
    gate = request.app[GATE]
    if not gate.origin_allowed(request.headers.get("Origin"), request.scheme, request.host):
        raise web.HTTPForbidden(text="pmtop web: a page from another site\n")
    if not gate.cookie_matches(request.cookies.get(gate.cookie_name)):
        raise web.HTTPUnauthorized(text="pmtop web: show the token first\n")
    width = _clamp(request.query.get("width"), 80, 10, 1000)
    height = _clamp(request.query.get("height"), 24, 5, 500)
    ws = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    try:
        command = await request.app[LAUNCHER]()
    except PmtopError as exc:
        log.warning("session refused: %s", exc.message)
        await ws.send_bytes(f"\r\n  pmtop: {exc.message}\r\n".encode())
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)
        return ws
    async def close() -> None:
        await ws.close()

    session = DashboardSession(command.argv, env=dict(command.env), cwd=command.cwd,
                               write_bytes=ws.send_bytes, write_str=ws.send_str, close=close)
    sessions = request.app[SESSIONS]
    sessions.add(session)
    try:
        await session.start(width, height)
        log.info("session %s opened from %s (pid %s)", session.app_service_id[:8], request.remote, session.pid)
        relay = asyncio.create_task(_relay(ws, session))
        waiting: set[asyncio.Future[Any]] = {relay}
        if session.task is not None:
            waiting.add(session.task)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    finally:
        await session.stop()
        sessions.discard(session)
        await ws.close()
        log.info("session %s ended (pid %s)", session.app_service_id[:8], session.pid)
    return ws


async def _relay(ws: web.WebSocketResponse, session: DashboardSession) -> None:
    """The browser's messages to the dashboard (textual.js's envelope: `[type, payload]`)."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
        except ValueError:
            continue
        if not isinstance(envelope, list) or not envelope:
            continue
        kind, payload = envelope[0], envelope[1] if len(envelope) > 1 else None
        if kind == "stdin" and isinstance(payload, str):
            await session.send_bytes(payload.encode("utf-8"))
        elif kind == "resize" and isinstance(payload, dict):
            await session.set_terminal_size(_clamp(payload.get("width"), 80, 10, 1000),
                                            _clamp(payload.get("height"), 24, 5, 500))
        elif kind == "ping" and isinstance(payload, str):
            await ws.send_json(["pong", payload])
        elif kind == "blur":
            await session.blur()
        elif kind == "focus":
            await session.focus()


def _clamp(raw: object, default: int, low: int, high: int) -> int:
    if not isinstance(raw, (int, float, str)):
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return min(max(value, low), high)


async def stop_sessions(app: web.Application) -> None:
    """On shutdown: every dashboard quits (or is killed) before the server goes."""
    sessions: set[DashboardSession] = app[SESSIONS]
    await asyncio.gather(*(session.stop() for session in list(sessions)))
