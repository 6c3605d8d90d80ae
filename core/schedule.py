"""When a scheduled process runs: 5-field cron in the local time zone, or `every 30s` (SPEC §11).

Pure functions of the time they are given (Unix seconds) and the zone they are built with, so tests
check daylight-saving boundaries with fixed times and named zones, never with the machine's clock.

Daylight saving follows Vixie cron, which is what people who write cron lines expect:

- spring forward: a time that does not exist that day (02:30 when clocks jump from 02:00 to 03:00)
  runs at the first moment after the jump (03:00), once;
- fall back: a job at a fixed time of day (neither the minute nor the hour field starts with `*`)
  runs once, at the first of the two 02:30s; a job with `*` in the minute or hour field (`*/30 * * * *`,
  `0 * * * *`) keeps its real interval and runs in both copies of the repeated hour.

`every 30s` schedules are intervals of real time, anchored where they were armed: no zone involved.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final

from .values import parse_duration

MIN_INTERVAL: Final = 1.0
"""Seconds: `every` may not be shorter (each run is a process start, a run folder, a history entry)."""
CRON_ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
HINT: Final = 'use 5 cron fields ("*/5 * * * *", "30 2 * * 1-5"), an alias like "@daily", or "every 30s"'


class CronSchedule:
    """A 5-field cron expression (croniter's dialect) evaluated in `zone`."""

    def __init__(self, expression: str, zone: tzinfo) -> None:
        self.expression = expression
        self.fields = _cron_fields(expression)
        self.zone = zone
        minute, hour = self.fields[0], self.fields[1]
        self.fixed_time = not minute.startswith("*") and not hour.startswith("*")
        """A time of day (`30 2 * * *`): runs once even when a fall-back repeats that hour."""

    def next_after(self, t: float) -> float:
        """The first time strictly after `t`."""
        from croniter import croniter  # imported only by supervisors that have a schedule

        start = datetime.fromtimestamp(t, self.zone)
        times = croniter(" ".join(self.fields), start)
        while True:
            candidate = float(times.get_next(float))
            if candidate <= t:  # croniter works in whole seconds: never hand back the past
                continue
            if self.fixed_time and _second_occurrence(candidate, self.zone):
                continue
            return candidate

    def describe(self) -> str:
        return self.expression


class IntervalSchedule:
    """`every 30s`: at `anchor + k * seconds` for whole k (real time, not wall-clock time)."""

    def __init__(self, seconds: float, text: str, anchor: float = 0.0) -> None:
        self.seconds = seconds
        self.text = text
        self.anchor = anchor

    def next_after(self, t: float) -> float:
        steps = math.floor((t - self.anchor) / self.seconds) + 1
        candidate = self.anchor + steps * self.seconds
        return candidate if candidate > t else candidate + self.seconds

    def anchored(self, anchor: float) -> IntervalSchedule:
        return IntervalSchedule(self.seconds, self.text, anchor)

    def describe(self) -> str:
        return self.text


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(text: object, zone: tzinfo | None = None) -> Schedule:
    """A schedule from `"*/5 * * * *"`, `"@daily"` or `"every 30s"`; `ValueError` quoting the text.

    `zone` defaults to the local zone (`local_zone()`); only cron expressions use it.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"invalid schedule {text!r} ({HINT})")
    words = text.split()
    if words[0].lower() == "every":
        if len(words) == 1:
            raise ValueError(f"invalid schedule {text!r} (every what? e.g. \"every 30s\", \"every 5m\")")
        try:
            seconds = parse_duration("".join(words[1:]))
        except ValueError as exc:
            raise ValueError(f"invalid schedule {text!r} ({exc})") from None
        if seconds < MIN_INTERVAL:
            raise ValueError(f"invalid schedule {text!r} (the shortest is every {MIN_INTERVAL:g}s)")
        return IntervalSchedule(seconds, " ".join(words))
    return CronSchedule(text.strip(), zone if zone is not None else local_zone())


def _cron_fields(expression: str) -> tuple[str, ...]:
    expanded = CRON_ALIASES.get(expression.strip().lower(), expression)
    fields = tuple(expanded.split())
    if len(fields) != 5:
        what = "seconds or years are not supported" if len(fields) in (6, 7) else HINT
        raise ValueError(f"invalid schedule {expression!r} (cron needs 5 fields: minute hour day month weekday; "
                         f"{what})")
    from croniter import croniter

    try:
        croniter(" ".join(fields), 0.0)
    except (ValueError, KeyError, TypeError) as exc:  # croniter's CroniterError is a ValueError
        detail = str(exc).split("\n")[0].removeprefix(f"[{' '.join(fields)}] ") or type(exc).__name__
        if "hash_id" in detail:
            detail = "hashed H fields are not supported"
        elif "out of range" in detail:
            detail = "a value is out of range"
        raise ValueError(f"invalid schedule {expression!r} ({detail})") from None
    return fields


def _second_occurrence(t: float, zone: tzinfo) -> bool:
    """Is `t` the second of two moments with the same wall-clock time (the hour a fall-back repeats)?"""
    local = datetime.fromtimestamp(t, zone)
    if not local.fold:
        return False
    return local.replace(fold=0).utcoffset() != local.utcoffset()


# --------------------------------------------------------------------------------- missed runs

@dataclass(frozen=True, slots=True)
class Missed:
    """Times that passed while no supervisor ran (between the last one handled and now)."""

    count: int
    """How many, up to `MISSED_LIMIT` (then `capped`)."""
    last: float
    """The latest of them."""
    capped: bool = False

    def describe(self) -> str:
        runs = f"{self.count}{'+' if self.capped else ''} scheduled run{'s' if self.count != 1 else ''}"
        return f"missed {runs} while pmtop was not running (the last due {clock(self.last)})"


MISSED_LIMIT: Final = 1000


def missed_between(schedule: Schedule, handled: float, now: float) -> Missed | None:
    """The schedule's times in `(handled, now]`, or None when there are none."""
    if isinstance(schedule, IntervalSchedule):
        anchored = schedule.anchored(handled)
        count = math.floor((now - handled) / schedule.seconds)
        if count <= 0:
            return None
        return Missed(min(count, MISSED_LIMIT), anchored.anchor + count * schedule.seconds, count > MISSED_LIMIT)
    times = list(_times(schedule, handled, now, MISSED_LIMIT + 1))
    if not times:
        return None
    return Missed(min(len(times), MISSED_LIMIT), times[-1], len(times) > MISSED_LIMIT)


def _times(schedule: Schedule, after: float, until: float, limit: int) -> Iterator[float]:
    t = after
    for _ in range(limit):
        t = schedule.next_after(t)
        if t > until:
            return
        yield t


# ------------------------------------------------------------------------------------- the zone

def local_zone() -> tzinfo:
    """The machine's time zone with its daylight-saving rules: `$TZ` if it names a zone, else
    /etc/localtime. (`datetime.now().astimezone()` would give a fixed offset that ignores DST.)"""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only with a schedule: ~1 MB, sysconfig included

    name = os.environ.get("TZ", "").strip().removeprefix(":")
    if name:
        try:
            return ZoneInfo(name) if not name.startswith("/") else _zone_file(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        return _zone_file("/etc/localtime")
    except (OSError, ValueError):
        fallback = datetime.now().astimezone().tzinfo
        return fallback if fallback is not None else UTC


def _zone_file(path: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    with open(path, "rb") as file:
        return ZoneInfo.from_file(file, key=os.path.basename(path))


def clock(t: float) -> str:
    """`14:05:00` today, else `2024-03-31 03:00`: how a reason names a time (local time)."""
    moment = datetime.fromtimestamp(t)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")
