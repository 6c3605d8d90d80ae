"""Errors pmtop raises on purpose. Each carries a stable `code` and the HTTP `status` the API answers with.

    PmtopError
    ├── ConfigError            a config file or a spec is invalid (file, key path, line, column)   422
    │   └── Invalid            the same, found inside the config rules, before the file is known
    ├── UsageError             the command line is wrong (exit code 2)                              400
    ├── NoSuchProcess          no process of that name                                              404
    ├── ProcessExists          a process of that name is already registered                         409
    ├── IllegalTransition      a state change the state machine does not allow (a bug if it escapes)
    ├── ActionRefused          the action makes no sense in the current state                       409
    ├── SpawnError             the command could not be started at all (missing, not executable)
    ├── PortInUse              the API port is held by another program
    ├── InstanceLocked         another supervisor holds this instance's lock
    ├── ApiRefusal             the API itself refuses: no token, not permitted, malformed request   4xx
    ├── DaemonUnavailable      no daemon answers (client side)                                      503
    │   └── ProtocolError      what answers does not speak pmtop's HTTP (client side)
    └── ApiError               the daemon refused with an error no class above names (client side)

Errors are mapped once, at each edge: the API server answers `to_wire(exc)` with `exc.status`, the
clients rebuild the same class with `from_wire`, and the CLI turns each into one line and an exit code.
Core code only raises. Standard library only: the CLI's light client imports this on `pmtop ps`'s path.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class PmtopError(Exception):
    code = "error"
    status = 400
    """The HTTP status the API answers with when this reaches it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def wire_extra(self) -> dict[str, Any]:
        """What the JSON error body carries beside code and message, for a client to rebuild this."""
        return {}


class ConfigError(PmtopError):
    """Renders as the spec's one line: `pmtop.toml:12:5: process.web.restart: ...`."""

    code = "config_invalid"
    status = 422

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.key_path = key_path
        self.line = line
        self.column = column
        self.detail = message
        where = file or ""
        if file and line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        parts = [p for p in (where, key_path) if p]
        super().__init__(": ".join([*parts, message]))

    def wire_extra(self) -> dict[str, Any]:
        return {"detail": self.detail, "file": self.file, "key_path": self.key_path, "line": self.line,
                "column": self.column}


class Invalid(ConfigError):
    """A problem at a key path, found by a rule that does not know the file; `to_error` adds it (and
    the line) once known. The path is a tuple, so callers can look the key up in the TOML text."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message, key_path=format_key_path(path) or None)
        self.path = path

    def to_error(self, file: str | None, line: int | None = None) -> ConfigError:
        return ConfigError(self.detail, file=file, key_path=self.key_path, line=line)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_key_path(path: tuple[str, ...] | list[str]) -> str:
    """TOML dotted-key spelling: `process.web.restart`, `process."web.v2".env`."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p, ensure_ascii=False) for p in path)


class UsageError(PmtopError):
    """A bad command line that argparse cannot catch (exit code 2)."""

    code = "usage"


class NoSuchProcess(PmtopError):
    code = "no_such_process"
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no process named {name!r}")
        self.name = name

    def wire_extra(self) -> dict[str, Any]:
        return {"name": self.name}


class ProcessExists(PmtopError):
    code = "process_exists"
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"a process named {name!r} already exists")
        self.name = name

    def wire_extra(self) -> dict[str, Any]:
        return {"name": self.name}


class IllegalTransition(PmtopError):
    code = "illegal_transition"
    status = 500

    def __init__(self, name: str, old: str, new: str) -> None:
        super().__init__(f"{name}: illegal state change {old} -> {new}")


class ActionRefused(PmtopError):
    code = "action_refused"
    status = 409


class SpawnError(PmtopError):
    """The command could not be started at all (missing, not executable, bad cwd): a finding about
    the process, shown in its reason, never an error of the supervisor."""

    code = "spawn_failed"


class PortInUse(PmtopError):
    code = "port_in_use"


class InstanceLocked(PmtopError):
    code = "instance_locked"


class ApiRefusal(PmtopError):
    """The API itself refuses a request (no token, a foreign Host, not permitted, malformed)."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})


class DaemonUnavailable(PmtopError):
    code = "daemon_unavailable"
    status = 503


class ProtocolError(DaemonUnavailable):
    """What answers does not speak the HTTP pmtop's clients expect (or broke off mid-answer)."""

    code = "protocol_error"


class ApiError(PmtopError):
    """An error answer with no more specific `PmtopError` (400, 401, 403, ...); `code` is the server's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def to_wire(exc: PmtopError) -> dict[str, Any]:
    """The JSON error body of SPEC §6: `{"error": {"code", "message", ...}}`."""
    return {"error": {"code": exc.code, "message": exc.message, **exc.wire_extra()}}


def from_wire(status: int, error: Mapping[str, Any]) -> PmtopError:
    """The `PmtopError` a server raised, rebuilt from the `error` object of its answer."""
    code, message = str(error.get("code", "http_error")), str(error.get("message", f"HTTP {status}"))
    name = error.get("name")
    if code == NoSuchProcess.code and isinstance(name, str):
        return NoSuchProcess(name)
    if code == ProcessExists.code and isinstance(name, str):
        return ProcessExists(name)
    if code == ActionRefused.code:
        return ActionRefused(message)
    if code == ConfigError.code:
        if "detail" not in error:
            return ConfigError(message)
        return ConfigError(str(error["detail"]), file=error.get("file"), key_path=error.get("key_path"),
                           line=error.get("line"), column=error.get("column"))
    if code == DaemonUnavailable.code:
        return DaemonUnavailable(message)
    return ApiError(status, code, message)
