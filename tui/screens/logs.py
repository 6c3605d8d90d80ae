"""The log pane (`enter` / `l`): the selected process's output, following, across restarts.

One worker follows one stream through `Controller.follow` (the tail of the current run, then each new
line); lines are buffered and written in batches, so a chatty process costs one repaint per batch.
`tab` switches stdout/stderr (a new follower, from that stream's tail), `f` pauses or resumes
following, `/` searches (matches highlighted, `n`/`N` jump), `escape` goes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static

from pmtop.core.errors import DaemonUnavailable, NoSuchProcess, PmtopError

from ..actions import bindings
from ..widgets.log_pane import LogPane
from .base import DashboardScreen

BACKLOG: Final = 1000
"""Lines of the current run shown on opening (and on switching streams)."""
WRITE_DELAY: Final = 0.03
RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 5.0)


class SearchInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close search", show=False)]

    def action_close(self) -> None:
        self.remove_class("-active")
        self.screen.query_one(LogPane).focus()


class LogScreen(DashboardScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("logs")

    def __init__(self, name: str, stream: str = "stdout") -> None:
        super().__init__(classes="logs-screen")
        self.process = name
        self.stream = stream
        self.problem: str | None = None
        self.match: tuple[int, int] | None = None
        self._buffer: list[str] = []
        self._write_scheduled = False
        self._catching_up = False
        """New lines were written while following; the scroll to the end waits for their size."""
        self._title = Text()

    def make_pane(self) -> LogPane:
        return LogPane(id="log")

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        yield self.make_pane()
        yield SearchInput(placeholder="search (enter: find, n/N: next/previous, escape: close)", id="log-search",
                          compact=True)
        yield Footer()

    @property
    def following(self) -> bool:
        """New lines scroll into view: following is on, and the view is at the end (not scrolled back),
        or is about to be (lines just written, the scroll to the end pending)."""
        pane = self.query_one(LogPane)
        return pane.auto_scroll and (pane.is_vertical_scroll_end or self._catching_up)

    def on_mount(self) -> None:
        self.pmtop.store.changed.subscribe(self, self._statuses_changed)
        pane = self.query_one(LogPane)
        self.watch(pane, "scroll_y", self._show_title, init=False)
        pane.focus()
        self._show_title()
        self.follow()

    def _statuses_changed(self, names: set[str]) -> None:
        if self.process in names:
            self._show_title()

    def _show_title(self, *_: object) -> None:
        status = self.pmtop.store.get(self.process)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.process} ", style="bold reverse")
        if status is not None:
            styles = self.pmtop.cell_styles()
            text.append("  ")
            text.append(status.state.value, style=styles.states[status.state])
            if status.pid is not None:
                text.append(f"  pid {status.pid}")
        for stream in ("stdout", "stderr"):
            text.append("  ")
            text.append(f" {stream} ", style="bold reverse" if stream == self.stream else "dim")
        text.append("  following" if self.following else "  paused (f follows)", style="italic")
        if self.match is not None:
            text.append(f"  match {self.match[0]}/{self.match[1]}")
        if self.problem:
            text.append(f"  {self.problem}", style="bold")
        if text != self._title or text.spans != self._title.spans:  # Static.update means a new layout
            self._title = text
            self.query_one("#log-title", Static).update(text)

    # -- following --------------------------------------------------------------------------------

    ENDED: ClassVar[str] = "(the process was removed, or the supervisor stopped)"

    def lines(self) -> AbstractAsyncContextManager[AsyncIterator[str | None]]:
        """What the pane follows: the lines to show (None: one to skip). The merged view overrides it."""
        return self.pmtop.controller.follow(self.process, self.stream, lines=BACKLOG)

    @work(exclusive=True, group="log-follow", exit_on_error=False)
    async def follow(self) -> None:
        pane = self.query_one(LogPane)
        attempt = 0
        while True:
            pane.clear()
            self._buffer.clear()
            try:
                async with self.lines() as lines:
                    self._set_problem(None)
                    attempt = 0
                    async for line in lines:
                        if line is None:
                            continue
                        self._buffer.append(line)
                        if not self._write_scheduled:
                            self._write_scheduled = True
                            self.set_timer(WRITE_DELAY, self._write)
                self._set_problem(self.ENDED)
                return
            except NoSuchProcess:
                self._set_problem("(no such process any more)")
                return
            except (DaemonUnavailable, OSError):
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                self._set_problem(f"daemon lost — reconnecting (attempt {attempt})")
                await asyncio.sleep(delay)
            except PmtopError as exc:
                self._set_problem(exc.message)
                return

    def _write(self) -> None:
        self._write_scheduled = False
        panes = self.query(LogPane)  # the screen may be closing: its timer can outlive its widgets
        if self._buffer and panes:
            lines, self._buffer = self._buffer, []
            pane = panes.first()
            following = self.following
            pane.write_lines(lines, scroll_end=False)
            if following:  # once the new size is known (an immediate scroll would use the old one)
                self._catching_up = True
                pane.call_after_refresh(self._catch_up, pane)

    def _catch_up(self, pane: LogPane) -> None:
        self._catching_up = False
        if pane.auto_scroll:  # unless `f` paused it meanwhile
            pane.scroll_end(animate=False)

    def _set_problem(self, problem: str | None) -> None:
        self.problem = problem
        self._show_title()

    # -- actions ----------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_toggle_stream(self) -> None:
        self.stream = "stderr" if self.stream == "stdout" else "stdout"
        self.match = None
        self._show_title()
        self.follow()

    def action_toggle_follow(self) -> None:
        pane = self.query_one(LogPane)
        follow = not self.following
        pane.auto_scroll = follow
        if follow:
            pane.scroll_end(animate=False, immediate=True)
        self._show_title()

    def action_search(self) -> None:
        search = self.query_one(SearchInput)
        search.add_class("-active")
        search.focus()

    @on(Input.Submitted, "#log-search")
    def _search(self, event: Input.Submitted) -> None:
        pane = self.query_one(LogPane)
        pane.set_term(event.value.strip())
        pane.focus()
        self.action_jump(True)

    def action_jump(self, forward: bool) -> None:
        pane = self.query_one(LogPane)
        if not pane.term:
            self.action_search()
            return
        self.match = pane.jump(forward)
        if self.match is None:
            self.notify(f"No line contains {pane.term!r}.", severity="warning")
        self._show_title()
