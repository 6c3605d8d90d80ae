"""Themes as data, the remembered settings and the keymap file: parsing, defaults, and their use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.theme import BUILTIN_THEMES

from pmtop.core.model import Health, ProcessState
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.settings import Settings, load_keymap, load_settings, save_settings
from pmtop.tui.theming import (
    CellStyles,
    ThemeError,
    shipped_themes,
    theme_cycle,
    theme_from_table,
    user_themes,
    variable_defaults,
)
from pmtop.tui.widgets.columns import plan_layout
from tests.conftest import spec
from tests.tui.conftest import until_rows

Make = Callable[..., Supervisor]


def test_shipped_themes_define_every_state_and_health_colour() -> None:
    themes = shipped_themes()
    assert [t.name for t in themes] == ["dark", "light", "high-contrast"]
    for theme in themes:
        for state in ProcessState:
            assert f"state-{state.value}" in theme.variables, (theme.name, state)
        for health in Health:
            assert f"health-{health.value}" in theme.variables, (theme.name, health)
    assert not next(t for t in themes if t.name == "light").dark


@pytest.mark.parametrize("name", sorted(BUILTIN_THEMES))
def test_textual_builtin_themes_get_pmtops_colours_from_their_palette(name: str) -> None:
    defaults = variable_defaults(BUILTIN_THEMES[name])
    assert set(defaults) >= {"state-running", "state-failed", "health-unhealthy"}
    styles = CellStyles.from_variables({**BUILTIN_THEMES[name].to_color_system().generate(), **defaults})
    assert styles.states[ProcessState.RUNNING].color is not None


@pytest.mark.parametrize("table, message", [
    ({"name": "x"}, "primary: missing"),
    ({"primary": "not a colour"}, "primary: not a colour"),
    ({"primary": "#fff", "states": {"sleeping": "#fff"}}, "states.sleeping: unknown key"),
    ({"primary": "#fff", "health": {"healthy": 3}}, "health.healthy: must be a colour"),
    ({"primary": "#fff", "dark": "yes"}, "dark: must be true or false"),
    ({"primary": "#fff", "colour": "#fff"}, "colour: unknown key"),
])
def test_theme_files_are_checked_whole(table: dict[str, object], message: str) -> None:
    with pytest.raises(ThemeError, match=message):
        theme_from_table(table, default_name="mine", source="mine.toml")


def test_user_themes_load_and_broken_ones_are_reported(tmp_path: Path) -> None:
    (tmp_path / "ocean.toml").write_text('primary = "#0077be"\n[states]\nrunning = "#00ffaa"\n')
    (tmp_path / "broken.toml").write_text('primary = "#0077be"\nbackground = "sea"\n')
    themes, problems = user_themes(tmp_path)
    assert [t.name for t in themes] == ["ocean"]
    assert themes[0].variables["state-running"] == "#00ffaa"
    assert len(problems) == 1 and "broken.toml: background: not a colour" in problems[0]


def test_theme_cycle_puts_pmtops_own_first() -> None:
    names = theme_cycle(["nord", "dark", "ansi-dark", "light", "ocean", "dracula"], ["dark", "light", "ocean"])
    assert names == ["dark", "light", "ocean", "dracula", "nord"]


def test_settings_are_written_atomically_and_read_back(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == Settings()
    save_settings(tmp_path / "config", Settings(theme="light"))
    assert load_settings(tmp_path / "config").theme == "light"
    assert [p.name for p in (tmp_path / "config").iterdir()] == ["settings.toml"]  # no temp file left
    (tmp_path / "config" / "settings.toml").write_text("theme = [")
    assert load_settings(tmp_path / "config") == Settings()  # damaged: defaults, never a crash


def test_keymap_file(tmp_path: Path) -> None:
    assert load_keymap(tmp_path) == ({}, [])
    (tmp_path / "keymap.toml").write_text('# mine\nprocess-stop = "k"\nprocess-start = 3\n')
    keymap, problems = load_keymap(tmp_path)
    assert keymap == {"process-stop": "k"}
    assert len(problems) == 1 and "process-start" in problems[0]


async def test_a_user_theme_is_offered_and_textual_themes_work(make_supervisor: Make, pmtop_home: Path) -> None:
    themes = pmtop_home / "config" / "themes"
    themes.mkdir(parents=True)
    (themes / "ocean.toml").write_text('primary = "#0077be"\nbackground = "#001f3f"\n[states]\nstopped = "#7fdbff"\n')
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup, theme="ocean")
    async with app.run_test(size=(120, 30)) as pilot:
        await until_rows(pilot, ["web"])
        assert app.theme == "ocean"
        state = app.main.table.get_cell("web", "state")
        assert str(state.style.color.triplet.hex) == "#7fdbff"  # type: ignore[union-attr]
        app.theme = "nord"  # a Textual built-in: pmtop's colours come from its palette
        await pilot.pause()
        await pilot.pause()
        state = app.main.table.get_cell("web", "state")
        assert state.style.color is not None  # type: ignore[union-attr]
        assert str(state.style.color.triplet.hex) != "#7fdbff"  # type: ignore[union-attr]
        app.theme = "ansi-dark"  # the terminal's own colours: not RGB at all
        await pilot.pause()
        await pilot.pause()
        assert app.main.table.get_cell("web", "state").style.color is not None  # type: ignore[union-attr]
    assert load_settings(pmtop_home / "config").theme == "ansi-dark"


def test_column_layout_keeps_name_and_state_and_fits() -> None:
    narrow = plan_layout(78, ["web", "api"])
    assert narrow.keys[:2] == ("name", "state") and "reason" not in narrow.keys
    assert sum(w + 2 for w in narrow.widths) <= 78
    wide = plan_layout(248, ["web"])
    assert wide.keys[-1] == "reason" and len(wide.keys) == 12
    tiny = plan_layout(30, ["a-very-long-name-indeed-for-this"])
    assert tiny.keys[:2] == ("name", "state") and sum(w + 2 for w in tiny.widths) <= 30
