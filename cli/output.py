"""What the client commands print: aligned tables, humanised numbers, and colour only for a terminal.

Statuses arrive as the API's JSON objects (`ProcessStatus.to_dict()`) and are formatted from those
directly: building `ProcessStatus` objects would import `pmtop.core.model`, a cost `pmtop ps` cannot
afford (see `client.py`). Colour is ANSI, used only when the stream is a terminal and `NO_COLOR` is
unset (https://no-color.org); widths are measured on the plain text, so colour never shifts a column.
"""

from __future__ import annotations

import os
import re
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, Final, TextIO

    Status = Mapping[str, Any]

RESET: Final = "\033[0m"
STATE_COLOURS: Final = {
    "running": "\033[32m",  # green
    "starting": "\033[36m",  # cyan
    "stopping": "\033[36m",
    "retrying": "\033[33m",  # yellow
    "crashed": "\033[31m",  # red
    "failed": "\033[1;31m",  # bold red
    "stopped": "\033[2m",  # dim
    "disabled": "\033[2m",
}
HEALTH_COLOURS: Final = {"healthy": "\033[32m", "unhealthy": "\033[31m"}
LIVE_STATES: Final = frozenset({"starting", "running", "stopping"})
"""States in which `started_at` is the start of the current run, so an uptime makes sense."""
COLUMNS: Final = ("NAME", "STATE", "PID", "PORTS", "HEALTH", "RESTARTS", "UPTIME", "CPU", "MEM", "REASON")
GAP: Final = "  "
_STALE_COUNTDOWN: Final = re.compile(r"\bin \d+(?:\.\d+)?s\b(?!.*\bin \d+(?:\.\d+)?s\b)")
"""The last `in 4.0s` of a retrying process's reason: the core wrote it when the wait began."""


def use_colour(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, code: str | None, colour: bool) -> str:
    return f"{code}{text}{RESET}" if colour and code else text


# ------------------------------------------------------------------------------------------ numbers

def duration(seconds: float) -> str:
    """`45s`, `3m12s`, `2h05m`, `3d04h`: two units at most, like `docker ps`."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def size(n: int) -> str:
    """`512 B`, `24.1 MB`, `1.2 GB`, in binary multiples like pmtop's `log_max_bytes` and top."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def countdown(next_retry_at: float, now: float) -> str:
    return f"{max(0.0, next_retry_at - now):.1f}s"


# ------------------------------------------------------------------------------------------ columns

def uptime_cell(status: Status, now: float) -> str:
    started = status.get("started_at")
    if status.get("state") in LIVE_STATES and isinstance(started, int | float):
        return duration(now - started)
    return "-"


def reason_cell(status: Status, now: float) -> str:
    """The reason line; a retrying process's countdown is recomputed from `next_retry_at`."""
    reason = str(status.get("reason") or "")
    retry_at = status.get("next_retry_at")
    if status.get("state") != "retrying" or not isinstance(retry_at, int | float):
        return reason
    live = f"in {countdown(retry_at, now)}"
    if _STALE_COUNTDOWN.search(reason):
        return _STALE_COUNTDOWN.sub(live, reason)
    return f"{reason}; retry {live}" if reason else f"retry {live}"


def row(status: Status, now: float) -> list[str]:
    pid = status.get("pid")
    cpu = status.get("cpu_percent")
    rss = status.get("memory_rss")
    ports = status.get("ports") or ()
    return [
        str(status.get("name", "?")),
        str(status.get("state", "?")),
        str(pid) if pid else "-",
        ",".join(str(p) for p in ports) or "-",
        str(status.get("health") or "unknown"),
        str(status.get("restarts", 0)),
        uptime_cell(status, now),
        f"{cpu:.1f}%" if isinstance(cpu, int | float) else "-",
        size(rss) if isinstance(rss, int) else "-",
        reason_cell(status, now),
    ]


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    *,
    colours: Mapping[int, Mapping[str, str]] | None = None,
    colour: bool = False,
    width: int | None = None,
) -> str:
    """Aligned columns separated by two spaces; the last column is not padded (it is cut at
    `width`, when given, so a long reason never wraps a terminal's line)."""
    body = [list(r) for r in rows]
    if header is not None:
        body.insert(0, list(header))
    if not body:
        return ""
    widths = [max(len(r[i]) for r in body) for i in range(len(body[0]))]
    lines = []
    for index, cells in enumerate(body):
        is_header = header is not None and index == 0
        parts = []
        for i, cell in enumerate(cells):
            last = i == len(cells) - 1
            text = cell if last else cell.ljust(widths[i])
            if width is not None and last:
                room = max(0, width - sum(w + len(GAP) for w in widths[:-1]))
                text = text if len(text) <= room else text[: max(0, room - 1)] + "…"
            code = None if is_header else (colours or {}).get(i, {}).get(cell)
            parts.append(paint(text, code, colour) if code else text)
        line = GAP.join(parts).rstrip()
        lines.append(paint(line, "\033[1m", colour) if is_header else line)
    return "\n".join(lines)


def process_table(statuses: Iterable[Status], *, colour: bool = False, width: int | None = None,
                  now: float | None = None) -> str:
    moment = time.time() if now is None else now
    return table(COLUMNS, (row(s, moment) for s in statuses), colours={1: STATE_COLOURS, 4: HEALTH_COLOURS},
                 colour=colour, width=width)


def status_lines(statuses: Sequence[Status], *, colour: bool = False, now: float | None = None) -> str:
    """One line per status for what an action did: `web  running  pid 4242  started`."""
    moment = time.time() if now is None else now
    rows = []
    for s in statuses:
        pid = s.get("pid")
        rows.append([str(s.get("name", "?")), str(s.get("state", "?")), f"pid {pid}" if pid else "-",
                     reason_cell(s, moment)])
    return table(None, rows, colours={1: STATE_COLOURS}, colour=colour)


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in items)


def counts_line(counts: Mapping[str, int], total: int) -> str:
    """`5: 3 running, 1 failed, 1 stopped` (states with no process left out)."""
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return f"{total}" + (f": {', '.join(parts)}" if parts else "")
