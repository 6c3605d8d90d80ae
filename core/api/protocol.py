"""The HTTP API's wire protocol: the route table, the error body, Server-Sent Events framing.

Everything the server and its two clients (the dashboard's httpx client, the CLI's light client) must
agree on lives here once: what an error body looks like, how an event stream is framed and read, how
a process's URL is spelled, how long a silent stream may last.

The route table serves three readers, so they cannot drift apart:

- the server (`server.make_app`) registers exactly these routes and finds each request's `Access` here;
  a request whose route is not in the table is refused (fail closed), never waved through;
- the OpenAPI document (`openapi.document`, served as `GET /openapi.json`) is generated from it;
- the tests walk it to try every endpoint as an attacker would.

Access (SPEC §6): the owner's token is the key, for everyone, loopback included. `OPEN` routes are how
clients and other instances find a daemon and carry nothing secret. `TOKEN` routes need the token from
any address; a peer that is not a trusted host is additionally limited by the remote-access
`permissions` the route names. `TRUSTED` routes need the token and a trusted host: they change the
daemon itself or its security settings.

Standard library only, and no `dataclasses` or `typing` at run time: the CLI's light client may import
this on `pmtop ps`'s path, where every millisecond of import counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from urllib.parse import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Final

HEARTBEAT_HEADER: Final = "X-Pmtop-Heartbeat"
"""Response header of every event stream: seconds between keepalives, so clients know how long
silence may last before the daemon counts as dead."""
DEFAULT_HEARTBEAT: Final = 15.0
SILENT_HEARTBEATS: Final = 3
"""An event stream silent for this many heartbeats means the daemon is dead (or frozen)."""


class Permission(StrEnum):
    """The remote-access switches; each names what an untrusted (token-holding) client may do."""

    REGISTER = "register"
    DEREGISTER = "deregister"
    START = "start"
    STOP = "stop"
    DISABLE = "disable"
    AUTOSTART = "autostart"
    MONITOR_RESTART = "monitor_restart"


class Access(StrEnum):
    """Who may call a route."""

    OPEN = "open"
    """No token: `/alive` and `/health`, how clients find a daemon."""
    TOKEN = "token"
    """The token, from any address (untrusted peers also need the route's remote-access permissions)."""
    TRUSTED = "trusted"
    """The token, from a trusted host only: the daemon itself and its security settings."""


class Param:
    """A query or path parameter, for the OpenAPI document."""

    __slots__ = ("name", "where", "schema", "description", "required")

    def __init__(self, name: str, where: str, schema: dict[str, Any], description: str,
                 required: bool = False) -> None:
        self.name = name
        self.where = where
        self.schema = schema
        self.description = description
        self.required = required or where == "path"


class Route:
    """One endpoint. `access` has no default: a route cannot be declared without saying who may call it."""

    __slots__ = ("name", "method", "path", "access", "permissions", "summary", "params", "body", "responses")

    def __init__(
        self,
        name: str,
        method: str,
        path: str,
        access: Access,
        summary: str,
        *,
        permissions: tuple[Permission, ...] = (),
        params: tuple[Param, ...] = (),
        body: str | None = None,
        responses: dict[int, str] | None = None,
    ) -> None:
        self.name = name
        self.method = method
        self.path = path
        self.access = access
        self.permissions = permissions
        """With `Access.TOKEN`: what a peer that is not a trusted host must be allowed in remote-access."""
        self.summary = summary
        self.params = params
        self.body = body
        """The schema name (in `openapi.SCHEMAS`) of the JSON request body, if the route takes one."""
        self.responses = responses or {}
        """Status -> schema name (`text` for text/plain, `events` for an SSE stream) of each success."""

    def __repr__(self) -> str:
        return f"Route({self.name!r}, {self.method} {self.path}, {self.access})"


_NAME = Param("name", "path", {"$ref": "#/components/schemas/ProcessName"}, "The process name.")
FLAG: Final = {"type": "string", "enum": ["0", "1", "true", "false", "yes", "no"]}
"""A yes/no query parameter (`1` and `0`, or the words)."""
_FACTS = Param("facts", "query", FLAG,
               "`0` skips CPU, memory and ports (sampled on demand, at most a second old); default `1`.")
P = Permission
A = Access

CONFIG_SECTIONS: Final = (
    "remote-access", "trusted-hosts", "executable-whitelist", "executable-blacklist",
    "standalone-mode", "partner-discovery",
)
"""The `/config/{section}` names (SPEC §6)."""

ROUTES: Final[tuple[Route, ...]] = (
    Route("alive", "GET", "/alive", A.OPEN, "Liveness: `OK` as text/plain.", responses={200: "text"}),
    Route("health", "GET", "/health", A.OPEN, "Who answers here: service, instance, version, pid, uptime, config.",
          responses={200: "Health"}),
    Route("openapi", "GET", "/openapi.json", A.TOKEN, "This document.", responses={200: "OpenApi"}),
    Route("status", "GET", "/status", A.TOKEN, "The daemon: pid, uptime, instance, counts by state, partner.",
          responses={200: "DaemonStatus"}),
    Route("metrics", "GET", "/metrics", A.TOKEN,
          "Prometheus text format: state, restarts, uptime, health, CPU and memory per process.",
          responses={200: "text"}),
    Route("events", "GET", "/events", A.TOKEN,
          "Server-Sent Events: a snapshot, then one `status` per change, `removed`, heartbeats.",
          params=(Param("facts", "query", FLAG,
                        "`1` streams live CPU, memory and ports too (sampled once a second while watched)."),),
          responses={200: "events"}),
    Route("monitor-reload", "POST", "/monitor/reload", A.TRUSTED, "Re-read the config file.",
          responses={200: "ReloadResult"}),
    Route("monitor-shutdown", "POST", "/monitor/shutdown", A.TRUSTED,
          "Stop the daemon (and, unless stop_on_exit = false, its processes).", responses={202: "Accepted"}),
    Route("monitor-restart", "POST", "/monitor/restart", A.TOKEN,
          "Re-execute the daemon; its processes are adopted, not restarted.",
          permissions=(P.MONITOR_RESTART,), responses={202: "Accepted"}),
    Route("processes", "GET", "/processes", A.TOKEN, "Every process's status, in declaration order.",
          params=(_FACTS,), responses={200: "ProcessList"}),
    Route("process-register", "POST", "/processes", A.TOKEN,
          "Register a process: the keys of a `[process.NAME]` table plus `name`; with `pid`, adopt a "
          "process someone else started (`command`, if given, is what restarts it once it exits).",
          permissions=(P.REGISTER,), body="Registration", responses={201: "ProcessStatus"}),
    Route("process-stop-many", "POST", "/processes/*/stop", A.TOKEN,
          "Stop several processes (or all, without a body), each after what depends on it.",
          permissions=(P.STOP,), body="StopMany", responses={200: "ProcessList"}),
    Route("process", "GET", "/processes/{name}", A.TOKEN, "One process's status, with its config.",
          params=(_NAME, _FACTS), responses={200: "ProcessDetail"}),
    Route("process-remove", "DELETE", "/processes/{name}", A.TOKEN, "Stop and deregister a process.",
          permissions=(P.DEREGISTER,), params=(_NAME,), responses={200: "Removed"}),
    Route("process-start", "POST", "/processes/{name}/start", A.TOKEN,
          "Start (a failed or retrying process: retry now, with a fresh failure count).",
          permissions=(P.START,), params=(_NAME,), responses={200: "ProcessStatus"}),
    Route("process-stop", "POST", "/processes/{name}/stop", A.TOKEN, "Stop the whole process group.",
          permissions=(P.STOP,), params=(_NAME,), responses={200: "ProcessStatus"}),
    Route("process-restart", "POST", "/processes/{name}/restart", A.TOKEN, "Stop, then start.",
          permissions=(P.START, P.STOP), params=(_NAME,), responses={200: "ProcessStatus"}),
    Route("process-enable", "POST", "/processes/{name}/enable", A.TOKEN,
          "Enable a disabled process (and start it, if it autostarts).",
          permissions=(P.DISABLE,), params=(_NAME,), responses={200: "ProcessStatus"}),
    Route("process-disable", "POST", "/processes/{name}/disable", A.TOKEN,
          "Stop the process; it will not start until enabled.",
          permissions=(P.DISABLE,), params=(_NAME,), responses={200: "ProcessStatus"}),
    Route("process-logs", "GET", "/processes/{name}/logs", A.TOKEN,
          "The tail of the current run's log; with `follow=1`, Server-Sent Events, one line each.",
          params=(
              _NAME,
              Param("stream", "query", {"type": "string", "enum": ["stdout", "stderr"]}, "Default `stdout`."),
              Param("lines", "query", {"type": "integer", "minimum": 0, "maximum": 100_000},
                    "How many lines of history (default 200; 10 when following)."),
              Param("follow", "query", FLAG, "`1`: keep streaming new lines."),
          ),
          responses={200: "Logs"}),
    Route("process-history", "GET", "/processes/{name}/history", A.TOKEN, "The last 20 runs.",
          params=(_NAME,), responses={200: "History"}),
    # -- the dev loop (SPEC §11) --
    Route("process-scale", "POST", "/processes/{name}/scale", A.TOKEN,
          "Run this many replicas of a `replicas` process: new ones start (if it runs), the highest stop first.",
          permissions=(P.START, P.STOP), params=(_NAME,), body="Scale", responses={200: "ScaleResult"}),
    Route("logs", "GET", "/logs", A.TOKEN,
          "Every process's output in the order it was written, each line with its time; with `follow=1`, "
          "Server-Sent Events, one line each.",
          params=(
              Param("names", "query", {"type": "string"},
                    "Comma-separated process names (a replicas process's name means all its replicas); "
                    "default: every process."),
              Param("lines", "query", {"type": "integer", "minimum": 0, "maximum": 100_000},
                    "How many lines (default 200; 10 when following)."),
              Param("grep", "query", {"type": "string"}, "Only lines this regular expression finds something in."),
              Param("since", "query", {"type": "string"},
                    'Only lines written since then: a duration back from now ("10m", "2h") or an ISO 8601 time.'),
              Param("follow", "query", FLAG, "`1`: keep streaming new lines."),
          ),
          responses={200: "MergedLogs"}),
    *(Route(f"config-get-{section}", "GET", f"/config/{section}", A.TOKEN, f"The {section} settings.",
            responses={200: f"Config-{section}"}) for section in CONFIG_SECTIONS),
    *(Route(f"config-put-{section}", "PUT", f"/config/{section}", A.TRUSTED,
            f"Change the {section} settings (keys left out keep their values); persisted, then in effect.",
            body=f"ConfigChange-{section}", responses={200: f"Config-{section}"}) for section in CONFIG_SECTIONS),
)
ROUTES_BY_NAME: Final[dict[str, Route]] = {route.name: route for route in ROUTES}



def routes_by_path() -> Iterator[tuple[str, list[Route]]]:
    """The routes grouped by path, in table order (an OpenAPI `paths` object is keyed so)."""
    grouped: dict[str, list[Route]] = {}
    for route in ROUTES:
        grouped.setdefault(route.path, []).append(route)
    yield from grouped.items()


# ------------------------------------------------------------------------------------ addresses

def process_path(name: str, *rest: str) -> str:
    """`/processes/<name>[/rest...]`, the name quoted whole (so `a/b` cannot reach another endpoint;
    `.` and `..`, which a URL would resolve away, cannot be names and get a 404 of their own)."""
    quoted = quote(name, safe="") if name not in (".", "..") else quote(name, safe="").replace(".", "%2E")
    return "/".join(("/processes", quoted, *rest))


# ----------------------------------------------------------------------------------- error bodies

def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """`{"error": {"code", "message", ...}}` (SPEC §6)."""
    return {"error": {"code": code, "message": message, **extra}}


def read_error_body(body: bytes) -> dict[str, Any] | None:
    """The `error` object of an error answer; None when the body is not pmtop's JSON error."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) or "message" not in error:
        return None
    return error


# ------------------------------------------------------------------------------ Server-Sent Events

def format_event(data: Any, event: str | None = None) -> bytes:
    """One SSE message; `data` as compact JSON, which never contains a line break."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventParser:
    """Server-Sent Events read line by line: `feed(line)` returns `(event, data)` when a message ends.

    Comments (`: keepalive`) only prove the daemon lives and yield nothing; a client counts every line,
    comments included, as a sign of life.
    """

    __slots__ = ("_event", "_data")

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        messages = self.feed_lines((line,))
        return messages[0] if messages else None

    def feed_lines(self, lines: Iterable[str]) -> list[tuple[str, str]]:
        """`feed` for many lines at once: the messages they end, in order. A daemon sends a burst of
        statuses in one write; read so, it costs one call rather than three a status."""
        messages: list[tuple[str, str]] = []
        event, data = self._event, self._data
        for line in lines:
            line = line.rstrip("\n").rstrip("\r")
            if not line:
                if data:
                    messages.append((event, "\n".join(data)))
                event, data = "message", []
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
        self._event, self._data = event, data
        return messages


def end_reason(data: str) -> str:
    """Why the server ended a stream (`event: end`, `{"reason": ...}`): `removed`, `shutdown`."""
    try:
        return str(json.loads(data).get("reason", ""))
    except (ValueError, AttributeError):
        return ""
