"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

What a person does: open the link `pmtop web` printed, see the processes, click one, stop it with `x`,
open its log pane, use the palette and the theme key; open the page with a wrong token and get no
dashboard (and no dashboard process). Every check on an action is made through the daemon's API.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator

import pytest

from tests.daemon.conftest import DaemonProc, poll

from .browser import CATCH_TERMINALS, CHROMIUM, CHROMIUM_ARGS, MISSING, click_cell, row_of, screen_text, wait_screen
from .conftest import WebProc, api_state, gone

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)]

if CHROMIUM.exists():
    from playwright.sync_api import Browser, BrowserContext, sync_playwright

VIEWPORT = {"width": 1400, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    ctx.add_init_script(CATCH_TERMINALS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def web(stack_daemon: DaemonProc, start_web: object) -> WebProc:
    return start_web("--no-browser", home=stack_daemon.home)  # type: ignore[operator,no-any-return]


def table_shown(screen: str) -> bool:
    return all(word in screen for word in ("alpha", "beta", "running", "attached"))


def reason_bar(screen: str) -> str:
    """The reason bar: the line that starts with the selected process's marker."""
    return next((line for line in screen.splitlines() if line.startswith("▌")), "")


def test_the_link_opens_the_dashboard_and_every_key_works(stack_daemon: DaemonProc, web: WebProc,
                                                         context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(f"{web.url}/?token={web.token}")
    assert response is not None and response.status == 200
    assert page.url == f"{web.url}/", "the token is dropped from the address bar"
    [cookie] = context.cookies()
    assert cookie["name"] == f"pmtop-web-{web.port}" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != web.token

    screen = wait_screen(page, table_shown, "the process table")
    wait_screen(page, lambda s: "Stop" in s and "Logs" in s, "the footer: the keys reach the dashboard at once")
    [session] = web.wait_sessions(1)

    # The mouse: a click on a row selects it.
    click_cell(page, 3, row_of(screen, "beta"))
    wait_screen(page, lambda s: "beta" in reason_bar(s), "beta selected by the click")
    click_cell(page, 3, row_of(screen, "alpha"))
    wait_screen(page, lambda s: "alpha" in reason_bar(s), "alpha selected by the click")

    # A key: `x` stops alpha, through the daemon.
    page.keyboard.press("x")
    poll(lambda: api_state(stack_daemon, "alpha") == "stopped", "alpha stopped through the daemon's API")
    wait_screen(page, lambda s: "stopped" in s.splitlines()[row_of(s, "alpha")], "alpha shown stopped")
    assert api_state(stack_daemon, "beta") == "running"

    # The palette: ctrl+p, a command by name.
    page.keyboard.press("Control+p")
    page.keyboard.type("start alpha")
    wait_screen(page, lambda s: "🔎 start alpha" in s and "Start it" in s, "the palette offering it")
    page.keyboard.press("Enter")
    poll(lambda: api_state(stack_daemon, "alpha") == "running", "alpha started from the palette")
    wait_screen(page, lambda s: "🔎" not in s and table_shown(s), "the palette closed")

    # The log pane of beta.
    click_cell(page, 3, row_of(screen_text(page), "beta"))
    wait_screen(page, lambda s: "beta" in reason_bar(s), "beta selected")
    page.keyboard.press("l")
    wait_screen(page, lambda s: "hello from beta" in s, "beta's output in the log pane")
    page.keyboard.press("Escape")
    wait_screen(page, table_shown, "back to the table")

    # A theme: `t` switches it, and the dashboard remembers the choice.
    settings = stack_daemon.home / "config" / "settings.toml"
    before = settings.read_text() if settings.exists() else ""
    page.keyboard.press("t")
    wait_screen(page, lambda s: "Theme:" in s, "the theme's name shown")
    poll(lambda: settings.exists() and settings.read_text() != before, "the next theme, remembered")
    assert tomllib.loads(settings.read_text())["theme"]

    page.close()
    web.wait_sessions(0)
    assert gone(session), "closing the tab ends its dashboard"
    assert api_state(stack_daemon, "beta") == "running", "and leaves the processes alone"


def test_a_wrong_token_gets_no_dashboard(web: WebProc, context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(f"{web.url}/?token=not-{web.token}")
    assert response is not None and response.status == 401
    page.wait_for_load_state("networkidle")
    assert "That token is wrong" in page.inner_text("body")
    assert page.locator("#terminal").count() == 0
    assert page.evaluate("window.__terminals.length") == 0, "no terminal was ever built"
    assert context.cookies() == []
    assert web.sessions() == [], "no dashboard process"

    # The form asks once; the right token opens it.
    page.fill("input[name=token]", web.token)
    page.click("button[type=submit]")
    wait_screen(page, table_shown, "the process table after the form")
    assert page.url == f"{web.url}/"
    web.wait_sessions(1)


def test_each_tab_is_its_own_session(web: WebProc, context: BrowserContext) -> None:
    first = context.new_page()
    first.goto(f"{web.url}/?token={web.token}")
    second = context.new_page()
    second.goto(f"{web.url}/")  # the cookie of the first opens it
    for page in (first, second):
        wait_screen(page, table_shown, "the process table")
    assert len({p.pid for p in web.wait_sessions(2)}) == 2
    first.close()
    web.wait_sessions(1)
    second.keyboard.press("q")  # quitting the dashboard ends the session; the page says so
    second.wait_for_selector("body.-closed")
    assert second.is_visible("text=The dashboard session ended")
    web.wait_sessions(0)


def test_the_page_loads_nothing_from_elsewhere(web: WebProc, context: BrowserContext) -> None:
    """No font or script from the internet: everything the page needs comes from pmtop web."""
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{web.url}/?token={web.token}")
    wait_screen(page, table_shown, "the process table")
    assert requested and all(url.startswith((web.url, "ws://127.0.0.1", "data:")) for url in requested), requested
    assert errors == [], "no Content-Security-Policy violation or missing file"
