"""`q` in local mode with processes still running: stop them all, or hand them to a headless daemon."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from ..actions import bindings


class QuitChoice(StrEnum):
    """How the dashboard ended; the caller of `run_app` acts on it (the dashboard never does)."""

    STOP_ALL = "stop-all"
    """Local mode: stop every process, then exit."""
    HAND_OVER = "hand-over"
    """Local mode: leave the processes running and let a headless daemon adopt them."""
    DETACH = "detach"
    """Attached mode: the daemon keeps running; nothing to do."""


class QuitScreen(ModalScreen[QuitChoice | None]):
    """Dismissed with the choice, or None to stay."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("quit")

    def __init__(self, running: int) -> None:
        super().__init__(classes="dialog-screen")
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            noun = "process is" if self.running == 1 else "processes are"
            yield Label(f"Quit pmtop? {self.running} {noun} still active.", classes="dialog-title")
            yield Label(
                "Stop them all, or hand them to a headless pmtop daemon that keeps them running "
                "(reattach later with `pmtop`).",
                classes="dialog-detail",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop all and quit (s)", variant="error", id="stop-all", compact=True)
                yield Button("Keep running and quit (h)", variant="primary", id="hand-over", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss(QuitChoice(choice) if choice else None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose("" if event.button.id == "cancel" else str(event.button.id))
