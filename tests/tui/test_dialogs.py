"""Every dialog and view of the dashboard: logs, details, add, remove, stop all, quit, help, palette."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Static

from pmtop.core.model import ProcessState, RestartPolicy
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.commands import ProcessCommands
from pmtop.tui.screens.add_process import AddProcessScreen
from pmtop.tui.screens.confirm import ConfirmScreen
from pmtop.tui.screens.details import DetailsScreen
from pmtop.tui.screens.help import HelpScreen
from pmtop.tui.screens.logs import LogScreen
from pmtop.tui.screens.quit import QuitChoice, QuitScreen
from pmtop.tui.widgets.log_pane import LogPane
from tests.conftest import spec
from tests.tui.conftest import until, until_cell, until_rows
from tests.waiting import wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
SIZE = (160, 45)

CHATTY = """
import sys, time
for i in range(200):
    print(f'out line {i}', flush=True)
print('something went wrong', file=sys.stderr, flush=True)
time.sleep(600)
"""


def static_text(app: PmtopApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_l_opens_the_log_pane_which_follows_switches_streams_and_searches(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("talker", CHATTY))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("talker")
        await wait_state(events, "talker", S.RUNNING)
        await until_cell(pilot, "talker", "state", "running")
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        pane = app.screen.query_one(LogPane)
        await until(pilot, lambda: "out line 199" in pane.lines, what="the output", seen=lambda: pane.lines[-3:])
        await until(pilot, lambda: pane.is_vertical_scroll_end and pane.scroll_y > 0, what="the end in view")
        assert "following" in static_text(app, "#log-title")
        await pilot.press("tab")  # stderr
        await until(pilot, lambda: list(pane.lines) == ["something went wrong"], what="stderr",
                    seen=lambda: pane.lines)
        await pilot.press("tab")  # back to stdout
        await until(pilot, lambda: "out line 0" in pane.lines, what="stdout again")
        # (`f` toggles what the title says: wait until the reloaded stream is followed, at its end)
        await until(pilot, lambda: "following" in static_text(app, "#log-title"), what="stdout followed",
                    seen=lambda: static_text(app, "#log-title"))
        await pilot.press("f")
        await until(pilot, lambda: "paused" in static_text(app, "#log-title"), what="paused",
                    seen=lambda: static_text(app, "#log-title"))
        await pilot.press("f")
        await until(pilot, lambda: "following" in static_text(app, "#log-title"), what="following again",
                    seen=lambda: static_text(app, "#log-title"))
        await pilot.press("pageup")  # scrolling back pauses following, and says so
        await until(pilot, lambda: "paused" in static_text(app, "#log-title"), what="paused by scrolling back")
        await pilot.press("end")
        await until(pilot, lambda: "following" in static_text(app, "#log-title"), what="following again")
        await pilot.press("slash", *"line 137", "enter")
        await until(pilot, lambda: "match 1/1" in static_text(app, "#log-title"), what="one match")
        await pilot.press("slash", "ctrl+u", *"line 1", "enter")  # 111 matches: 1, 10-19, 100-199
        await until(pilot, lambda: "/111" in static_text(app, "#log-title"), what="many matches",
                    seen=lambda: static_text(app, "#log-title"))
        first = app.screen.match
        await pilot.press("n", "n", "N")  # two forward, one back
        assert first is not None and app.screen.match == (first[0] % 111 + 1, 111)
        await pilot.press("escape")
        assert not isinstance(app.screen, LogScreen)
        await sup.stop("talker")


async def test_output_due_as_the_log_pane_closes_is_dropped(make_supervisor: Make) -> None:
    """Closing the pane while a batch of lines waits for its timer must not end the dashboard (the
    browser tests hit this: `l` then `q` on a chatty process, and the session died)."""
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await screen.query_one(LogPane).remove()  # as when the screen is taken down
        screen._buffer.append("a line that arrived as it closed")
        screen._write()  # the write that was due
        await pilot.press("q")
        assert app.is_running and not isinstance(app.screen, LogScreen)


async def test_enter_opens_the_log_pane_too(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("enter")
        assert isinstance(app.screen, LogScreen) and app.screen.process == "web"
        await pilot.press("q")  # q leaves the pane, as in less
        assert app.screen is app.main


async def test_i_shows_config_reason_and_run_history(make_supervisor: Make) -> None:
    code = "import sys; print('dying', file=sys.stderr, flush=True); sys.exit(7)"
    sup = make_supervisor(spec("job", code, policy=RestartPolicy.NO))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("job")
        await wait_state(events, "job", S.FAILED)
        await until_cell(pilot, "job", "state", "failed")
        await until(pilot, lambda: any(r.stderr_tail for r in sup._runners["job"].history), what="the tail")
        await pilot.press("i")
        assert isinstance(app.screen, DetailsScreen)
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#history").row_count == 1, what="one run")  # type: ignore[attr-defined]
        history = screen.query_one("#history")
        row = history.get_row_at(0)  # type: ignore[attr-defined]
        assert row[4] == "7" and row[5] == "crash" and row[6] == "dying"
        status_text = static_text(app, "#details-status")
        assert "failed" in status_text and "exit 7" in status_text and "restart = no" in status_text
        config = screen.config_text
        assert "[process.job]" in config and 'restart = "no"' in config
        assert "dying" in static_text(app, "#details-stderr")
        await pilot.press("escape")
        assert app.screen is app.main


async def test_a_adds_a_process_after_checking_it_like_the_config(make_supervisor: Make, tmp_path: Path) -> None:
    config = tmp_path / "pmtop.toml"
    config.write_text("[process.web]\ncommand = ['sleep', '600']\nautostart = false\n")
    sup = make_supervisor()
    sup.config_path = config
    await sup.add(spec("web", autostart=False), start=False)
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, AddProcessScreen)

        def error(field: str) -> str:
            return str(form.query_one(f"#{field}-error", Static).render())

        async def fill(field: str, value: str) -> None:
            form.query_one(f"#{field}").value = value  # type: ignore[attr-defined]
            await pilot.pause()  # let the change be handled (it clears the field's error)

        await pilot.press("ctrl+s")  # nothing filled in
        assert error("name") == "required"
        await pilot.press(*"bad name")
        await pilot.press("ctrl+s")
        assert "invalid name 'bad name'" in error("name")
        await fill("name", "web")
        await pilot.press("ctrl+s")
        assert "already exists" in error("name")
        await fill("name", "clock")
        await pilot.press("ctrl+s")
        assert "must not be empty" in error("command")
        await fill("command", "sleep 'unclosed")
        await pilot.press("ctrl+s")
        assert "cannot split" in error("command")
        await fill("command", f"{sys.executable} -c 'import time; time.sleep(600)'")
        await fill("health-type", "http")
        await fill("health-target", "not a url")
        await pilot.press("ctrl+s")
        assert "must be an http:// or https:// URL" in error("health")
        await fill("health-type", "none")
        await fill("restart", "always")
        await pilot.press("ctrl+s")
        added = await wait_state(events, "clock", S.RUNNING)
        assert app.screen is app.main
        await until_cell(pilot, "clock", "pid", str(added.pid))
        spec_ = await sup.spec("clock")
        assert spec_.restart.policy is RestartPolicy.ALWAYS and spec_.command[0] == sys.executable
        assert spec_.cwd == str(tmp_path)
        assert "[process.clock]" in config.read_text()  # the supervisor persisted it
        await sup.stop("clock")


async def test_the_add_form_knows_the_round_2_settings(make_supervisor: Make, tmp_path: Path) -> None:
    """A heartbeat check (two inputs), a declared port, env files and a ready log line; each problem
    shown under its own field, as the config's rules word it."""
    (tmp_path / "app.env").write_text("GREETING=hello\n")
    sup = make_supervisor()
    sup.config_path = tmp_path / "pmtop.toml"
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, AddProcessScreen)

        def error(field: str) -> str:
            return str(form.query_one(f"#{field}-error", Static).render())

        async def fill(field: str, value: str) -> None:
            form.query_one(f"#{field}").value = value  # type: ignore[attr-defined]
            await pilot.pause()

        await fill("name", "worker")
        await fill("command", f"{sys.executable} -c 'import time; time.sleep(600)'")
        await fill("health-type", "heartbeat")
        assert not form.query_one("#health-extra").has_class("-hidden"), "a heartbeat takes a second input"
        await fill("health-target", "worker.beat")
        await pilot.press("ctrl+s")
        assert error("health") == 'missing (a "heartbeat" check needs path = "/tmp/worker.beat", max_age = "30s")'
        await fill("health-extra", "30s")
        await fill("port", "eighty")
        await pilot.press("ctrl+s")
        assert "must be an integer from 1 to 65535" in error("port")
        await fill("port", "8123")
        await fill("env_file", "app.env, missing.env")
        await pilot.press("ctrl+s")
        assert "no such file: missing.env" in error("env_file")
        await fill("env_file", "app.env")
        await fill("ready_log_line", "listening (")
        await pilot.press("ctrl+s")
        assert "invalid regular expression" in error("ready_log_line")
        await fill("ready_log_line", "^listening")
        form.query_one("#start").value = False  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main, what="the form closed")
    added = await sup.spec("worker")
    assert added.port == 8123 and added.ready_log_line == "^listening"
    assert added.env_file == (str(tmp_path / "app.env"),) and dict(added.file_env) == {"GREETING": "hello"}
    assert added.health is not None and added.health.type == "heartbeat"
    assert "[process.worker.health]" in (tmp_path / "pmtop.toml").read_text()


async def test_escape_cancels_the_add_form(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("a", *"new", "escape")
        assert app.screen is app.main
        assert sup.names == ["web"]


async def test_d_removes_after_confirmation(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen) and "Remove web?" in app.screen.question
        await pilot.press("n")
        assert app.screen is app.main and sup.names == ["web", "api"]
        await pilot.press("d", "y")
        await wait_for(events, lambda s: s.name == "web" and s.state is S.STOPPED, what="web stopped")
        await until_rows(pilot, ["api"])
        assert sup.names == ["api"]


async def test_a_refused_action_is_shown_not_raised(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("db"), spec("api", depends_on={"db": "started"}))  # type: ignore[dict-item]
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["db", "api"])
        await pilot.press("d", "y")  # api depends on db: the core refuses
        await until(pilot, lambda: any("depend" in str(n.message) for n in app._notifications),
                    what="a notification saying why")
        assert sup.names == ["db", "api"]


async def test_stop_all_from_the_palette_asks_first(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("a"), spec("b"), spec("c", autostart=False))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start_many(["a", "b"])
        await until_cell(pilot, "b", "state", "running")
        app.main.action_stop_all()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "Stop all 2" in app.screen.question
        await pilot.press("y")
        stopped: set[str] = set()
        await wait_for(events, lambda s: s.state is S.STOPPED and not stopped.add(s.name) and stopped == {"a", "b"},
                       what="a and b stopped")
        await until_cell(pilot, "a", "state", "stopped")
        await until_cell(pilot, "b", "state", "stopped")


async def test_question_mark_shows_every_key_with_the_users_keymap(make_supervisor: Make, pmtop_home: Path) -> None:
    (pmtop_home / "config").mkdir(parents=True)
    (pmtop_home / "config" / "keymap.toml").write_text('process-stop = "k"\n')
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = dict((d, k) for k, d, _ in app.screen.sections[0][1])
        assert rows["Stop"] == "k" and rows["Start"] == "s" and rows["Logs"] == "⏎ / l"
        await pilot.press("escape")
        assert app.screen is app.main
        await pilot.press("s")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("x")  # no longer bound: nothing happens
        await pilot.press("k")
        await wait_state(events, "web", S.STOPPED)
        footer_keys = {b.binding.action: key for key, b in app.main.active_bindings.items()}
        assert footer_keys["stop"] == "k"


async def test_t_cycles_themes_and_remembers_the_choice(make_supervisor: Make, pmtop_home: Path) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        assert app.theme == "dark"
        await pilot.press("t")
        assert app.theme == "light"
        await until(pilot, lambda: (pmtop_home / "config" / "settings.toml").exists(), what="the settings file")
        assert 'theme = "light"' in (pmtop_home / "config" / "settings.toml").read_text()
    again = PmtopApp(sup)
    assert again.theme == "light"


async def test_the_palette_offers_per_process_actions(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api"])
        provider = ProcessCommands(app.main)
        hits = [hit async for hit in provider.search("start api")]
        texts = [hit.text for hit in hits]
        assert "start api" in texts
        assert not any(t == "stop api" for t in texts)  # not running: no stop offered
        best = max(hits, key=lambda h: h.score)
        assert best.text == "start api"
        best.command()
        await wait_state(events, "api", S.RUNNING)
        await until_cell(pilot, "api", "state", "running")
        discovered = [hit.text async for hit in provider.discover()]
        assert "start web" in discovered and "Add a process" in discovered and "Stop all processes" in discovered
        await sup.stop("api")


async def test_ctrl_p_opens_the_palette_with_process_commands(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("ctrl+p", *"start web")
        await until(pilot, lambda: "start web" in str(app.screen.query("CommandList").first().get_option_at_index(0).prompt)
                    if app.screen.query("CommandList") and app.screen.query("CommandList").first().option_count else False,
                    what="the palette to offer 'start web'")
        await pilot.press("enter")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await sup.stop("web")


@pytest.mark.parametrize("key, choice", [("s", QuitChoice.STOP_ALL), ("h", QuitChoice.HAND_OVER)])
async def test_q_with_processes_running_asks_and_hands_the_choice_to_on_quit(
    make_supervisor: Make, key: str, choice: QuitChoice
) -> None:
    sup = make_supervisor(spec("web"))
    chosen: list[QuitChoice] = []
    seen_stopped: list[bool] = []

    async def on_quit(c: QuitChoice) -> None:
        chosen.append(c)
        if c is QuitChoice.STOP_ALL:
            await sup.stop_many()
        seen_stopped.append(app.is_running)  # the dashboard is still up while the caller works

    app = PmtopApp(sup, on_quit=on_quit)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")  # cancel: stays
        assert app.screen is app.main and app.is_running
        await pilot.press("q", key)
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert chosen == [choice] and seen_stopped == [True]
    assert app.return_value is choice and app.quit_handled
    await sup.stop_many()


async def test_q_with_nothing_running_quits_at_once(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        await pilot.press("q")
    assert app.return_value is QuitChoice.STOP_ALL


async def test_read_only_refuses_every_action_but_shows_everything(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup, read_only=True)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        for action in ("stop", "restart", "toggle_enabled", "remove", "add"):
            assert app.main.check_action(action, ()) is None, action
        assert app.main.check_action("logs", ()) is True
        await pilot.press("x", "a", "d")
        assert app.screen is app.main
        assert (await sup.status("web")).state is S.RUNNING
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        await pilot.press("escape")
        await sup.stop("web")


async def test_unknown_theme_is_refused(make_supervisor: Make) -> None:
    from pmtop.tui import check_theme
    from pmtop.tui.theming import ThemeError

    sup = make_supervisor(spec("web"))
    with pytest.raises(ThemeError, match="unknown theme 'nope'"):
        PmtopApp(sup, theme="nope")
    with pytest.raises(ThemeError, match=r"unknown theme 'nope' \(known: dark, light, high-contrast, "):
        check_theme("nope")
    check_theme("nord")
    check_theme("high-contrast")
    check_theme(None)


async def test_ctrl_q_and_the_palettes_quit_ask_too(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert app.is_running
        await sup.stop("web")
