"""`/`: the filter line under the table. It stays in view while a filter is active, so a shortened
table never looks like missing processes."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label


class FilterInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(FilterBar.Done())

    async def action_submit(self) -> None:
        self.post_message(FilterBar.Done())

    def on_blur(self) -> None:
        bar = self.parent
        if isinstance(bar, FilterBar):
            bar.set_class(bool(self.value), "-active")


class FilterBar(Horizontal):
    """`filter / web run`: shown while typing, and afterwards as long as the filter is not empty."""

    class Done(Message):
        """The user is done typing (enter keeps the filter, escape clears it): focus goes back."""

    def compose(self) -> ComposeResult:
        yield Label("filter /", id="filter-label")
        yield FilterInput(placeholder="words of a name, or a state (failed, run…); enter keeps, escape clears",
                          id="filter", compact=True)

    def open(self) -> None:
        self.add_class("-active")
        self.query_one(FilterInput).focus()

    def clear_filter(self) -> None:
        self.query_one(FilterInput).value = ""
        self.remove_class("-active")

    def on_filter_bar_done(self, event: Done) -> None:
        self.set_class(bool(self.query_one(FilterInput).value), "-active")
