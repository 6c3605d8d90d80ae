"""`type = "notify"`: systemd's sd_notify protocol. The process says itself when it is ready and alive.

pmtop gives the child its own `$NOTIFY_SOCKET` (see `system/notify.py` for where and why) and, with a
`watchdog`, `$WATCHDOG_USEC`, as systemd does for `Type=notify` with `WatchdogSec=`. What it says:

- `READY=1`: started. The run stays `starting` until then (the readiness gate that replaces a startup
  probe); a `startup` table only bounds the wait (`max_attempts` x `interval`) and says what to do when
  it runs out (`fail_action`).
- `STATUS=...`: shown as the reason while the process runs.
- `WATCHDOG=1`: alive. With `watchdog = "10s"`, a period without one counts as a failed probe (the
  check's `failures` in a row: unhealthy, restarted); `WATCHDOG=trigger` fails it at once.
- `STOPPING=1`, `MAINPID=`: handled by the runner (`process/notifications.py`).

What is probed here is only the watchdog: once per `watchdog` period, "did a `WATCHDOG=1` come within
the last period?". `interval` and `timeout` do not apply: the process, not a probe, does the talking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..model import CheckParams, HealthSpec
from ..system.notify import NotifyState
from ..values import KeyPath, format_duration, want_duration
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult


@dataclass(frozen=True, slots=True)
class NotifyCheck(CheckParams):
    KIND: ClassVar[str] = "notify"
    watchdog: float | None = None
    """Seconds within which each `WATCHDOG=1` must follow the last (None: no watchdog)."""


def _seconds(value: float) -> str:
    text = format_duration(value)
    return text if isinstance(text, str) else f"{text:g}s"


class WatchdogProbe:
    """Passes while a `WATCHDOG=1` came within the last period (counted from the run's start before the first)."""

    def __init__(self, watchdog: float, state: NotifyState | None) -> None:
        self.watchdog = watchdog
        self.state = state

    async def check(self) -> ProbeResult:
        if self.state is None:  # pragma: no cover - the runner always gives a notify check its state
            return ProbeResult(False, "no sd_notify socket")
        silent = self.state.silent_for()
        limit = f"(watchdog {_seconds(self.watchdog)})"
        if silent <= self.watchdog:
            return ProbeResult(True, f"WATCHDOG=1 {silent:.1f}s ago {limit}")
        what = "no WATCHDOG=1 yet" if self.state.last_ping is None else "no WATCHDOG=1"
        return ProbeResult(False, f"{what} for {silent:.1f}s {limit}")


class Notify(CheckKind[NotifyCheck]):
    name = "notify"
    params = NotifyCheck
    keys = ("watchdog",)
    optional = ("watchdog",)
    unused = ("interval", "timeout")
    example = 'the process sends READY=1 to $NOTIFY_SOCKET; optional watchdog = "10s"'
    form = (FormField("watchdog", "WATCHDOG=1 at least every (optional)", "10s"),)
    json_schema = {
        "watchdog": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "minLength": 1}],
                     "description": "WATCHDOG=1 must come at least this often; each period without is a failure."},
    }

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> NotifyCheck:
        if "watchdog" not in table:
            return NotifyCheck()
        return NotifyCheck(want_duration(table["watchdog"], (*path, "watchdog"), positive=True))

    def to_table(self, params: NotifyCheck) -> dict[str, Any]:
        return {} if params.watchdog is None else {"watchdog": format_duration(params.watchdog)}

    def probe(self, params: NotifyCheck, context: ProbeContext) -> Probe:
        assert params.watchdog is not None, "only a watchdog is probed"
        return WatchdogProbe(params.watchdog, context.notify)

    def target(self, params: NotifyCheck) -> str:
        watchdog = f", WATCHDOG=1 every {_seconds(params.watchdog)}" if params.watchdog is not None else ""
        return f"READY=1 over $NOTIFY_SOCKET{watchdog}"

    def describe(self, params: NotifyCheck) -> str:
        if params.watchdog is None:
            return "sd_notify: the process sends READY=1 when it is ready"
        return (f"sd_notify: the process sends READY=1 when it is ready, then WATCHDOG=1 at least every "
                f"{_seconds(params.watchdog)}")

    def monitored(self, params: NotifyCheck, health: HealthSpec) -> HealthSpec | None:
        """Only the watchdog is probed, once per period; READY=1 (not a startup probe) gates the start."""
        if params.watchdog is None:
            return None
        return dataclasses.replace(health, interval=params.watchdog, timeout=params.watchdog, startup=None)


KIND = Notify()
