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


@pytest.fixture(autouse=True)
def keys_take_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each key is handled, and what it did is on screen, before the next key is sent or the test looks.

    `Pilot.press` sends its keys a CPU-idle wait apart (on a loaded machine the test process's own
    idleness, not the app's), then waits until the app and the current screen have handled what was
    queued. A key that is not a priority binding is only forwarded by the app to the focused widget,
    whose queue that wait may have flushed before the key got there: under load a press returned
    before its action ran (`d` had not opened its question yet), and in `press("d", "y")` the `y`
    could reach the table before the question was up. So keys go one at a time here, each followed
    by one more round of Textual's own wait, which the forwarded key is ahead of."""
    original = Pilot.press

    async def press(self: Pilot[Any], *keys: str) -> None:
        for key in keys:
            await original(self, key)
            if self.app.is_running:
                await self._wait_for_screen()

    monkeypatch.setattr(Pilot, "press", press)


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
