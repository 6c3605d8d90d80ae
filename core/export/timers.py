"""A pmtop schedule in the words of other schedulers: cron lines and systemd calendar events.

Each converter says whether the result is exact, and if not why, so an export reports the difference
instead of hiding it:

- `cron_line` (Kubernetes CronJob, Nomad `periodic`): a cron schedule as written (aliases spelled
  out); an `every` interval as the cron line that fires at the same rate when it divides an hour or a day
  evenly (`every 5m` -> `*/5 * * * *`), else the nearest such line. With `seconds`, for Nomad's cron
  dialect (seven fields when the first is seconds), intervals under a minute that divide one are exact.
- `calendar_event` (systemd `OnCalendar=`): the five cron fields turned into `DOW *-MM-DD HH:MM:00`.
  Cron runs a job when the day of the month *or* the day of the week matches (when both are given);
  systemd wants both, so that combination is approximate. Croniter's `L`, `W` and `#` have no
  calendar equivalent and are reported. `every` intervals are monotonic timers there, not calendars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..schedule import CronSchedule, IntervalSchedule, local_zone, parse_schedule

DAYS: Final = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
MONTHS: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_RANGES: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@dataclass(frozen=True, slots=True)
class Converted:
    text: str
    exact: bool = True
    why: str = ""


def parsed(rule: str) -> CronSchedule | IntervalSchedule:
    return parse_schedule(rule, local_zone())


def cron_line(rule: str, *, seconds: bool = False) -> Converted:
    schedule = parsed(rule)
    if isinstance(schedule, CronSchedule):
        return Converted(" ".join(schedule.fields))
    every = schedule.seconds
    if seconds and every < 60 and every == int(every) and 60 % int(every) == 0:
        return Converted(f"*/{int(every)} * * * * * *")
    minutes = max(1, round(every / 60))
    line, divides = _every_minutes(minutes)
    exact = every % 60 == 0 and divides
    return Converted(line, exact, "" if exact else f"{rule}: cron cannot say that interval; {line!r} is the nearest")


def _every_minutes(minutes: int) -> tuple[str, bool]:
    if minutes < 60:
        exact = 60 % minutes == 0
        return ("* * * * *" if minutes == 1 else f"*/{minutes} * * * *"), exact
    hours = max(1, round(minutes / 60))
    if hours < 24:
        exact = minutes % 60 == 0 and 24 % hours == 0
        return ("0 * * * *" if hours == 1 else f"0 */{hours} * * *"), exact
    days = max(1, round(hours / 24))
    return ("0 0 * * *" if days == 1 else f"0 0 */{days} * *"), hours % 24 == 0 and days == 1


def calendar_event(rule: str) -> Converted:
    """systemd's `OnCalendar=` for a cron schedule (`every` has none: see `monotonic_seconds`)."""
    schedule = parsed(rule)
    if not isinstance(schedule, CronSchedule):
        raise ValueError("an interval is a monotonic timer, not a calendar event")
    minute, hour, dom, month, dow = schedule.fields
    try:
        parts = [_numbers(field, i) for i, field in enumerate((minute, hour, dom, month, dow))]
    except ValueError as exc:
        return Converted("", False, f"{rule!r}: {exc}; no calendar event written")
    fields = (minute, hour, dom, month)
    m, h, d, mo = (_step(f, i) or _join(parts[i], 2) for i, f in enumerate(fields))
    w = parts[4]
    days = "" if w is None else ",".join(DAYS[n % 7] for n in sorted(set(n % 7 for n in w))) + " "
    text = f"{days}*-{mo}-{d} {h}:{m}:00"
    d_any, w_any = parts[2] is None, w is None
    if not d_any and not w_any:
        return Converted(text, False, f"{rule!r}: cron runs when the day of the month OR of the week matches; "
                                      "systemd needs both")
    return Converted(text)


def _numbers(field: str, index: int) -> list[int] | None:
    """The values a cron field allows, or None for `*` (every value)."""
    low, high = _RANGES[index]
    if field == "*":
        return None
    values: set[int] = set()
    for part in field.split(","):
        if any(mark in part.upper() for mark in ("L", "W", "#")) and not _named(part, index):
            raise ValueError(f"{part!r} (last, weekday-nearest and nth-weekday marks) has no calendar form")
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, end = _value(first, index), _value(last, index)
        else:
            start = _value(span, index)
            end = high if step_text else start
        if end < start:  # a wrapping range (fri-mon): to the end, then from the start
            values.update(range(start, high + 1, step))
            values.update(range(low, end + 1, step))
        else:
            values.update(range(start, end + 1, step))
    if index == 4 and {n % 7 for n in values} == set(range(7)):
        return None
    if index != 4 and values == set(range(low, high + 1)):
        return None
    return sorted(values)


def _step(field: str, index: int) -> str | None:
    """`*/5` as systemd's repetition `00/5` (from the field's first value), when that is all it says."""
    span, _, step = field.partition("/")
    if span == "*" and step.isdigit() and index < 4:
        return f"{_RANGES[index][0]:02d}/{int(step)}"
    return None


def _named(part: str, index: int) -> bool:
    words = [w for w in part.replace("-", " ").replace("/", " ").split() if w.isalpha()]
    names = MONTHS if index == 3 else tuple(d.lower() for d in DAYS)
    return bool(words) and all(w.lower() in names for w in words)


def _value(text: str, index: int) -> int:
    lowered = text.lower()
    if index == 3 and lowered in MONTHS:
        return MONTHS.index(lowered) + 1
    if index == 4 and lowered in (d.lower() for d in DAYS):
        return [d.lower() for d in DAYS].index(lowered)
    return int(text)


def _join(values: list[int] | None, width: int) -> str:
    if values is None:
        return "*"
    return ",".join(f"{v:0{width}d}" for v in values)


def interval_seconds(rule: str) -> float | None:
    schedule = parsed(rule)
    return schedule.seconds if isinstance(schedule, IntervalSchedule) else None


def zone_name() -> str | None:
    """The local zone's IANA name (for CronJob `timeZone` and Nomad `time_zone`), if it is known."""
    key = getattr(local_zone(), "key", None)
    if not isinstance(key, str) or key in ("localtime", ""):
        import os

        try:
            target = os.path.realpath("/etc/localtime")
        except OSError:
            return None
        _, found, name = target.partition("/zoneinfo/")
        return name if found else None
    return key
