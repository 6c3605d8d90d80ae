"""`CachedTable`'s short rendering path looks exactly as DataTable's own.

The dashboard is shown over a still controller with every kind of row it draws (each state, ports
declared and listened on, exit codes, badges, a scheduled run, a countdown, names too long for their
column, wide characters, a fleet's HOST column and a greyed host, marked rows), in several themes. Each
row is rendered with the cursor on it or not, the mouse over it or not, focused or not: once on the
short path (`_assemble_row`, `render_text_cell`) and once through DataTable's own methods. Each cell's
segments (simplified, as `CachedTable` keeps every cell) must be equal, style for style (meta included),
and so must every line the widget hands the compositor, header included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.segment import Segment
from textual.coordinate import Coordinate

from pmtop.core.model import Health, HostLink, LinkState, ProcessState, ProcessStatus, SupervisorInfo
from pmtop.tui.app import PmtopApp
from pmtop.tui.widgets.cached_table import CachedTable
from pmtop.tui.widgets.process_table import ProcessTable
from tests.tui.conftest import table, until

S = ProcessState
NOW = 1_800_000_000.0


def statuses() -> list[ProcessStatus]:
    running = {"state": S.RUNNING, "reason": "running", "pid": 4321, "started_at": NOW - 3725, "cpu_percent": 12.5,
               "memory_rss": 123_456_789, "health": Health.HEALTHY}
    return [
        ProcessStatus("a/web", host="a", ports=(8000,), port=8000, watching=True, **running),  # type: ignore[arg-type]
        ProcessStatus("a/api", host="a", state=S.RUNNING, reason="running", pid=77, port=9000, restarts=3,
                      health=Health.UNHEALTHY, hook_error="on_start failed", started_at=NOW - 40, cpu_percent=0.0,
                      memory_rss=1_000),
        ProcessStatus("a/broken", host="a", state=S.FAILED, exit_code=1, restarts=5,
                      reason="gave up after 5 restarts: exit 1 " + "(a reason far too long for its column) " * 8),
        ProcessStatus("a/retry", host="a", state=S.RETRYING, exit_code=2, next_retry_at=NOW + 5.5,
                      reason="crashed: exit 2, retrying"),
        ProcessStatus("a/nightly", host="a", state=S.STOPPED, next_run_at=NOW + 3600, exit_code=0,
                      reason="exited 0; next run at 02:00"),
        ProcessStatus("a/数据库服务器主节点数据库服务器主节点", host="a", ports=(5432, 5433, 5434, 5435, 5436),
                      **running),  # type: ignore[arg-type]
        ProcessStatus("a/🚀-launcher-🚀", host="a", state=S.STARTING, reason="starting: waiting for port 80"),
        ProcessStatus("a/" + "very-long-process-name-" * 3, host="a", state=S.CRASHED, exit_code=-9,
                      reason="killed by SIGKILL"),
        ProcessStatus("a/docs", host="a", state=S.DISABLED, reason="disabled"),
        ProcessStatus("a/stopping", host="a", state=S.STOPPING, pid=99, reason="stopping: SIGTERM sent"),
        ProcessStatus("b/web", host="b", ports=(8000, 8001), **running),  # type: ignore[arg-type]
        ProcessStatus("b/worker", host="b", state=S.CRASHED, exit_code=3, reason="crashed: exit 3"),
    ]


class Still:
    """A controller of fixed statuses that never change (only what the dashboard reads)."""

    async def info(self) -> SupervisorInfo:
        return SupervisorInfo(instance="test", pid=4242, started_at=NOW - 754, version="0.1.0")

    async def processes(self, *, facts: bool = False) -> list[ProcessStatus]:
        return statuses()

    @asynccontextmanager
    async def subscribe(self, *, facts: bool = False) -> AsyncIterator[AsyncIterator[Any]]:
        async def nothing() -> AsyncIterator[Any]:
            await asyncio.Event().wait()
            yield None

        yield nothing()


Rendered = list[list[list[Segment]] | list[Segment]]


def render(t: ProcessTable, *, short: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Rendered, int]:
    """Every row line (cursor and mouse on it or elsewhere, hover shown or not) and every line of the
    widget, from empty caches; and how many cells took the short path."""
    taken = 0
    with monkeypatch.context() as m:
        if short:
            original = CachedTable._render_text_cell

            def counting(self: CachedTable, *args: Any) -> Any:
                nonlocal taken
                lines = original(self, *args)
                taken += lines is not None
                return lines

            m.setattr(CachedTable, "_render_text_cell", counting)
        else:
            m.setattr(CachedTable, "_plain_rows", lambda self: False)
            m.setattr(CachedTable, "_render_text_cell", lambda self, *args: None)
        t._cells_rendered.clear()
        t._rows_rendered.clear()
        t._update_count += 1  # (DataTable's own caches)
        out: Rendered = []
        for hover_shown in (True, False):
            t._show_hover_cursor = hover_shown
            for index in range(t.row_count):
                key = t._row_locations.get_key(index)
                assert key is not None
                for cursor in (index, index + 1):
                    for hover in (index, -2):
                        fixed, cells = t._render_line_in_row(key, 0, t.rich_style, Coordinate(cursor, 0),
                                                             Coordinate(hover, 0))
                        out += [fixed, cells]
            out += [list(t._render_line(y, 0, t.size.width, t.rich_style)) for y in range(t.size.height)]
    return out, taken


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "textual-light", "ansi-dark"])
async def test_the_short_path_renders_as_datatable_does(theme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = PmtopApp(Still(), mode="attached", theme=theme, clock=lambda: NOW)  # type: ignore[arg-type]
    async with app.run_test(size=(180, 30)) as pilot:
        t = table(app)
        await until(pilot, lambda: t.row_count == len(statuses()), what="every row")
        app.store.set_links([HostLink("a", "http://a:19881", LinkState.UP),
                             HostLink("b", "http://b:19881", LinkState.RECONNECTING)])
        t.toggle_mark("a/api")
        t.toggle_mark("b/web")
        await until(pilot, lambda: "host" in t._layout.keys if t._layout else False, what="the HOST column")
        await until(pilot, lambda: t._greyed == {"b/web", "b/worker"}, what="host b greyed",
                    seen=lambda: t._greyed)
        for focused in (True, False):
            if focused:
                t.focus()
            else:
                app.set_focus(None)
            await pilot.pause()
            t._pseudo_class_state = t.get_pseudo_class_state()
            short, taken = render(t, short=True, monkeypatch=monkeypatch)
            long, _ = render(t, short=False, monkeypatch=monkeypatch)
            cells = t.row_count * len(t.columns)
            assert taken > cells // 2, f"only {taken} of {cells} cells took the short path"
            assert len(short) == len(long)
            for got, expected in zip(short, long, strict=True):
                assert got == expected
