"""What the client commands print: aligned tables, and colour only for a terminal.

Numbers, times and reasons read as in the dashboard: `pmtop.core.formats` makes them, `pmtop.core.states`
says which states mean what. Statuses arrive as the API's JSON objects (`ProcessStatus.to_dict()`) and
are formatted from those directly: building `ProcessStatus` objects would import `pmtop.core.model`, a
cost `pmtop ps` cannot afford (see `client.py`); the state strings compare equal to the `StrEnum`
members. What is left here is the CLI's own: a `-` for a blank cell (so columns split on whitespace),
ANSI colour, used only when the stream is a terminal and `NO_COLOR` is unset (https://no-color.org),
and alignment, measured on the plain text so colour never shifts a column.
"""

from __future__ import annotations

import os
import time

from pmtop.core import formats
from pmtop.core.states import Health, ProcessState

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, Final, TextIO

    Status = Mapping[str, Any]

RESET: Final = "\033[0m"
STATE_COLOURS: Final[dict[str, str]] = {
    ProcessState.RUNNING: "\033[32m",  # green
    ProcessState.STARTING: "\033[36m",  # cyan
    ProcessState.STOPPING: "\033[36m",
    ProcessState.RETRYING: "\033[33m",  # yellow
    ProcessState.CRASHED: "\033[31m",  # red
    ProcessState.FAILED: "\033[1;31m",  # bold red
    ProcessState.STOPPED: "\033[2m",  # dim
    ProcessState.DISABLED: "\033[2m",
}
HEALTH_COLOURS: Final[dict[str, str]] = {Health.HEALTHY: "\033[32m", Health.UNHEALTHY: "\033[31m"}
COLUMNS: Final = ("NAME", "STATE", "PID", "PORTS", "HEALTH", "RESTARTS", "UPTIME", "CPU%", "MEM", "REASON")
GAP: Final = "  "
BLANK: Final = "-"
"""What an empty cell shows, so that every line splits into the same number of columns."""


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


# ------------------------------------------------------------------------------------------ columns

def row(status: Status, now: float) -> list[str]:
    state = str(status.get("state", "?"))
    return [
        str(status.get("name", "?")),
        state,
        str(status.get("pid") or BLANK),
        formats.ports(status.get("ports") or (), status.get("port")) or BLANK,
        str(status.get("health") or Health.UNKNOWN),
        str(status.get("restarts", 0)),
        formats.duration(formats.uptime_seconds(state, status.get("pid"), status.get("started_at"), now)) or BLANK,
        formats.percent(status.get("cpu_percent")) or BLANK,
        formats.size(status.get("memory_rss")) or BLANK,
        reason_cell(status, now),
    ]


def reason_cell(status: Status, now: float) -> str:
    """The reason line; a retrying process's gains its live countdown (from `next_retry_at`), a
    scheduled one's its next run (from `next_run_at`)."""
    return formats.live_reason(str(status.get("reason") or ""), str(status.get("state")),
                               status.get("next_retry_at"), now, status.get("next_run_at"))


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
                text = formats.truncate(text, room)
            code = None if is_header else (colours or {}).get(i, {}).get(cell)
            parts.append(paint(text, code, colour) if code else text)
        line = GAP.join(parts).rstrip()
        lines.append(paint(line, "\033[1m", colour) if is_header else line)
    return "\n".join(lines)


def process_table(statuses: Iterable[Status], *, colour: bool = False, width: int | None = None,
                  now: float | None = None, hosts: bool = False) -> str:
    """The `pmtop ps` table; with `hosts`, a HOST column first (each status's `host`: `ps --fleet`)."""
    moment = time.time() if now is None else now
    if hosts:
        return table(("HOST", *COLUMNS), ([str(s.get("host") or BLANK), *row(s, moment)] for s in statuses),
                     colours={2: STATE_COLOURS, 5: HEALTH_COLOURS}, colour=colour, width=width)
    return table(COLUMNS, (row(s, moment) for s in statuses), colours={1: STATE_COLOURS, 4: HEALTH_COLOURS},
                 colour=colour, width=width)


def status_lines(statuses: Sequence[Status], *, colour: bool = False, now: float | None = None) -> str:
    """One line per status for what an action did: `web  running  pid 4242  started`."""
    moment = time.time() if now is None else now
    rows = []
    for s in statuses:
        pid = s.get("pid")
        rows.append([str(s.get("name", "?")), str(s.get("state", "?")), f"pid {pid}" if pid else BLANK,
                     reason_cell(s, moment)])
    return table(None, rows, colours={1: STATE_COLOURS}, colour=colour)


# ------------------------------------------------------------------------------ the merged log view

NAME_COLOURS: Final = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[96m", "\033[93m",
                       "\033[92m", "\033[95m", "\033[94m")
"""Each process's name in its own colour, as docker compose and foreman print theirs."""


def name_colour(name: str, order: Sequence[str] = ()) -> str:
    """The colour of a process's name (`formats.name_slot`, as the dashboard's)."""
    return NAME_COLOURS[formats.name_slot(name, len(NAME_COLOURS), order)]


class LogPainter:
    """Lines of the merged view: `14:05:03.123 web-1 | text` (the date too, for another day's lines)."""

    def __init__(self, *, colour: bool = False, now: float | None = None, order: Sequence[str] = ()) -> None:
        self.colour = colour
        self.now = time.time() if now is None else now
        self.order = list(order)
        """The processes in declaration order: their colours (and the name column's width)."""
        self.width = max((len(n) for n in self.order), default=0)

    def lines(self, items: Sequence[Mapping[str, Any]]) -> str:
        """A batch, its names in one column as wide as the widest."""
        self.width = max([self.width, *(len(str(item.get("name") or "")) for item in items)])
        return "\n".join(self.line(item) for item in items)

    def line(self, item: Mapping[str, Any]) -> str:
        name = str(item.get("name") or "")
        stamp = formats.line_time(float(item.get("time") or 0.0), self.now)
        self.width = max(self.width, len(name))
        label = paint(name.ljust(self.width), name_colour(name, self.order) if name else None, self.colour)
        bar = paint("|", "\033[31m" if item.get("stream") == "stderr" else None, self.colour)
        return f"{paint(stamp, chr(27) + '[2m', self.colour)} {label} {bar} {item.get('line', '')}"


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in items)


def counts_line(counts: Mapping[str, int], total: int) -> str:
    """`5: 3 running, 1 failed, 1 stopped` (states with no process left out)."""
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return f"{total}" + (f": {', '.join(parts)}" if parts else "")
