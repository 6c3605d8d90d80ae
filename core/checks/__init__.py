"""Health checks: the probes that answer "is this process healthy now?", and the monitor that
schedules them for one run (startup check, interval, consecutive failures).

Each kind of check is one module here (`http`, `tcp`, `exec`, `heartbeat`, `notify`) with one `CheckKind`: its params, the
rules of its keys in a `[health]` table, its probe, and how the dashboard describes and asks for it.
`KINDS` is the registry: a new kind is a new module plus one line below (and its tests). The keys
every kind shares (`interval`, `timeout`, `failures`, `startup`) are read here, once.

May import: the model, values, errors and `system` (an exec probe is a process group of its own).
Never config, process, daemon or api.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..errors import Invalid
from ..model import CheckParams, FailAction, HealthSpec, StartupCheck
from ..system.notify import NotifyState
from ..values import (
    KeyPath,
    check_keys,
    format_duration,
    show,
    want_duration,
    want_enum,
    want_int,
    want_table,
)
from . import exec as exec_kind
from . import heartbeat, http, notify, tcp
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult, probe_once

__all__ = [
    "KINDS", "CheckKind", "FormField", "Probe", "ProbeContext", "ProbeResult", "close_probes", "describe",
    "health_to_table", "kind_of", "make_probe", "monitored", "parse_health", "probe_once",
]

KINDS: Final[dict[str, CheckKind[Any]]] = {
    kind.name: kind for kind in (http.KIND, tcp.KIND, exec_kind.KIND, heartbeat.KIND, notify.KIND)
}
"""Every kind of health check, by the `type` that selects it."""

COMMON_KEYS: Final = ("type", "interval", "timeout", "failures", "startup")
STARTUP_KEYS: Final = ("initial_delay", "interval", "max_attempts", "fail_action")
close_probes = http.close_probes


def kind_of(params: CheckParams) -> CheckKind[Any]:
    return KINDS[params.KIND]


def _kind_list() -> str:
    return ", ".join(f'"{name}"' for name in KINDS)


def parse_health(value: object, path: KeyPath) -> HealthSpec:
    """A `[health]` table: its `type` picks the kind, which reads its own keys; the rest are common."""
    table = want_table(value, path)
    if "type" not in table:
        raise Invalid((*path, "type"), f"missing (one of {_kind_list()})")
    name = table["type"]
    if not isinstance(name, str) or name not in KINDS:
        raise Invalid((*path, "type"), f"must be one of {_kind_list()} (got {show(name)})")
    kind = KINDS[name]
    for key in table:  # a key of another kind is a mistake worth its own message
        owner = next((k for k in KINDS.values() if key in k.keys), None)
        if owner is not None and owner is not kind:
            raise Invalid((*path, key), f'not used by a "{name}" check (it takes {kind.example})')
    for key in kind.unused:
        if key in table:
            raise Invalid((*path, key), f'not used by a "{name}" check ({kind.example})')
    check_keys(table, path, (*COMMON_KEYS, *kind.keys))
    for key in kind.keys:
        if key not in table and key not in kind.optional:
            raise Invalid((*path, key), f'missing (a "{name}" check needs {kind.example})')
    base = HealthSpec(check=kind.parse(table, path))
    return HealthSpec(
        check=base.check,
        interval=want_duration(table.get("interval", base.interval), (*path, "interval"), positive=True),
        timeout=want_duration(table.get("timeout", base.timeout), (*path, "timeout"), positive=True),
        failures=want_int(table.get("failures", base.failures), (*path, "failures"), 1),
        startup=_startup(table["startup"], (*path, "startup")) if "startup" in table else None,
    )


def _startup(value: object, path: KeyPath) -> StartupCheck:
    table = want_table(value, path)
    check_keys(table, path, STARTUP_KEYS)
    base = StartupCheck()
    return StartupCheck(
        initial_delay=want_duration(table.get("initial_delay", base.initial_delay), (*path, "initial_delay")),
        interval=want_duration(table.get("interval", base.interval), (*path, "interval"), positive=True),
        max_attempts=want_int(table.get("max_attempts", base.max_attempts), (*path, "max_attempts"), 1),
        fail_action=want_enum(table.get("fail_action", base.fail_action.value), (*path, "fail_action"), FailAction),
    )


def health_to_table(health: HealthSpec) -> dict[str, Any]:
    """The `[health]` table `parse_health` reads back to `health` (defaults left out)."""
    base = HealthSpec(check=health.check)
    table: dict[str, Any] = {"type": health.type, **kind_of(health.check).to_table(health.check)}
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


def make_probe(
    health: HealthSpec,
    *,
    cwd: str | None,
    env: Mapping[str, str] | None,
    started_at: float | None = None,
    notify: NotifyState | None = None,
) -> Probe:
    """The probe for a process's `[health]`; `cwd` and `env` are the process's own, `started_at` when
    its run began, `notify` what it said over its sd_notify socket."""
    context = ProbeContext(cwd=cwd, env=env, timeout=health.timeout, started_at=started_at, notify=notify)
    return kind_of(health.check).probe(health.check, context)


def monitored(health: HealthSpec) -> HealthSpec | None:
    """What the health monitor runs for `health` (None: nothing to probe; see `CheckKind.monitored`)."""
    return kind_of(health.check).monitored(health.check, health)


def describe(health: HealthSpec) -> str:
    """What the check does, in one line (the details screen's "In effect")."""
    return kind_of(health.check).describe(health.check)
