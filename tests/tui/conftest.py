"""Dashboard test helpers: the app around a real Supervisor, and waits on what the table shows.

Every wait has a deadline and says what it saw; none sleeps a fixed time. The table is updated from
the event stream within a flush interval, so after waiting on the core's event a test waits (with a
deadline) for the cell to show it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from pmtop.tui.app import PmtopApp
from pmtop.tui.widgets.process_table import ProcessTable
from tests.waiting import DEFAULT_TIMEOUT, POLL_INTERVAL

Check = Callable[[], bool]


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor would make screenshots depend on timing (harlequin does the same)."""
    original = Input.__init__

    def init(self: Input, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cursor_blink = False

    monkeypatch.setattr(Input, "__init__", init)


def table(app: PmtopApp) -> ProcessTable:
    return app.main.table


def cell(app: PmtopApp, name: str, column: str) -> str:
    t = table(app)
    return t.cell_text(name, column) if name in t.rows else "<no row>"


async def until(pilot: Pilot[Any], check: Check, *, what: str, timeout: float = DEFAULT_TIMEOUT,
                seen: Callable[[], object] | None = None) -> None:
    """Let the app run until `check()` holds; fail after `timeout` with what was seen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            extra = f"; saw {seen()!r}" if seen is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        await pilot.pause(POLL_INTERVAL)


async def until_cell(pilot: Pilot[Any], name: str, column: str, expected: str, *,
                     timeout: float = DEFAULT_TIMEOUT) -> None:
    app = pilot.app
    assert isinstance(app, PmtopApp)
    await until(pilot, lambda: cell(app, name, column) == expected, what=f"{name}.{column} == {expected!r}",
                timeout=timeout, seen=lambda: cell(app, name, column))


async def until_rows(pilot: Pilot[Any], names: list[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
    app = pilot.app
    assert isinstance(app, PmtopApp)
    await until(pilot, lambda: table(app).shown_names() == names, what=f"rows {names}", timeout=timeout,
                seen=lambda: table(app).shown_names())
