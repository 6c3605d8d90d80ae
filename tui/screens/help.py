"""`?`: every key (as remapped by the user's keymap), and what each state means, in the theme's colours."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pmtop.core.model import ProcessState

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

KeyRow = tuple[str, str, str]
"""(keys as shown, what it does, more detail)."""


def key_rows(app: App[Any], bindings: Iterable[BindingType], keymap: Mapping[str, str]) -> list[KeyRow]:
    """One row per action, with the keys the user's keymap gives it (else the defaults)."""
    rows: dict[str, KeyRow] = {}
    for item in bindings:
        binding = item if isinstance(item, Binding) else Binding(*item)
        if binding.system:
            continue
        keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
        shown = " / ".join(app.get_key_display(binding.with_key(k.strip())) for k in keys.split(","))
        rows.setdefault(binding.action, (shown, binding.description, binding.tooltip))
    return list(rows.values())


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help-close"),
    ]

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
