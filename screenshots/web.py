#!/usr/bin/env python3
"""Screenshots of the dashboard in a browser for the README: `screenshots/web.png` and `web-login.png`.

    python screenshots/web.py [--out DIR]

The same scene as `generate.py` (its `pmtop.toml`), under a real `pmtop --headless` daemon and a real
`pmtop web`, photographed by Debian's Chromium (headless, driven by Playwright with
`/usr/bin/chromium`; it never downloads a browser). Everything runs under a throwaway PMTOP_HOME, and
the web server, its sessions and the daemon with its processes are stopped at the end. CI runs this
script (tests/web/test_screenshots.py); commit the PNGs again when the look changes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from generate import free_port, scene  # noqa: E402  (this folder's script: the same scene)

from tests.web.browser import CATCH_TERMINALS, CHROMIUM, CHROMIUM_ARGS, click_cell, row_of, wait_screen  # noqa: E402

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]
VIEWPORT = {"width": 1400, "height": 760}
LOGIN_VIEWPORT = {"width": 900, "height": 480}


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"web.py: timed out waiting for {what}")
        time.sleep(0.05)
    return value


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            data = json.loads(answer.read())
            return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


@contextmanager
def running(argv: list[str], *, cwd: Path, env: dict[str, str], port: int, service: str) -> Iterator[None]:
    """A pmtop process until the block ends (SIGTERM, then SIGKILL): it answers /health as `service`."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: proc.poll() is None and (health(port) or {}).get("service") == service, f"{service} to answer")
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scene_ready(screen: str) -> bool:
    return all(word in screen for word in ("retry in 2", "failed", "unhealthy", "disabled", "api ")) and \
        screen.count("running") >= 3


def generate(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.gettempdir()) / "pmtop-demo"  # generate.py's folder: it shows in the pictures
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    daemon_port, web_port = free_port(), free_port()
    (folder / "pmtop.toml").write_text(f'[daemon]\ninstance = "demo"\nport = {daemon_port}\n' + scene(folder))
    (folder / "site").mkdir(exist_ok=True)  # the watched dev site's folder, as generate.py makes it
    (folder / "site" / "index.html").write_text("<h1>the dev site</h1>\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
    env["PMTOP_HOME"] = str(folder / "home")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "web.png", out / "web-login.png"]
    try:
        with running([*PMTOP, "--headless"], cwd=folder, env=env, port=daemon_port, service="pmtop"), \
                running([*PMTOP, "web", "--no-browser", "--port", str(web_port)], cwd=folder, env=env,
                        port=web_port, service="pmtop-web"), sync_playwright() as playwright:
            token = (folder / "home" / "state" / "demo" / "token").read_text().strip()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                page.add_init_script(CATCH_TERMINALS)
                page.goto(f"http://127.0.0.1:{web_port}/?token={token}")
                screen = wait_screen(page, scene_ready, "the scene (running, retrying, failed, unhealthy)")
                click_cell(page, 3, row_of(screen, "worker"))  # its reason below the table
                wait_screen(page, lambda s: any(line.startswith("▌ worker") for line in s.splitlines()),
                            "the worker selected")
                page.mouse.move(0, 0)
                page.wait_for_timeout(300)  # the hover highlight fades
                page.screenshot(path=str(written[0]))
                login = browser.new_page(viewport=LOGIN_VIEWPORT)  # type: ignore[arg-type]
                login.goto(f"http://127.0.0.1:{web_port}/")
                login.wait_for_load_state("networkidle")
                login.screenshot(path=str(written[1]))
                page.close()
            finally:
                browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (default: screenshots/)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"web.py: no Chromium at {CHROMIUM} (apt-get install chromium)")
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
