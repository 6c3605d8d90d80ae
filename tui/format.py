"""How numbers and times read in the dashboard: short, fixed-width friendly, and never raising.

Pure functions of their arguments (the current time is passed in), so the table, the header and the
details view agree, and tests need no clock. `None` always renders as the empty string: a fact the
supervisor does not know (yet) is left blank rather than shown as a misleading zero.
"""

from __future__ import annotations

import time

from pmtop.core.model import signal_name


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


def countdown(next_retry_at: float | None, now: float) -> str:
    """`retry in 3.4s` until the backoff ends, then `retry now` until the supervisor acts."""
    if next_retry_at is None:
        return ""
    left = next_retry_at - now
    if left <= 0.05:
        return "retry now"
    if left < 60:
        return f"retry in {left:.1f}s"
    return f"retry in {duration(left)}"


def size(n_bytes: int | None) -> str:
    """Resident memory the way top shows it: `812K`, `54.3M`, `1.2G`."""
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
    return "" if value is None else f"{value:.1f}"


def exit_code(code: int | None) -> str:
    """`0`, `1`, or the signal that killed it: `SIGKILL`."""
    if code is None:
        return ""
    return signal_name(-code) if code < 0 else str(code)


def ports(values: tuple[int, ...]) -> str:
    return ",".join(str(p) for p in values)


def clock_time(epoch: float | None) -> str:
    """`14:03:22` for today's run history; the date is in the details view's own header."""
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def truncate(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis (names and ports are ASCII; one char, one cell)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
