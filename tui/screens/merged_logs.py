"""Every process's output in one view (`L`), in the order it was written (SPEC §11).

`Controller.follow_merged` gives the last lines of every process, then each new line, each with its
time and its process's name; a line reads `14:05:03.123 web-1 | ...`, the name in its process's colour
(the same colour as in `pmtop logs --all`: `formats.name_slot`), stderr lines marked with a red bar.
It is the log pane's screen with another source: `/` searches, `n`/`N` jump, `f` pauses following,
`tab` shows both streams, stdout only or stderr only, `escape` goes back. Opened on a folded group of
replicas, it shows that group's output only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar, Final

from rich.text import Text
from textual.widgets import Static

from pmtop.core import formats
from pmtop.core.model import LogLine

from ..widgets.log_pane import LogPane, SearchHighlighter
from .logs import BACKLOG, LogScreen

NAME_COLOURS: Final = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow",
                       "bright_green", "bright_magenta", "bright_blue")
"""The colour families of the CLI's `NAME_COLOURS`, slot for slot."""
STREAM_VIEWS: Final = ("both", "stdout", "stderr")
_LINE: Final = re.compile(r"^((?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{3}) (\S*)(\s*) ([|!]) ")


class MergedHighlighter(SearchHighlighter):
    """The time dim, the name in its colour, a stderr line's bar red; then the search term."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        """The processes in declaration order: their colours."""

    def highlight(self, text: Text) -> None:
        match = _LINE.match(text.plain)
        if match is not None:
            text.stylize("dim", *match.span(1))
            name = match.group(2)
            if name:
                slot = formats.name_slot(name, len(NAME_COLOURS), self.order)
                text.stylize(f"bold {NAME_COLOURS[slot]}", *match.span(2))
            if match.group(4) == "!":
                text.stylize("bold red", *match.span(4))
        super().highlight(text)


class MergedLogScreen(LogScreen):
    def __init__(self, names: list[str] | None = None, *, title: str = "every process") -> None:
        super().__init__("", stream="both")
        self.names = names
        self.heading = title
        self.width = 0

    def make_pane(self) -> LogPane:
        return LogPane(id="log", highlighter=MergedHighlighter())

    def on_mount(self) -> None:
        store = self.pmtop.store
        self.width = max((len(n) for n in (self.names or store.statuses)), default=0)
        pane = self.query_one(LogPane)
        if isinstance(pane.highlighter, MergedHighlighter):
            pane.highlighter.order = sorted(store.order, key=store.order.__getitem__)
        super().on_mount()

    def _statuses_changed(self, names: set[str]) -> None:
        pass

    def _show_title(self, *_: object) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.heading} ", style="bold reverse")
        text.append("  merged in the order it was written")
        for view in STREAM_VIEWS:
            text.append("  ")
            text.append(f" {view} ", style="bold reverse" if view == self.stream else "dim")
        text.append("  following" if self.following else "  paused (f follows)", style="italic")
        if self.match is not None:
            text.append(f"  match {self.match[0]}/{self.match[1]}")
        if self.problem:
            text.append(f"  {self.problem}", style="bold")
        if text != self._title or text.spans != self._title.spans:
            self._title = text
            self.query_one("#log-title", Static).update(text)

    def format_line(self, line: LogLine, now: float) -> str:
        self.width = max(self.width, len(line.name))
        bar = "!" if line.stream == "stderr" else "|"
        return f"{formats.line_time(line.time, now)} {line.name.ljust(self.width)} {bar} {line.text}"

    ENDED: ClassVar[str] = "(the supervisor stopped)"

    @asynccontextmanager
    async def lines(self) -> AsyncIterator[AsyncIterator[str | None]]:
        async with self.pmtop.controller.follow_merged(self.names, lines=BACKLOG) as merged:
            yield (self._shown(line) async for line in merged)

    def _shown(self, line: LogLine) -> str | None:
        if self.stream != "both" and line.stream and line.stream != self.stream:
            return None
        return self.format_line(line, self.pmtop.clock())

    def action_toggle_stream(self) -> None:
        self.stream = STREAM_VIEWS[(STREAM_VIEWS.index(self.stream) + 1) % len(STREAM_VIEWS)]
        self.match = None
        self._show_title()
        self.follow()
