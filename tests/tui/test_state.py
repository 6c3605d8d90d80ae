"""The `StatusStore`: the dashboard's one copy of every process's status, kept by following the core.

Over a real Supervisor with real processes: widgets render from the store, so what is filtered out
of the table is still known; a burst from the core is applied as one batch; the store's bookkeeping
(order, counts, the retrying set, removals) matches what it was told.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from pmtop.core.model import ProcessEvent, ProcessRemoved, ProcessState, ProcessStatus
from pmtop.core.supervisor import Supervisor
from pmtop.tui.app import PmtopApp
from pmtop.tui.screens.quit import QuitScreen
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
    """A real Supervisor's controller whose event stream opens with a burst: `BURST` updates of one
    process, delivered back to back (as a daemon's queue delivers them after a stall)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sup, name)

    def subscribe(self, *, facts: bool = False) -> AbstractAsyncContextManager[AsyncIterator[ProcessEvent]]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterator[ProcessEvent]]:
            async with self.sup.subscribe(facts=facts) as events:
                yield self._burst_then(events)

        return opened()

    async def _burst_then(self, events: AsyncIterator[ProcessEvent]) -> AsyncIterator[ProcessEvent]:
        base = await self.sup.status("web")
        for n in range(1, BURST + 1):
            yield dataclasses.replace(base, restarts=n)
        async for event in events:
            yield event


async def test_a_burst_is_coalesced_per_process_and_applied_once(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"), spec("api"))
    app = PmtopApp(Bursty(sup))  # type: ignore[arg-type]  # a structural Controller
    batches: list[set[str]] = []
    restarts_seen: list[int] = []
    async with app.run_test(size=SIZE) as pilot:
        def record(names: set[str]) -> None:
            batches.append(set(names))
            if "web" in names and (status := app.store.get("web")) is not None:
                restarts_seen.append(status.restarts)

        app.store.changed.subscribe(app, record, immediate=True)
        await until(pilot, lambda: cell(app, "web", "restarts") == str(BURST), what="the last of the burst",
                    seen=lambda: cell(app, "web", "restarts"))
    # Subscribed while the snapshot (restarts 0) may already be applied: what follows is the burst, and
    # however it was split in time, each batch held its newest status only (never 500 separate updates).
    burst = [n for n in restarts_seen if n > 0]
    assert burst[-1] == BURST and len(burst) <= 3, restarts_seen


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
