"""Snapshot tests: what the dashboard looks like, compared with accepted SVGs in `__snapshots__/`.

Scenes use only states without volatile cells (stopped, disabled, failed; no PIDs, no uptimes, no
durations in reasons), fixed names and commands that do not depend on the machine; the supervisor's
PID and start time are pinned and the app's clock is fixed, so the header does not churn either.
Regenerate with `pytest tests/tui/test_snapshots.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from pmtop.core.model import (
    HookSpec,
    ProcessSpec,
    ProcessState,
    RestartSpec,
    ScheduleSpec,
    SupervisorInfo,
    WatchSpec,
)
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from tests.tui.conftest import until, until_cell, until_rows

Make = Callable[..., Supervisor]
SnapCompare = Callable[..., bool]
NOW = 1_800_000_000.0
"""The app's fixed clock."""

SCENE = (
    ProcessSpec("web", ("pmtop-demo-server", "--port", "8000"), autostart=True),
    ProcessSpec("api", ("pmtop-demo-api",), depends_on={}),
    ProcessSpec("broken", ("pmtop-no-such-program", "--serve"),
                restart=RestartSpec(backoff=(0.0,), max_restarts=2)),
    ProcessSpec("migrate", ("echo", "migrating: schema up to date")),
    ProcessSpec("docs", ("pmtop-demo-docs",), enabled=False),
)


def scene(make_supervisor: Make, **app_options: Any) -> tuple[Supervisor, PmtopApp]:
    sup = make_supervisor(*SCENE)

    async def pinned_info() -> SupervisorInfo:
        return SupervisorInfo(instance="default", pid=4242, started_at=NOW - 754, version="0.1.0",
                              config="/home/me/project/pmtop.toml", host="127.0.0.1", port=19881)

    sup.info = pinned_info  # type: ignore[method-assign]  # the header's facts only; processes stay real
    return sup, PmtopApp(sup, clock=lambda: NOW, **app_options)


async def settle(pilot: Pilot[Any], sup: Supervisor) -> None:
    """`broken` has given up (three spawn failures, no delay), and the table shows every row."""
    async with sup.subscribe() as events:
        await sup.start("broken")
        async for event in events:
            if event.name == "broken" and getattr(event, "state", None) is ProcessState.FAILED:
                break
    await until_rows(pilot, ["web", "api", "broken", "migrate", "docs"])
    await until_cell(pilot, "broken", "state", "failed")


def main_view(sup: Supervisor) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("down", "down")  # select `broken`: its reason shows below the table

    return run_before


THEMES = pytest.mark.parametrize("theme", ["dark", "light", "high-contrast"])


@THEMES
def test_main_view(snap_compare: SnapCompare, make_supervisor: Make, theme: str) -> None:
    """The table with a stopped, a failed (given up after 2 restarts) and a disabled process; the failed
    one selected, its reason below; header with instance, address, mode, PID, uptime and counts."""
    sup, app = scene(make_supervisor, theme=theme)
    assert snap_compare(app, terminal_size=(160, 45), run_before=main_view(sup))


def test_main_view_80x24(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """At 80×24 the header takes two lines, less important columns are dropped, the footer still
    starts with `? Help`."""
    sup, app = scene(make_supervisor)
    assert snap_compare(app, terminal_size=(80, 24), run_before=main_view(sup))


def test_main_view_250x70(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """Wide: every column, and the reason of each process in its own column."""
    sup, app = scene(make_supervisor)
    assert snap_compare(app, terminal_size=(250, 70), run_before=main_view(sup))


def test_marked_and_filtered(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """`broken` and `docs` marked (●; the line under the table says what actions apply to), then `/o`
    keeps the names with an "o"; the filter stays visible above the footer."""
    sup, app = scene(make_supervisor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("down", "down", "space", "down", "space")  # broken, docs
        await pilot.press("slash", "o", "enter")
        await until_rows(pilot, ["broken", "docs"])

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


@THEMES
def test_help_screen(snap_compare: SnapCompare, make_supervisor: Make, theme: str) -> None:
    """`?`: every key with its description, and each state in its colour."""
    sup, app = scene(make_supervisor, theme=theme)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


@THEMES
def test_details_view(snap_compare: SnapCompare, make_supervisor: Make, theme: str) -> None:
    """`i` on `web` (never run): status, reason, what is in effect, the config as TOML, and an empty
    run history."""
    sup, app = scene(make_supervisor, theme=theme)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("i")
        await until(pilot, lambda: "[process.web]" in getattr(app.screen, "config_text", ""), what="the config")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


@THEMES
def test_log_pane(snap_compare: SnapCompare, make_supervisor: Make, theme: str) -> None:
    """`l` on `migrate` after it ran: its stdout, with the stream and follow state in the title."""
    sup, app = scene(make_supervisor, theme=theme)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        async with sup.subscribe() as events:
            await sup.start("migrate")
            async for event in events:
                if event.name == "migrate" and getattr(event, "state", None) is ProcessState.STOPPED:
                    break
        await pilot.press("down", "down", "down", "l")
        await until(pilot, lambda: "migrating: schema up to date" in app.screen.query_one("#log").lines,  # type: ignore[attr-defined]
                    what="the output")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


def test_add_form(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """`a`, a bad name typed and saved: the error is shown under the name field."""
    sup, app = scene(make_supervisor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("a", *"bad name", "ctrl+s")

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_remove_confirmation(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """`d` on `web`: the typed yes/no modal over the dimmed table; "Cancel" is focused."""
    sup, app = scene(make_supervisor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, sup)
        await pilot.press("d")

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


# -- SPEC §10: what counts as up ------------------------------------------------------------------------

def _up_scene(make_supervisor: Make) -> tuple[Supervisor, PmtopApp]:
    from pmtop.core.checks.exec import ExecCheck
    from pmtop.core.checks.heartbeat import HeartbeatCheck
    from pmtop.core.checks.http import HttpCheck
    from pmtop.core.checks.notify import NotifyCheck
    from pmtop.core.model import FailAction, HealthSpec, StartupCheck

    quick = StartupCheck(interval=0.1, max_attempts=3, fail_action=FailAction.FAIL)
    waiter = ("python3", "-c", "import time; time.sleep(600)")
    specs = (
        ProcessSpec("web", ("python3", "-m", "http.server", "8765"), cwd="/home/me/project", autostart=False,
                    port=8765, ready_log_line="Serving HTTP on", env_file=("/home/me/project/.env",),
                    file_env={"GREETING": "hello"},
                    health=HealthSpec(HttpCheck("http://127.0.0.1:8765/"), startup=StartupCheck())),
        ProcessSpec("api", waiter, ready_log_line="^ready", health=HealthSpec(ExecCheck(("true",)), startup=quick)),
        ProcessSpec("notifier", waiter, health=HealthSpec(NotifyCheck(), startup=quick)),
        ProcessSpec("beacon", waiter, autostart=False, health=HealthSpec(NotifyCheck(5.0), failures=1)),
        ProcessSpec("queue", waiter, autostart=False, health=HealthSpec(HeartbeatCheck("queue.beat", 3.0))),
    )
    sup = make_supervisor(*specs)

    async def pinned_info() -> SupervisorInfo:
        return SupervisorInfo(instance="default", pid=4242, started_at=NOW - 754, version="0.1.0",
                              config="/home/me/project/pmtop.toml", host="127.0.0.1", port=19881)

    sup.info = pinned_info  # type: ignore[method-assign]
    return sup, PmtopApp(sup, clock=lambda: NOW)


async def _up_settled(pilot: Pilot[Any], sup: Supervisor) -> None:
    """`api` never logs its line and `notifier` never sends READY=1: both failed by their start-up budget."""
    async with sup.subscribe() as events:
        await sup.start_many(["api", "notifier"])
        failed: set[str] = set()
        async for event in events:
            if getattr(event, "state", None) is ProcessState.FAILED:
                failed.add(event.name)
                if failed == {"api", "notifier"}:
                    break
    await until_rows(pilot, ["web", "api", "notifier", "beacon", "queue"])
    await until_cell(pilot, "notifier", "state", "failed")
    await until_cell(pilot, "api", "state", "failed")


def test_what_counts_as_up(snap_compare: SnapCompare, make_supervisor: Make) -> None:
    """SPEC §10 in the table: `web` declares port 8765 (dimmed, in parentheses: nothing listens yet);
    `api` never logged its ready line and `notifier` never sent READY=1, so each failed when its start-up
    budget ran out (fail_action = "fail"); `api` selected, its reason below the table."""
    sup, app = _up_scene(make_supervisor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _up_settled(pilot, sup)
        await pilot.press("down")

    assert snap_compare(app, terminal_size=(160, 30), run_before=run_before)


@pytest.mark.parametrize("row", ["web", "beacon"])
def test_details_explain_what_counts_as_up(snap_compare: SnapCompare, make_supervisor: Make, row: str) -> None:
    """`i` on a process that never ran: "In effect" explains the ready log line and the startup check
    (both must pass), the declared port and the env file (`web`), and READY=1, STATUS= and the watchdog
    (`beacon`)."""
    sup, app = _up_scene(make_supervisor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _up_settled(pilot, sup)
        await pilot.press(*(["down", "down", "down"] if row == "beacon" else []), "i")
        await until(pilot, lambda: f"[process.{row}]" in getattr(app.screen, "config_text", ""), what="the config")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


# -- the dev loop (SPEC §11) ------------------------------------------------------------------------

def dev_loop_scene(make_supervisor: Make, folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Supervisor, PmtopApp]:
    """A scheduled job, three replicas, a watched service and one whose last hook failed: all stopped,
    the schedule pinned to the app's clock (the next run is 5 minutes after it), the watch and the hook's
    failure pinned (the supervisor's services are not booted here: they would outlive the app's event
    loop; the real ones are tested in tests/core and tests/tui/test_devloop.py)."""
    monkeypatch.setenv("TZ", "UTC")
    sup = make_supervisor(
        ProcessSpec("report", ("pmtop-demo-report",), schedule=ScheduleSpec("*/5 * * * *")),
        ProcessSpec("web", ("pmtop-demo-server",), replicas=3, autostart=False),
        ProcessSpec("site", ("pmtop-demo-site",), cwd=str(folder), watch=WatchSpec(paths=(".",)), autostart=False),
        ProcessSpec("notify", ("pmtop-demo-notify",), autostart=False,
                    hooks=HookSpec(on=("failed",), url="http://127.0.0.1:9000/pmtop")),
    )

    async def pinned_info() -> SupervisorInfo:
        return SupervisorInfo(instance="default", pid=4242, started_at=NOW - 754, version="0.1.0",
                              config="/home/me/project/pmtop.toml", host="127.0.0.1", port=19881)

    sup.info = pinned_info  # type: ignore[method-assign]
    return sup, PmtopApp(sup, clock=lambda: NOW)


async def settle_dev_loop(pilot: Pilot[Any], sup: Supervisor) -> None:
    report = sup.runners["report"]
    assert report.schedule is not None
    report.schedule.timer.arm(NOW)  # the next run as the app's clock sees it
    report.publish()
    site = sup.runners["site"]
    site.watching = True
    site.publish()
    notify = sup.runners["notify"]
    notify.hook_error = "07:59:58 hook on failed: POST http://127.0.0.1:9000/pmtop: ConnectError (3 attempts)"
    notify.publish()
    await until_rows(pilot, ["report", "web-1", "web-2", "web-3", "site", "notify"])
    await until_cell(pilot, "report", "backoff", "next run in 5m00s")
    await until_cell(pilot, "site", "name", "site ↻")
    await until_cell(pilot, "notify", "name", "notify !")


def test_dev_loop_view(snap_compare: SnapCompare, make_supervisor: Make, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`report` counts down to its next run (`next run in 5m00s`, in the BACKOFF column and the reason
    below the table, where it is selected); web-1..web-3 are replicas; `site ↻` is watched; `notify !`'s
    last hook failed."""
    sup, app = dev_loop_scene(make_supervisor, tmp_path, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle_dev_loop(pilot, sup)

    assert snap_compare(app, terminal_size=(160, 30), run_before=run_before)


def test_dev_loop_folded(snap_compare: SnapCompare, make_supervisor: Make, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`z` folds the replicas: `web ×3`, one row, its reason counting them by state."""
    sup, app = dev_loop_scene(make_supervisor, tmp_path, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle_dev_loop(pilot, sup)
        await pilot.press("z", "down")
        await until_rows(pilot, ["report", "web", "site", "notify"])

    assert snap_compare(app, terminal_size=(160, 30), run_before=run_before)


LOGGED = (  # (process, seconds before the app's clock, stream, line)
    ("web-1", 58.0, "stdout", "listening on 127.0.0.1:8781"),
    ("web-2", 57.9, "stdout", "listening on 127.0.0.1:8782"),
    ("report", 31.2, "stdout", "07:59:28 disk 41% used"),
    ("web-1", 12.5, "stdout", "GET / 200 3ms"),
    ("web-2", 12.4, "stderr", "warning: slow request (812ms)"),
    ("web-1", 2.0, "stdout", "GET /health 200 1ms"),
)


def write_logs(sup: Supervisor) -> None:
    """Finished runs on disk with their time index, as the drains write them."""
    from pmtop.core.process import timeline

    for name in ("web-1", "web-2", "report"):
        run = sup.paths.process_log_dir(name) / "20270115_075800"
        run.mkdir(parents=True)
        for stream in ("stdout", "stderr"):
            mine = [(ago, line) for who, ago, s, line in LOGGED if who == name and s == stream]
            text, records = b"", b""
            for ago, line in mine:
                records += timeline.RECORD.pack(len(text), NOW - ago)
                text += line.encode() + b"\n"
            (run / f"{stream}.log").write_bytes(text)
            (run / f"{stream}.times").write_bytes(records)


def test_merged_log_view(snap_compare: SnapCompare, make_supervisor: Make, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`L`: every process's output in the order it was written, each line with its time and its process's
    name in that process's colour; web-2's stderr line has a red bar."""
    sup, app = dev_loop_scene(make_supervisor, tmp_path, monkeypatch)
    write_logs(sup)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle_dev_loop(pilot, sup)
        await pilot.press("L")
        await until(pilot, lambda: len(getattr(app.screen.query_one("#log"), "lines", [])) == len(LOGGED),
                    what="every logged line")

    assert snap_compare(app, terminal_size=(120, 20), run_before=run_before)
