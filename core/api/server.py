"""The HTTP API of SPEC §6: an app (`http11`, pmtop's small server on h11) over any `Controller`, plus
hooks into the daemon.

The app is a thin edge. Handlers parse and check the request, call the controller, and serialise;
errors are raised, never formatted in a handler, and turned into `{"error": {"code", "message"}}`
with a status by one middleware (`errors_middleware`). A second middleware decides who may do what
(`security_middleware`, rules in `security.py`). The routes are those of `protocol.ROUTES`, each with
its declared `Access`; the app registers exactly those (`HANDLERS` maps each to its handler), and a
request whose route has no entry there is refused, so a route can never be open by omission.

The daemon imports this module lazily: `pmtop ps` and friends never load it or h11.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from ..config.schema import parse_process, spec_to_table
from ..controller import Controller
from ..errors import ApiRefusal, ConfigError, PmtopError, to_wire
from ..model import STREAMS, ProcessState, ProcessStatus, Scope
from ..system import foreign
from ..values import parse_duration
from . import metrics, openapi, sse
from .hosts import HostHeaderCheck
from .http11 import App, HttpError, Request, Response, json_response, text_response
from .protocol import CONFIG_SECTIONS, ROUTES, ROUTES_BY_NAME, Access, error_body, format_event
from .security import (
    HostMatcher,
    SecurityStore,
    apply_section,
    registration_refusal,
    route_refusal,
    section_to_json,
    token_matches,
)

log = logging.getLogger("pmtop.api")

MAX_BODY: Final = 1024 * 1024
MAX_LOG_LINES: Final = 100_000
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class DaemonHooks(Protocol):
    """What only the daemon around the supervisor knows or can do."""

    def info(self) -> dict[str, Any]:
        """For `/health` and `/status`: version, instance, host, port, pid, uptime, config."""
        ...

    def status(self) -> dict[str, Any]:
        """Extra fields for `/status` (partner status and the like)."""
        ...

    async def reload(self) -> dict[str, Any]:
        """Re-read the config: `{"added": [...], "changed": [...], "removed": [...]}`; `ConfigError` if bad."""
        ...

    def request_shutdown(self) -> None: ...

    def request_restart(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ApiOptions:
    token: str
    read_only: bool
    heartbeat: float


@dataclass(slots=True)
class ApiContext:
    """What every handler shares: the app's `context`."""

    controller: Controller
    daemon: DaemonHooks
    security: SecurityStore
    options: ApiOptions
    hosts: HostMatcher = dataclasses.field(default_factory=HostMatcher)
    """Replaceable before the app starts (tests inject a resolver)."""
    host_check: HostHeaderCheck = dataclasses.field(default_factory=HostHeaderCheck)
    closing: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    """Set on shutdown: every event stream ends instead of holding the exit up."""
    config_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


ApiRequest = Request[ApiContext]
Handler = Callable[[ApiRequest], Awaitable[Response]]


# ------------------------------------------------------------------------------------ middlewares

_HTTP_CODES: Final = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large",
}


def _http_exception_response(request: ApiRequest, exc: HttpError) -> Response:
    status = exc.status
    if status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.path} (allowed: {', '.join(sorted(exc.allowed))})"
    else:
        message = exc.message
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
    return json_response(error_body(_HTTP_CODES.get(status, "http_error"), message), status=status, headers=headers)


def error_response(status: int, message: str) -> Response:
    """For what fails before any handler runs (a malformed request, a body over `MAX_BODY`)."""
    return json_response(error_body(_HTTP_CODES.get(status, "http_error"), message), status=status)


async def errors_middleware(request: ApiRequest, handler: Handler) -> Response:
    """The one place where errors become HTTP statuses and JSON bodies."""
    try:
        return await handler(request)
    except HttpError as exc:
        return _http_exception_response(request, exc)
    except PmtopError as exc:
        headers = exc.headers if isinstance(exc, ApiRefusal) else None
        return json_response(to_wire(exc), status=exc.status, headers=headers)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_response(error_body("internal_error", "internal error (see the daemon log)"), status=500)


UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="pmtop"'}


async def security_middleware(request: ApiRequest, handler: Handler) -> Response:
    """SPEC §6, in order: the Host header (DNS rebinding), the token (everyone, loopback included),
    read-only, then what an untrusted peer may do. Nothing before this runs for a refused request."""
    context = request.context
    host_problem = await context.host_check.problem(request.headers.get("Host"), request.local)
    if host_problem is not None:
        raise ApiRefusal(403, "host_not_allowed", host_problem)
    not_found = request.routing_error is not None  # 404/405: the router says so, after the token
    route = None if not_found or request.route is None else ROUTES_BY_NAME.get(request.route.name or "")
    if route is not None and route.access is Access.OPEN:
        return await handler(request)
    if not token_matches(request.headers.get("Authorization", "") or "", context.options.token):
        raise ApiRefusal(401, "unauthorized", "this request needs the owner's token: "
                        "Authorization: Bearer <token> (`pmtop token` prints it)", UNAUTHORIZED_HEADERS)
    if not_found:
        return await handler(request)
    if route is None:  # registered outside the route table: refuse rather than guess
        raise ApiRefusal(403, "forbidden", f"{request.method} {request.path}: this route declares no access rule")
    if context.options.read_only and request.method not in SAFE_METHODS:
        raise ApiRefusal(403, "read_only", "pmtop is read-only")
    settings = context.security.settings
    trusted = await context.hosts.is_trusted(request.remote, settings.trusted_hosts)
    request.trusted = trusted
    if not trusted:
        refusal = route_refusal(route, settings.remote_access)
        if refusal is not None:
            raise ApiRefusal(403, "forbidden", f"{request.method} {request.path}: {refusal}")
    return await handler(request)


# ---------------------------------------------------------------------------------------- helpers

def _json(data: Any, status: int = 200) -> Response:
    return json_response(data, status=status)


def _not_json(word: str) -> Any:
    """Python's json reads NaN and Infinity; JSON has neither."""
    raise ValueError(f"{word} is not JSON")


async def _body(request: ApiRequest) -> dict[str, Any]:
    """The request body as a JSON object; 400 for anything else (413 when too big: the server)."""
    raw = await request.read()
    try:
        data = json.loads(raw, parse_constant=_not_json) if raw.strip() else None
    except ValueError as exc:
        raise ApiRefusal(400, "invalid_json", f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise ApiRefusal(400, "invalid_json", "the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiRefusal(400, "bad_request", "the body must be a JSON object")
    return data


def _name(request: ApiRequest) -> str:
    return request.match_info["name"]


def _controller(request: ApiRequest) -> Controller:
    return request.context.controller


# ------------------------------------------------------------------------------ daemon endpoints

async def alive(request: ApiRequest) -> Response:
    return text_response("OK")


async def health(request: ApiRequest) -> Response:
    body: dict[str, Any] = {"status": "running", "service": "pmtop"}
    body.update(request.context.daemon.info())
    body.update(status="running", service="pmtop")
    return _json(body)


async def daemon_status(request: ApiRequest) -> Response:
    statuses = await _controller(request).processes()
    counts = {state.value: 0 for state in ProcessState}
    for status in statuses:
        counts[status.state.value] += 1
    daemon = request.context.daemon
    return _json({**daemon.info(), **daemon.status(), "counts": counts, "processes": len(statuses),
                  "read_only": request.context.options.read_only})


async def metrics_text(request: ApiRequest) -> Response:
    text = metrics.render(await _controller(request).processes(facts=True))
    return text_response(text, content_type=metrics.CONTENT_TYPE)


async def events(request: ApiRequest) -> Response:
    context = request.context
    return await sse.stream_events(request, context.controller, facts=_flag(request, "facts"),
                                   heartbeat=context.options.heartbeat, closing=context.closing)


async def monitor_reload(request: ApiRequest) -> Response:
    return _json(await request.context.daemon.reload())


def _accepted_then(hook: Callable[[DaemonHooks], None]) -> Handler:
    """202 first, the hook on the next loop turn: the client must get its answer before we go."""

    async def handler(request: ApiRequest) -> Response:
        response = json_response({"ok": True}, status=202)
        await request.respond_now(response)
        asyncio.get_running_loop().call_soon(hook, request.context.daemon)
        return response

    return handler


# ----------------------------------------------------------------------------- process endpoints

async def list_processes(request: ApiRequest) -> Response:
    statuses = await _controller(request).processes(facts=_flag(request, "facts", default=True))
    return _json({"processes": [s.to_dict() for s in statuses]})


def _pid(value: object, key: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError("must be a process ID (a positive integer)", key_path=key)
    return value


async def register(request: ApiRequest) -> Response:
    """`POST /processes`: a `[process.*]` table plus `name`, and `start`, `session_pid`, `project`; with
    `pid`, the process someone else started is adopted (`command`, if any, is what restarts it)."""
    table = await _body(request)
    name = table.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError("required, a string (the process name)", key_path="name")
    start = table.pop("start", True)
    if not isinstance(start, bool):
        raise ConfigError("must be true or false", key_path="start")
    session_pid = _pid(table.pop("session_pid", None), "session_pid")
    pid = _pid(table.pop("pid", None), "pid")
    project = table.pop("project", None)
    if project is not None and (not isinstance(project, str) or not os.path.isabs(project)):
        raise ConfigError("must be an absolute folder path", key_path="project")
    if session_pid is not None:
        table.setdefault("scope", Scope.SESSION.value)
    elif pid is not None:
        table.setdefault("scope", Scope.GLOBAL.value)  # a PID is this machine's, now: never a project's
    cwd = table.get("cwd")
    base_dir = Path(project or (cwd if isinstance(cwd, str) and os.path.isabs(cwd) else os.getcwd()))
    spec = parse_process(name, table, base_dir=base_dir, adopted=pid is not None)
    if (spec.scope is Scope.SESSION) != (session_pid is not None):
        raise ConfigError("a session process needs session_pid, and session_pid needs scope session",
                          key_path=f"process.{name}.scope")
    spec = dataclasses.replace(spec, session_pid=session_pid)
    adopting = foreign.executable(pid) if pid is not None else None
    refusal = None if request.trusted else registration_refusal(spec, request.context.security.settings,
                                                                 adopting=adopting)
    if refusal is not None:
        raise ApiRefusal(403, "forbidden", refusal)
    if pid is not None:
        status = await _controller(request).adopt_pid(spec, pid)
    else:
        status = await _controller(request).add(spec, start=start)
    return _json(status.to_dict(), status=201)


async def process_detail(request: ApiRequest) -> Response:
    controller = _controller(request)
    status = await controller.status(_name(request), facts=_flag(request, "facts", default=True))
    spec = await controller.spec(_name(request))
    return _json({**status.to_dict(), "config": spec_to_table(spec), "project": spec.project,
                  "session_pid": spec.session_pid, "replica": spec.replica.index if spec.replica else None})


async def remove(request: ApiRequest) -> Response:
    await _controller(request).remove(_name(request))
    return _json({"removed": _name(request)})


def _action(act: Callable[[Controller, str], Awaitable[ProcessStatus]]) -> Handler:
    async def handler(request: ApiRequest) -> Response:
        return _json((await act(_controller(request), _name(request))).to_dict())

    return handler


async def stop_many(request: ApiRequest) -> Response:
    """`POST /processes/*/stop`, body `{"names": [...]}` or none for all: dependents stop first.

    `*` can never be a process name, so this route cannot shadow a process's own.
    """
    names = None
    if (await request.read()).strip():
        body = await _body(request)
        names = body.get("names")
        if set(body) != {"names"} or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiRefusal(422, "bad_request", 'the body must be {"names": [process names]} (or none, for all)')
    statuses = await _controller(request).stop_many(names)
    return _json({"processes": [s.to_dict() for s in statuses]})


def _int_query(request: ApiRequest, key: str, default: int, maximum: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= maximum:
        raise ApiRefusal(400, "bad_request", f"{key} must be an integer from 0 to {maximum} (got {raw!r})")
    return value


def _flag(request: ApiRequest, key: str, *, default: bool = False) -> bool:
    raw = request.query.get(key)
    if raw is None:
        return default
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise ApiRefusal(400, "bad_request", f"{key} must be 1 or 0 (got {raw!r})")
    return raw.lower() in ("1", "true", "yes")


async def process_logs(request: ApiRequest) -> Response:
    controller, name = _controller(request), _name(request)
    stream = request.query.get("stream", "stdout")
    if stream not in STREAMS:
        raise ApiRefusal(400, "bad_request", f"stream must be stdout or stderr (got {stream!r})")
    follow = _flag(request, "follow")
    lines = _int_query(request, "lines", 10 if follow else 200, MAX_LOG_LINES)
    if not follow:
        return _json({"name": name, "stream": stream, "lines": await controller.logs(name, stream, lines)})

    async def still_exists() -> bool:
        return name in {s.name for s in await controller.processes()}

    context = request.context
    return await sse.stream_lines(request, controller.follow(name, stream, lines), still_exists=still_exists,
                                  heartbeat=context.options.heartbeat, closing=context.closing)


async def scale(request: ApiRequest) -> Response:
    """`POST /processes/{name}/scale`, body `{"replicas": N}`."""
    body = await _body(request)
    replicas = body.get("replicas")
    if set(body) != {"replicas"} or isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ApiRefusal(422, "bad_request", 'the body must be {"replicas": N} (a whole number from 0 to 1000)')
    statuses = await _controller(request).scale(_name(request), replicas)
    return _json({"name": _name(request), "replicas": len(statuses), "processes": [s.to_dict() for s in statuses]})


def _since(request: ApiRequest) -> float | None:
    """`since=10m` (back from now) or `since=2024-05-01T14:00:00` (local time unless it says)."""
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    try:
        return time.time() - parse_duration(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise ApiRefusal(400, "bad_request", f'since must be a duration ("10m") or an ISO 8601 time (got {raw!r})') from None


async def merged_logs(request: ApiRequest) -> Response:
    """`GET /logs`: every process's output, merged in the order it was written (SPEC §11)."""
    controller = _controller(request)
    raw = request.query.get("names", "")
    names = [n for n in (part.strip() for part in raw.split(",")) if n] or None
    follow = _flag(request, "follow")
    lines = _int_query(request, "lines", 10 if follow else 200, MAX_LOG_LINES)
    grep = request.query.get("grep") or None
    since = _since(request)
    if not follow:
        found = await controller.merged_logs(names, lines, grep=grep, since=since)
        return _json({"lines": [line.to_dict() for line in found]})

    async def still_open() -> bool:
        return True

    context = request.context
    return await sse.stream_lines(request, controller.follow_merged(names, lines, grep=grep, since=since),
                                  still_exists=still_open, heartbeat=context.options.heartbeat, closing=context.closing,
                                  render=lambda line: format_event(line.to_dict()))


async def process_history(request: ApiRequest) -> Response:
    runs = await _controller(request).history(_name(request))
    return _json({"name": _name(request), "runs": [run.to_dict() for run in runs]})


# ------------------------------------------------------------------------------ config endpoints

def get_config(section: str) -> Handler:
    async def handler(request: ApiRequest) -> Response:
        return _json(section_to_json(request.context.security.settings, section))

    return handler


def put_config(section: str) -> Handler:
    """Validate, persist, then apply: a refused or failed write changes nothing."""

    async def handler(request: ApiRequest) -> Response:
        body = await _body(request)
        store = request.context.security
        async with request.context.config_lock:  # read-modify-write, one at a time
            settings = apply_section(store.settings, section, body)
            try:
                await asyncio.to_thread(store.save, settings)
            except OSError as exc:  # a full or read-only disk: nothing changed
                raise ApiRefusal(503, "cannot_save", f"cannot save the {section} settings ({store.path}): "
                                f"{exc.strerror or exc}; nothing was changed") from None
        return _json(section_to_json(settings, section))

    return handler


async def openapi_document(request: ApiRequest) -> Response:
    return _json(openapi.document())


# --------------------------------------------------------------------------------------- the app

async def _close_streams(app: App[ApiContext]) -> None:
    app.context.closing.set()


_ACTIONS: Final[Mapping[str, Callable[[Controller, str], Awaitable[ProcessStatus]]]] = {
    "start": lambda c, n: c.start(n),
    "stop": lambda c, n: c.stop(n),
    "restart": lambda c, n: c.restart(n),
    "enable": lambda c, n: c.enable(n),
    "disable": lambda c, n: c.disable(n),
}

HANDLERS: Final[Mapping[str, Handler]] = {
    "alive": alive,
    "health": health,
    "openapi": openapi_document,
    "status": daemon_status,
    "metrics": metrics_text,
    "events": events,
    "monitor-reload": monitor_reload,
    "monitor-shutdown": _accepted_then(lambda d: d.request_shutdown()),
    "monitor-restart": _accepted_then(lambda d: d.request_restart()),
    "processes": list_processes,
    "process-register": register,
    "process-stop-many": stop_many,
    "process": process_detail,
    "process-remove": remove,
    **{f"process-{verb}": _action(act) for verb, act in _ACTIONS.items()},
    "process-logs": process_logs,
    "process-history": process_history,
    "process-scale": scale,
    "logs": merged_logs,
    **{f"config-get-{section}": get_config(section) for section in CONFIG_SECTIONS},
    **{f"config-put-{section}": put_config(section) for section in CONFIG_SECTIONS},
}
"""Route name (`protocol.ROUTES`) -> handler; `make_app` checks the two name the same routes."""


def make_app(
    controller: Controller,
    daemon: DaemonHooks,
    *,
    security: SecurityStore,
    token: str,
    read_only: bool = False,
    heartbeat: float = 15.0,
) -> App[ApiContext]:
    """The API for `controller`. Serve it with `http11.Server` (tests: `start_tcp("127.0.0.1", 0)`)."""
    if not token:
        raise ValueError("the API needs a token: every request but /alive and /health must show it")
    missing = {route.name for route in ROUTES} ^ set(HANDLERS)
    assert not missing, f"routes and handlers differ: {sorted(missing)}"
    context = ApiContext(controller, daemon, security, ApiOptions(token=token, read_only=read_only, heartbeat=heartbeat))
    app = App(context, middlewares=[errors_middleware, security_middleware], max_body=MAX_BODY,
              error_response=error_response)
    app.on_shutdown.append(_close_streams)
    for route in ROUTES:  # in table order: `/processes/*/stop` before `/processes/{name}/stop`
        app.router.add_route(route.method, route.path, HANDLERS[route.name], name=route.name)
    return app
