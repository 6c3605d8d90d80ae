"""`type = "heartbeat"` (SPEC §10) against a real worker that touches a real file, and stalls on demand."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pmtop.core.checks import heartbeat, parse_health
from pmtop.core.checks.base import ProbeContext
from pmtop.core.checks.heartbeat import HeartbeatCheck
from pmtop.core.errors import Invalid
from pmtop.core.model import Health, HealthSpec, ProcessState, ProcessStatus
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]

#: Touches `beat` (relative: in its cwd) every 50 ms while `stall` (argv[1]) does not exist.
WORKER = """
import os, pathlib, sys, time
beat, stall = pathlib.Path("beat"), sys.argv[1]
while True:
    if not os.path.exists(stall):
        beat.touch()
    time.sleep(0.05)
"""


def of(name: str, pred: Callable[[ProcessStatus], bool]) -> Callable[[ProcessStatus], bool]:
    return lambda s: s.name == name and pred(s)


async def test_a_stalled_worker_is_unhealthy_then_restarted(make_supervisor: Make, tmp_path: Path) -> None:
    stall = tmp_path / "stall"
    check = HealthSpec(HeartbeatCheck("beat", max_age=0.5), interval=0.1, timeout=5.0, failures=3)
    worker = spec("worker", WORKER, cwd=str(tmp_path), health=check, backoff=(0.0,))
    worker = dataclasses.replace(worker, command=(*worker.command, str(stall)))
    sup = make_supervisor(worker)
    async with sup.subscribe() as events:
        await sup.start("worker")
        healthy = await wait_for(events, of("worker", lambda s: s.health is Health.HEALTHY), what="healthy")
        assert (tmp_path / "beat").exists(), "the relative path is the process's cwd"
        stall.touch()
        failing = await wait_for(events, of("worker", lambda s: s.health is Health.UNHEALTHY), what="stale")
        assert failing.state is S.RUNNING and failing.pid == healthy.pid
        assert failing.reason.startswith("health: heartbeat file is ") and failing.reason.endswith(
            " old (max 500ms) (1/3 failures)")
        crashed = await wait_state(events, "worker", S.CRASHED)
        assert "(3/3 failures); stopping it" in crashed.reason
        stall.unlink()
        back = await wait_for(events, of("worker", lambda s: s.restarts == 1 and s.health is Health.HEALTHY),
                              what="restarted and beating again")
    assert back.pid != healthy.pid
    [run] = await sup.history("worker")
    assert run.end_reason == "health"


async def test_a_fresh_run_has_max_age_to_write_its_first_beat(tmp_path: Path) -> None:
    """A file left by an earlier run (or none at all) is not held against a run that just began."""
    old = tmp_path / "beat"
    old.touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    now = time.time()
    probe = heartbeat.KIND.probe(HeartbeatCheck("beat", max_age=30.0),
                                 ProbeContext(cwd=str(tmp_path), env=None, timeout=1.0, started_at=now))
    result = await probe.check()
    assert result.ok and result.detail.startswith("no heartbeat since the start, ")
    old.unlink()
    result = await probe.check()
    assert result.ok and result.detail.startswith("no heartbeat file yet, ")
    late = heartbeat.KIND.probe(HeartbeatCheck(str(old), max_age=30.0),
                                ProbeContext(cwd=None, env=None, timeout=1.0, started_at=now - 42.4))
    result = await late.check()
    assert not result.ok
    assert result.detail == f"no heartbeat file yet ({old}) 42s after the start (max 30s)"


async def test_the_reason_says_how_old_it_is(tmp_path: Path) -> None:
    beat = tmp_path / "w.beat"
    beat.touch()
    os.utime(beat, (time.time() - 42.3, time.time() - 42.3))
    probe = heartbeat.KIND.probe(HeartbeatCheck(str(beat), max_age=30.0),
                                 ProbeContext(cwd=None, env=None, timeout=1.0, started_at=time.time() - 3600))
    result = await probe.check()
    assert not result.ok and result.detail == "heartbeat file is 42s old (max 30s)"


@pytest.mark.parametrize(("table", "message"), [
    ({"type": "heartbeat", "path": "x"}, 'process.w.health.max_age: missing (a "heartbeat" check needs '
                                         'path = "/tmp/worker.beat", max_age = "30s")'),
    ({"type": "heartbeat", "path": "x", "max_age": "0s"}, "process.w.health.max_age: must be longer than 0 (got \"0s\")"),
    ({"type": "heartbeat", "path": "", "max_age": 3}, "process.w.health.path: must not be empty"),
    ({"type": "heartbeat", "path": "x", "max_age": 3, "url": "http://x/"},
     'process.w.health.url: not used by a "heartbeat" check (it takes path = "/tmp/worker.beat", max_age = "30s")'),
])
def test_heartbeat_keys_are_checked(table: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_health(table, ("process", "w", "health"))
    assert caught.value.message == message


def test_heartbeat_round_trips_through_its_table() -> None:
    from pmtop.core.checks import health_to_table

    health = parse_health({"type": "heartbeat", "path": "~/w.beat", "max_age": "1m30s", "failures": 1}, ("h",))
    assert health.check == HeartbeatCheck("~/w.beat", 90.0)
    assert health_to_table(health) == {"type": "heartbeat", "path": "~/w.beat", "max_age": "90s", "failures": 1}
    assert parse_health(health_to_table(health), ("h",)) == health
