"""The dev loop in the dashboard, over a real Supervisor with real processes: the next run counting
down, replicas folded and scaled with keys, the `watching` and hook-failure badges, the merged log view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pmtop.core.model import HookSpec, ProcessState, ScheduleSpec, WatchSpec
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.commands import commands
from pmtop.tui.screens.merged_logs import MergedLogScreen
from pmtop.tui.widgets.log_pane import LogPane
from tests.conftest import spec
from tests.tui.conftest import cell, table, until, until_cell, until_rows

S = ProcessState
Make = Callable[..., Supervisor]
SIZE = (160, 45)
SAY = "import os, time; print('hello from', os.environ.get('PMTOP_REPLICA', 'solo'), flush=True); time.sleep(600)"


async def test_a_scheduled_process_counts_down_to_its_next_run(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("nightly", "print('ran')", schedule=ScheduleSpec("@daily")))
    await sup.boot()
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "nightly", "backoff").startswith("next run in "),
                    what="the countdown", seen=lambda: cell(app, "nightly", "backoff"))
        reason = str(app.main.query_one("#reason").render())
        assert "scheduled: @daily; next run in " in reason


async def test_replicas_fold_into_one_row_and_scale_with_keys(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web", SAY, replicas=2), spec("solo", SAY))
    await sup.boot()
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_cell(pilot, "web-2", "state", "running")
        await until_rows(pilot, ["web-1", "web-2", "solo"])
        await pilot.press("z")
        await until_rows(pilot, ["web", "solo"])
        assert cell(app, "web", "name").startswith("web ×2")
        assert cell(app, "web", "state") == "running"
        async with sup.subscribe() as events:
            await pilot.press("plus")  # the folded row is selected: one more replica
            async for event in events:
                if event.name == "web-3" and getattr(event, "state", None) is S.RUNNING:
                    break
        await until(pilot, lambda: cell(app, "web", "name").startswith("web ×3"), what="web ×3",
                    seen=lambda: cell(app, "web", "name"))
        assert "3 replicas: 3 running" in cell(app, "web", "reason")
        await pilot.press("minus")
        await until(pilot, lambda: [s.name for s in app.store.statuses.values() if s.group] == ["web-1", "web-2"],
                    what="web-3 gone: the highest goes first")
        await pilot.press("x")  # on a folded row: every replica stops
        await until(pilot, lambda: cell(app, "web", "state") == "stopped", what="the group stopped",
                    seen=lambda: cell(app, "web", "state"))
        assert all(s.state is S.STOPPED for s in await sup.processes() if s.group == "web")
        await pilot.press("z")
        await until_rows(pilot, ["web-1", "web-2", "solo"])
        palette = [c.text for c in commands(app.main, every_process=True)]
        assert "scale up web-1" in palette and "scale up solo" not in palette
        assert "Show every process's output" in palette and "Fold or unfold replicas" in palette


async def test_watching_and_a_failed_hook_show_after_the_name(make_supervisor: Make, tmp_path: Path) -> None:
    watched = spec("site", cwd=str(tmp_path), watch=WatchSpec(paths=(".",)))
    hooked = spec("job", "import sys; sys.exit(2)", max_restarts=0,
                  hooks=HookSpec(on=("failed",), command=("/no/such/notifier",)))
    sup = make_supervisor(watched, hooked)
    await sup.boot()
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "site", "name") == "site ↻", what="the watching badge",
                    seen=lambda: cell(app, "site", "name"))
        await until(pilot, lambda: cell(app, "job", "name") == "job !", what="the hook-failure badge",
                    seen=lambda: cell(app, "job", "name"))
        await pilot.press("down")
        await until(pilot, lambda: "command /no/such/notifier: command not found"
                    in str(app.main.query_one("#reason").render()), what="the hook failure in the reason bar")


async def test_L_shows_every_process_output_merged_with_names(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web", SAY, replicas=2), spec("solo", SAY))
    await sup.boot()
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_cell(pilot, "solo", "state", "running")
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, MergedLogScreen), what="the merged view")

        def lines() -> list[str]:
            return list(app.screen.query_one(LogPane).lines)

        await until(pilot, lambda: len(lines()) >= 3, what="three greetings", seen=lines)
        said = {(line.split()[1], line.split(" | ", 1)[1]) for line in lines()}
        assert {("web-1", "hello from 1"), ("web-2", "hello from 2"), ("solo", "hello from solo")} <= said
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="back to the table")
        await pilot.press("z")
        await until_rows(pilot, ["web", "solo"])
        assert table(app).selected == "web"
        await pilot.press("l")  # a folded row's log: its replicas', merged
        await until(pilot, lambda: isinstance(app.screen, MergedLogScreen), what="the group's merged view")
        await until(pilot, lambda: len(lines()) >= 2, what="both replicas' lines", seen=lines)
        assert {line.split()[1] for line in lines()} == {"web-1", "web-2"}
