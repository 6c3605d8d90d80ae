"""The process table's columns: what each shows, how wide it is, and which to drop when space runs out.

Each column names the status fields it reads, so an update re-renders only the cells whose inputs
changed. Two columns also depend on the clock (`backoff`, `uptime`); timers refresh those. Widths are
fixed per column (the `name` column fits the names, the `reason` column takes what is left), so no
update ever makes the table re-measure 1,000 rows.

Over a fleet of several daemons a HOST column comes first (hidden with one host), the name column shows
each process's own name (`api`, not `web1/api`), and the rows of a daemon that is not reached now are
greyed: every cell in the muted colour, in italics, whatever its own colour was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from rich.style import Style
from rich.text import Text

from pmtop.core import formats as fmt
from pmtop.core.model import Health, ProcessState, ProcessStatus
from pmtop.core.states import ATTENTION_ORDER, CHECKED_STATES, TROUBLED_STATES

from ..theming import CellStyles

CELL_PADDING: Final = 1
NAME_MIN, NAME_MAX = 10, 28
HOST_MIN, HOST_MAX = 4, 20
REASON_MIN: Final = 24

STATE_RANK: Final = {state: rank for rank, state in enumerate(ATTENTION_ORDER)}
"""Sort order of the state column: what needs attention first."""


@dataclass(frozen=True, slots=True)
class CellContext:
    """What a cell needs beyond the status: the time, the theme's styles, the row's mark, its width,
    and whether its daemon is out of reach (the row shows what was last seen)."""

    now: float
    styles: CellStyles
    marked: bool = False
    width: int = 0
    folded: int = 0
    """For a row that stands for a group of replicas: how many."""
    greyed: bool = False


Render = Callable[[ProcessStatus, CellContext], Text]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    """Content width in cells (padding comes on top); the name and reason columns are sized at layout."""
    priority: int
    """0: always shown; higher numbers are dropped first when the terminal is narrow."""
    fields: tuple[str, ...]
    render: Render
    sort_key: Callable[[ProcessStatus], Any]
    justify: Literal["left", "right"] = "left"
    clock: bool = False
    """Depends on the time as well as on `fields` (refreshed by a timer)."""

    def cell(self, status: ProcessStatus, ctx: CellContext) -> Text:
        text = self.render(status, ctx)
        if ctx.greyed:
            text.stylize(ctx.styles.muted + GREYED)
        text.justify = self.justify
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text


GREYED: Final = Style(italic=True)
"""On top of the muted colour: a greyed row reads as not live, even where muted cells are usual."""


def _none_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


class NameCell(Text):
    """The name cell remembers its process's full name (the text may be truncated or marked), so that
    sorting, which sees only cells, can find the status."""

    def __init__(self, text: str, process_name: str, style: Style | str = "") -> None:
        super().__init__(text, style=style)
        self.process_name = process_name


BADGE_WATCHING: Final = "↻"
"""After the name: a change to its files restarts it (`watch`)."""
BADGE_HOOK_FAILED: Final = "!"
"""After the name: its last hook failed (the details say how)."""


def _name(s: ProcessStatus, ctx: CellContext) -> Text:
    """The name, with what sets it apart without a column of its own: `×3` for a folded group of
    replicas, `↻` while a watch can restart it, `!` when its last hook failed."""
    shown = f"● {s.local_name}" if ctx.marked else s.local_name
    room = max(0, ctx.width - badge_room(s, ctx.folded))
    badges = room < ctx.width
    cell = NameCell(fmt.truncate(shown, room), s.name, style=ctx.styles.accent if ctx.marked else "")
    if badges:
        cell.append(" ")
        if ctx.folded:
            cell.append(f"×{ctx.folded}", style=ctx.styles.muted)
        if s.watching:
            cell.append(BADGE_WATCHING, style=ctx.styles.accent)
        if s.hook_error:
            cell.append(BADGE_HOOK_FAILED, style=ctx.styles.error)
    return cell


def _host(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(fmt.truncate(s.host or "", ctx.width))


def _state(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(s.state.value, style=ctx.styles.states[s.state])


def _pid(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text("" if s.pid is None else str(s.pid))


def _ports(s: ProcessStatus, ctx: CellContext) -> Text:
    """The ports it listens on; its declared `port`, dimmed in parentheses, until it listens there too."""
    if s.port is None or s.port in s.ports:
        return Text(fmt.ports(s.ports))
    text = Text(f"({s.port})", style=ctx.styles.muted)
    if s.ports:
        text.append("," + fmt.ports(s.ports))
    return text


def _health(s: ProcessStatus, ctx: CellContext) -> Text:
    if s.state not in CHECKED_STATES and s.health is Health.UNKNOWN:
        return Text("")
    return Text(s.health.value, style=ctx.styles.health[s.health])


def _restarts(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(str(s.restarts), style=ctx.styles.muted if s.restarts == 0 else "")


def _backoff(s: ProcessStatus, ctx: CellContext) -> Text:
    """The retry countdown of a retrying process; a scheduled one's next run between its runs."""
    if s.state is not ProcessState.RETRYING:
        return Text(fmt.next_run(s.next_run_at, s.state, ctx.now), style=ctx.styles.muted)
    return Text(fmt.countdown(s.next_retry_at, ctx.now), style=ctx.styles.states[ProcessState.RETRYING])


def _uptime(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(fmt.duration(fmt.uptime_seconds(s.state, s.pid, s.started_at, ctx.now)))


def _cpu(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(fmt.percent(s.cpu_percent))


def _mem(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(fmt.size(s.memory_rss))


def _exit(s: ProcessStatus, ctx: CellContext) -> Text:
    """A non-zero exit is shown as an error only while it matters (the process is down because of it)."""
    text = fmt.exit_code(s.exit_code)
    alarming = s.exit_code not in (None, 0) and s.state in TROUBLED_STATES
    return Text(text, style=ctx.styles.error if alarming else ctx.styles.muted)


def _reason(s: ProcessStatus, ctx: CellContext) -> Text:
    return Text(s.reason, style=ctx.styles.muted)


COLUMNS: Final[tuple[Column, ...]] = (
    Column("host", "HOST", HOST_MIN, 0, ("host",), _host, lambda s: s.host or ""),
    # (a folded group's count changes with its reason, `3 replicas: ...`)
    Column("name", "NAME", NAME_MIN, 0, ("name", "watching", "hook_error", "reason"), _name, lambda s: s.name),
    Column("state", "STATE", 8, 0, ("state",), _state, lambda s: STATE_RANK[s.state]),
    Column("pid", "PID", 7, 3, ("pid",), _pid, lambda s: _none_last(s.pid), "right"),
    Column("ports", "PORTS", 11, 6, ("ports", "port"), _ports, lambda s: (not s.ports and s.port is None,
                                                                           s.ports or (s.port or 0,))),
    Column("health", "HEALTH", 9, 2, ("health", "state"), _health, lambda s: s.health.value),
    Column("restarts", "RESTARTS", 8, 3, ("restarts",), _restarts, lambda s: s.restarts, "right"),
    Column("backoff", "BACKOFF", 17, 1, ("state", "next_retry_at", "next_run_at"), _backoff,
           lambda s: _none_last(s.next_retry_at if s.state is ProcessState.RETRYING else s.next_run_at),
           clock=True),
    Column("uptime", "UPTIME", 6, 5, ("state", "pid", "started_at"), _uptime,
           lambda s: _none_last(-s.started_at if s.started_at is not None and s.pid is not None else None),
           "right", clock=True),
    Column("cpu", "CPU%", 5, 4, ("cpu_percent",), _cpu, lambda s: _none_last(s.cpu_percent), "right"),
    Column("mem", "MEM", 6, 4, ("memory_rss",), _mem, lambda s: _none_last(s.memory_rss), "right"),
    Column("exit", "EXIT", 7, 5, ("exit_code", "state"), _exit, lambda s: _none_last(s.exit_code), "right"),
    Column("reason", "REASON", REASON_MIN, 7, ("reason",), _reason, lambda s: s.reason),
)
BY_KEY: Final = {c.key: c for c in COLUMNS}


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns shown at one width, in display order, with their content widths."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    keys: tuple[str, ...] = field(init=False, compare=False)
    _width: dict[str, int] = field(init=False, compare=False, repr=False)
    """Key -> width: asked for every cell rendered, so made once."""

    def __post_init__(self) -> None:
        keys = tuple(c.key for c in self.columns)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_width", dict(zip(keys, self.widths, strict=True)))

    def width_of(self, key: str) -> int:
        return self._width[key]


def badge_room(status: ProcessStatus, folded: int = 0) -> int:
    """Cells the badges after a name take (` ×3↻!`)."""
    badges = (len(f"×{folded}") if folded else 0) + status.watching + bool(status.hook_error)
    return badges + 1 if badges else 0


def plan_layout(available: int, names: Iterable[str], badges: dict[str, int] | None = None,
                hosts: Sequence[str] = ()) -> Layout:
    """Which columns fit in `available` cells: by priority, kept in display order; the reason takes the rest.

    The name column is as wide as the longest name (within NAME_MIN..NAME_MAX, plus room for a mark and
    the name's `badges`); when even the essential columns do not fit, the name is truncated rather than a
    column lost. The HOST column is shown when there are several `hosts` (a fleet), as wide as the longest.
    """
    pad = 2 * CELL_PADDING
    extra = badges or {}
    longest = max((len(n) + extra.get(n, 0) for n in names), default=0) + 2  # room for a mark: "● web"
    name_width = max(NAME_MIN, min(NAME_MAX, longest))
    widths = {c.key: c.width for c in COLUMNS}
    widths["name"] = name_width
    widths["host"] = max(HOST_MIN, min(HOST_MAX, max((len(h) for h in hosts), default=0)))
    chosen = {c.key for c in COLUMNS if c.priority == 0 and (c.key != "host" or len(hosts) > 1)}
    used = sum(widths[k] + pad for k in chosen)
    if used > available:
        widths["name"] = max(4, name_width - (used - available))
        used = sum(widths[k] + pad for k in chosen)
    for column in sorted((c for c in COLUMNS if c.priority > 0 and c.key != "reason"), key=lambda c: c.priority):
        if used + column.width + pad <= available:
            chosen.add(column.key)
            used += column.width + pad
    room = available - used - pad
    if room >= REASON_MIN:
        chosen.add("reason")
        widths["reason"] = room
    columns = tuple(c for c in COLUMNS if c.key in chosen)
    return Layout(columns, tuple(widths[c.key] for c in columns))


def changed_columns(old: ProcessStatus, new: ProcessStatus, columns: Sequence[Column]) -> list[Column]:
    """The columns whose inputs differ between two statuses of one process."""
    return [c for c in columns if any(getattr(old, f) != getattr(new, f) for f in c.fields)]
