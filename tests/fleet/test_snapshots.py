"""Snapshots of the fleet view, over real daemons: the HOST column and every link state in the header.

The scene has no volatile cell: processes that never ran, are disabled or failed to spawn (no PIDs,
uptimes or durations), daemons labelled by name (no port in sight), link states without counters
(`lost — reconnecting`, not an attempt number). `alpha` is up; `beta` was killed (its rows greyed as last
seen); `gamma` refuses our token. Regenerate with `--snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from pmtop.core.api.fleet import FleetController
from pmtop.core.config.fleet import FleetDaemon, choose, load_fleet
from pmtop.core.model import LinkState
from pmtop.tui import PmtopApp
from tests.daemon.conftest import DaemonProc, free_port, poll, write_config
from tests.fleet.conftest import Start
from tests.tui.conftest import until

SnapCompare = Callable[..., bool]

ALPHA = """
[process.web]
command = ["pmtop-demo-server", "--port", "8000"]
autostart = false
[process.api]
command = ["pmtop-demo-api"]
enabled = false
[process.broken]
command = ["pmtop-no-such-program", "--serve"]
backoff = ["0s"]
max_restarts = 2
"""
BETA = """
[process.web]
command = ["pmtop-demo-server", "--port", "8000"]
autostart = false
[process.worker]
command = ["pmtop-demo-worker"]
autostart = false
"""


@dataclass
class Scene:
    daemons: tuple[FleetDaemon, ...]
    beta: DaemonProc


@pytest.fixture
def scene(start_daemon: Start, tmp_path: Path, pmtop_home: Path) -> Scene:
    started: dict[str, DaemonProc] = {}
    for name, config in (("alpha", ALPHA), ("beta", BETA), ("gamma", BETA)):
        folder = tmp_path / name
        write_config(folder, config)
        started[name] = start_daemon("--port", str(free_port()), cwd=folder, home=folder / "home")
    poll(lambda: started["alpha"].processes()["broken"]["state"] == "failed", "alpha's broken to give up")
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    tokens = {"alpha": started["alpha"].state_dir / "token", "beta": started["beta"].state_dir / "token",
              "gamma": wrong}
    config = pmtop_home / "config"
    config.mkdir(parents=True)
    (config / "fleet.toml").write_text("[fleet]\ndaemons = [\n" + "".join(
        f'  {{ url = "{daemon.url}", token_file = "{tokens[name]}", name = "{name}" }},\n'
        for name, daemon in started.items()) + "]\n")
    return Scene(choose(load_fleet(config / "fleet.toml")), started["beta"])


def fleet_view(controller: FleetController, beta: DaemonProc) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, PmtopApp)

        def links() -> dict[str, LinkState]:
            return {link.host: link.state for link in controller.links()}

        await until(pilot, lambda: links() == {"alpha": LinkState.UP, "beta": LinkState.UP,
                                               "gamma": LinkState.REFUSED}, what="the links", seen=links)
        await until(pilot, lambda: len(app.main.table.shown_names()) == 5, what="alpha's and beta's rows",
                    seen=app.main.table.shown_names)
        beta.proc.kill()  # SIGKILL: beta is lost, its rows stay as last seen
        await asyncio.to_thread(beta.proc.wait)
        await until(pilot, lambda: links()["beta"] is LinkState.RECONNECTING, what="beta lost", seen=links)
        await until(pilot, lambda: app.store.greyed("beta/worker"), what="beta greyed")
        await pilot.press("down", "down")  # alpha's broken: its reason below the table
        await pilot.pause(0.2)

    return run_before


class FleetApp(PmtopApp):
    """The app, closing its fleet's HTTP clients in its own event loop (the snapshot plugin runs one)."""

    async def on_unmount(self) -> None:
        assert isinstance(self.controller, FleetController)
        await self.controller.aclose()


def snapshot(snap_compare: SnapCompare, scene: Scene, size: tuple[int, int], **options: Any) -> bool:
    controller = FleetController(scene.daemons)
    app = FleetApp(controller, mode="fleet", **options)
    return snap_compare(app, terminal_size=size, run_before=fleet_view(controller, scene.beta))


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_fleet_view(snap_compare: SnapCompare, scene: Scene, theme: str) -> None:
    """HOST column; header: alpha up, beta lost — reconnecting (its rows greyed), gamma refused: wrong token;
    alpha's failed `broken` selected, its reason below."""
    assert snapshot(snap_compare, scene, (160, 30), theme=theme)


def test_fleet_view_80x24(snap_compare: SnapCompare, scene: Scene) -> None:
    """Narrow: the header takes two lines, the HOST column stays (it is what tells the rows apart)."""
    assert snapshot(snap_compare, scene, (80, 24))
