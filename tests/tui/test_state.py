"""The `StatusStore`: the dashboard's one copy of every process's status, kept by following the core.

Over a real Supervisor with real processes: widgets render from the store, so what is filtered out
of the table is still known; a burst from the core is applied as one batch; the store's bookkeeping
(order, counts, the retrying set, removals) matches what it was told.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from pmtop.core.model import ProcessEvent, ProcessRemoved, ProcessState, ProcessStatus
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.screens.quit import QuitScreen
from pmtop.tui.widgets.process_table import ProcessTable
from tests.conftest import spec
from tests.tui.conftest import cell, until, until_rows
from tests.waiting import wait_state

S = ProcessState
Make = Callable[..., Supervisor]
SIZE = (160, 45)
BURST = 500


async def test_what_the_table_filters_out_is_still_followed(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    app = PmtopApp(sup)
    async with sup.subscribe() as events, app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api"])
        await pilot.press("slash", *"web", "enter")
        await until_rows(pilot, ["web"])
        await sup.start("api")
        await wait_state(events, "api", S.RUNNING)
        await until(pilot, lambda: (s := app.store.get("api")) is not None and s.state is S.RUNNING,
                    what="the store to follow api")
        assert cell(app, "api", "state") == "<no row>"
        await pilot.press("q")  # the quit question counts from the store, not from the rows shown
        assert isinstance(app.screen, QuitScreen) and app.screen.running == 1
        await pilot.press("escape")
        await sup.stop("api")


class Bursty:
    """A real Supervisor's controller whose event stream, once `go` is set, opens with a burst: `BURST`
    updates of one process, delivered back to back (as a daemon's queue delivers them after a stall)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sup, name)

    def subscribe(self, *, facts: bool = False) -> AbstractAsyncContextManager[AsyncIterator[ProcessEvent]]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterator[ProcessEvent]]:
            async with self.sup.subscribe(facts=facts) as events:
                yield self._burst_then(events)

        return opened()

    async def _burst_then(self, events: AsyncIterator[ProcessEvent]) -> AsyncIterator[ProcessEvent]:
        await self.go.wait()
        base = await self.sup.status("web")
        for n in range(1, BURST + 1):
            yield dataclasses.replace(base, restarts=n)
        async for event in events:
            yield event


async def test_a_burst_is_coalesced_per_process_and_applied_once(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    ctl = Bursty(sup)
    app = PmtopApp(ctl)  # type: ignore[arg-type]  # a structural Controller
    restarts_seen: list[int] = []
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api"])

        def record(names: set[str]) -> None:
            if "web" in names and (status := app.store.get("web")) is not None:
                restarts_seen.append(status.restarts)

        app.store.changed.subscribe(app, record, immediate=True)
        ctl.go.set()
        await until(pilot, lambda: cell(app, "web", "restarts") == str(BURST), what="the last of the burst",
                    seen=lambda: cell(app, "web", "restarts"))
    assert restarts_seen == [BURST], "one batch with the newest status, not 500 updates"


async def test_the_store_keeps_order_counts_and_the_retrying_set(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"), spec("docs", enabled=False))
    app = PmtopApp(sup)
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web", "api", "docs"])
        store = app.store
        assert list(store.statuses) == ["web", "api", "docs"] and store.order["web"] < store.order["api"]
        assert store.counts == {S.STOPPED: 2, S.DISABLED: 1}
        published: list[set[str]] = []
        store.changed.subscribe(app, published.append, immediate=True)
        web = store.statuses["web"]
        store.apply([dataclasses.replace(web, state=S.RETRYING, next_retry_at=1e12), ProcessRemoved("api"),
                     ProcessStatus("new", S.STOPPED), ProcessRemoved("never-heard-of")])
        assert published == [{"web", "api", "new"}]
        assert list(store.statuses) == ["web", "docs", "new"] and store.get("api") is None
        assert store.counts == {S.RETRYING: 1, S.DISABLED: 1, S.STOPPED: 1}
        assert store.retrying == {"web"} and store.in_states({S.RETRYING, S.DISABLED}) == ["web", "docs"]
        await until_rows(pilot, ["web", "docs", "new"])  # the table follows the store
        await until(pilot, lambda: cell(app, "web", "backoff").startswith("retry in "), what="web's countdown")
        store.apply([web])
        assert store.retrying == set() and store.counts == {S.STOPPED: 2, S.DISABLED: 1}


async def test_a_failing_view_is_not_swallowed(make_supervisor: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual's signals log and drop their subscribers' errors; the table's must stop the app as any
    handler's would."""
    sup = make_supervisor(spec("web"))
    app = PmtopApp(sup)
    with pytest.raises(RuntimeError, match="a bug in the table"):
        async with app.run_test(size=SIZE) as pilot:
            await until_rows(pilot, ["web"])

            def broken(self: ProcessTable, names: object) -> bool:
                raise RuntimeError("a bug in the table")

            monkeypatch.setattr(ProcessTable, "apply", broken)
            app.store.apply([ProcessStatus("web", S.RUNNING)])
            await until(pilot, lambda: not app.is_running, what="the app to stop")


async def test_the_collector_runs_less_often_while_the_dashboard_runs(make_supervisor: Make) -> None:
    import gc

    from pmtop.tui.app import GC_THRESHOLD

    before = gc.get_threshold()
    app = PmtopApp(make_supervisor(spec("web")))
    async with app.run_test(size=SIZE) as pilot:
        await until_rows(pilot, ["web"])
        assert gc.get_threshold() == (max(GC_THRESHOLD, before[0]), *before[1:])
    assert gc.get_threshold() == before
