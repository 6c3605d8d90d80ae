#!/usr/bin/env python3
"""Screenshots of the real dashboard for the README: `screenshots/*.svg`.

    python screenshots/generate.py [--out DIR] [--size 160x36]

It builds a realistic scene from real processes (Python's standard library only): a web server with
an HTTP health check, an API that waits for it, a worker that keeps crashing (retrying, with its
backoff countdown), a mailer that failed (and whose hook failed too), a cache whose health check fails
(unhealthy), a finished migration, a disabled docs server, and the dev loop: a scheduled report
(counting down to its next run), two replicas of a shard and a watched dev site. It drives the real
app with `run_test`, as a person would with keys, and saves the main view in each shipped theme, the
log pane, the merged log view (`L`), the details view, the add form, the help screen and the replicas
folded (`z`). Everything runs under a throwaway PMTOP_HOME, and every process is stopped at
the end. CI runs this script (tests/tui/test_screenshots.py), so it never rots; commit the SVGs again
when the look changes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THEMES = ("dark", "light", "high-contrast")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scene(folder: Path) -> str:
    """The scene as a `pmtop.toml`, so the config loader (and its rules) build the specs."""
    py = "python3" if shutil.which("python3") else sys.executable  # reads better in the pictures
    port = free_port()
    return f'''
[defaults]
env = {{ PYTHONUNBUFFERED = "1" }}
stop_timeout = "3s"

[process.web]
command = ["{py}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
[process.web.health]
type = "http"
url = "http://127.0.0.1:{port}/"
interval = "1s"
startup = {{ initial_delay = "100ms", interval = "100ms", max_attempts = 50 }}

[process.api]
command = ["{py}", "-c", """
import time
n = 0
while True:
    n += 1
    print(f'api: GET /orders 200 in {{3 + n % 7}}ms', flush=True)
    if n % 4 == 0:
        print('api: GET /health 200', flush=True)
    time.sleep(0.2)
"""]
depends_on = {{ web = "healthy" }}

[process.worker]
command = ["{py}", "-c", "import sys; print('worker: picking up jobs'); sys.exit('worker: lost the job queue')"]
backoff = ["30s"]
max_restarts = 5

[process.mailer]
command = ["{py}", "-c", "import sys; sys.exit('smtp: connection refused (127.0.0.1:2525)')"]
restart = "no"

[process.cache]
command = ["{py}", "-c", "import time; time.sleep(3600)"]
[process.cache.health]
type = "exec"
command = ["{py}", "-c", "import sys; sys.exit('PONG expected')"]
interval = "300ms"
failures = 100000

[process.migrate]
command = ["{py}", "-c", "print('migrating: 3 pending'); print('migrating: schema up to date')"]
restart = "no"

[process.mailer.hooks]
on = ["failed"]
command = ["pmtop-demo-notify-send", "mail is down: {{reason}}"]

[process.docs]
command = ["{py}", "-m", "http.server", "{free_port()}", "--bind", "127.0.0.1"]
enabled = false

[process.report]
command = ["{py}", "-c", "print('report: 12 orders, 0 refunds')"]
schedule = "every 45s"

[process.shard]
command = ["{py}", "-c", """
import os, time
while True:
    print(f'shard {{os.environ["PMTOP_REPLICA"]}}: 118 keys', flush=True)
    time.sleep(0.7)
"""]
replicas = 2

[process.site]
command = ["{py}", "-m", "http.server", "{free_port()}", "--bind", "127.0.0.1"]
cwd = "site"
watch = {{ paths = ["."], debounce = "300ms" }}
'''


async def until(pilot: Any, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    from textual.css.query import NoMatches

    def holds() -> bool:
        try:
            return check()
        except NoMatches:  # the screen it looks at is not up yet (keys are still being handled)
            return False

    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            raise SystemExit(f"generate.py: timed out waiting for {what}")
        await pilot.pause(0.05)


async def generate(out: Path, size: tuple[int, int]) -> list[Path]:
    from pmtop.core.config import load_config
    from pmtop.core.locations import instance_paths
    from pmtop.core.model import Health
    from pmtop.core.model import ProcessState as S
    from pmtop.core.supervisor import Supervisor
    from pmtop.tui.app import PmtopApp

    folder = Path(tempfile.gettempdir()) / "pmtop-demo"  # a fixed name: it shows in the pictures
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.environ["PMTOP_HOME"] = str(folder / "home")
    config_path = folder / "pmtop.toml"
    config_path.write_text(scene(folder))
    (folder / "site").mkdir()
    (folder / "site" / "index.html").write_text("<h1>the dev site</h1>\n")
    config = load_config(config_path)
    sup = Supervisor(config.processes, paths=instance_paths("demo"), config_path=config_path)
    app = PmtopApp(sup, theme="dark")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str) -> None:
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
        written.append(out / f"{name}.svg")

    def status(name: str) -> Any:
        return app.store.get(name)

    def ready() -> bool:
        want = {
            "web": lambda s: s.state is S.RUNNING and s.health is Health.HEALTHY,
            "api": lambda s: s.state is S.RUNNING,
            "worker": lambda s: s.state is S.RETRYING,
            "mailer": lambda s: s.state is S.FAILED,
            "cache": lambda s: s.health is Health.UNHEALTHY,
            "migrate": lambda s: s.state is S.STOPPED and s.exit_code == 0,
            "shard-2": lambda s: s.state is S.RUNNING,
            "site": lambda s: s.state is S.RUNNING and s.watching,
        }
        return all(status(n) is not None and ok(status(n)) for n, ok in want.items())

    try:
        async with app.run_test(size=size) as pilot:
            await sup.boot()
            await until(pilot, ready, "the scene (running, retrying, failed, unhealthy)")
            await until(pilot, lambda: app.main.table.cell_text("worker", "backoff").startswith("retry in 2"),
                        "the countdown")
            await pilot.press("down", "down")  # worker: its reason below the table
            for theme in THEMES:
                app.theme = theme
                await pilot.pause(0.2)
                save(f"main-{theme}")
            app.theme = "dark"
            await pilot.press("up")  # api
            await pilot.press("l")
            await until(pilot, lambda: len(app.screen.query_one("#log").lines) > 12, "the api's log")  # type: ignore[attr-defined]
            await pilot.press("slash", *"health", "enter")  # matches highlighted, the first one centred
            await pilot.pause(0.3)
            save("logs")
            await pilot.press("escape", "down", "down", "i")  # mailer's details
            await until(pilot, lambda: app.screen.query_one("#history").row_count > 0, "the mailer's history")  # type: ignore[attr-defined]
            await pilot.pause(0.2)
            save("details")
            await pilot.press("escape", "a", *"redis", "tab", *"redis-server --port 6380")
            await pilot.pause(0.2)
            save("add")
            await pilot.press("escape")
            await pilot.resize_terminal(size[0], max(size[1], 52))  # tall enough for all of the help
            await pilot.press("question_mark")
            await pilot.pause(0.3)
            save("help")
            await pilot.press("escape")
            await pilot.resize_terminal(*size)
            await until(pilot, lambda: status("mailer") is not None and status("mailer").hook_error is not None,
                        "the mailer's hook failure")
            await pilot.press("L")  # every process's output, merged by time
            await until(pilot, lambda: len({line.split()[1] for line in app.screen.query_one("#log").lines}) >= 4,  # type: ignore[attr-defined]
                        "lines of four processes")
            await pilot.pause(0.3)
            save("logs-all")
            await pilot.press("escape", "z")  # replicas folded: shard ×2
            await until(pilot, lambda: "shard" in app.main.table.shown_names(), "the folded shard")
            app.main.table.move_cursor(row=app.main.table.shown_names().index("report"))
            await pilot.pause(0.3)
            save("dev-loop")
    finally:
        await sup.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the SVGs (default: screenshots/)")
    parser.add_argument("--size", default="160x36", help="terminal COLSxROWS (default 160x36)")
    args = parser.parse_args(argv)
    cols, rows = (int(n) for n in args.size.split("x"))
    for path in asyncio.run(generate(args.out, (cols, rows))):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
