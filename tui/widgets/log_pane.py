"""A log view that highlights what is searched for and can jump between matches.

Built on Textual's `Log` (plain lines, cheap to append to, virtual scrolling), with its highlighter
swapped for one that marks the search term, so a search costs no re-render of lines off screen.
"""

from __future__ import annotations

import re

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

MAX_LINES = 10_000
"""Lines kept in view; older ones scroll away (the files on disk keep everything)."""


class SearchHighlighter(Highlighter):
    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None

    def highlight(self, text: Text) -> None:
        if self.pattern is not None:
            text.highlight_regex(self.pattern, style="black on yellow")


class LogPane(Log):
    def __init__(self, *, id: str | None = None, highlighter: SearchHighlighter | None = None) -> None:
        super().__init__(highlight=True, max_lines=MAX_LINES, auto_scroll=True, id=id)
        self.highlighter = self._search = highlighter or SearchHighlighter()
        self.term = ""
        self.match_index: int | None = None
        """Which match (0-based, in line order) was jumped to last."""

    def set_term(self, term: str) -> None:
        self.term = term
        self._search.pattern = re.compile(re.escape(term), re.IGNORECASE) if term else None
        self.match_index = None
        self.notify_style_update()  # drops the line cache, so visible lines are highlighted again
        self.refresh()

    def matches(self) -> list[int]:
        if not self.term:
            return []
        needle = self.term.lower()
        return [y for y, line in enumerate(self.lines) if needle in line.lower()]

    def jump(self, forward: bool = True) -> tuple[int, int] | None:
        """Scroll to the next (or previous) matching line; (match number, total) or None if none."""
        found = self.matches()
        if not found:
            return None
        if self.match_index is None:
            top = int(self.scroll_y)
            after = [i for i, y in enumerate(found) if y >= top]
            index = (after[0] if after else 0) if forward else ((after[0] - 1) if after else len(found) - 1)
        else:
            index = self.match_index + (1 if forward else -1)
        index %= len(found)
        self.match_index = index
        self.auto_scroll = False
        self.scroll_to(y=max(0, found[index] - self.size.height // 2), animate=False)
        return index + 1, len(found)
