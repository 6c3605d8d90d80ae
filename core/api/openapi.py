"""`GET /openapi.json`: an OpenAPI 3.1 document of the API, generated from `protocol.ROUTES`.

The paths, methods, access rules and parameters come from the route table the server registers, and
the request and response bodies from the schemas below, so the document cannot describe an endpoint
the server does not have. The process-table schema is checked against the config loader's own keys
(`config_schema.FIELDS`) each time the document is built, so a new config key cannot be forgotten here.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from ..checks import COMMON_KEYS, KINDS
from ..config.schema import FIELDS
from ..locations import NAME_PATTERN
from ..model import (
    HOOK_EVENTS,
    DependencyCondition,
    EndReason,
    FailAction,
    Health,
    Overlap,
    ProcessState,
    RestartPolicy,
    Scope,
)
from ..version import __version__
from .protocol import CONFIG_SECTIONS, ROUTES, Access, Route, routes_by_path

JSON = dict[str, Any]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def _enum(kind: type[Any]) -> JSON:
    return {"type": "string", "enum": [member.value for member in kind]}


def _strings(**extra: Any) -> JSON:
    return {"type": "array", "items": {"type": "string"}, **extra}


def _obj(properties: JSON, *, required: tuple[str, ...] | None = None, extra: bool = False) -> JSON:
    """An object schema; by default every property is required and no other key is allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": extra,
    }


_DURATION: Final = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "minLength": 1}],
                    "description": 'Seconds, or a string with a unit: "250ms", "2s", "5m", "6h".'}
_SIZE: Final = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}],
                "description": 'Bytes, or "10KB", "10MB", "1GB".'}
_COMMAND: Final = {"anyOf": [_strings(minItems=1), {"type": "string", "minLength": 1}],
                   "description": "The argv, or one string split like a shell would (never run by one)."}

_STARTUP: Final = _obj({
    "initial_delay": _DURATION,
    "interval": _DURATION,
    "max_attempts": {"type": "integer", "minimum": 1},
    "fail_action": _enum(FailAction),
}, required=())
_HEALTH_COMMON: Final[JSON] = {
    "type": {"type": "string", "enum": list(KINDS)},
    "interval": _DURATION,
    "timeout": _DURATION,
    "failures": {"type": "integer", "minimum": 1},
    "startup": _STARTUP,
}
#: The `[health]` table: the common keys, and each kind's own (the check kinds say what theirs are).
_HEALTH: Final = _obj({**_HEALTH_COMMON, **{key: schema for kind in KINDS.values()
                                            for key, schema in kind.json_schema.items()}}, required=("type",))
assert set(_HEALTH_COMMON) == set(COMMON_KEYS)

_GLOBS: Final = {"anyOf": [_strings(minItems=1), {"type": "string", "minLength": 1}],
                 "description": 'Globs relative to the process folder ("src/**/*.py"), folders or files.'}
#: `hooks` of a process, and the global `[hooks]` table (SPEC §11).
HOOKS: Final = _obj({
    "on": {"type": "array", "items": {"type": "string", "enum": list(HOOK_EVENTS)}, "minItems": 1,
           "description": 'Default: ["crashed", "failed", "unhealthy", "recovered"].'},
    "command": {**_COMMAND, "description": "Run on each event (never through a shell); placeholders {name} "
                "{state} {reason} {pid} {exit_code} {event} {health} {instance}."},
    "url": {"type": "string", "pattern": "^https?://", "description": "POSTed the status JSON with `event`."},
    "timeout": _DURATION,
}, required=())

#: The keys of a `[process.NAME]` table (SPEC §2); `document()` checks them against the config loader's.
PROCESS_KEYS: Final[JSON] = {
    "command": _COMMAND,
    "cwd": {"type": "string"},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "autostart": {"type": "boolean"},
    "enabled": {"type": "boolean"},
    "depends_on": {"anyOf": [_strings(), {"type": "object", "additionalProperties": _enum(DependencyCondition)}]},
    "scope": _enum(Scope),
    "restart": _enum(RestartPolicy),
    "backoff": {"anyOf": [_DURATION, {"type": "array", "items": _DURATION, "minItems": 1}]},
    "max_restarts": {"type": "integer", "minimum": 0},
    "reset_after": _DURATION,
    "retry_forever": {"type": "boolean"},
    "retry_forever_interval": _DURATION,
    "stop_signal": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": '"TERM", "SIGINT", 15'},
    "stop_timeout": _DURATION,
    "log_max_bytes": _SIZE,
    "log_backups": {"type": "integer", "minimum": 0},
    "log_keep_runs": {"type": "integer", "minimum": 1},
    "health": _HEALTH,
    "ready_log_line": {"type": "string", "minLength": 1,
                       "description": "A regular expression: `starting` until a line of stdout or stderr matches."},
    "env_file": {"anyOf": [{"type": "string", "minLength": 1}, _strings(minItems=1)],
                 "description": "Dotenv files (relative to the config's folder), read when the config is "
                                "loaded; later files and `env` win."},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535,
             "description": "The TCP port it is meant to listen on: checked free before each start."},
    # -- the dev loop (issue 12) --
    "schedule": {"type": "string", "minLength": 1,
                 "description": 'A 5-field cron expression in local time ("*/5 * * * *", "@daily") or "every 30s".'},
    "overlap": _enum(Overlap),
    "run_on_start": {"type": "boolean"},
    "catch_up": {"type": "boolean"},
    "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
    "watch": {"anyOf": [_GLOBS, _obj({
        "paths": _GLOBS,
        "ignore": {"anyOf": [_strings(), {"type": "string"}]},
        "debounce": _DURATION,
        "cascade": {"type": "boolean"},
    }, required=("paths",))]},
    "hooks": HOOKS,
}

_STATUS_FIELDS: Final[JSON] = {
    "name": _ref("ProcessName"),
    "state": _enum(ProcessState),
    "reason": {"type": "string"},
    "pid": _nullable({"type": "integer"}),
    "ports": {"type": "array", "items": {"type": "integer"}},
    "health": _enum(Health),
    "restarts": {"type": "integer", "minimum": 0},
    "consecutive_failures": {"type": "integer", "minimum": 0},
    "exit_code": _nullable({"type": "integer"}),
    "started_at": _nullable({"type": "number"}),
    "next_retry_at": _nullable({"type": "number"}),
    "cpu_percent": _nullable({"type": "number"}),
    "memory_rss": _nullable({"type": "integer"}),
    "scope": _enum(Scope),
    "command": _strings(),
    "port": _nullable({"type": "integer", "minimum": 1, "maximum": 65535}),
    # -- the dev loop (issue 12) --
    "next_run_at": _nullable({"type": "number"}),
    "group": _nullable(_ref("ProcessName")),
    "watching": {"type": "boolean"},
    "hook_error": _nullable({"type": "string"}),
}

_LOG_LINE: Final = _obj({
    "time": {"type": "number"},
    "name": {"type": "string"},
    "stream": {"type": "string", "enum": ["stdout", "stderr", ""]},
    "line": {"type": "string"},
})

_DAEMON_FIELDS: Final[JSON] = {
    "version": {"type": "string"},
    "instance": {"type": "string"},
    "host": {"type": "string"},
    "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "pid": {"type": "integer"},
    "uptime": {"type": "number"},
    "started_at": {"type": "number"},
    "config": _nullable({"type": "string"}),
}

_HEALTH_ANSWER: Final = _obj({
    "status": {"const": "running"},
    "service": {"const": "pmtop"},
    **_DAEMON_FIELDS,
}, required=("status", "service", "version", "instance", "pid", "uptime"), extra=True)

_SECTIONS: Final[dict[str, JSON]] = {
    "remote-access": _obj({key: {"type": "boolean"} for key in (
        "register", "deregister", "start", "stop", "disable", "autostart", "monitor_restart")}),
    "trusted-hosts": _obj({"hosts": _strings()}),
    "executable-whitelist": _obj({"patterns": _strings()}),
    "executable-blacklist": _obj({"patterns": _strings()}),
    "standalone-mode": _obj({"enabled": {"type": "boolean"}}),
    "partner-discovery": _obj({
        "enabled": {"type": "boolean"},
        "partner": _nullable(_obj({
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "instance": _ref("ProcessName"),
        })),
    }),
}

SCHEMAS: Final[dict[str, JSON]] = {
    "ProcessName": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"},
    "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}},
                                 extra=True)}),
    "Health": _HEALTH_ANSWER,
    "DaemonStatus": _obj({
        **_DAEMON_FIELDS,
        "counts": _obj({s.value: {"type": "integer", "minimum": 0} for s in ProcessState}),
        "processes": {"type": "integer", "minimum": 0},
        "read_only": {"type": "boolean"},
        "adopted": _strings(),
        "stop_on_exit": {"type": "boolean"},
        "partner": _nullable({"type": "object"}),
    }, required=("version", "instance", "pid", "uptime", "counts", "processes", "read_only"), extra=True),
    "ProcessStatus": _obj(_STATUS_FIELDS),
    "ProcessList": _obj({"processes": {"type": "array", "items": _ref("ProcessStatus")}}),
    "ProcessDetail": _obj({
        **_STATUS_FIELDS,
        "config": _obj(PROCESS_KEYS, required=()),  # no command: adopted by PID without one
        "project": _nullable({"type": "string"}),
        "session_pid": _nullable({"type": "integer"}),
        "replica": _nullable({"type": "integer", "minimum": 1}),
    }),
    "Registration": _obj({
        "name": _ref("ProcessName"),
        **PROCESS_KEYS,
        "start": {"type": "boolean", "description": "Start it now (if it autostarts); default true."},
        "session_pid": {"type": "integer", "minimum": 1,
                        "description": "A session process: stopped and removed when this PID exits."},
        "project": {"type": "string", "description": "The absolute folder of a project process."},
        "pid": {"type": "integer", "minimum": 2,
                "description": "Adopt this running process (the owner's own) instead of starting one; then "
                               "`command` is optional: what the restart policy runs once it has exited."},
    }, required=("name",)),
    "StopMany": _obj({"names": {"type": "array", "items": _ref("ProcessName")}}),
    "Removed": _obj({"removed": _ref("ProcessName")}),
    "Logs": _obj({"name": _ref("ProcessName"), "stream": {"type": "string", "enum": ["stdout", "stderr"]},
                  "lines": _strings()}),
    "RunRecord": _obj({
        "pid": _nullable({"type": "integer"}),
        "started_at": {"type": "number"},
        "ended_at": {"type": "number"},
        "duration": {"type": "number"},
        "exit_code": _nullable({"type": "integer"}),
        "signal": _nullable({"type": "string"}),
        "end_reason": _enum(EndReason),
        "stderr_tail": _strings(),
    }),
    "History": _obj({"name": _ref("ProcessName"), "runs": {"type": "array", "items": _ref("RunRecord")}}),
    "Scale": _obj({"replicas": {"type": "integer", "minimum": 0, "maximum": 1000}}),
    "ScaleResult": _obj({"name": _ref("ProcessName"), "replicas": {"type": "integer", "minimum": 0},
                         "processes": {"type": "array", "items": _ref("ProcessStatus")}}),
    "LogLine": _LOG_LINE,
    "MergedLogs": _obj({"lines": {"type": "array", "items": _ref("LogLine")}}),
    "ReloadResult": _obj({"added": _strings(), "changed": _strings(), "removed": _strings()}),
    "Accepted": _obj({"ok": {"const": True}}),
    "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
    **{f"Config-{section}": schema for section, schema in _SECTIONS.items()},
    **{f"ConfigChange-{section}": {**schema, "required": []} for section, schema in _SECTIONS.items()},
}

_TEXT: Final = {"text/plain": {"schema": {"type": "string"}}}
_EVENTS: Final = {"text/event-stream": {"schema": {"type": "string"}}}
_ERROR_WORDS: Final = {
    400: "The request is malformed (a bad query value, a body that is not a JSON object).",
    401: "No token, or the wrong one (`Authorization: Bearer <token>`).",
    403: "Refused: a foreign Host header, read-only mode, or not permitted from an untrusted host.",
    404: "No such process (or endpoint).",
    409: "The action makes no sense in the process's state, or the name is taken.",
    413: "The body exceeds 1 MiB.",
    422: "The body is well-formed JSON but not a valid registration or setting.",
    503: "The supervisor is unavailable.",
}


def _content(schema_name: str, route: Route) -> JSON:
    if schema_name == "text":
        return _TEXT
    if schema_name == "events":
        return _EVENTS
    content: JSON = {"application/json": {"schema": _ref(schema_name)}}
    if route.name in ("process-logs", "logs"):  # `follow=1` turns the answer into an event stream
        content.update(_EVENTS)
    return content


def _error_statuses(route: Route) -> list[int]:
    statuses = [403]
    if route.access is not Access.OPEN:
        statuses.append(401)
    if route.params or route.body:
        statuses.append(400)
    if any(p.where == "path" and p.name == "name" for p in route.params) or route.name in ("process-stop-many", "logs"):
        statuses.append(404)
    if route.body:
        statuses += [413, 422]
    if route.method in ("POST", "DELETE") and route.path.startswith("/processes"):
        statuses += [409, 422]
    return sorted(set(statuses))


def _operation(route: Route) -> JSON:
    security: list[JSON] = [] if route.access is Access.OPEN else [{"bearer": []}]
    access = {
        Access.OPEN: "Open: no token.",
        Access.TOKEN: "The token.",
        Access.TRUSTED: "The token, from a trusted host.",
    }[route.access]
    if route.permissions:
        access += " From an untrusted host, also remote-access " + ", ".join(p.value for p in route.permissions) + "."
    responses: JSON = {
        str(status): {"description": "OK" if status < 300 else "Accepted", "content": _content(name, route)}
        for status, name in route.responses.items()
    }
    if route.name == "process-register":  # what a client does next with the process it registered
        responses["201"]["links"] = {
            f"then {other.name}": {"operationId": other.name, "parameters": {"name": "$response.body#/name"}}
            for other in ROUTES if "{name}" in other.path
        }
    for status in _error_statuses(route):
        responses[str(status)] = {"description": _ERROR_WORDS[status], "content": {
            "application/json": {"schema": _ref("Error")}}}
    operation: JSON = {
        "operationId": route.name,
        "summary": route.summary,
        "description": f"Access: {access}",
        "security": security,
        "responses": responses,
    }
    if route.params:
        operation["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required, "description": p.description, "schema": p.schema}
            for p in route.params
        ]
    if route.body:
        operation["requestBody"] = {
            "required": route.name != "process-stop-many",
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    return operation


@functools.cache
def document() -> JSON:
    """The whole OpenAPI 3.1 document (built once; it depends on nothing that changes at run time)."""
    missing = set(FIELDS) ^ set(PROCESS_KEYS)
    if missing:
        raise AssertionError(f"openapi.PROCESS_KEYS and the config keys differ: {sorted(missing)}")
    paths: JSON = {}
    for path, routes in routes_by_path():
        paths[path] = {route.method.lower(): _operation(route) for route in routes}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pmtop",
            "version": __version__,
            "description": "The HTTP API of a pmtop daemon (SPEC §6). Every endpoint but GET /alive and "
                           "GET /health needs `Authorization: Bearer <token>`; `pmtop token` prints it.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


assert {route.body for route in ROUTES if route.body} <= set(SCHEMAS)
assert len(CONFIG_SECTIONS) == len(_SECTIONS)
