"""Finding and loading `pmtop.toml` (SPEC §2): all of it is checked before anything starts.

A supervisor acts on its config unattended, often long after it was written, so a config that is
only mostly right is dangerous: a misspelt `restrat = "always"` that is silently ignored turns into a
process that stays down at 3 a.m. Hence `load_config` is strict and all-or-nothing. Every unknown
key anywhere is an error (with a did-you-mean hint), every value is checked for type and range,
dependencies must exist and must not form a cycle, and the first problem is raised as a
`ConfigError` that renders as one line naming the file, the line (and, for TOML syntax errors, the
column), the key path and what is wrong:

    pmtop.toml:12: process.web.restart: must be one of "always", "on-failure", "no" (got "sometimes")

The per-process rules live in `config_schema`, shared with `pmtop add` and the HTTP API through
`parse_process`, so a process registered at run time is checked exactly like one in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .. import locations
from ..errors import ConfigError, Invalid
from ..locations import CONFIG_ENV_VAR, CONFIG_FILENAME, DEFAULT_PORT, NAME_PATTERN, NAME_RULE
from ..model import HookSpec, ProcessSpec, replica_name
from ..values import KeyPath, check_keys, show, want_bool, want_str, want_table
from . import devloop
from .lines import find_line as find_line
from .lines import syntax_error_position
from .schema import DEFAULTABLE, FIELDS, build_process, check_defaults, parse_process, spec_to_table

__all__ = [
    "CONFIG_FILENAME",
    "CONFIG_ENV_VAR",
    "DEFAULT_PORT",
    "NAME_PATTERN",
    "Config",
    "DaemonSettings",
    "find_config",
    "load_config",
    "parse_process",
    "spec_to_table",
    "validate_name",
]



@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """The `[daemon]` table. Command-line options override these (SPEC §4, §5)."""

    instance: str = "default"
    host: str = "127.0.0.1"
    port: int | str | None = None
    """None = not set (the caller applies `DEFAULT_PORT`), a port number, or "auto"."""
    stop_on_exit: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded, fully validated config. `path` is None when no config file was found."""

    path: Path | None = None
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    processes: tuple[ProcessSpec, ...] = ()
    hooks: HookSpec | None = None
    """The global `[hooks]` table: for every process (beside each one's own)."""

    @property
    def by_name(self) -> dict[str, ProcessSpec]:
        """The processes by name, in declaration order."""
        return {spec.name: spec for spec in self.processes}

    @property
    def base_dir(self) -> Path | None:
        """The folder relative paths are resolved against (the config file's folder)."""
        return self.path.parent if self.path is not None else None


def validate_name(name: str) -> str:
    """`name` if it is a valid process (or instance) name, else `ValueError`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"invalid name {name!r} ({NAME_RULE})")
    return name


def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`--config FILE`, else `$PMTOP_CONFIG`, else `./pmtop.toml` if it exists, else None.

    `locations.find_config`, with a named file that does not exist (or is a folder) as a `ConfigError`.
    """
    try:
        return locations.find_config(explicit, environ, cwd)
    except IsADirectoryError as exc:
        raise ConfigError("is a folder, not a config file", file=str(exc)) from None
    except FileNotFoundError as exc:
        raise ConfigError("no such file", file=str(exc)) from None


def load_config(path: Path) -> Config:
    """Read, parse and validate a config file. Raises `ConfigError` on the first problem."""
    file = _display_name(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", file=file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError("not valid UTF-8 text", file=file, line=line) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = syntax_error_position(str(exc), text)
        raise ConfigError(f"invalid TOML: {message}", file=file, line=line, column=column) from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise ConfigError("invalid TOML: nested too deeply", file=file) from None
    absolute = Path(os.path.abspath(path))  # not resolve(): a symlinked config keeps its own folder
    try:
        return _build(document, absolute)
    except Invalid as problem:
        raise problem.to_error(file, find_line(text, problem.path)) from None
    except RecursionError:
        raise ConfigError("nested too deeply", file=file) from None


def _display_name(path: Path) -> str:
    """How errors name the file: relative to the current folder when it is inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


# ------------------------------------------------------------------------------------- the document

_TOP_LEVEL: Final = ("daemon", "defaults", "process", "hooks")
_DAEMON_KEYS: Final = ("instance", "host", "port", "stop_on_exit")


def _build(document: Mapping[str, Any], path: Path) -> Config:
    for key in document:
        if key in _DAEMON_KEYS:
            raise Invalid((key,), "unknown key (did you mean to put it under [daemon]?)")
        if key in FIELDS and key != "hooks":
            where = "[defaults] or [process.NAME]" if key in DEFAULTABLE else "[process.NAME]"
            raise Invalid((key,), f"unknown key (did you mean to put it under {where}?)")
    check_keys(document, (), _TOP_LEVEL)
    daemon = _daemon(document.get("daemon", {}))
    defaults = want_table(document.get("defaults", {}), ("defaults",))
    check_defaults(defaults)
    table = want_table(document.get("process", {}), ("process",))
    processes = tuple(build_process(name, value, defaults, path.parent) for name, value in table.items())
    _check_replica_names(processes)
    _check_dependencies(processes)
    hooks = devloop.hooks(document["hooks"], ("hooks",)) if "hooks" in document else None
    return Config(path=path, daemon=daemon, processes=processes, hooks=hooks)


def _daemon(value: object) -> DaemonSettings:
    path: KeyPath = ("daemon",)
    table = want_table(value, path)
    check_keys(table, path, _DAEMON_KEYS)
    base = DaemonSettings()
    instance = want_str(table.get("instance", base.instance), (*path, "instance"))
    if not NAME_PATTERN.fullmatch(instance):
        raise Invalid((*path, "instance"), f"invalid instance name {show(instance)} ({NAME_RULE})")
    port = table.get("port", base.port)
    if port is not None and port != "auto":
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise Invalid((*path, "port"), f'must be a port number from 1 to 65535 or "auto" (got {show(port)})')
    return DaemonSettings(
        instance=instance,
        host=want_str(table.get("host", base.host), (*path, "host")).strip(),
        port=port,
        stop_on_exit=want_bool(table.get("stop_on_exit", base.stop_on_exit), (*path, "stop_on_exit")),
    )


def _check_replica_names(processes: tuple[ProcessSpec, ...]) -> None:
    """`web-2` cannot be declared beside a `web` with replicas: a scale could make it at any time."""
    groups = {spec.name for spec in processes if spec.replicas is not None}
    for spec in processes:
        group, _, index = spec.name.rpartition("-")
        if group in groups and index.isdigit():
            raise Invalid(("process", spec.name), f"clashes with the replicas of {group} ({group}-1, {group}-2, ...); "
                          "rename one of them")


def _replica_names(processes: tuple[ProcessSpec, ...]) -> dict[str, str]:
    """`web-1` -> `web` for every instance the declared `replicas` make."""
    return {replica_name(spec.name, i): spec.name for spec in processes if spec.replicas is not None
            for i in range(1, spec.replicas + 1)}


def _check_dependencies(processes: tuple[ProcessSpec, ...]) -> None:
    """Every `depends_on` names a declared process (or a replica of one), and there is no cycle.

    A dependency on a replica (`web-2`) counts as one on its group in the cycle search.
    """
    replicas = _replica_names(processes)
    graph = {spec.name: [replicas.get(d, d) for d in spec.depends_on] for spec in processes}
    for name, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                import difflib  # only for a mistake's hint

                close = difflib.get_close_matches(dep, list(graph), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise Invalid(("process", name, "depends_on"), f"unknown process {dep!r}{hint}")
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        # Iterative depth-first search; `trail` is the current path, `pending` each node's next deps.
        trail: list[str] = [root]
        pending: list[list[str]] = [list(graph[root])]
        while trail:
            if not pending[-1]:
                done.add(trail.pop())
                pending.pop()
                continue
            dep = pending[-1].pop(0)
            if dep in trail:
                cycle = [*trail[trail.index(dep):], dep]
                raise Invalid(("process", cycle[0], "depends_on"), "cycle " + " -> ".join(cycle))
            if dep not in done:
                trail.append(dep)
                pending.append(list(graph[dep]))
