"""Errors pmtop raises on purpose. Each carries a stable `code` that the API and CLI print.

    PmtopError
    ├── ConfigError            a config file or a spec is invalid (file, key path, line, column)
    ├── NoSuchProcess          no process of that name
    ├── ProcessExists          a process of that name is already registered
    ├── IllegalTransition      a state change the state machine does not allow (a bug if it escapes)
    ├── ActionRefused          the action makes no sense in the current state, or is not permitted
    ├── PortInUse              the API port is held by another program
    ├── InstanceLocked         another supervisor holds this instance's lock
    ├── DaemonUnavailable      no daemon answers (client side)
    └── ApiError               the daemon refused with an error no class above names (client side)

Errors are mapped to exit codes or HTTP statuses once, at the edge (cli, api); core code only raises.
"""

from __future__ import annotations


class PmtopError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PmtopError):
    """Renders as the spec's one line: `pmtop.toml:12:5: process.web.restart: ...`."""

    code = "config_invalid"

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


class NoSuchProcess(PmtopError):
    code = "no_such_process"

    def __init__(self, name: str) -> None:
        super().__init__(f"no process named {name!r}")
        self.name = name


class ProcessExists(PmtopError):
    code = "process_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"a process named {name!r} already exists")
        self.name = name


class IllegalTransition(PmtopError):
    code = "illegal_transition"

    def __init__(self, name: str, old: str, new: str) -> None:
        super().__init__(f"{name}: illegal state change {old} -> {new}")


class ActionRefused(PmtopError):
    code = "action_refused"


class PortInUse(PmtopError):
    code = "port_in_use"


class InstanceLocked(PmtopError):
    code = "instance_locked"


class DaemonUnavailable(PmtopError):
    code = "daemon_unavailable"


class ApiError(PmtopError):
    """An error answer with no more specific `PmtopError` (400, 401, 403, ...); `code` is the server's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
