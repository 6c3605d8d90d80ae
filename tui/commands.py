"""The command palette (Ctrl+P): every key's action, and each per-process action by name ("restart web").

Entries are built from the table in `actions` and the main screen's `check_action`, so the palette
offers exactly what the keys would do, with the keys the user's keymap gives them, and nothing that
makes no sense for a process in its current state (no "stop" on a stopped process) or, in read-only
mode, changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .actions import ACTIONS, PROCESS_ACTIONS
from .screens.main import MainScreen
from .widgets.columns import COLUMNS


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    help: str
    run: Callable[[], object]


def commands(screen: MainScreen, *, every_process: bool) -> Iterator[Command]:
    """Global commands, then per-process ones (for every process, or only the selected one)."""
    app = screen.pmtop
    key = app.key_for
    for action in ACTIONS:
        if not action.palette:
            continue
        if action.scope == "main" and screen.check_action(action.name, ()):
            yield Command(action.palette, _with_key(action.palette_help, key(action.name)),
                          getattr(screen, f"action_{action.name}"))
        elif action.scope == "app":
            yield Command(action.palette, _with_key(action.palette_help, key(action.name)),
                          getattr(app, f"action_{action.name}"))
    for column in COLUMNS:
        if column.key == "host" and len(app.store.hosts) < 2:
            continue
        yield Command(f"Sort by {column.label.lower()}", "Again to reverse; click a header too",
                      partial(screen.action_sort, column.key))
    yield Command("Sort in config order", "As declared in pmtop.toml", partial(screen.action_sort, ""))
    statuses = app.store.statuses
    selected = screen.table.selected
    names = list(statuses) if every_process else [n for n in [selected] if n in statuses]
    for name in names:
        state = statuses[name].state
        for action in PROCESS_ACTIONS:
            verb = action.verb_for(state)
            if verb is None or (app.read_only and action.changes):
                continue
            if action.needs == "replica" and statuses[name].group is None:
                continue
            yield Command(f"{verb.text} {name}", _with_key(verb.help, key(action.name)),
                          partial(screen.run_for, action.name, name))


def _with_key(help_: str, key: str) -> str:
    return f"{key} · {help_}" if key and help_ else key or help_


class ProcessCommands(Provider):
    """Palette entries of the main screen."""

    def _screen(self) -> MainScreen | None:
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
