"""Hooks against real processes, real commands and a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web

from pmtop.core.model import Health, HookSpec, ProcessState, ProcessStatus, RestartPolicy
from pmtop.core.process.hooks import HookEvents, fill
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
CRASH = "import sys; sys.exit(3)"


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST, answers with `statuses` in turn."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.url = ""
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    got.url = f"http://127.0.0.1:{port}/hook"
    yield got
    await runner.cleanup()


def status(state: S, health: Health = Health.UNKNOWN) -> ProcessStatus:
    return ProcessStatus(name="p", state=state, health=health)


def test_events_from_statuses() -> None:
    events = HookEvents()
    events.seen(status(S.STOPPED))
    assert events.events(status(S.STARTING)) == ["starting"]
    assert events.events(status(S.RUNNING, Health.HEALTHY)) == ["running"]
    assert events.events(status(S.RUNNING, Health.UNHEALTHY)) == ["unhealthy"]
    assert events.events(status(S.RUNNING, Health.UNHEALTHY)) == [], "no news, no event"
    assert events.events(status(S.RUNNING, Health.HEALTHY)) == ["recovered"]
    assert events.events(status(S.CRASHED)) == ["crashed"]
    assert events.events(status(S.RETRYING)) == ["retrying"]
    assert events.events(status(S.STARTING)) == ["starting"]
    assert events.events(status(S.RUNNING)) == ["running", "recovered"]
    assert events.events(status(S.FAILED)) == ["failed"]
    assert events.events(status(S.STOPPED)) == ["stopped"]
    assert events.events(status(S.STARTING)) == ["starting"]
    assert events.events(status(S.RUNNING)) == ["running"], "a start after a stop is no recovery"


def test_placeholders_fill_each_word_alone() -> None:
    values = {"name": "web", "reason": "exit 1; retry 2/5", "pid": ""}
    assert fill("{name}: {reason}", values) == "web: exit 1; retry 2/5"
    assert fill("{{name}} {pid}.", values) == "{name} ."


async def test_a_url_hook_gets_the_status_of_each_event(make_supervisor: Make, receiver: Receiver) -> None:
    hook = HookSpec(on=("crashed", "failed"), url=receiver.url)
    sup = make_supervisor(spec("job", CRASH, policy=RestartPolicy.NO, hooks=hook))
    async with sup.subscribe() as events:
        await sup.boot()  # (starts it: hooks, like watches, are services the supervisor's boot starts)
        await wait_state(events, "job", S.FAILED)
    await poll_until(lambda: len(receiver.posts) == 2, what="two POSTs")
    crashed, failed = receiver.posts
    assert (crashed["event"], crashed["name"], crashed["state"]) == ("crashed", "job", "crashed")
    assert (failed["event"], failed["state"], failed["exit_code"]) == ("failed", "failed", 3)
    assert failed["instance"] == "test" and "restart = no" in failed["reason"]


async def test_global_hooks_and_a_command_with_placeholders(paths, tmp_path: Path, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "said.txt"
    writer = (sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('|'.join(sys.argv[2:]) + '\\n')",
              str(out), "{name}", "{event}", "{exit_code}", "{reason}")
    sup = Supervisor([spec("job", CRASH, policy=RestartPolicy.NO)], paths=paths,
                     hooks=HookSpec(on=("failed",), command=writer))
    try:
        async with sup.subscribe() as events:
            await sup.boot()
            await wait_state(events, "job", S.FAILED)
        await poll_until(lambda: out.exists() and out.read_text().count("\n") == 1, what="the command's line")
        name, event, code, reason = out.read_text().strip().split("|")
        assert (name, event, code) == ("job", "failed", "3") and reason.startswith("exit 3 after")
    finally:
        await sup.shutdown()


async def test_a_failing_hook_is_retried_reported_and_never_stops_anything(make_supervisor: Make,
                                                                            receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 500]
    hook = HookSpec(on=("failed",), url=receiver.url)
    sup = make_supervisor(spec("job", CRASH, policy=RestartPolicy.NO, hooks=hook), spec("other"))
    async with sup.subscribe() as events:
        await sup.boot()
        reported = await wait_for(events, lambda s: s.name == "job" and s.hook_error is not None,
                                  what="the hook failure on the status", timeout=30)
    assert len(receiver.posts) == 3, "three attempts"
    assert reported.hook_error is not None
    assert "hook on failed: POST" in reported.hook_error and "HTTP 500 (3 attempts)" in reported.hook_error
    assert (await sup.status("other")).state is S.RUNNING


async def test_a_hook_that_works_again_clears_the_error(make_supervisor: Make, receiver: Receiver) -> None:
    receiver.statuses = [404]
    hook = HookSpec(on=("crashed",), url=receiver.url)
    sup = make_supervisor(spec("job", CRASH, backoff=(0.2,), max_restarts=1, hooks=hook))
    async with sup.subscribe() as events:
        await sup.boot()  # (starts it: hooks, like watches, are services the supervisor's boot starts)
        failed = await wait_for(events, lambda s: s.hook_error is not None, what="the 404")
        assert "HTTP 404 (1 attempt)" in (failed.hook_error or ""), "a 4xx answer is not asked again"
        await wait_for(events, lambda s: s.hook_error is None and s.state is S.FAILED and len(receiver.posts) == 2,
                       what="the second crash's hook working")


async def test_an_unreachable_url_and_a_missing_command_are_reported(make_supervisor: Make, tmp_path: Path) -> None:
    hook = HookSpec(on=("failed",), url="http://127.0.0.1:9/nothing-here", command=("/no/such/notifier",),
                    timeout=2.0)
    sup = make_supervisor(spec("job", CRASH, policy=RestartPolicy.NO, hooks=hook))
    async with sup.subscribe() as events:
        await sup.boot()  # (starts it: hooks, like watches, are services the supervisor's boot starts)
        reported = await wait_for(events, lambda s: s.hook_error is not None, what="the failure", timeout=30)
    assert "command /no/such/notifier: command not found" in (reported.hook_error or "")
    assert "POST http://127.0.0.1:9/nothing-here: ConnectError" in (reported.hook_error or "")


async def test_a_hook_command_that_hangs_is_killed_whole(make_supervisor: Make, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = (sys.executable, "-c", "import os, subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
            "time.sleep(600)")
    sup = make_supervisor(spec("job", CRASH, policy=RestartPolicy.NO,
                               hooks=HookSpec(on=("failed",), command=hang, timeout=1.0)))
    async with sup.subscribe() as events:
        await sup.boot()  # (starts it: hooks, like watches, are services the supervisor's boot starts)
        reported = await wait_for(events, lambda s: s.hook_error is not None, what="the timeout", timeout=30)
    assert "killed after 1s" in (reported.hook_error or "")
    leader, child = (int(p) for p in pids.read_text().split())
    for pid in (leader, child):
        await poll_until(lambda pid=pid: not psutil.pid_exists(pid) or  # type: ignore[misc]
                         psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, what=f"{pid} gone")


async def test_recovered_after_bad_health(make_supervisor: Make, receiver: Receiver, tmp_path: Path) -> None:
    """Health goes bad for a few probes, then good again: `unhealthy`, then `recovered`."""
    from pmtop.core.checks.exec import ExecCheck
    from pmtop.core.model import HealthSpec

    flag = tmp_path / "sick"
    flag.write_text("")
    probe = (sys.executable, "-c", f"import os, sys; sys.exit(1 if os.path.exists({str(flag)!r}) else 0)")
    health = HealthSpec(check=ExecCheck(probe), interval=0.2, timeout=5.0, failures=1000)
    hook = HookSpec(on=("unhealthy", "recovered"), url=receiver.url)
    sup = make_supervisor(spec("svc", health=health, hooks=hook))
    async with sup.subscribe() as events:
        await sup.boot()  # (starts it: hooks, like watches, are services the supervisor's boot starts)
        await wait_for(events, lambda s: s.health is Health.UNHEALTHY, what="unhealthy")
        os.unlink(flag)
        await wait_for(events, lambda s: s.health is Health.HEALTHY, what="healthy again")
    await poll_until(lambda: [p["event"] for p in receiver.posts] == ["unhealthy", "recovered"],
                     what="the unhealthy and recovered hooks")
    assert json.dumps(receiver.posts[1]["health"]) == '"healthy"'
