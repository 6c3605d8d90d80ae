"""Every key of the main view, pressed in the real app over a real Supervisor with real processes.

Each test subscribes to the core before pressing, waits on the core's event (what really happened),
then waits for the table cell (what the person sees).
"""

from __future__ import annotations

from collections.abc import Callable

from pmtop.core.model import ProcessState, RestartPolicy
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from tests.conftest import spec
from tests.tui.conftest import cell, table, until, until_cell, until_rows
from tests.waiting import wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
SIZE = (160, 45)


async def test_table_shows_every_process_in_declaration_order(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"), spec("docs", enabled=False))
    async with sup.subscribe() as events:
        await sup.start("web")
        running = await wait_state(events, "web", S.RUNNING)
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api", "docs"])
        await until_cell(pilot, "web", "state", "running")
        assert cell(app, "web", "pid") == str(running.pid)
        assert cell(app, "api", "state") == "stopped"
        assert cell(app, "docs", "state") == "disabled"
        assert cell(app, "web", "health") == "healthy"
        header = app.main.query_one("#header")
        rendered = header._left().plain + " " + header._right().plain  # type: ignore[attr-defined]
        assert "test" in rendered and "local" in rendered and "1 running" in rendered and "1 disabled" in rendered


async def test_x_stops_the_selected_process(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events:
        await sup.start("api")
        await wait_state(events, "api", S.RUNNING)
        async with app.run_test(size=SIZE) as pilot:
            await until_cell(pilot, "api", "state", "running")
            await pilot.press("down")
            assert table(app).selected == "api"
            await pilot.press("x")
            await wait_state(events, "api", S.STOPPED)
            await until_cell(pilot, "api", "state", "stopped")
            assert cell(app, "api", "pid") == ""
            await until(pilot, lambda: "stopped by user" in str(app.main.query_one("#reason").render()),
                        what="the reason line to say why")


async def test_s_starts_and_r_restarts_with_a_new_pid(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_cell(pilot, "web", "state", "stopped")
        await pilot.press("s")
        first = await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "pid", str(first.pid))
        await pilot.press("r")
        second = await wait_for(events, lambda s: s.state is S.RUNNING and s.pid != first.pid, what="a new run")
        await until_cell(pilot, "web", "pid", str(second.pid))
        await until_cell(pilot, "web", "state", "running")


async def test_s_on_a_retrying_process_retries_at_once(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("flaky", "import sys; sys.exit(3)", backoff=(300.0,)))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("flaky")
        await wait_state(events, "flaky", S.RETRYING)
        await until_cell(pilot, "flaky", "state", "retrying")
        assert cell(app, "flaky", "backoff").startswith("retry in ")
        assert cell(app, "flaky", "exit") == "3"
        await pilot.press("s")  # five minutes early
        await wait_for(events, lambda s: s.state is S.STARTING and s.consecutive_failures == 0,
                       what="an immediate retry with a fresh count", timeout=10)
        await sup.stop("flaky")


async def test_s_on_a_failed_process_retries_it(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("job", "import sys; sys.exit(2)", policy=RestartPolicy.NO))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("job")
        await wait_state(events, "job", S.FAILED)
        await until_cell(pilot, "job", "state", "failed")
        await pilot.press("s")
        await wait_state(events, "job", S.STARTING)
        await wait_state(events, "job", S.FAILED)
        await until_cell(pilot, "job", "state", "failed")
        assert len(await sup.history("job")) == 2


async def test_e_disables_then_enables(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web", autostart=False))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_cell(pilot, "web", "state", "stopped")
        await pilot.press("e")
        await wait_state(events, "web", S.DISABLED)
        await until_cell(pilot, "web", "state", "disabled")
        assert app.main.check_action("start", ()) is None  # shown disabled: a disabled process cannot start
        await pilot.press("e")
        await wait_state(events, "web", S.STOPPED)
        await until_cell(pilot, "web", "state", "stopped")


async def test_actions_that_make_no_sense_are_disabled(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_cell(pilot, "web", "state", "stopped")
        screen = app.main
        assert screen.check_action("stop", ()) is None
        assert screen.check_action("start", ()) is True
        footer = {b.binding.action: b.enabled for b in screen.active_bindings.values()}
        assert footer["stop"] is False and footer["start"] is True
        await pilot.press("x")  # disabled: nothing happens
        await pilot.press("s")
        await wait_state(events, "web", S.RUNNING)
        await until(pilot, lambda: screen.check_action("stop", ()) is True, what="stop to be enabled")
        assert screen.check_action("start", ()) is None


async def test_space_marks_rows_and_actions_apply_to_the_marked(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("a"), spec("b"), spec("c"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["a", "b", "c"])
        await pilot.press("space")  # marks a, moves to b
        await pilot.press("down")  # skip b
        await pilot.press("space")  # marks c
        assert table(app).targets == ["a", "c"]
        assert cell(app, "a", "name") == "● a"
        await pilot.press("s")
        await wait_state(events, "a", S.RUNNING)
        await wait_state(events, "c", S.RUNNING)
        await until_cell(pilot, "c", "state", "running")
        assert cell(app, "b", "state") == "stopped"
        await pilot.press("escape")  # clears the marks
        assert table(app).marked == set()
        assert cell(app, "a", "name") == "a"
        await sup.stop_many()


async def test_slash_filters_by_name_and_state(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("worker"), spec("api"), spec("docs", enabled=False))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "worker", "api", "docs"])
        await pilot.press("slash", "w")
        await until_rows(pilot, ["web", "worker"])
        await pilot.press("backspace", *"disab")
        await until_rows(pilot, ["docs"])
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table(app)
        assert table(app).query_text == "disab"
        await pilot.press("escape")  # clears it
        await until_rows(pilot, ["web", "worker", "api", "docs"])


async def test_sorting_by_a_column_and_back(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("b"), spec("c"), spec("a", enabled=False))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["b", "c", "a"])
        app.main.action_sort("name")
        assert table(app).shown_names() == ["a", "b", "c"]
        app.main.action_sort("name")  # again: reversed
        assert table(app).shown_names() == ["c", "b", "a"]
        app.main.action_sort("state")  # stopped before disabled
        assert table(app).shown_names() == ["b", "c", "a"]
        app.main.action_sort("")
        assert table(app).shown_names() == ["b", "c", "a"]
        await pilot.click("#processes", offset=(3, 0))  # the NAME header
        assert table(app).sort_column == "name"


async def test_the_countdown_ticks_while_retrying(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("flaky", "import sys; sys.exit(1)", backoff=(30.0,)))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("flaky")
        await wait_state(events, "flaky", S.RETRYING)
        await until(pilot, lambda: cell(app, "flaky", "backoff").startswith("retry in "), what="a countdown")
        first = cell(app, "flaky", "backoff")
        assert cell(app, "flaky", "reason").endswith("; retry 1/5"), "the reason column leaves the countdown to BACKOFF"

        def reason_line() -> str:
            return str(app.main.query_one("#reason").render())

        await until(pilot, lambda: " retry 1/5 in " in reason_line(), what="a live countdown in the reason line",
                    seen=reason_line)
        line = reason_line()
        await until(pilot, lambda: cell(app, "flaky", "backoff") not in (first, ""), what="the countdown to tick",
                    timeout=5, seen=lambda: cell(app, "flaky", "backoff"))
        await until(pilot, lambda: reason_line() != line, what="the reason line to tick too", timeout=5,
                    seen=reason_line)
        await pilot.press("x")
        await wait_state(events, "flaky", S.STOPPED)
        await until_cell(pilot, "flaky", "backoff", "")


async def test_narrow_terminals_drop_columns_but_keep_name_and_state(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("a-rather-long-process-name"), spec("b"))
    app = PmtopApp(sup)
    async with app.run_test(size=(80, 24)) as pilot:
        await until_rows(pilot, ["a-rather-long-process-name", "b"])
        keys = [str(k.value) for k in table(app).columns]
        assert keys[:2] == ["name", "state"] and "backoff" in keys and "reason" not in keys
        assert sum(c.get_render_width(table(app)) for c in table(app).columns.values()) <= 80
        await pilot.resize_terminal(250, 70)
        await until(pilot, lambda: "reason" in [str(k.value) for k in table(app).columns], what="the wide layout")
        assert [str(k.value) for k in table(app).columns][-1] == "reason"
        assert cell(app, "b", "reason") == "not started"
