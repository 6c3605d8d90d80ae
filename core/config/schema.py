"""The rules for one `[process.NAME]` table, shared by `pmtop.toml`, `pmtop add` and the HTTP API.

One set of rules, so a process registered at run time is checked exactly like one in the file. Every
value is checked for type and range, every unknown key is refused (a typo such as `restrat` must never
pass silently), and every problem is reported at its key path (`process.web.restart`). Inside this
module problems are `Invalid` exceptions carrying the path as a tuple; the public functions turn them
into `ConfigError`s once the file (and, in `config.load_config`, the line) is known.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import signal
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from ..values import format_duration, format_signal, format_size, parse_duration, parse_signal, parse_size
from ..errors import ConfigError
from ..model import (
    DependencyCondition,
    FailAction,
    HealthCheckType,
    HealthSpec,
    LogSpec,
    ProcessSpec,
    RestartPolicy,
    RestartSpec,
    Scope,
    StartupCheck,
)

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE: Final = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"

KeyPath = tuple[str, ...]
E = TypeVar("E", bound=StrEnum)


class Invalid(Exception):
    """A problem at a key path; becomes a `ConfigError` once the file (and line) are known."""

    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(f"{format_key_path(path)}: {message}")
        self.path = path
        self.message = message

    def to_error(self, file: str | None, line: int | None = None) -> ConfigError:
        return ConfigError(self.message, file=file, key_path=format_key_path(self.path) or None, line=line)


_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def format_key_path(path: Iterable[str]) -> str:
    """TOML dotted-key spelling: `process.web.restart`, `process."web.v2".env`."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p, ensure_ascii=False) for p in path)


def show(value: object) -> str:
    """A value as the user wrote it in TOML, short enough for a one-line message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return repr(value)


# ------------------------------------------------------------------------------------ basic checks

def check_keys(table: Mapping[str, Any], path: KeyPath, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            elif len(allowed) <= 8:
                hint = " (expected one of: " + ", ".join(allowed) + ")"
            else:
                hint = ""
            raise Invalid((*path, key), "unknown key" + hint)


def want_table(value: object, path: KeyPath) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(path, f"must be a table (got {show(value)})")
    return value


def want_str(value: object, path: KeyPath, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(path, f"must be a string (got {show(value)})")
    if not empty and not value.strip():
        raise Invalid(path, "must not be empty")
    if "\0" in value:
        raise Invalid(path, f"must not contain a NUL character (got {show(value)})")
    return value


def want_bool(value: object, path: KeyPath) -> bool:
    if not isinstance(value, bool):
        raise Invalid(path, f"must be true or false (got {show(value)})")
    return value


def want_int(value: object, path: KeyPath, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= minimum and (maximum is None or value <= maximum):
            return value
    rule = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    raise Invalid(path, f"must be an integer {rule} (got {show(value)})")


def want_enum(value: object, path: KeyPath, kind: type[E]) -> E:
    choices = [member.value for member in kind]
    if isinstance(value, str) and value in choices:
        return kind(value)
    listed = ", ".join(f'"{c}"' for c in choices)
    raise Invalid(path, f"must be one of {listed} (got {show(value)})")


def want_duration(value: object, path: KeyPath, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None
    if positive and seconds == 0:
        raise Invalid(path, f"must be longer than 0 (got {show(value)})")
    return seconds


def want_size(value: object, path: KeyPath) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None


def want_command(value: object, path: KeyPath) -> tuple[str, ...]:
    """A list of strings, or one string split like a shell would (but never run by one)."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise Invalid(path, f"cannot split {show(value)} ({str(exc).lower()})") from None
    elif isinstance(value, list | tuple):
        words = list(value)
        for word in words:
            if not isinstance(word, str):
                raise Invalid(path, f"must be an array of strings (found {show(word)})")
    else:
        raise Invalid(path, f"must be an array of strings or a string (got {show(value)})")
    if not words or not words[0]:
        raise Invalid(path, "must not be empty (it needs at least the program to run)")
    return tuple(want_str(word, path, empty=True) for word in words)


# ------------------------------------------------------------------------------------ process keys

def _env(value: object, path: KeyPath) -> dict[str, str]:
    table = want_table(value, path)
    env: dict[str, str] = {}
    for key, item in table.items():
        if not key or "=" in key or "\0" in key:
            raise Invalid((*path, key), "is not a valid environment variable name")
        env[key] = want_str(item, (*path, key), empty=True)
    return env


def _depends_on(value: object, path: KeyPath) -> dict[str, DependencyCondition]:
    if isinstance(value, list | tuple):
        names = [want_str(item, path) for item in value]
        return {name: DependencyCondition.STARTED for name in names}
    if isinstance(value, Mapping):
        return {name: want_enum(cond, (*path, name), DependencyCondition) for name, cond in value.items()}
    raise Invalid(path, f"must be an array of process names or a table of name = condition (got {show(value)})")


def _backoff(value: object, path: KeyPath) -> tuple[float, ...]:
    if isinstance(value, list | tuple):
        if not value:
            raise Invalid(path, "must not be empty")
        return tuple(want_duration(item, path) for item in value)
    return (want_duration(value, path),)


_HEALTH_TARGET: Final = {
    HealthCheckType.HTTP: ("url", 'url = "http://host:port/path"'),
    HealthCheckType.TCP: ("address", 'address = "host:port"'),
    HealthCheckType.EXEC: ("command", "command = [...]"),
}
_HEALTH_KEYS: Final = ("type", "url", "address", "command", "interval", "timeout", "failures", "startup")
_STARTUP_KEYS: Final = ("initial_delay", "interval", "max_attempts", "fail_action")


def _url(value: object, path: KeyPath) -> str:
    url = want_str(value, path)
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok and (parts.port is None or parts.port > 0)
    except ValueError:
        ok = False
    if not ok:
        raise Invalid(path, f"must be an http:// or https:// URL (got {show(value)})")
    return url


def _address(value: object, path: KeyPath) -> str:
    address = want_str(value, path)
    match = re.fullmatch(r"\[([^\[\]]+)\]:(\d+)|([^:\[\]\s]+):(\d+)", address)
    if match is None:
        raise Invalid(path, f'must be "host:port" (or "[ipv6]:port") (got {show(value)})')
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise Invalid(path, f"port must be from 1 to 65535 (got {show(value)})")
    return address


def _startup(value: object, path: KeyPath) -> StartupCheck:
    table = want_table(value, path)
    check_keys(table, path, _STARTUP_KEYS)
    base = StartupCheck()
    return StartupCheck(
        initial_delay=want_duration(table.get("initial_delay", base.initial_delay), (*path, "initial_delay")),
        interval=want_duration(table.get("interval", base.interval), (*path, "interval"), positive=True),
        max_attempts=want_int(table.get("max_attempts", base.max_attempts), (*path, "max_attempts"), 1),
        fail_action=want_enum(table.get("fail_action", base.fail_action.value), (*path, "fail_action"), FailAction),
    )


def _health(value: object, path: KeyPath) -> HealthSpec:
    table = want_table(value, path)
    check_keys(table, path, _HEALTH_KEYS)
    if "type" not in table:
        raise Invalid((*path, "type"), 'missing (one of "http", "tcp", "exec")')
    kind = want_enum(table["type"], (*path, "type"), HealthCheckType)
    target, example = _HEALTH_TARGET[kind]
    for key, _ in _HEALTH_TARGET.values():
        if key in table and key != target:
            raise Invalid((*path, key), f'not used by a "{kind}" check (it takes {example})')
    if target not in table:
        raise Invalid((*path, target), f'missing (a "{kind}" check needs {example})')
    raw = table[target]
    base = HealthSpec(type=kind)
    return HealthSpec(
        type=kind,
        url=_url(raw, (*path, target)) if kind is HealthCheckType.HTTP else None,
        address=_address(raw, (*path, target)) if kind is HealthCheckType.TCP else None,
        command=want_command(raw, (*path, target)) if kind is HealthCheckType.EXEC else (),
        interval=want_duration(table.get("interval", base.interval), (*path, "interval"), positive=True),
        timeout=want_duration(table.get("timeout", base.timeout), (*path, "timeout"), positive=True),
        failures=want_int(table.get("failures", base.failures), (*path, "failures"), 1),
        startup=_startup(table["startup"], (*path, "startup")) if "startup" in table else None,
    )


def _signal(value: object, path: KeyPath) -> signal.Signals:
    try:
        return parse_signal(value)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None


Parser = Callable[[Any, KeyPath], Any]
MAX_LOG_BACKUPS: Final = 1000
MAX_KEEP_RUNS: Final = 10_000

#: Every key of a process table and the function that checks and converts its value.
FIELDS: Final[dict[str, Parser]] = {
    "command": want_command,
    "cwd": want_str,
    "env": _env,
    "autostart": want_bool,
    "enabled": want_bool,
    "depends_on": _depends_on,
    "scope": lambda v, p: want_enum(v, p, Scope),
    "restart": lambda v, p: want_enum(v, p, RestartPolicy),
    "backoff": _backoff,
    "max_restarts": lambda v, p: want_int(v, p, 0),
    "reset_after": want_duration,
    "retry_forever": want_bool,
    "retry_forever_interval": lambda v, p: want_duration(v, p, positive=True),
    "stop_signal": _signal,
    "stop_timeout": want_duration,
    "log_max_bytes": want_size,
    # Bounded: each rotation renames every backup, each run start prunes the folders beyond.
    "log_backups": lambda v, p: want_int(v, p, 0, MAX_LOG_BACKUPS),
    "log_keep_runs": lambda v, p: want_int(v, p, 1, MAX_KEEP_RUNS),
    "health": _health,
}
#: The keys `[defaults]` may set; the rest only make sense per process.
_SPEC_DEFAULTS: Final = ProcessSpec(name="-", command=("-",))
DEFAULTABLE: Final = frozenset({
    "restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval",
    "stop_signal", "stop_timeout", "log_max_bytes", "log_backups", "log_keep_runs", "env", "cwd",
    "autostart", "scope",
})


def check_defaults(defaults: Mapping[str, Any], path: KeyPath = ("defaults",)) -> dict[str, Any]:
    """Validate a `[defaults]` table; returns its converted values."""
    table = want_table(defaults, path)
    parsed: dict[str, Any] = {}
    for key, raw in table.items():
        if key in FIELDS and key not in DEFAULTABLE:
            raise Invalid((*path, key), "cannot be a default (set it in each [process.NAME] table)")
        check_keys({key: raw}, path, sorted(DEFAULTABLE))
        parsed[key] = FIELDS[key](raw, (*path, key))
    return parsed


def build_process(
    name: str, table: object, defaults: Mapping[str, Any], base_dir: Path
) -> ProcessSpec:
    """`parse_process` without the conversion to `ConfigError` (raises `Invalid`)."""
    path: KeyPath = ("process", name)
    if not NAME_PATTERN.fullmatch(name):
        raise Invalid(path, f"invalid process name ({NAME_RULE})")
    table = want_table(table, path)
    check_keys(table, path, FIELDS)
    values = check_defaults(defaults)
    for key, raw in table.items():
        parsed = FIELDS[key](raw, (*path, key))
        values[key] = {**values[key], **parsed} if key == "env" and "env" in values else parsed
    if "command" not in values:
        raise Invalid((*path, "command"), "missing (every process needs a command)")
    depends_on = values.get("depends_on", {})
    if name in depends_on:
        raise Invalid((*path, "depends_on"), f"{name} cannot depend on itself")

    base = os.path.abspath(base_dir)
    cwd = os.path.normpath(os.path.join(base, os.path.expanduser(values.get("cwd", "."))))
    scope: Scope = values.get("scope", Scope.PROJECT)
    restart, logs = RestartSpec(), LogSpec()
    return ProcessSpec(
        name=name,
        command=values["command"],
        cwd=cwd,
        env=values.get("env", {}),
        autostart=values.get("autostart", True),
        enabled=values.get("enabled", True),
        depends_on=depends_on,
        scope=scope,
        project=base if scope is Scope.PROJECT else None,
        restart=RestartSpec(
            policy=values.get("restart", restart.policy),
            backoff=values.get("backoff", restart.backoff),
            max_restarts=values.get("max_restarts", restart.max_restarts),
            reset_after=values.get("reset_after", restart.reset_after),
            retry_forever=values.get("retry_forever", restart.retry_forever),
            retry_forever_interval=values.get("retry_forever_interval", restart.retry_forever_interval),
        ),
        stop_signal=values.get("stop_signal", _SPEC_DEFAULTS.stop_signal),
        stop_timeout=values.get("stop_timeout", _SPEC_DEFAULTS.stop_timeout),
        logs=LogSpec(
            max_bytes=values.get("log_max_bytes", logs.max_bytes),
            backups=values.get("log_backups", logs.backups),
            keep_runs=values.get("log_keep_runs", logs.keep_runs),
        ),
        health=values.get("health"),
    )


def parse_process(
    name: str,
    table: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    base_dir: Path,
    file: str | None = None,
) -> ProcessSpec:
    """Validate one process table (as in `[process.NAME]`) and build its spec.

    `defaults` is a raw `[defaults]` table (inherited; `env` tables are merged, the process wins);
    `base_dir` is the folder relative `cwd`s are resolved against, and the `project` of a project-scoped
    process. Raises `ConfigError` naming `process.<name>.<key>` (and `file`, if given). Dependencies are
    only checked for shape and self-reference here; whether they exist is the caller's business.
    """
    try:
        return build_process(name, table, defaults or {}, base_dir)
    except Invalid as problem:
        raise problem.to_error(file) from None


# ---------------------------------------------------------------------------------------- write back

def _health_to_table(health: HealthSpec) -> dict[str, Any]:
    base = HealthSpec(type=health.type)
    table: dict[str, Any] = {"type": health.type.value}
    if health.type is HealthCheckType.HTTP:
        table["url"] = health.url
    elif health.type is HealthCheckType.TCP:
        table["address"] = health.address
    else:
        table["command"] = list(health.command)
    if health.interval != base.interval:
        table["interval"] = format_duration(health.interval)
    if health.timeout != base.timeout:
        table["timeout"] = format_duration(health.timeout)
    if health.failures != base.failures:
        table["failures"] = health.failures
    if health.startup is not None:
        startup, default = health.startup, StartupCheck()
        table["startup"] = {
            key: value
            for key, value, skip in (
                ("initial_delay", format_duration(startup.initial_delay), startup.initial_delay == default.initial_delay),
                ("interval", format_duration(startup.interval), startup.interval == default.interval),
                ("max_attempts", startup.max_attempts, startup.max_attempts == default.max_attempts),
                ("fail_action", startup.fail_action.value, startup.fail_action == default.fail_action),
            )
            if not skip
        }
    return table


def spec_to_table(spec: ProcessSpec, *, base_dir: Path | None = None) -> dict[str, Any]:
    """A TOML-able `[process.NAME]` table (for tomli-w) that `parse_process` reads back to `spec`.

    Values equal to the built-in defaults are left out. With `base_dir`, a `cwd` inside it is written
    relative to it (and left out when it is `base_dir` itself). `project` and `session_pid` are not
    config keys and are not written: `parse_process` derives `project` from its `base_dir`.
    """
    table: dict[str, Any] = {"command": list(spec.command)}
    if spec.cwd is not None:
        cwd: str | None = spec.cwd
        if base_dir is not None and os.path.isabs(spec.cwd):
            relative = os.path.relpath(spec.cwd, os.path.abspath(base_dir))
            if relative == ".":
                cwd = None
            elif relative != ".." and not relative.startswith(".." + os.sep):
                cwd = relative if not relative.startswith("~") else os.path.join(".", relative)
        if cwd is not None:
            table["cwd"] = cwd
    if spec.env:
        table["env"] = dict(spec.env)
    if not spec.autostart:
        table["autostart"] = False
    if not spec.enabled:
        table["enabled"] = False
    if spec.depends_on:
        if all(cond is DependencyCondition.STARTED for cond in spec.depends_on.values()):
            table["depends_on"] = list(spec.depends_on)
        else:
            table["depends_on"] = {name: cond.value for name, cond in spec.depends_on.items()}
    if spec.scope is not Scope.PROJECT:
        table["scope"] = spec.scope.value
    restart, default = spec.restart, RestartSpec()
    if restart.policy is not default.policy:
        table["restart"] = restart.policy.value
    if restart.backoff != default.backoff:
        table["backoff"] = [format_duration(delay) for delay in restart.backoff]
    if restart.max_restarts != default.max_restarts:
        table["max_restarts"] = restart.max_restarts
    if restart.reset_after != default.reset_after:
        table["reset_after"] = format_duration(restart.reset_after)
    if restart.retry_forever != default.retry_forever:
        table["retry_forever"] = restart.retry_forever
    if restart.retry_forever_interval != default.retry_forever_interval:
        table["retry_forever_interval"] = format_duration(restart.retry_forever_interval)
    if spec.stop_signal != _SPEC_DEFAULTS.stop_signal:
        table["stop_signal"] = format_signal(spec.stop_signal)
    if spec.stop_timeout != _SPEC_DEFAULTS.stop_timeout:
        table["stop_timeout"] = format_duration(spec.stop_timeout)
    logs = LogSpec()
    if spec.logs.max_bytes != logs.max_bytes:
        table["log_max_bytes"] = format_size(spec.logs.max_bytes)
    if spec.logs.backups != logs.backups:
        table["log_backups"] = spec.logs.backups
    if spec.logs.keep_runs != logs.keep_runs:
        table["log_keep_runs"] = spec.logs.keep_runs
    if spec.health is not None:
        table["health"] = _health_to_table(spec.health)
    return table
