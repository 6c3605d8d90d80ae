"""Every endpoint of SPEC §6 and every error path, over real HTTP, around a real Supervisor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from pmtop.core.errors import ConfigError, DaemonUnavailable, PortInUse
from pmtop.core.model import ProcessState
from tests.api.conftest import Serve, read_until
from tests.conftest import spec
from tests.waiting import POLL_INTERVAL, poll_until, wait_state

S = ProcessState
PRINTER = ("import sys, time\nfor i in range(5): print(f'out {i}'); print(f'err {i}', file=sys.stderr)\n"
           "sys.stdout.flush(); time.sleep(600)")


def error(response: httpx.Response, status: int, code: str) -> str:
    """Assert the JSON error shape and status; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message


async def test_alive_and_health(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    alive = await http.get("/alive")
    assert alive.status_code == 200 and alive.text == "OK"
    assert alive.headers["content-type"].startswith("text/plain")
    health = (await http.get("/health")).json()
    assert health["status"] == "running" and health["service"] == "pmtop"
    for key in ("version", "instance", "host", "port", "pid", "uptime", "config"):
        assert key in health, key
    assert health["port"] == api.daemon.port


async def test_status_counts_every_state(serve: Serve) -> None:
    api = await serve(spec("a"), spec("b", enabled=False))
    body = (await api.http().get("/status")).json()
    assert body["counts"] == {s.value: 0 for s in S} | {"stopped": 1, "disabled": 1}
    assert body["processes"] == 2 and body["read_only"] is False
    assert body["partner"] == {"state": "none"} and body["instance"] == "test"


async def test_processes_list_detail_and_unknown_names(serve: Serve) -> None:
    api = await serve(spec("web", env={"A": "1"}), spec("db"))
    http = api.http()
    listed = (await http.get("/processes")).json()["processes"]
    assert [p["name"] for p in listed] == ["web", "db"] and listed[0]["state"] == "stopped"
    detail = (await http.get("/processes/web")).json()
    assert detail["state"] == "stopped" and detail["config"]["env"] == {"A": "1"}
    assert detail["config"]["command"][1:] == ["-c", "import time; time.sleep(600)"]
    for method, path in [
        ("GET", "/processes/nope"), ("DELETE", "/processes/nope"), ("POST", "/processes/nope/start"),
        ("POST", "/processes/nope/stop"), ("POST", "/processes/nope/restart"), ("POST", "/processes/nope/enable"),
        ("POST", "/processes/nope/disable"), ("GET", "/processes/nope/logs"), ("GET", "/processes/nope/history"),
        ("GET", "/processes/nope/logs?follow=1"),
    ]:
        assert "nope" in error(await http.request(method, path), 404, "no_such_process"), path


async def test_actions_return_the_new_status(serve: Serve) -> None:
    api = await serve(spec("web"))
    http = api.http()
    async with api.sup.subscribe() as events:
        started = (await http.post("/processes/web/start")).json()
        assert started["name"] == "web" and started["state"] in ("starting", "running")
        await wait_state(events, "web", S.RUNNING)
        restarted = (await http.post("/processes/web/restart")).json()
        assert restarted["state"] in ("starting", "running")
        await wait_state(events, "web", S.RUNNING)
    stopped = (await http.post("/processes/web/stop")).json()
    assert stopped["state"] == "stopped" and stopped["reason"] == "stopped by user"
    assert (await http.post("/processes/web/disable")).json()["state"] == "disabled"
    message = error(await http.post("/processes/web/start"), 409, "action_refused")
    assert "disabled" in message
    enabled = (await http.post("/processes/web/enable")).json()
    assert enabled["state"] in ("stopped", "starting", "running")
    await api.sup.stop("web")


async def test_register_validates_then_adds(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    table = {"name": "job", "command": ["python3", "-c", "pass"], "restart": "no", "start": False}
    created = await http.post("/processes", json=table)
    assert created.status_code == 201 and created.json()["state"] == "stopped"
    assert "job" in api.sup.names
    assert "job" in error(await http.post("/processes", json=table), 409, "process_exists")

    bad = await http.post("/processes", json={"name": "x", "command": ["true"], "restart": "sometimes"})
    assert "process.x.restart" in error(bad, 422, "config_invalid")
    unknown = await http.post("/processes", json={"name": "y", "command": ["true"], "restrat": "no"})
    assert "process.y.restrat" in error(unknown, 422, "config_invalid")
    missing = await http.post("/processes", json={"name": "z"})
    assert "process.z.command" in error(missing, 422, "config_invalid")
    for name in ("../etc", "", "-dash", "a" * 65):
        response = await http.post("/processes", json={"name": name, "command": ["true"]})
        assert response.status_code in (400, 422) and "invalid process name" in response.text, name
    error(await http.post("/processes", json={"command": ["true"]}), 422, "config_invalid")
    error(await http.post("/processes", json={"name": "w", "command": ["true"], "start": "yes"}), 422, "config_invalid")
    error(await http.post("/processes", json={"name": "w", "command": ["true"], "session_pid": "1"}), 422,
          "config_invalid")
    error(await http.post("/processes", content=b"{not json"), 400, "invalid_json")
    error(await http.post("/processes", json=["a list"]), 400, "bad_request")
    error(await http.post("/processes", content=b""), 400, "bad_request")
    assert api.sup.names == ["job"], "nothing refused may be registered"


async def test_register_session_process_and_start(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    body = {"name": "sess", "command": ["python3", "-c", "import time; time.sleep(600)"], "session_pid": 1,
            "cwd": "/tmp"}
    async with api.sup.subscribe() as events:
        created = await http.post("/processes", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["scope"] == "session"
        await wait_state(events, "sess", S.RUNNING)
    spec_ = await api.sup.spec("sess")
    assert spec_.session_pid == 1 and spec_.cwd == "/tmp"
    refused = await http.post("/processes", json={"name": "s2", "command": ["true"], "scope": "session"})
    assert "session_pid" in error(refused, 422, "config_invalid")


async def test_delete_stops_and_deregisters(serve: Serve) -> None:
    api = await serve(spec("web"))
    http = api.http()
    async with api.sup.subscribe() as events:
        await http.post("/processes/web/start")
        running = await wait_state(events, "web", S.RUNNING)
    assert running.pid is not None
    removed = await http.delete("/processes/web")
    assert removed.status_code == 200 and removed.json() == {"removed": "web"}
    error(await http.get("/processes/web"), 404, "no_such_process")
    assert api.sup.names == []


async def test_logs_tail_and_bad_parameters(serve: Serve) -> None:
    api = await serve(spec("p", PRINTER))
    http = api.http()
    async with api.sup.follow("p", "stdout") as out, api.sup.follow("p", "stderr") as err:
        await http.post("/processes/p/start")
        await read_until(out, "out 4")
        await read_until(err, "err 4")

    async def lines(stream: str, n: int) -> list[str]:
        response = await http.get("/processes/p/logs", params={"stream": stream, "lines": n})
        body = response.json()
        assert body["name"] == "p" and body["stream"] == stream
        result: list[str] = body["lines"]
        return result

    assert await lines("stdout", 3) == ["out 2", "out 3", "out 4"]
    assert (await lines("stderr", 200))[-1] == "err 4"
    default = (await http.get("/processes/p/logs")).json()
    assert default["stream"] == "stdout" and default["lines"][-1] == "out 4"
    error(await http.get("/processes/p/logs", params={"stream": "stdin"}), 400, "bad_request")
    for bad in ("-1", "x", "10000000"):
        error(await http.get("/processes/p/logs", params={"lines": bad}), 400, "bad_request")
    error(await http.get("/processes/p/logs", params={"follow": "maybe"}), 400, "bad_request")
    await api.sup.stop("p")


async def test_history(serve: Serve) -> None:
    api = await serve(spec("web"))
    http = api.http()
    async with api.sup.subscribe() as events:
        await http.post("/processes/web/start")
        await wait_state(events, "web", S.RUNNING)
    await http.post("/processes/web/stop")
    body = (await http.get("/processes/web/history")).json()
    assert body["name"] == "web"
    [run] = body["runs"]
    assert run["end_reason"] == "stop" and run["signal"] == "SIGTERM" and run["duration"] >= 0


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$')


async def test_metrics_are_prometheus_text(serve: Serve) -> None:
    api = await serve(spec("web"), spec("off", enabled=False))
    http = api.http()
    async with api.sup.subscribe() as events:
        await http.post("/processes/web/start")
        await wait_state(events, "web", S.RUNNING)
    response = await http.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP "), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1) in typed, f"sample before its TYPE: {line}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    assert samples['pmtop_process_state{name="web",state="running"}'] == 1
    assert samples['pmtop_process_state{name="web",state="stopped"}'] == 0
    assert samples['pmtop_process_state{name="off",state="disabled"}'] == 1
    assert sum(v for k, v in samples.items() if k.startswith('pmtop_process_state{name="web"')) == 1
    assert samples['pmtop_process_restarts_total{name="web"}'] == 0
    assert samples['pmtop_process_uptime_seconds{name="web"}'] >= 0
    assert samples['pmtop_process_uptime_seconds{name="off"}'] == 0
    assert {"pmtop_process_healthy", "pmtop_process_cpu_percent", "pmtop_process_memory_rss_bytes"} <= typed
    assert samples['pmtop_process_memory_rss_bytes{name="web"}'] > 0, "a scrape samples memory, unwatched"
    assert 'pmtop_process_memory_rss_bytes{name="off"}' not in samples, "not running: no sample"

    async def cpu_sampled() -> bool:  # CPU % is measured between two samples, a second apart at least
        return 'pmtop_process_cpu_percent{name="web"}' in (await http.get("/metrics")).text

    deadline = asyncio.get_running_loop().time() + 20
    while not await cpu_sampled():
        assert asyncio.get_running_loop().time() < deadline, "a later scrape never had the CPU %"
        await asyncio.sleep(POLL_INTERVAL)
    await api.sup.stop("web")


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 65536):
        yield b" " * 65536


async def test_bodies_over_one_mib_are_refused(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    error(await http.post("/processes", content=b" " * (1024 * 1024 + 1)), 413, "payload_too_large")
    # without a Content-Length (chunked), the limit applies while reading
    error(await http.post("/processes", content=_chunks(2 * 1024 * 1024)), 413, "payload_too_large")
    ok = await http.post("/processes", content=b'{"name": "x", "command": ["true"], "start": false}' + b" " * 1000)
    assert ok.status_code == 201


async def test_unknown_routes_and_methods(serve: Serve) -> None:
    api = await serve(spec("web"))
    http = api.http()
    assert "/nope" in error(await http.get("/nope"), 404, "not_found")
    error(await http.get("/config/nope"), 404, "not_found")
    wrong = await http.put("/processes/web/start")
    assert "POST" in error(wrong, 405, "method_not_allowed") and wrong.headers["allow"] == "POST"
    error(await http.delete("/processes"), 405, "method_not_allowed")
    error(await http.post("/alive"), 405, "method_not_allowed")


async def test_monitor_reload_shutdown_restart(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    reloaded = await http.post("/monitor/reload")
    assert reloaded.status_code == 200 and reloaded.json() == api.daemon.reload_result
    api.daemon.reload_error = ConfigError("must be a table", file="pmtop.toml", key_path="process.web", line=3)
    message = error(await http.post("/monitor/reload"), 422, "config_invalid")
    assert message == "pmtop.toml:3: process.web: must be a table"
    api.daemon.reload_error = DaemonUnavailable("the partner is gone")
    assert error(await http.post("/monitor/reload"), 503, "daemon_unavailable") == "the partner is gone"
    api.daemon.reload_error = PortInUse("port 1 is busy")
    assert error(await http.post("/monitor/reload"), 400, "port_in_use") == "port 1 is busy"
    api.daemon.reload_error = RuntimeError("boom")
    assert "internal" in error(await http.post("/monitor/reload"), 500, "internal_error")

    shutdown = await http.post("/monitor/shutdown")
    assert shutdown.status_code == 202 and shutdown.json() == {"ok": True}
    restart = await http.post("/monitor/restart")
    assert restart.status_code == 202 and restart.json() == {"ok": True}
    await poll_until(lambda: api.daemon.shutdowns == 1 and api.daemon.restarts == 1, what="the hooks", timeout=5)


@pytest.mark.parametrize("path", ["/processes/web/start", "/processes", "/monitor/reload", "/config/standalone-mode"])
async def test_read_only_refuses_actions_and_keeps_views(serve: Serve, path: str) -> None:
    api = await serve(spec("web"), read_only=True)
    http = api.http()
    method = "PUT" if path.startswith("/config") else "POST"
    body = {"enabled": True} if method == "PUT" else {"name": "x", "command": ["true"]}
    assert error(await http.request(method, path, json=body), 403, "read_only") == "pmtop is read-only"
    error(await http.delete("/processes/web"), 403, "read_only")
    assert (await http.get("/processes")).status_code == 200
    assert (await http.get("/status")).json()["read_only"] is True
    assert (await http.get("/config/remote-access")).status_code == 200
    assert api.sup.names == ["web"] and (await api.sup.status("web")).state is S.STOPPED


async def test_stop_many_stops_dependents_first(tmp_path) -> None:
    """`POST /processes/*/stop`: every process (or the named ones), each after its dependents."""
    from pmtop.core.api.http11 import Server
    from pmtop.core.api.security import SecurityStore
    from pmtop.core.api.server import make_app
    from pmtop.core.locations import instance_paths
    from pmtop.core.model import DependencyCondition, ProcessState
    from pmtop.core.supervisor import Supervisor
    from tests.conftest import spec
    from tests.waiting import wait_state

    sup = Supervisor([spec("db"), spec("api", depends_on={"db": DependencyCondition.STARTED}),
                      spec("web", depends_on={"api": DependencyCondition.STARTED})],
                     paths=instance_paths("stopmany"))

    class Hooks:
        def info(self) -> dict: return {}
        def status(self) -> dict: return {}
        async def reload(self) -> dict: return {}
        def request_shutdown(self) -> None: pass
        def request_restart(self) -> None: pass

    server = Server(make_app(sup, Hooks(), security=SecurityStore(tmp_path), token="t"))
    await server.start_tcp("127.0.0.1", 0)
    try:
        seen: list = []
        async with sup.subscribe() as events, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.port}", headers={"Authorization": "Bearer t"}) as client:
            await sup.boot()
            await wait_state(events, "web", ProcessState.RUNNING)
            assert (await client.post("/processes/*/stop", json={"names": "db"})).status_code == 422
            response = await client.post("/processes/*/stop")
            assert response.status_code == 200
            assert {p["name"]: p["state"] for p in response.json()["processes"]} == {
                "db": "stopped", "api": "stopped", "web": "stopped"}
            await wait_state(events, "db", ProcessState.STOPPED, seen=seen)
        stopped = [s.name for s in seen if s.state is ProcessState.STOPPED]
        assert stopped == ["web", "api", "db"]
    finally:
        await server.close()
        await sup.shutdown()
