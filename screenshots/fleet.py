#!/usr/bin/env python3
"""The fleet view for the README: `screenshots/fleet.svg`, one dashboard over four daemons.

    python screenshots/fleet.py [--out DIR] [--size 140x18]

Four real `pmtop --headless` daemons on loopback ports, each under its own throwaway PMTOP_HOME with its
own token, run small real processes (Python's standard library only). A `fleet.toml` names them
`web1`, `web2`, `jobs` and `edge`; `edge`'s token file holds a wrong token. The real app opens over them
(`FleetController`, as `pmtop --fleet` does), `jobs` is killed (SIGKILL) so that its rows show greyed
as last seen and the header says it is being reconnected, and the view is saved. Every daemon and every
process is stopped at the end (those of the killed daemon by their process groups). CI runs this
script (tests/tui/test_screenshots.py), so it never rots; commit the SVG again when the look changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from generate import free_port  # noqa: E402  (this folder's script)

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]
PY = "python3" if shutil.which("python3") else sys.executable

HOSTS: dict[str, str] = {
    "web1": f'''
[process.web]
command = ["{PY}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1"]
[process.api]
command = ["{PY}", "-c", "import time\\nwhile True: time.sleep(1)"]
''',
    "web2": f'''
[process.web]
command = ["{PY}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1"]
[process.api]
command = ["{PY}", "-c", "import time\\nwhile True: time.sleep(1)"]
[process.mailer]
command = ["{PY}", "-c", "import sys; sys.exit('smtp: connection refused (127.0.0.1:2525)')"]
restart = "no"
''',
    "jobs": f'''
[process.worker]
command = ["{PY}", "-c", "import time\\nwhile True: time.sleep(1)"]
[process.reports]
command = ["{PY}", "-c", "import time\\nwhile True: time.sleep(1)"]
''',
    "edge": f'''
[process.proxy]
command = ["{PY}", "-c", "import time\\nwhile True: time.sleep(1)"]
''',
}


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"fleet.py: timed out waiting for {what}")
        time.sleep(0.05)
    return value


def get(port: int, path: str, token: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


class Host:
    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder / name
        self.home = self.folder / "home"
        self.port = free_port()
        self.folder.mkdir(parents=True)
        (self.folder / "pmtop.toml").write_text(HOSTS[name].replace("{port}", str(free_port())))
        env = {**os.environ, "PMTOP_HOME": str(self.home)}
        env.pop("PMTOP_TOKEN", None)
        self.proc = subprocess.Popen([*PMTOP, "--headless", "--port", str(self.port)], cwd=self.folder, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.token_file = self.home / "state" / "default" / "token"
        self.pids: set[int] = set()

    def processes(self) -> list[dict[str, Any]]:
        token = self.token_file.read_text().strip() if self.token_file.exists() else ""
        data = get(self.port, "/processes", token)
        return list(data["processes"]) if isinstance(data, dict) else []

    def settled(self) -> bool:
        states = {p["name"]: p["state"] for p in self.processes()}
        return bool(states) and all(s in ("running", "failed") for s in states.values())

    def kill(self) -> None:
        """SIGKILL the daemon, as a crash would; its processes' groups are ended by `stop`."""
        self.pids = {p["pid"] for p in self.processes() if p.get("pid")}
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.pids:  # each process leads its own group (pmtop's rule): end it whole
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


async def photograph(hosts: dict[str, Host], config: Path, out: Path, size: tuple[int, int]) -> Path:
    from pmtop.core.api.fleet import FleetController
    from pmtop.core.config.fleet import choose, load_fleet
    from pmtop.core.model import LinkState
    from pmtop.tui.app import PmtopApp

    async with FleetController(choose(load_fleet(config))) as controller:
        app = PmtopApp(controller, mode="fleet", theme="dark")
        async with app.run_test(size=size) as pilot:

            async def wait(check: Callable[[], bool], what: str) -> None:
                deadline = time.monotonic() + 30
                while not check():
                    if time.monotonic() > deadline:
                        raise SystemExit(f"fleet.py: timed out waiting for {what}")
                    await pilot.pause(0.05)

            def links() -> dict[str, LinkState]:
                return {link.host: link.state for link in controller.links()}

            await wait(lambda: links() == {"web1": LinkState.UP, "web2": LinkState.UP, "jobs": LinkState.UP,
                                           "edge": LinkState.REFUSED}, "the links")
            await wait(lambda: len(app.main.table.shown_names()) == 7, "every row")
            await wait(lambda: all(app.main.table.cell_text(n, "mem") for n in ("web1/web", "web2/api")), "facts")
            hosts["jobs"].kill()
            await wait(lambda: links()["jobs"] is LinkState.RECONNECTING and app.store.greyed("jobs/worker"),
                       "jobs lost")
            await pilot.press("down", "down", "down", "down")  # web2's mailer: its reason below the table
            await pilot.pause(0.3)
            app.save_screenshot(filename="fleet.svg", path=str(out))
    return out / "fleet.svg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the SVG (default: screenshots/)")
    parser.add_argument("--size", default="140x18", help="terminal COLSxROWS (default 140x18)")
    args = parser.parse_args(argv)
    cols, rows = (int(n) for n in args.size.split("x"))
    folder = Path(tempfile.gettempdir()) / "pmtop-fleet-demo"  # a fixed name: it may show in the picture
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    hosts: dict[str, Host] = {}
    try:
        for name in HOSTS:
            hosts[name] = Host(name, folder)
        for host in hosts.values():
            until(host.settled, f"{host.name}'s processes")
        wrong = folder / "edge.token"
        wrong.write_text("not-the-token\n")
        tokens = {name: host.token_file for name, host in hosts.items()} | {"edge": wrong}
        home = folder / "me"
        (home / "config").mkdir(parents=True)
        config = home / "config" / "fleet.toml"
        config.write_text("[fleet]\ndaemons = [\n" + "".join(
            f'  {{ url = "http://127.0.0.1:{host.port}", token_file = "{tokens[name]}", name = "{name}" }},\n'
            for name, host in hosts.items()) + "]\n")
        os.environ["PMTOP_HOME"] = str(home)
        args.out.mkdir(parents=True, exist_ok=True)
        print(asyncio.run(photograph(hosts, config, args.out, (cols, rows))))
    finally:
        for host in hosts.values():
            host.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
