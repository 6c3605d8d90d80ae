"""The header: who supervises (instance, address, mode, PID, uptime), how many processes are in each
state, and whether the daemon is reachable. A lost daemon is a state shown here, never a crash.

Over a fleet it names each daemon with how it is reached (`web1 up  web2 lost — reconnecting  db1
refused: wrong token`), in the colour of a running, retrying or failed process; over a fleet of one,
also that daemon's instance, PID and uptime, as when attached."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from pmtop.core import formats as fmt
from pmtop.core.model import HostLink, LinkState, ProcessState, SupervisorInfo

from ..state import Mode
from ..theming import CellStyles


class StatusHeader(Widget):
    """One line when it fits, else two (supervisor facts, then counts)."""

    DEFAULT_CSS = """
    StatusHeader { height: auto; }
    """

    info: reactive[SupervisorInfo | None] = reactive(None, layout=True)
    counts: reactive[dict[ProcessState, int]] = reactive(dict, layout=True)
    lost: reactive[str | None] = reactive(None, layout=True)
    """Why the daemon cannot be reached, while it cannot (attached mode)."""
    read_only: reactive[bool] = reactive(False)
    links: reactive[tuple[HostLink, ...]] = reactive(tuple, layout=True)
    """A fleet's daemons, each as reached now (fleet mode)."""

    def __init__(self, mode: Mode, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = mode
        self.clock = clock
        self.styles_for_cells: CellStyles | None = None

    def count(self, counts: Mapping[ProcessState, int]) -> None:
        if counts != self.counts:  # a new layout only when a count changed, not on every update
            self.counts = dict(counts)

    def restyle(self, styles: CellStyles) -> None:
        self.styles_for_cells = styles
        self.refresh(layout=True)

    def _left(self) -> Text:
        if self.mode == "fleet":
            return self._fleet()
        text = Text.assemble(("pmtop", "bold"))
        info = self.info
        if info is not None:
            address = f"{info.host}:{info.port}" if info.host and info.port else "no API"
            uptime = fmt.duration(self.clock() - info.started_at)
            text.append(f"  {info.instance}  {address}  {self.mode}  pid {info.pid}  up {uptime}")
        else:
            text.append(f"  {self.mode}  connecting…")
        if self.read_only or (info is not None and info.read_only):
            text.append("  read-only", style="bold")
        if info is not None and info.partner is not None:  # SPEC §9: the watcher pair
            text.append(f"  partner: {info.partner}", style="" if info.partner == "up" else "bold")
        if self.lost is not None:
            text.append("  ")
            text.append(f" {self.lost} ", style="bold reverse")
        return text

    def _fleet(self) -> Text:
        text = Text.assemble(("pmtop", "bold"), "  fleet")
        styles = self.styles_for_cells
        for link in self.links:
            text.append("  ")
            text.append(link.host, style="bold")
            text.append(" ")
            state = LINK_STATES[link.state]
            text.append(link_word(link), style=styles.states[state] if styles is not None else "")
        if len(self.links) == 1 and self.links[0].up and self.links[0].info is not None:
            info = self.links[0].info
            text.append(f"  {info.instance}  pid {info.pid}  up {fmt.duration(self.clock() - info.started_at)}")
        if self.read_only:
            text.append("  read-only", style="bold")
        return text

    def _right(self) -> Text:
        text = Text(no_wrap=True)
        styles = self.styles_for_cells
        for state in ProcessState:
            n = self.counts.get(state, 0)
            if not n:
                continue
            if text:
                text.append("  ")
            style = styles.states[state] if styles is not None else ""
            text.append(f"{n} ", style="bold")
            text.append(state.value, style=style)
        if not text:
            text.append("no processes")
        return text

    def render(self) -> RenderableType:
        left, right = self._left(), self._right()
        width = self.size.width or 80
        if left.cell_len + right.cell_len + 4 <= width:
            grid = Table.grid(expand=True, padding=0)
            grid.add_column(ratio=1, no_wrap=True)
            grid.add_column(justify="right", no_wrap=True)
            grid.add_row(left, right)
            return grid
        left.no_wrap = right.no_wrap = True
        left.overflow = right.overflow = "ellipsis"
        return Text("\n").join([left, right])


LINK_STATES = {LinkState.UP: ProcessState.RUNNING, LinkState.CONNECTING: ProcessState.STARTING,
               LinkState.RECONNECTING: ProcessState.RETRYING, LinkState.REFUSED: ProcessState.FAILED}
"""The colour of each link state: that of the process state that reads alike."""


def link_word(link: HostLink) -> str:
    """`up`, `connecting…`, `lost — reconnecting`, `refused: wrong token`: how the header says it."""
    if link.state is LinkState.UP:
        return "up"
    if link.state is LinkState.CONNECTING:
        return "connecting…"
    if link.state is LinkState.REFUSED:
        return f"refused: {link.detail}" if link.detail else "refused"
    return "lost — reconnecting"
