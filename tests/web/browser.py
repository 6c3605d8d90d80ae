"""A real browser for the tests and the screenshot script: Debian's Chromium, driven headless by
Playwright (which must never download a browser of its own), and a way to read its terminal.

The page draws the dashboard with xterm.js on a canvas, so there is no text in the DOM to read.
An init script catches each xterm.js `Terminal` as it is built (its constructor assigns
`_addonManager`; a setter on `Object.prototype` sees that assignment first) and `screen_text` reads
the terminal's buffer through xterm.js's public API: exactly the characters the canvas shows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path(os.environ.get("PMTOP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MISSING = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"

CATCH_TERMINALS = """
window.__terminals = [];
Object.defineProperty(Object.prototype, "_addonManager", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "_addonManager", {value, writable: true, configurable: true});
    window.__terminals.push(this);
  },
});
"""

READ_SCREEN = """() => {
  const terminal = window.__terminals && window.__terminals[0];
  if (!terminal) return null;
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""

CELL = """() => {
  const terminal = window.__terminals[0];
  const box = document.querySelector("#terminal .xterm-screen").getBoundingClientRect();
  return {x: box.x, y: box.y, width: box.width / terminal.cols, height: box.height / terminal.rows};
}"""


def screen_text(page: Page) -> str:
    """What the terminal in the page shows, one line per row ("" before it exists)."""
    return page.evaluate(READ_SCREEN) or ""


def wait_screen(page: Page, check: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
    """The screen once `check(screen)` holds; fails after `timeout` with the last screen shown."""
    deadline = time.monotonic() + timeout
    while True:
        screen = screen_text(page)
        if check(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; the screen:\n{screen}")
        page.wait_for_timeout(50)  # lets the page run between looks; the deadline bounds the wait


def row_of(screen: str, text: str) -> int:
    """The first screen row that contains `text`."""
    for y, line in enumerate(screen.splitlines()):
        if text in line:
            return y
    raise AssertionError(f"{text!r} is not on the screen:\n{screen}")


def click_cell(page: Page, column: int, row: int) -> None:
    """A mouse click on one character cell of the terminal."""
    cell = page.evaluate(CELL)
    page.mouse.click(cell["x"] + (column + 0.5) * cell["width"], cell["y"] + (row + 0.5) * cell["height"])
