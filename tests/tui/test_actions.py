"""The one table of dashboard actions (`tui/actions.py`) and everything it feeds: each screen's
bindings, `check_action`, the palette, the help screen, read-only mode and the keymap's check."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from textual.binding import Binding

from pmtop.core.model import ProcessState
from pmtop.core.states import ALL_STATES
from pmtop.core.supervisor import Supervisor
from pmtop.tui.actions import (
    ACTIONS,
    BINDING_IDS,
    MAIN,
    PROCESS_ACTIONS,
    Action,
    Scope,
    available,
    bindings,
    main_bindings,
)
from pmtop.tui.app import PmtopApp
from pmtop.tui.commands import commands
from pmtop.tui.screens.add_process import AddProcessScreen
from pmtop.tui.screens.confirm import ConfirmScreen
from pmtop.tui.screens.details import DetailsScreen
from pmtop.tui.screens.help import HelpScreen
from pmtop.tui.screens.logs import LogScreen
from pmtop.tui.screens.main import MainScreen
from pmtop.tui.screens.quit import QuitScreen
from tests.conftest import spec
from tests.tui.conftest import until, until_cell, until_rows
from tests.waiting import wait_state

S = ProcessState
Make = Callable[..., Supervisor]
SIZE = (160, 45)
OWNERS: dict[Scope, type] = {"app": PmtopApp, "main": MainScreen, "logs": LogScreen, "details": DetailsScreen,
                             "add": AddProcessScreen, "confirm": ConfirmScreen, "quit": QuitScreen,
                             "help": HelpScreen}


def test_every_action_has_its_handler_where_it_is_bound() -> None:
    for action in ACTIONS:
        method = "action_" + re.sub(r"\(.*\)$", "", action.name)
        assert hasattr(OWNERS[action.scope], method), f"{action.id}: no {OWNERS[action.scope].__name__}.{method}"


def test_each_screen_binds_exactly_its_rows_of_the_table() -> None:
    for scope, owner in OWNERS.items():
        ids = [b.id for b in owner.BINDINGS if isinstance(b, Binding)]
        wanted = [a.id for a in ACTIONS if a.scope == scope and a.keys]
        if scope == "main":  # the footer also shows the app's keys, `?` first
            assert ids[0] == "app-help" and set(ids) == set(wanted) | {"app-help", "app-theme", "app-quit"}
            assert next(b.action for b in main_bindings() if isinstance(b, Binding)) == "app.help"
        else:
            assert ids == wanted, scope
    assert all(b.show is False for b in bindings("app", show=False) if isinstance(b, Binding))


def test_palette_verbs_follow_the_allowed_states() -> None:
    start, stop, enable = MAIN["start"], MAIN["stop"], MAIN["toggle_enabled"]
    assert start.verb_for(S.STOPPED).text == "start"  # type: ignore[union-attr]
    assert start.verb_for(S.FAILED).text == start.verb_for(S.RETRYING).text == "retry"  # type: ignore[union-attr]
    assert start.verb_for(S.RUNNING) is None and stop.verb_for(S.STOPPED) is None
    assert stop.verb_for(S.FAILED).text == "stop"  # type: ignore[union-attr]  # acknowledges the failure
    assert enable.verb_for(S.DISABLED).text == "enable" and enable.verb_for(S.RUNNING).text == "disable"  # type: ignore[union-attr]
    assert all(a.verb_for(s) is not None for a in PROCESS_ACTIONS if a.states == ALL_STATES for s in ALL_STATES)


def test_availability() -> None:
    stop, logs, add, clear = MAIN["stop"], MAIN["logs"], MAIN["add"], MAIN["clear"]
    def check(action: Action, states: list[ProcessState], *, read_only: bool = False,
              selected: bool = True) -> bool | None:
        return available(action, read_only=read_only, selected=selected, target_states=states, marks_or_filter=False)

    assert check(stop, [S.RUNNING]) is True
    assert check(stop, [S.STOPPED]) is None, "greyed out"
    assert check(stop, [S.STOPPED, S.RUNNING]) is True, "marked rows: one that can stop is enough"
    assert check(stop, [S.RUNNING], read_only=True) is None
    assert check(add, [], read_only=True) is None
    assert check(logs, [S.RUNNING], read_only=True) is True, "viewing is not changing"
    assert check(logs, [], selected=False) is None
    assert check(clear, []) is False, "hidden, not greyed"


async def test_read_only_palette_offers_only_what_changes_nothing(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        texts = [c.text for c in commands(app.main, every_process=True)]
        assert "logs of web" in texts and "details of web" in texts and "mark web" in texts
        assert not any(t.startswith(("start ", "stop ", "restart ", "remove ", "disable ")) for t in texts), texts
        assert "Add a process" not in texts and "Stop all processes" not in texts and "Next theme" in texts


async def test_the_palette_names_the_remapped_key(make_supervisor: Make, pmtop_home: Path) -> None:
    (pmtop_home / "config").mkdir(parents=True)
    (pmtop_home / "config" / "keymap.toml").write_text('process-stop = "k"\n')
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        helps = {c.text: c.help for c in commands(app.main, every_process=False)}
        assert helps["stop web"] == "k · Stop it (its whole process group)"
        assert helps["Next theme"] == "t · Cycle through the themes"
        await sup.stop("web")


async def test_every_binding_id_may_be_remapped_and_only_unknown_ids_are_reported(make_supervisor: Make,
                                                                                  pmtop_home: Path) -> None:
    (pmtop_home / "config").mkdir(parents=True)
    (pmtop_home / "config" / "keymap.toml").write_text('confirm-yes = "j"\nlogs-follow = "F"\nprocess-stopp = "k"\n')
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await until(pilot, lambda: bool(app._notifications), what="the keymap warning")
        messages = [str(n.message) for n in app._notifications]
        assert any(m.endswith("unknown binding id(s): process-stopp") for m in messages), messages
        await pilot.press("d")  # remove asks first: the remapped yes answers
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("j")
        await until_rows(pilot, [])


def test_the_readme_lists_every_binding_id() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [i for i in sorted(BINDING_IDS) if f"`{i}`" not in readme]
    assert not missing, f"README.md does not list these binding ids: {missing}"
