"""Attached mode: the same dashboard over a daemon that can vanish and come back.

`Unreliable` is a thin delegating `Controller` around a real Supervisor (real processes) that can be
switched off, as a dead daemon looks to the HTTP client: every call and every open stream raises
`DaemonUnavailable`. One test also drives the real `HttpController` against the real API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from pmtop.core.errors import DaemonUnavailable
from pmtop.core.model import ProcessEvent, ProcessSpec, ProcessState, ProcessStatus, RunRecord, SupervisorInfo
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.screens.quit import QuitChoice
from pmtop.tui.widgets.header import StatusHeader
from tests.api.conftest import Serve, serve  # noqa: F401  (the fixture, shared with the API tests)
from tests.conftest import spec
from tests.tui.conftest import until, until_cell, until_rows
from tests.waiting import wait_state

S = ProcessState
T = TypeVar("T")
Make = Callable[..., Supervisor]
SIZE = (160, 45)


class Unreliable:
    """A daemon's controller that can die (`kill`) and come back (`revive`); the processes keep running."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.down = False
        self._lost = asyncio.Event()

    def kill(self) -> None:
        self.down = True
        self._lost.set()

    def revive(self) -> None:
        self.down = False
        self._lost = asyncio.Event()

    def _check(self) -> None:
        if self.down:
            raise DaemonUnavailable("no daemon answers at 127.0.0.1:19881")

    async def _guard(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        lost = self._lost
        while True:
            following = asyncio.ensure_future(anext(items))
            dying = asyncio.ensure_future(lost.wait())
            done, _ = await asyncio.wait({following, dying}, return_when=asyncio.FIRST_COMPLETED)
            if dying in done:
                following.cancel()
                raise DaemonUnavailable("the daemon stopped answering")
            dying.cancel()
            try:
                yield following.result()
            except StopAsyncIteration:
                return

    async def info(self) -> SupervisorInfo:
        self._check()
        return await self.sup.info()

    async def stop_many(self, names: list[str] | None = None) -> list[ProcessStatus]:
        self._check()
        return await self.sup.stop_many(names)

    async def processes(self, *, facts: bool = False) -> list[ProcessStatus]:
        self._check()
        return await self.sup.processes(facts=facts)

    async def status(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.status(name)

    async def spec(self, name: str) -> ProcessSpec:
        self._check()
        return await self.sup.spec(name)

    async def start(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.start(name)

    async def stop(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.stop(name)

    async def restart(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.restart(name)

    async def enable(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.enable(name)

    async def disable(self, name: str) -> ProcessStatus:
        self._check()
        return await self.sup.disable(name)

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus:
        self._check()
        return await self.sup.add(spec, start=start)

    async def remove(self, name: str) -> None:
        self._check()
        await self.sup.remove(name)

    async def logs(self, name: str, stream: str = "stdout", lines: int = 200) -> list[str]:
        self._check()
        return await self.sup.logs(name, stream, lines)

    async def history(self, name: str) -> list[RunRecord]:
        self._check()
        return await self.sup.history(name)

    def follow(self, name: str, stream: str = "stdout", lines: int = 10) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterator[str]]:
            self._check()
            async with self.sup.follow(name, stream, lines) as follower:
                yield self._guard(follower)

        return opened()

    def subscribe(self, *, facts: bool = False) -> AbstractAsyncContextManager[AsyncIterator[ProcessEvent]]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterator[ProcessEvent]]:
            self._check()
            async with self.sup.subscribe(facts=facts) as events:
                yield self._guard(events)

        return opened()


def lost(app: PmtopApp) -> str | None:
    return app.main.query_one(StatusHeader).lost


async def test_a_lost_daemon_is_a_header_state_and_the_dashboard_reconnects(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    ctl = Unreliable(sup)
    app = PmtopApp(ctl, mode="attached")  # type: ignore[arg-type]  # a structural Controller
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api"])
        assert lost(app) is None
        ctl.kill()
        await until(pilot, lambda: (lost(app) or "").startswith("daemon lost — reconnecting"),
                    what="the header to say so", seen=lambda: lost(app))
        await pilot.press("s")  # refused with a message, not a crash
        await until(pilot, lambda: any("no daemon answers" in str(n.message) for n in app._notifications),
                    what="a notification")
        # Meanwhile the daemon's processes change, unseen.
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await sup.remove("api")
        assert app.is_running
        ctl.revive()
        await until(pilot, lambda: lost(app) is None, what="the header to clear", timeout=15)
        await until_rows(pilot, ["web"])  # api is gone
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("x")  # and actions work again
        await wait_state(events, "web", S.STOPPED)
        await until_cell(pilot, "web", "state", "stopped")


async def test_the_log_pane_survives_a_lost_daemon(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("talk", "import time\nprint('hello', flush=True)\ntime.sleep(600)"))
    ctl = Unreliable(sup)
    app = PmtopApp(ctl, mode="attached")  # type: ignore[arg-type]
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("talk")
        await wait_state(events, "talk", S.RUNNING)
        await until_cell(pilot, "talk", "state", "running")
        await pilot.press("l")
        title = app.screen.query_one("#log-title")
        await until(pilot, lambda: "hello" in app.screen.query_one("#log").lines, what="the output")  # type: ignore[attr-defined]
        ctl.kill()
        await until(pilot, lambda: "daemon lost" in str(title.render()), what="the pane to say so")
        ctl.revive()
        await until(pilot, lambda: "daemon lost" not in str(title.render()), what="the pane to reconnect",
                    timeout=15)
        await until(pilot, lambda: "hello" in app.screen.query_one("#log").lines, what="the output again")  # type: ignore[attr-defined]
        await sup.stop("talk")


async def test_q_in_attached_mode_detaches_without_asking(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    app = PmtopApp(Unreliable(sup), mode="attached")  # type: ignore[arg-type]
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await sup.start("web")
        await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "state", "running")
        await pilot.press("q")
    assert app.return_value is QuitChoice.DETACH
    assert (await sup.status("web")).state is S.RUNNING  # the daemon keeps it
    await sup.stop("web")


async def test_the_dashboard_drives_a_daemon_over_http(serve: Serve) -> None:  # noqa: F811
    from pmtop.core.api.client import HttpController

    api = await serve(spec("web"), spec("api"))
    ctl = api.controller()
    app = PmtopApp(ctl, mode="attached")
    async with api.sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api"])
        await pilot.press("s")
        started = await wait_state(events, "web", S.RUNNING)
        await until_cell(pilot, "web", "pid", str(started.pid))
        await pilot.press("x")
        await wait_state(events, "web", S.STOPPED)
        await until_cell(pilot, "web", "state", "stopped")
        header = app.main.query_one(StatusHeader)
        assert header.info is not None and header.info.port == api.daemon.port
        await api.stop()  # the daemon goes away
        await until(pilot, lambda: (lost(app) or "").startswith("daemon lost"), what="the lost state",
                    seen=lambda: lost(app))
        assert isinstance(ctl, HttpController)
