"""The command palette (Ctrl+P): every key's action, and each per-process action by name ("restart web").

Entries are built from the main screen's own bindings and `check_action`, so the palette offers exactly
what the keys would do, with the keys the user's keymap gives them, and nothing that makes no sense
for a process in its current state (no "stop" on a stopped process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

from textual.command import DiscoveryHit, Hit, Hits, Provider

from pmtop.core.model import ProcessState

from .widgets.columns import COLUMNS

if TYPE_CHECKING:
    from .screens.main import MainScreen

#: Per-process actions: (action, verb shown in the palette, help).
PROCESS_ACTIONS: Final = (
    ("start", "start", "Start it (a failed or retrying one is retried at once)"),
    ("stop", "stop", "Stop it (its whole process group)"),
    ("restart", "restart", "Stop it, then start it"),
    ("toggle_enabled", "disable", "Disable it (stops it; it will not start)"),
    ("logs", "logs of", "Follow its output"),
    ("details", "details of", "Config, reason and run history"),
    ("remove", "remove", "Stop and forget it (asks first)"),
    ("mark", "mark", "Mark it; actions apply to every marked process"),
)


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    help: str
    run: Callable[[], object]


def commands(screen: MainScreen, *, every_process: bool) -> Iterator[Command]:
    """Global commands, then per-process ones (for every process, or only the selected one)."""
    key = screen.pmtop.key_for
    allowed = screen.check_action
    globals_ = (
        ("add", "Add a process", "Open the form to add a process", screen.action_add),
        ("filter", "Filter the table", "By name or state", screen.action_filter),
        ("stop_all", "Stop all processes", "Stop every running process (asks first)", screen.action_stop_all),
        ("clear", "Clear marks and filter", "", screen.action_clear),
    )
    for action, text, help_, run in globals_:
        if allowed(action, ()):
            yield Command(text, _with_key(help_, key(action)), run)
    yield Command("Next theme", _with_key("Cycle through the themes", key("next_theme")), screen.pmtop.action_next_theme)
    yield Command("Help: keys and states", _with_key("", key("help")), screen.pmtop.action_help)
    for column in COLUMNS:
        yield Command(f"Sort by {column.label.lower()}", "Again to reverse; click a header too",
                      partial(screen.action_sort, column.key))
    yield Command("Sort in config order", "As declared in pmtop.toml", partial(screen.action_sort, ""))
    table = screen.table
    names = list(table.statuses) if every_process else [n for n in [table.selected] if n]
    read_only = screen.pmtop.read_only
    for name in names:
        status = table.statuses[name]
        for action, verb, help_ in PROCESS_ACTIONS:
            if not screen.allowed_for(action, status.state) or (read_only and action not in ("logs", "details", "mark")):
                continue
            if action == "start" and status.state in (ProcessState.FAILED, ProcessState.RETRYING):
                verb, help_ = "retry", "Retry now, with a fresh failure count"
            if action == "toggle_enabled" and status.state is ProcessState.DISABLED:
                verb, help_ = "enable", "Enable it (and start it, if it autostarts)"
            yield Command(f"{verb} {name}", _with_key(help_, key(action)), partial(screen.run_for, action, name))


def _with_key(help_: str, key: str) -> str:
    return f"{key} · {help_}" if key and help_ else key or help_


class ProcessCommands(Provider):
    """Palette entries of the main screen."""

    def _screen(self) -> MainScreen | None:
        from .screens.main import MainScreen

        return self.screen if isinstance(self.screen, MainScreen) else None

    async def discover(self) -> Hits:
        screen = self._screen()
        if screen is None:
            return
        for command in commands(screen, every_process=False):
            yield DiscoveryHit(command.text, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        screen = self._screen()
        if screen is None:
            return
        matcher = self.matcher(query)
        for command in commands(screen, every_process=True):
            score = matcher.match(command.text)
            if score > 0:
                yield Hit(score, matcher.highlight(command.text), command.run, help=command.help)
