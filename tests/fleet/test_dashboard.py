"""The dashboard over three real daemons (the real app, driven with keys through Textual's pilot): a HOST
column, each daemon's link in the header, keys acting on the right daemon, a daemon killed (its rows
greyed, the others still acted on) and restarted (back to live), a wrong token refused."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from pmtop.core.api.fleet import FleetController
from pmtop.tui import PmtopApp
from pmtop.tui.widgets.header import StatusHeader
from pmtop.tui.widgets.reason_bar import ReasonBar
from tests.fleet.conftest import Fleet
from tests.tui.conftest import cell, table, until, until_cell

SIZE = (160, 45)
ALL = {"alpha/web", "alpha/api", "beta/web", "beta/worker", "gamma/web", "gamma/db"}


def header(app: PmtopApp) -> str:
    return app.main.query_one(StatusHeader)._left().plain


def reason(app: PmtopApp) -> str:
    shown = app.main.query_one(ReasonBar)._shown
    return shown.plain if shown is not None else ""


def greyed(app: PmtopApp, name: str) -> bool:
    """Drawn greyed: every cell of the row in italics (the muted colour over its own)."""
    t = table(app)
    cells = [t.get_cell(name, column) for column in ("name", "state")]
    return all(any(span.style.italic for span in text.spans if not isinstance(span.style, str)) for text in cells)


async def select(pilot: Pilot[Any], name: str) -> None:
    app = pilot.app
    assert isinstance(app, PmtopApp)
    t = table(app)
    t.move_cursor(row=t.get_row_index(name))
    await until(pilot, lambda: t.selected == name, what=f"{name} selected")


async def all_rows(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, PmtopApp)
    await until(pilot, lambda: set(table(app).shown_names()) == ALL, what="every host's rows",
                seen=lambda: table(app).shown_names())
    for name in ALL:
        await until_cell(pilot, name, "state", "running")


async def test_one_dashboard_over_three_daemons(fleet: Fleet) -> None:
    async with FleetController(fleet.daemons()) as controller:
        app = PmtopApp(controller, mode="fleet")
        async with app.run_test(size=SIZE) as pilot:
            await all_rows(pilot)
            await until(pilot, lambda: all(f"{h} up" in header(app) for h in ("alpha", "beta", "gamma")),
                        what="every daemon up in the header", seen=lambda: header(app))
            assert cell(app, "beta/worker", "host") == "beta"
            assert cell(app, "beta/worker", "name") == "worker", "the name column shows the process's own name"
            assert table(app)._layout is not None and table(app)._layout.keys[:2] == ("host", "name")

            await select(pilot, "beta/web")
            await pilot.press("x")
            await until_cell(pilot, "beta/web", "state", "stopped")
            assert fleet["beta"].daemon.processes()["web"]["state"] == "stopped", "beta's own API says so"
            assert fleet["alpha"].daemon.processes()["web"]["state"] == "running"
            assert fleet["gamma"].daemon.processes()["web"]["state"] == "running"
            await pilot.press("s")
            await until_cell(pilot, "beta/web", "state", "running")

            # gamma dies: its rows are greyed as last seen, the header says so; the others still act.
            fleet.kill("gamma")
            await until(pilot, lambda: "gamma lost — reconnecting" in header(app), what="gamma lost in the header",
                        seen=lambda: header(app))
            await until(pilot, lambda: greyed(app, "gamma/web") and greyed(app, "gamma/db"), what="gamma's rows greyed")
            assert not greyed(app, "alpha/web") and not greyed(app, "beta/web")
            assert "alpha up" in header(app) and "beta up" in header(app)
            await select(pilot, "gamma/db")
            await until(pilot, lambda: "as last seen: gamma is out of reach" in reason(app), what="the reason bar",
                        seen=lambda: reason(app))
            await select(pilot, "alpha/api")
            await pilot.press("x")
            await until_cell(pilot, "alpha/api", "state", "stopped")
            assert fleet["alpha"].daemon.processes()["api"]["state"] == "stopped"

            fleet.restart("gamma")
            await until(pilot, lambda: "gamma up" in header(app), what="gamma back", timeout=30,
                        seen=lambda: header(app))
            await until(pilot, lambda: not greyed(app, "gamma/web") and not greyed(app, "gamma/db"),
                        what="gamma's rows live again")
            await select(pilot, "gamma/db")
            await pilot.press("x")
            await until_cell(pilot, "gamma/db", "state", "stopped")
            assert fleet["gamma"].daemon.processes()["db"]["state"] == "stopped", "the restarted gamma did it"


async def test_a_wrong_token_shows_refused_and_the_others_work(fleet: Fleet) -> None:
    wrong = fleet.config_dir / "beta.token"
    fleet.config_dir.mkdir(parents=True, exist_ok=True)
    wrong.write_text("not-the-token\n")
    async with FleetController(fleet.daemons(beta=wrong)) as controller:
        app = PmtopApp(controller, mode="fleet")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "beta refused: wrong token" in header(app), what="beta refused",
                        seen=lambda: header(app))
            await until(pilot, lambda: set(table(app).shown_names()) == ALL - {"beta/web", "beta/worker"},
                        what="alpha's and gamma's rows", seen=lambda: table(app).shown_names())
            await until_cell(pilot, "gamma/db", "state", "running")
            await select(pilot, "gamma/db")
            old = fleet["gamma"].daemon.processes()["db"]["pid"]
            await pilot.press("r")  # restart: a new PID on gamma's own daemon
            await until(pilot, lambda: fleet["gamma"].daemon.processes()["db"]["pid"] not in (None, old),
                        what="gamma's db restarted")


async def test_a_fleet_of_one_has_no_host_column(fleet: Fleet) -> None:
    daemons = tuple(d for d in fleet.daemons() if d.label == "alpha")
    async with FleetController(daemons) as controller:
        app = PmtopApp(controller, mode="fleet")
        async with app.run_test(size=SIZE) as pilot:
            await until_cell(pilot, "alpha/api", "state", "running")
            await until(pilot, lambda: "alpha up  default  pid" in header(app), what="alpha's facts in the header",
                        seen=lambda: header(app))
            assert cell(app, "alpha/api", "host") == "", "no HOST column for one host"
            assert cell(app, "alpha/api", "name") == "api"


async def test_adding_a_process_names_its_daemon(fleet: Fleet) -> None:
    async with FleetController(fleet.daemons()) as controller:
        app = PmtopApp(controller, mode="fleet")
        async with app.run_test(size=SIZE) as pilot:
            await all_rows(pilot)
            await pilot.press("a", *"cron", "tab", *"sleep 600", "ctrl+s")
            error = app.screen.query_one("#name-error")
            await until(pilot, lambda: "name the daemon too: HOST/cron" in str(error.render()),
                        what="the form asks for the daemon")
            name = app.screen.query_one("#name")
            name.value = "beta/cron"  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await until_cell(pilot, "beta/cron", "state", "running")
            assert fleet["beta"].daemon.processes()["cron"]["state"] == "running"
            assert "cron" not in fleet["alpha"].daemon.processes()
