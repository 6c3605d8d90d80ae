"""The rules for one `[process.NAME]` table, shared by `pmtop.toml`, `pmtop add` and the HTTP API.

One set of rules, so a process registered at run time is checked exactly like one in the file. Every
value is checked for type and range, every unknown key is refused (a typo such as `restrat` must never
pass silently), and every problem is reported at its key path (`process.web.restart`). Inside this
module problems are `Invalid` exceptions carrying the path as a tuple; the public functions turn them
into `ConfigError`s once the file (and, in `config.load_config`, the line) is known.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from ..checks import health_to_table, parse_health
from ..errors import Invalid
from ..locations import NAME_PATTERN, NAME_RULE
from ..model import (
    DependencyCondition,
    LogSpec,
    ProcessSpec,
    RestartPolicy,
    RestartSpec,
    Scope,
)
from ..values import (
    KeyPath,
    check_keys,
    format_duration,
    format_signal,
    format_size,
    parse_signal,
    show,
    want_bool,
    want_command,
    want_duration,
    want_enum,
    want_int,
    want_size,
    want_str,
    want_table,
)
from . import devloop, envfiles

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


def _env_file(value: object, path: KeyPath) -> tuple[str, ...]:
    """One dotenv file or a list of them (relative to the config's folder); read by `build_process`."""
    if isinstance(value, str):
        return (want_str(value, path),)
    if isinstance(value, list | tuple):
        if not value:
            raise Invalid(path, "must not be empty (leave it out instead)")
        return tuple(want_str(item, path) for item in value)
    raise Invalid(path, f"must be a file name or an array of them (got {show(value)})")


def _regex(value: object, path: KeyPath) -> str:
    """A Python regular expression, compiled once here so that a typo is a config error, not a hang."""
    pattern = want_str(value, path)
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise Invalid(path, f"invalid regular expression {show(value)}: {exc.msg}{where}") from None
    return pattern


def _port(value: object, path: KeyPath) -> int:
    return want_int(value, path, 1, 65535)


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
    "health": parse_health,
    "ready_log_line": _regex,
    "env_file": _env_file,
    "port": _port,
    # -- the dev loop (issue 12; rules in devloop.py) --
    "schedule": devloop.schedule,
    "overlap": devloop.overlap,
    "run_on_start": want_bool,
    "catch_up": want_bool,
    "replicas": devloop.replicas,
    "watch": devloop.watch,
    "hooks": devloop.hooks,
}
#: The keys `[defaults]` may set; the rest only make sense per process.
_SPEC_DEFAULTS: Final = ProcessSpec(name="-", command=("-",))
DEFAULTABLE: Final = frozenset({
    "restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval",
    "stop_signal", "stop_timeout", "log_max_bytes", "log_backups", "log_keep_runs", "env", "cwd",
    "autostart", "scope", "env_file",
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
    name: str,
    table: object,
    defaults: Mapping[str, Any],
    base_dir: Path,
    *,
    env_files: bool = True,
    adopted: bool = False,
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
    if "command" not in values and not adopted:
        raise Invalid((*path, "command"), "missing (every process needs a command)")
    depends_on = values.get("depends_on", {})
    if name in depends_on:
        raise Invalid((*path, "depends_on"), f"{name} cannot depend on itself")
    devloop.check_together(table, path)
    if "replicas" in values:
        devloop.check_replica_names(name, values["replicas"], (*path, "replicas"))

    base = os.path.abspath(base_dir)
    written_files: tuple[str, ...] = values.get("env_file", ())
    env_file = envfiles.resolve(written_files, base)
    file_env: dict[str, str] = {}
    if env_file and env_files:
        where = (*path, "env_file") if "env_file" in table else ("defaults", "env_file")
        file_env = envfiles.read_env_files(env_file, where, shown=written_files)
    cwd = os.path.normpath(os.path.join(base, os.path.expanduser(values.get("cwd", "."))))
    scope: Scope = values.get("scope", Scope.PROJECT)
    restart, logs = RestartSpec(), LogSpec()
    return ProcessSpec(
        name=name,
        command=values.get("command", ()),
        cwd=cwd,
        env=values.get("env", {}),
        env_file=env_file,
        file_env=file_env,
        autostart=values.get("autostart", True) or "schedule" in values,  # (a schedule is its own autostart)
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
        ready_log_line=values.get("ready_log_line"),
        port=values.get("port"),
        schedule=devloop.build_schedule(values),
        replicas=values.get("replicas"),
        watch=values.get("watch"),
        hooks=values.get("hooks"),
    )


def parse_process(
    name: str,
    table: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    base_dir: Path,
    file: str | None = None,
    env_files: bool = True,
    adopted: bool = False,
) -> ProcessSpec:
    """Validate one process table (as in `[process.NAME]`) and build its spec.

    `defaults` is a raw `[defaults]` table (inherited; `env` tables are merged, the process wins);
    `base_dir` is the folder relative `cwd`s and `env_file`s are resolved against, and the `project` of a
    project-scoped process. The `env_file`s are read now (`env_files=False`: only their names are kept,
    for a client that shows a daemon's spec and cannot read its files). `adopted`: a process adopted by
    PID, which may have no command. Raises `ConfigError` naming `process.<name>.<key>` (and `file`, if
    given). Dependencies are only checked for shape and self-reference here; whether they exist is the
    caller's business.
    """
    try:
        return build_process(name, table, defaults or {}, base_dir, env_files=env_files, adopted=adopted)
    except Invalid as problem:
        raise problem.to_error(file) from None


# ---------------------------------------------------------------------------------------- write back

def spec_to_table(spec: ProcessSpec, *, base_dir: Path | None = None) -> dict[str, Any]:
    """A TOML-able `[process.NAME]` table (for tomli-w) that `parse_process` reads back to `spec`.

    Values equal to the built-in defaults are left out. With `base_dir`, a `cwd` inside it is written
    relative to it (and left out when it is `base_dir` itself). `project` and `session_pid` are not
    config keys and are not written: `parse_process` derives `project` from its `base_dir`.
    """
    table: dict[str, Any] = {"command": list(spec.command)} if spec.command else {}
    if spec.cwd is not None:
        cwd = _relative(spec.cwd, base_dir)
        if cwd != ".":
            table["cwd"] = cwd
    if spec.env:
        table["env"] = dict(spec.env)
    if spec.env_file:
        files = [_relative(file, base_dir) for file in spec.env_file]
        table["env_file"] = files[0] if len(files) == 1 else files
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
        table["health"] = health_to_table(spec.health)
    if spec.ready_log_line is not None:
        table["ready_log_line"] = spec.ready_log_line
    if spec.port is not None:
        table["port"] = spec.port
    # -- the dev loop (issue 12) --
    if spec.schedule is not None:
        table.update(devloop.schedule_to_table(spec.schedule))
    if spec.replicas is not None:
        table["replicas"] = spec.replicas
    if spec.watch is not None:
        table["watch"] = devloop.watch_to_table(spec.watch)
    if spec.hooks is not None:
        table["hooks"] = devloop.hooks_to_table(spec.hooks)
    return table


def _relative(path: str, base_dir: Path | None) -> str:
    """`path` relative to `base_dir` when it is inside it (`.` for the folder itself), else as is."""
    if base_dir is None or not os.path.isabs(path):
        return path
    relative = os.path.relpath(path, os.path.abspath(base_dir))
    if relative == "." or (relative != ".." and not relative.startswith(".." + os.sep)):
        return relative if not relative.startswith("~") else os.path.join(".", relative)
    return path
