"""`HttpController` against the real server: the Controller Protocol, errors, and event streams
(snapshot then changes, heartbeats, a dead or frozen daemon noticed within a deadline)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from pmtop.core.api.client import HttpController
from pmtop.core.api.protocol import HEARTBEAT_HEADER
from pmtop.core.checks.tcp import TcpCheck
from pmtop.core.controller import Controller
from pmtop.core.errors import (
    ActionRefused,
    ApiError,
    ConfigError,
    DaemonUnavailable,
    NoSuchProcess,
    PortInUse,
    ProcessExists,
)
from pmtop.core.model import (
    DependencyCondition,
    HealthSpec,
    ProcessEvent,
    ProcessRemoved,
    ProcessState,
    ProcessStatus,
    RestartPolicy,
    RestartSpec,
    Scope,
)
from tests.api.conftest import TOKEN, Serve, read_until
from tests.conftest import py, spec
from tests.waiting import poll_until, wait_state

S = ProcessState
TICKER = "import time\nfor i in range(100000): print(f'tick {i}', flush=True); time.sleep(0.02)"


async def next_event(events: AsyncIterator[ProcessEvent], timeout: float = 10.0) -> ProcessEvent:
    async with asyncio.timeout(timeout):
        return await anext(events)


async def test_implements_the_controller_protocol(serve: Serve) -> None:
    api = await serve()
    assert isinstance(api.controller(), Controller)


async def test_views_and_actions(serve: Serve) -> None:
    api = await serve(spec("web"), spec("db", enabled=False))
    ctl = api.controller()
    info = await ctl.info()
    assert info.instance == "test" and info.port == api.daemon.port and info.started_at > 0
    assert [s.name for s in await ctl.processes()] == ["web", "db"]
    assert (await ctl.status("db")).state is S.DISABLED
    async with ctl.subscribe() as events:
        started = await ctl.start("web")
        assert started.state in (S.STARTING, S.RUNNING)
        running = await wait_state(events, "web", S.RUNNING)
        assert running.pid is not None
        assert (await ctl.restart("web")).state in (S.STARTING, S.RUNNING)
        await wait_state(events, "web", S.RUNNING)
    stopped = await ctl.stop("web")
    assert stopped.state is S.STOPPED and stopped.reason == "stopped by user"
    assert (await ctl.disable("web")).state is S.DISABLED
    with pytest.raises(ActionRefused, match="disabled"):
        await ctl.start("web")
    assert (await ctl.enable("db")).state in (S.STOPPED, S.STARTING, S.RUNNING)
    runs = await ctl.history("web")
    assert len(runs) == 2 and runs == await api.sup.history("web")
    assert runs[-1].end_reason.value == "stop" and runs[-1].signal == "SIGTERM"
    await api.sup.stop_many()


async def test_spec_round_trip_through_add(serve: Serve) -> None:
    api = await serve(spec("db"))
    ctl = api.controller()
    original = dataclasses.replace(
        spec("web", env={"PORT": "8000"}, depends_on={"db": DependencyCondition.HEALTHY}, autostart=False,
             restart=RestartSpec(policy=RestartPolicy.ALWAYS, backoff=(0.25, 2.0), max_restarts=3)),
        cwd="/tmp", project="/tmp",
        health=HealthSpec(check=TcpCheck("127.0.0.1:8000"), interval=1.5),
    )
    status = await ctl.add(original, start=False)
    assert status.state is S.STOPPED and status.name == "web"
    assert await ctl.spec("web") == original == await api.sup.spec("web")
    assert await ctl.spec("db") == await api.sup.spec("db")
    session = dataclasses.replace(spec("s"), scope=Scope.SESSION, session_pid=1, project=None, cwd="/tmp")
    await ctl.add(session, start=False)
    assert await ctl.spec("s") == session


async def test_errors_come_back_as_pmtop_errors(serve: Serve) -> None:
    api = await serve(spec("web"))
    ctl = api.controller()
    for call in (ctl.status("nope"), ctl.spec("nope"), ctl.start("nope"), ctl.remove("nope"), ctl.logs("nope"),
                 ctl.history("nope"), ctl.stop(".."), ctl.status("a/b")):
        with pytest.raises(NoSuchProcess):
            await call
    with pytest.raises(ProcessExists) as exists:
        await ctl.add(spec("web"))
    assert exists.value.name == "web"
    with pytest.raises(ConfigError) as bad:
        await ctl.add(spec("x", depends_on={"ghost": DependencyCondition.STARTED}))
    assert bad.value.key_path == "process.x.depends_on" and "ghost" in str(bad.value)
    with pytest.raises(ApiError) as bad_stream:
        await ctl.logs("web", "stdin")
    assert bad_stream.value.status == 400 and bad_stream.value.code == "bad_request"
    with pytest.raises(NoSuchProcess):
        async with ctl.follow("nope"):
            pass

    api.distrust_loopback()
    with pytest.raises(ApiError) as unauthorized:
        await api.controller(token="wrong").processes()
    assert unauthorized.value.status == 401 and unauthorized.value.code == "unauthorized"
    with pytest.raises(ApiError) as unauthorized_stream:
        async with api.controller(token=None).subscribe():
            pass
    assert unauthorized_stream.value.status == 401
    with pytest.raises(ApiError) as forbidden:
        await ctl.shutdown()
    assert forbidden.value.status == 403 and forbidden.value.code == "forbidden"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_no_daemon_is_daemon_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with HttpController(url, timeout=2.0) as ctl:
        with pytest.raises(DaemonUnavailable, match=f"no pmtop daemon answers at {url}"):
            await ctl.processes()
        with pytest.raises(DaemonUnavailable):
            await ctl.health()
        with pytest.raises(DaemonUnavailable):
            async with ctl.subscribe():
                pass


async def test_daemon_endpoints(serve: Serve) -> None:
    api = await serve(spec("web"))
    ctl = api.controller()
    assert (await ctl.health())["service"] == "pmtop"
    status = await ctl.daemon_status()
    assert status["counts"]["stopped"] == 1 and status["partner"] == {"state": "none"}
    assert await ctl.reload() == api.daemon.reload_result
    api.daemon.reload_error = ConfigError("bad", key_path="process.web.command")
    with pytest.raises(ConfigError) as bad:
        await ctl.reload()
    assert bad.value.key_path == "process.web.command"
    api.daemon.reload_error = PortInUse("port 1 is busy")
    with pytest.raises(ApiError) as other:
        await ctl.reload()
    assert (other.value.status, other.value.code, other.value.message) == (400, "port_in_use", "port 1 is busy")
    assert 'pmtop_process_state{name="web",state="stopped"} 1' in await ctl.metrics()
    assert (await ctl.put_config("standalone-mode", {"enabled": True})) == {"enabled": True}
    assert (await ctl.get_config("standalone-mode")) == {"enabled": True}
    await ctl.shutdown()
    await poll_until(lambda: api.daemon.shutdowns == 1, what="the shutdown hook", timeout=5)


# ----------------------------------------------------------------------------------- event streams

async def test_subscribe_snapshot_then_changes(serve: Serve) -> None:
    api = await serve(spec("web"), spec("db"))
    ctl = api.controller()
    async with ctl.subscribe() as events:
        snapshot = [await next_event(events), await next_event(events)]
        assert [(e.name, e.state) for e in snapshot if isinstance(e, ProcessStatus)] == [
            ("web", S.STOPPED), ("db", S.STOPPED)]
        await ctl.start("web")  # the subscription is live once `async with` has returned
        seen: list[ProcessStatus] = []
        await wait_state(events, "web", S.RUNNING, seen=seen)
        assert seen[0].state is S.STARTING
        await ctl.remove("db")
        removed = await next_event(events)
        while not isinstance(removed, ProcessRemoved):
            removed = await next_event(events)
        assert removed == ProcessRemoved("db")
    await api.sup.stop("web")


async def test_stream_ends_when_the_client_leaves(serve: Serve) -> None:
    api = await serve(heartbeat=0.2)
    bus = api.sup._bus  # the only way to see the server's subscription from outside
    before = bus.subscriber_count
    async with api.controller().subscribe():
        assert bus.subscriber_count == before + 1
    await poll_until(lambda: bus.subscriber_count == before, what="the server to drop the subscription", timeout=5)


async def test_heartbeats_are_sent(serve: Serve) -> None:
    api = await serve(heartbeat=0.1)
    async with api.http().stream("GET", "/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers[HEARTBEAT_HEADER] == "0.1"
        keepalives = 0
        async with asyncio.timeout(5):
            async for line in response.aiter_lines():
                keepalives += line == ": keepalive"
                if keepalives == 3:
                    break


async def test_stopped_daemon_is_noticed(serve: Serve) -> None:
    api = await serve(spec("web"))
    ctl = api.controller()
    async with ctl.subscribe() as events:
        await next_event(events)  # the snapshot
        await api.stop()
        with pytest.raises(DaemonUnavailable):
            async with asyncio.timeout(5):
                await anext(events)


@asynccontextmanager
async def fake_daemon(behaviour: Callable[[web.Request, web.StreamResponse], Awaitable[None]]) -> AsyncIterator[str]:
    """A server whose `/events` accepts the stream (heartbeat 0.1 s) and then does `behaviour`."""
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", HEARTBEAT_HEADER: "0.1"})
        await response.prepare(request)
        await response.write(b": connected\n\n")
        await behaviour(request, response)
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_frozen_daemon_is_noticed_by_its_silence() -> None:
    """A daemon that accepted the stream and then says nothing (stopped, hung) is dead after 3 heartbeats."""
    release = asyncio.Event()

    async def hang(request: web.Request, response: web.StreamResponse) -> None:
        await release.wait()

    async with fake_daemon(hang) as url, HttpController(url) as ctl, ctl.subscribe() as events:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(DaemonUnavailable, match="went silent"):
            async with asyncio.timeout(5):
                await anext(events)
        assert 0.25 <= loop.time() - began < 3
        release.set()


async def test_dropped_connection_is_noticed() -> None:
    """A daemon that dies (no orderly `end` event) leaves a dropped connection: DaemonUnavailable at once."""
    async def die(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(b": keepalive\n\n")
        assert request.transport is not None
        request.transport.abort()

    async with fake_daemon(die) as url, HttpController(url) as ctl, ctl.subscribe() as events:
        with pytest.raises(DaemonUnavailable, match="lost the connection"):
            async with asyncio.timeout(5):
                await anext(events)


async def test_follow_logs_over_sse(serve: Serve) -> None:
    api = await serve(spec("tick", TICKER))
    ctl = api.controller()
    async with ctl.follow("tick", "stdout", lines=0) as lines:
        await ctl.start("tick")
        got = await read_until(lines, "tick 3")
        assert got[:4] == ["tick 0", "tick 1", "tick 2", "tick 3"]
        await ctl.remove("tick")
        with pytest.raises(StopAsyncIteration):  # a removed process ends the stream cleanly
            async with asyncio.timeout(5):
                while True:
                    await anext(lines)


async def test_follow_notices_a_stopped_daemon(serve: Serve) -> None:
    api = await serve(spec("tick", TICKER), heartbeat=0.2)
    ctl = api.controller()
    async with ctl.follow("tick") as lines:
        await ctl.start("tick")
        await read_until(lines, "tick 1")
        await api.stop()
        with pytest.raises(DaemonUnavailable):
            async with asyncio.timeout(5):
                while True:
                    await anext(lines)
    await api.sup.stop("tick")


async def test_raw_sse_format(serve: Serve) -> None:
    api = await serve(spec("web", py("print('a \"quoted\" line', flush=True); import time; time.sleep(600)")[2]))
    api.distrust_loopback()
    http = api.http(TOKEN)
    async with http.stream("GET", "/events") as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        async with asyncio.timeout(5):
            assert await anext(lines) == ": connected"
            assert await anext(lines) == ""
            assert await anext(lines) == "event: status"
            data = await anext(lines)
        assert data.startswith("data: {") and '"name":"web"' in data
    await api.sup.start("web")
    async with http.stream("GET", "/processes/web/logs", params={"follow": "1", "lines": "5"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(10):
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    assert line == 'data: "a \\"quoted\\" line"'
                    break
    await api.sup.stop("web")


async def test_shutdown_is_not_held_up_by_open_streams(serve: Serve) -> None:
    api = await serve(spec("tick", TICKER))
    ctl = api.controller()
    async with ctl.subscribe(), ctl.follow("tick"):
        async with asyncio.timeout(3):  # the runner's shutdown_timeout is 5 s: streams must end by themselves
            await api.stop()


async def test_events_are_read_whole_however_the_network_cuts_them() -> None:
    """Lines, a "\r\n" and a UTF-8 character split across chunks; several events in one chunk; comments."""
    from pmtop.core.api.client import _EventReader

    chunks = [b"event: status\r", b"\ndata: {\"name\":\"w\xc3", b"\xa9b\"}\r\n", b"\r\n",
              b": keepalive\n\nevent: x\ndata: 1\n\nevent: y\ndata: 2\n", b"\n"]

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    import httpx

    reader = _EventReader(httpx.Response(200, content=body()), silence=5.0, url="http://test")
    assert [await reader.next_event() for _ in range(3)] == [("status", '{"name":"wéb"}'), ("x", "1"), ("y", "2")]
    with pytest.raises(DaemonUnavailable, match="lost the connection"):
        await reader.next_event()



def test_json_value_is_json_loads() -> None:
    """The decoder's short way for what daemons send; anything else as `json.loads` takes it or fails."""
    import json

    from pmtop.core.api.client import json_value

    for text in ('{"name":"wéb","ports":[80,443],"cpu_percent":1.5,"group":null}', ' {"a": 1} \n', "[1, 2]", '"x"',
                 "3.5", "null"):
        assert json_value(text) == json.loads(text)
    for bad in ('{"name": ', '{"a":1},{"b":2}', "", "{} x", "nan!"):
        with pytest.raises(ValueError) as failed:
            json_value(bad)
        with pytest.raises(ValueError) as expected:
            json.loads(bad)
        assert str(failed.value) == str(expected.value)
