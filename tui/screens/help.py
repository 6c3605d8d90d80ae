"""`?`: every key (as remapped by the user's keymap), and what each state means, in the theme's colours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pmtop.core.model import ProcessState

from ..actions import KeyRow, bindings
from ..theming import CellStyles

STATE_MEANINGS: Final = {
    ProcessState.STOPPED: "not running: never started, stopped, or exited cleanly",
    ProcessState.STARTING: "waiting for its dependencies, or not yet past its startup check",
    ProcessState.RUNNING: "up and (if checked) healthy",
    ProcessState.STOPPING: "stop signal sent, waiting for it to exit",
    ProcessState.CRASHED: "exited unexpectedly or failed health; deciding whether to restart",
    ProcessState.RETRYING: "waiting out a backoff delay (see the countdown); s retries now",
    ProcessState.FAILED: "gave up restarting; s retries with a fresh count",
    ProcessState.DISABLED: "will not start until enabled (e)",
}


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("help")

    def __init__(self, sections: Sequence[tuple[str, list[KeyRow]]], styles: CellStyles) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections
        self.cell_styles = styles

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static("pmtop — keys", classes="dialog-title")
            for title, rows in self.sections:
                yield Static(title, classes="section-title")
                yield Static(self._keys(rows))
            yield Static("States", classes="section-title")
            yield Static(self._states())
            yield Static(
                "Ctrl+P opens the command palette: every action, also per process (\"restart web\"). "
                "Keys are remapped in keymap.toml in the user config dir (binding id = \"keys\"). "
                "Space marks rows; s, x, r, e and d then act on every marked row.",
                classes="dialog-detail",
            )

    @staticmethod
    def _keys(rows: list[KeyRow]) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, min_width=12)
        table.add_column(no_wrap=True)
        table.add_column(style="dim")
        for keys, description, tooltip in rows:
            table.add_row(keys, description, tooltip)
        return table

    def _states(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, min_width=12)
        table.add_column()
        for state, meaning in STATE_MEANINGS.items():
            table.add_row(Text(state.value, style=self.cell_styles.states[state]), meaning)
        return table
