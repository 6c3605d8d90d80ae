"""`PmtopApp` wires the dashboard together: the controller, the status store, themes, keymap, help and
quitting. Screens see it only through the `Dashboard` protocol (screens/base.py), never import it.

It knows the core only through `Controller`, so the same app drives an in-process supervisor (local
mode) or a daemon over HTTP (attached mode); its `StatusStore` follows that core. It never stops or
hands over processes itself: the user's quit choice goes to the caller's `on_quit`, awaited while the
dashboard is still on screen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from textual.app import App
from textual.binding import BindingType
from textual.screen import Screen
from textual.theme import Theme

from pmtop.core.controller import Controller
from pmtop.core.errors import PmtopError
from pmtop.core.locations import user_config_dir
from pmtop.core.states import ACTIVE_STATES

from .actions import BINDING_IDS, HELP_SECTIONS, bindings, key_rows, of_scope
from .commands import ProcessCommands
from .screens.base import Dashboard
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.quit import QuitChoice, QuitScreen
from .settings import THEMES_DIR, Settings, load_keymap, load_settings, save_settings
from .state import Mode, StatusStore
from .theming import DEFAULT_THEME, CellStyles, check_name, shipped_themes, theme_cycle, user_themes, variable_defaults

OnQuit = Callable[[QuitChoice], Awaitable[None]]

GC_THRESHOLD: Final = 10_000
"""The garbage collector's first threshold while the dashboard runs (Python's is 700). Following 900
processes allocates thousands of short-lived objects a second (statuses, texts, segments); at 700 the
collector ran ten times a second, promoting what lived a second to be scanned again: a tenth of a fleet
dashboard's CPU. Refcounting frees them anyway; the collector is only for cycles."""

__all__ = ["Mode", "OnQuit", "PmtopApp", "QuitChoice"]


class PmtopApp(App[QuitChoice]):
    CSS_PATH = str(resources.files("pmtop.themes") / "pmtop.tcss")
    TITLE = "pmtop"
    COMMANDS = App.COMMANDS | {ProcessCommands}
    # Shown in the main screen's footer (declared there too, same ids); here they work on every screen.
    BINDINGS: ClassVar[list[BindingType]] = bindings("app", show=False)

    def __init__(
        self,
        controller: Controller,
        *,
        mode: Mode = "local",
        theme: str | None = None,
        read_only: bool = False,
        on_quit: OnQuit | None = None,
        clock: Callable[[], float] = time.time,
        config_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        self.mode: Mode = mode
        self.on_quit = on_quit
        self.clock = clock
        self.config_dir = config_dir if config_dir is not None else user_config_dir()
        self.store = StatusStore(self, controller, mode)
        """Every process's newest status: what the screens render."""
        self._read_only_flag = read_only
        self.quit_handled = False
        """True once `on_quit` has run for the choice this app returns."""
        self._problems: list[str] = []
        self._gc_threshold = gc.get_threshold()
        self._styles: tuple[str, CellStyles] | None = None
        self.own_themes = self._register_themes()
        self.keymap, problems = load_keymap(self.config_dir)
        self._problems += problems
        self.theme = self._initial_theme(theme)
        self._remember_theme = theme is not None

    # -- themes -----------------------------------------------------------------------------------

    def _register_themes(self) -> list[str]:
        themes: list[Theme] = shipped_themes()
        mine, problems = user_themes(self.config_dir / THEMES_DIR)
        self._problems += problems
        for theme in [*themes, *mine]:
            self.register_theme(theme)
        return [t.name for t in [*themes, *mine]]

    def _initial_theme(self, wanted: str | None) -> str:
        if wanted is not None:
            check_name(wanted, self.available_themes, self.own_themes)
            return wanted
        remembered = load_settings(self.config_dir).theme
        return remembered if remembered in self.available_themes else DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return variable_defaults(self.current_theme)

    def cell_styles(self) -> CellStyles:
        """Rich styles of the state and health colours of the current theme (cached per theme)."""
        if self._styles is None or self._styles[0] != self.theme:
            variables = {**variable_defaults(self.current_theme), **self.theme_variables}
            self._styles = (self.theme, CellStyles.from_variables(variables))
        return self._styles[1]

    def _theme_changed(self, theme: Theme) -> None:
        self._styles = None
        self.main.restyle()
        if self._remember_theme:
            self._save_theme(theme.name)

    def _save_theme(self, name: str) -> None:
        try:
            save_settings(self.config_dir, Settings(theme=name))
        except OSError as exc:
            self.notify(f"Could not remember the theme: {exc}", severity="warning")

    def action_next_theme(self) -> None:
        names = theme_cycle(self.available_themes, self.own_themes)
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def watch_theme(self, theme: str) -> None:
        if self.is_running and self.screen_stack:
            self._remember_theme = True  # chosen after start-up: by `t` or the palette's theme picker

    # -- wiring -----------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        gc.set_threshold(max(GC_THRESHOLD, self._gc_threshold[0]), *self._gc_threshold[1:])
        unknown = sorted(set(self.keymap) - BINDING_IDS)
        if unknown:
            self._problems.append(f"keymap.toml: unknown binding id(s): {', '.join(unknown)}")
        self.set_keymap(self.keymap)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._remember_theme:  # chosen with --theme: remembered like a choice made with `t`
            self._save_theme(self.theme)
        for problem in self._problems:
            self.notify(problem, severity="warning", timeout=15)
        self.store.follow()

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_threshold)

    @property
    def read_only(self) -> bool:
        """`--read-only`, or a daemon that refuses actions: every changing action is shown disabled."""
        info = self.store.info
        return self._read_only_flag or (info is not None and info.read_only)

    def key_for(self, action: str) -> str:
        """The keys for an action as the footer shows them (after the user's keymap)."""
        for scope in ("main", "app"):
            rows = key_rows([a for a in of_scope(scope) if a.name == action], self.keymap, self.get_key_display)
            if rows:
                return rows[0][0]
        return ""

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [(title, key_rows(of_scope(scope), self.keymap, self.get_key_display))
                    for title, scope in HELP_SECTIONS]
        sections[1][1].append(("ctrl+p", "Command palette", "Every action, also per process"))
        self.push_screen(HelpScreen(sections, self.cell_styles()))

    # -- quitting ---------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """`q`, ctrl+q and the palette's Quit: in local mode with live processes, ask what to do."""
        if self.mode != "local":  # a client of daemons: they keep running
            self.finish(QuitChoice.DETACH)
            return
        live = self.store.in_states(ACTIVE_STATES)
        if not live:
            self.finish(QuitChoice.STOP_ALL)
        elif not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(len(live)), lambda choice: self.finish(choice) if choice else None)

    def finish(self, choice: QuitChoice) -> None:
        """Run the caller's `on_quit` with the dashboard still on screen, then exit with the choice."""
        if self.on_quit is None:
            self.quit_handled = True
            self.exit(choice)
            return
        self.run_worker(self._finish(choice), group="quit", exclusive=True)

    async def _finish(self, choice: QuitChoice) -> None:
        assert self.on_quit is not None
        doing = {QuitChoice.STOP_ALL: "Stopping every process…",
                 QuitChoice.HAND_OVER: "Handing the processes to a daemon…"}.get(choice)
        if doing:
            self.notify(doing, timeout=30)
        try:
            await self.on_quit(choice)
        except PmtopError as exc:
            self.notify(f"Could not quit: {exc.message}", severity="error", timeout=15)
            return
        self.quit_handled = True
        self.exit(choice)


if TYPE_CHECKING:
    def _is_a_dashboard(app: PmtopApp) -> Dashboard:
        """mypy checks here that the app is what the screens take it for."""
        return app
