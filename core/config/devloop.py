"""The rules of the dev-loop keys (SPEC §11): `schedule` and its companions, `replicas`, `watch`, `hooks`.

Kept apart from `schema.py` so the process table's core keys read in one place and these (issue 12) in
another; `schema.FIELDS` lists both. Each parser checks one value at its key path, like every rule in
`values.py`; `check_together` checks what only makes sense in combination (an `overlap` without a
`schedule`), once the whole table is read. `*_to_table` are the inverses used to write a spec back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import Invalid
from ..locations import NAME_PATTERN
from ..model import (
    DEFAULT_HOOK_EVENTS,
    HOOK_EVENTS,
    HOOK_PLACEHOLDERS,
    HookSpec,
    Overlap,
    ScheduleSpec,
    WatchSpec,
    replica_name,
)
from ..schedule import parse_schedule
from ..values import (
    KeyPath,
    check_keys,
    format_duration,
    show,
    want_bool,
    want_command,
    want_duration,
    want_enum,
    want_int,
    want_str,
    want_table,
)

MAX_REPLICAS: Final = 1000
SCHEDULE_KEYS: Final = ("schedule", "overlap", "run_on_start", "catch_up")
WATCH_KEYS: Final = ("paths", "ignore", "debounce", "cascade")
HOOK_KEYS: Final = ("on", "command", "url", "timeout")
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")


# ----------------------------------------------------------------------------------------- schedule

def schedule(value: object, path: KeyPath) -> str:
    text = want_str(value, path).strip()
    try:
        parse_schedule(text)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None
    return text


def overlap(value: object, path: KeyPath) -> Overlap:
    return want_enum(value, path, Overlap)


def build_schedule(values: Mapping[str, Any]) -> ScheduleSpec | None:
    if "schedule" not in values:
        return None
    return ScheduleSpec(
        rule=values["schedule"],
        overlap=values.get("overlap", Overlap.SKIP),
        run_on_start=values.get("run_on_start", False),
        catch_up=values.get("catch_up", False),
    )


def schedule_to_table(spec: ScheduleSpec) -> dict[str, Any]:
    table: dict[str, Any] = {"schedule": spec.rule}
    if spec.overlap is not Overlap.SKIP:
        table["overlap"] = spec.overlap.value
    if spec.run_on_start:
        table["run_on_start"] = True
    if spec.catch_up:
        table["catch_up"] = True
    return table


# ----------------------------------------------------------------------------------------- replicas

def replicas(value: object, path: KeyPath) -> int:
    return want_int(value, path, 0, MAX_REPLICAS)


def check_replica_names(name: str, count: int, path: KeyPath) -> None:
    """Every instance name a scale could reach must be a valid process name (they are folder names)."""
    longest = replica_name(name, MAX_REPLICAS)
    if not NAME_PATTERN.fullmatch(longest):
        raise Invalid(path, f"the name {name!r} is too long for replicas ({longest!r} would pass 64 characters)")


# -------------------------------------------------------------------------------------------- watch

def _globs(value: object, path: KeyPath, *, empty: bool) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise Invalid(path, f"must be a path or an array of paths and globs (got {show(value)})")
    globs = tuple(want_str(item, path).strip() for item in items)
    if not globs and not empty:
        raise Invalid(path, "must name at least one path or glob")
    return globs


def watch(value: object, path: KeyPath) -> WatchSpec:
    """`watch = { paths = [...], ignore = [...], debounce = "500ms", cascade = true }`, or just the
    paths: `watch = ["src"]` / `watch = "src"`."""
    if isinstance(value, str | list | tuple):
        return WatchSpec(paths=_globs(value, path, empty=False))
    table = want_table(value, path)
    check_keys(table, path, WATCH_KEYS)
    if "paths" not in table:
        raise Invalid((*path, "paths"), 'missing (what to watch, e.g. paths = ["src/**/*.py"])')
    base = WatchSpec(paths=())
    return WatchSpec(
        paths=_globs(table["paths"], (*path, "paths"), empty=False),
        ignore=_globs(table.get("ignore", []), (*path, "ignore"), empty=True),
        debounce=want_duration(table.get("debounce", base.debounce), (*path, "debounce")),
        cascade=want_bool(table.get("cascade", base.cascade), (*path, "cascade")),
    )


def watch_to_table(spec: WatchSpec) -> dict[str, Any]:
    table: dict[str, Any] = {"paths": list(spec.paths)}
    base = WatchSpec(paths=())
    if spec.ignore:
        table["ignore"] = list(spec.ignore)
    if spec.debounce != base.debounce:
        table["debounce"] = format_duration(spec.debounce)
    if spec.cascade:
        table["cascade"] = True
    return table


# -------------------------------------------------------------------------------------------- hooks

def _events(value: object, path: KeyPath) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise Invalid(path, f"must be an array of events (got {show(value)})")
    events = []
    for item in items:
        if not isinstance(item, str) or item not in HOOK_EVENTS:
            listed = ", ".join(f'"{e}"' for e in HOOK_EVENTS)
            raise Invalid(path, f"unknown event {show(item)} (use states and health events: {listed})")
        events.append(item)
    return tuple(dict.fromkeys(events))


def _hook_command(value: object, path: KeyPath) -> tuple[str, ...]:
    words = want_command(value, path)
    for word in words:
        for name in _PLACEHOLDER.findall(word.replace("{{", "").replace("}}", "")):
            if name not in HOOK_PLACEHOLDERS:
                listed = " ".join("{" + p + "}" for p in HOOK_PLACEHOLDERS)
                raise Invalid(path, f"unknown placeholder {{{name}}} (use {listed}; write {{{{ and }}}} for braces)")
    return words


def _hook_url(value: object, path: KeyPath) -> str:
    url = want_str(value, path).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(path, f"must be an http:// or https:// URL (got {show(value)})")
    return url


def hooks(value: object, path: KeyPath) -> HookSpec:
    """`[hooks]` or `[process.NAME.hooks]`: `on` (default: crashed, failed, unhealthy, recovered),
    `command` and/or `url`, `timeout`."""
    table = want_table(value, path)
    check_keys(table, path, HOOK_KEYS)
    if "command" not in table and "url" not in table:
        raise Invalid(path, "needs a command, a url or both (what to do when the events happen)")
    base = HookSpec()
    return HookSpec(
        on=_events(table["on"], (*path, "on")) if "on" in table else base.on,
        command=_hook_command(table["command"], (*path, "command")) if "command" in table else None,
        url=_hook_url(table["url"], (*path, "url")) if "url" in table else None,
        timeout=want_duration(table.get("timeout", base.timeout), (*path, "timeout"), positive=True),
    )


def hooks_to_table(spec: HookSpec) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if spec.on != DEFAULT_HOOK_EVENTS:
        table["on"] = list(spec.on)
    if spec.command is not None:
        table["command"] = list(spec.command)
    if spec.url is not None:
        table["url"] = spec.url
    if spec.timeout != HookSpec().timeout:
        table["timeout"] = format_duration(spec.timeout)
    return table


# ------------------------------------------------------------------------------------ combinations

def check_together(table: Mapping[str, Any], path: KeyPath) -> None:
    """What only makes sense with another key: `overlap` & co. need `schedule`; `autostart` does not
    apply to a scheduled process (it runs at its times; `enabled = false` keeps it from running)."""
    if "schedule" not in table:
        for key in SCHEDULE_KEYS[1:]:
            if key in table:
                raise Invalid((*path, key), 'only makes sense with a schedule (e.g. schedule = "*/5 * * * *")')
        return
    if "autostart" in table:
        raise Invalid((*path, "autostart"), "does not apply to a scheduled process: it runs at its schedule "
                      "(run_on_start = true also runs it at start-up; enabled = false keeps it from running)")
