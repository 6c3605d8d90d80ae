"""The event bus: ordered delivery, registration on entry, bounded memory for slow readers."""

from __future__ import annotations

import asyncio

from pmtop.core.events import EventBus
from pmtop.core.model import ProcessRemoved, ProcessState, ProcessStatus


def status(name: str, state: ProcessState, restarts: int = 0) -> ProcessStatus:
    return ProcessStatus(name=name, state=state, restarts=restarts)


async def test_subscriber_sees_every_event_in_order() -> None:
    bus = EventBus()
    async with bus.subscribe() as sub:
        events = [status("a", ProcessState.STARTING), status("a", ProcessState.RUNNING), ProcessRemoved("a")]
        for e in events:
            bus.publish(e)
        bus.close()
        assert [e async for e in sub] == events


async def test_slow_subscriber_is_coalesced_per_process() -> None:
    bus = EventBus()
    async with bus.subscribe(max_pending=10) as slow:
        for i in range(1000):
            bus.publish(status(f"p{i % 3}", ProcessState.RUNNING, restarts=i))
        bus.close()
        received = [e async for e in slow]
    assert slow.compactions > 0
    assert len(received) <= 11
    latest = {e.name: e.restarts for e in received if isinstance(e, ProcessStatus)}
    assert latest == {"p0": 999, "p1": 997, "p2": 998}


async def test_publish_never_blocks_and_subscribers_are_independent() -> None:
    bus = EventBus()
    async with bus.subscribe() as a, bus.subscribe() as b:
        bus.publish(status("x", ProcessState.RUNNING))
        assert await asyncio.wait_for(anext(a), 5) == status("x", ProcessState.RUNNING)
        assert await asyncio.wait_for(anext(b), 5) == status("x", ProcessState.RUNNING)
    assert bus.subscriber_count == 0


def test_status_to_dict_has_every_field_and_round_trips() -> None:
    import dataclasses

    from pmtop.core.model import Health, Scope

    full = ProcessStatus(name="web1/web", state=ProcessState.RETRYING, reason="r", pid=3, ports=(80, 443),
                         health=Health.UNHEALTHY, restarts=2, consecutive_failures=1, exit_code=-9,
                         started_at=1.5, next_retry_at=2.5, cpu_percent=3.5, memory_rss=4096,
                         scope=Scope.GLOBAL, command=("a", "b"), host="web1")
    data = full.to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(ProcessStatus)}
    assert ProcessStatus.from_dict(data) == full
    assert full.local_name == "web"
    one_daemon = dataclasses.replace(full, name="web", host=None)
    assert "host" not in one_daemon.to_dict(), "a daemon's wire format has no host: only a fleet sets it"
    assert one_daemon.local_name == "web"
