"""How numbers, times and reasons read, the same in the dashboard, `pmtop ps` and the daemon's output.

Short and fixed-width friendly (`54.3M`, `3m12s`, `retry in 3.4s`), as `top` and `docker ps` print
them. Pure functions of their arguments (the current time is passed in), so tests need no clock, and
none raises. `None` renders as the empty string: a fact nobody knows (yet) is left blank rather than
shown as a misleading zero; a face that needs a placeholder (the CLI's `-`) adds its own.

A leaf module, like `states`: the standard library only, cheap to import (`pmtop ps` has 100 ms).
"""

from __future__ import annotations

import time

from .states import UP_STATES, ProcessState

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Iterable, Sequence
    from typing import Final

RETRY_NOW_WITHIN: Final = 0.05
"""Seconds: a retry this close is shown as `now` (it happens before the next tick would show it)."""


def duration(seconds: float | None) -> str:
    """`4s`, `3m12s`, `2h05m`, `3d04h`: two units at most, so the width stays small."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def precise_duration(seconds: float) -> str:
    """A run's length in the history: `0.4s`, `12.0s`, then as `duration`."""
    return f"{seconds:.1f}s" if seconds < 60 else duration(seconds)


def uptime_seconds(state: str, pid: int | None, started_at: float | None, now: float) -> float | None:
    """How long the current run has been up; None when no run is in progress (nothing to time)."""
    if state not in UP_STATES or pid is None or started_at is None:
        return None
    return float(now - started_at)


def _retry_when(next_retry_at: float, now: float) -> str:
    left = next_retry_at - now
    if left <= RETRY_NOW_WITHIN:
        return "now"
    return f"in {left:.1f}s" if left < 60 else f"in {duration(left)}"


def countdown(next_retry_at: float | None, now: float) -> str:
    """`retry in 3.4s` until the backoff ends, then `retry now` until the supervisor acts."""
    return "" if next_retry_at is None else f"retry {_retry_when(next_retry_at, now)}"


def next_run(next_run_at: float | None, state: str, now: float) -> str:
    """`next run in 3m12s` for a scheduled process between runs (SPEC §11); empty while a run is up."""
    if next_run_at is None or state in UP_STATES:
        return ""
    left = next_run_at - now
    return "next run now" if left < 0.5 else f"next run in {duration(left + 0.999)}"


def live_reason(reason: str, state: str, next_retry_at: float | None, now: float,
                next_run_at: float | None = None) -> str:
    """The reason line as of `now`: a retrying process's reason gains its countdown, and a scheduled
    one's, between runs, its next run (`exit 0 after 1.2s; next run in 3m12s`).

    The core's reason says what happened and which retry comes (`exit 1 after 0.4s; retry 3/5`), and
    `next_retry_at` says when; the countdown is made here, when the line is shown, so it never goes
    stale: `exit 1 after 0.4s; retry 3/5 in 3.4s`, then `exit 1 after 0.4s; retry 3/5 now`.
    """
    if state != ProcessState.RETRYING or next_retry_at is None:
        upcoming = next_run(next_run_at, state, now)
        if upcoming:
            return f"{reason}; {upcoming}" if reason else upcoming
        return reason
    when = _retry_when(next_retry_at, now)
    if reason.rpartition("; ")[2].startswith("retry"):
        return f"{reason} {when}"
    return f"{reason}; retry {when}" if reason else f"retry {when}"


def name_slot(name: str, slots: int, order: Sequence[str] = ()) -> int:
    """Which of `slots` colours a process's name gets in the merged log view, the same in the CLI and
    the dashboard: its place in the declaration `order` (so the first `slots` processes all differ),
    else a checksum of the name (stable from run to run)."""
    if name in order:
        return list(order).index(name) % slots
    import zlib

    return zlib.crc32(name.encode()) % slots


def line_time(epoch: float, now: float) -> str:
    """A log line's time: `14:05:03.123`, with the date for a line of another day."""
    local = time.localtime(epoch)
    stamp = time.strftime("%H:%M:%S", local) + f".{int(epoch * 1000) % 1000:03d}"
    if time.strftime("%Y-%m-%d", local) != time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%Y-%m-%d ", local) + stamp
    return stamp


def size(n_bytes: int | None) -> str:
    """Resident memory the way top shows it: `812K`, `54.3M`, `1.2G` (binary multiples)."""
    if n_bytes is None:
        return ""
    value = float(n_bytes)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if unit in ("B", "K"):
                return f"{value:.0f}{unit}"
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def percent(value: float | None) -> str:
    """`12.3` (the column or label says it is a percentage)."""
    return "" if value is None else f"{value:.1f}"


def signal_name(signum: int) -> str:
    """`SIGKILL`, or `signal 77` for a number this system has no name for."""
    import signal  # only for a killed process: `pmtop ps` does not pay for it otherwise

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(code: int | None) -> str:
    """`0`, `1`, or the signal that killed it: `SIGKILL` (negative codes, as `subprocess` reports them)."""
    if code is None:
        return ""
    return signal_name(-code) if code < 0 else str(code)


def ports(values: Iterable[int], declared: int | None = None) -> str:
    """`8000,8001`; a declared `port` that nothing listens on (yet) in parentheses first: `(8000)`."""
    shown = [str(p) for p in values]
    if declared is not None and str(declared) not in shown:
        shown.insert(0, f"({declared})")
    return ",".join(shown)


def clock_time(epoch: float | None) -> str:
    """`2024-05-01 14:03:22`, local time."""
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def truncate(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis (names and ports are ASCII; one char, one cell)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
