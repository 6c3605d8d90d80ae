"""Health checks against real endpoints: HTTP servers and TCP listeners on 127.0.0.1 port 0 whose
answer the test flips, and exec probes; startup checks with each fail_action, restarts through the
policy, dependencies on real health, no probe pile-up, and probes killed with their group."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from pmtop.core import checks
from pmtop.core.checks import exec as exec_kind
from pmtop.core.checks import http as http_kind
from pmtop.core.checks import tcp as tcp_kind
from pmtop.core.checks.exec import ExecCheck
from pmtop.core.checks.http import HttpCheck
from pmtop.core.checks.tcp import TcpCheck
from pmtop.core.model import (
    DependencyCondition,
    EndReason,
    FailAction,
    Health,
    HealthSpec,
    ProcessState,
    ProcessStatus,
    StartupCheck,
)
from pmtop.core.supervisor import Supervisor
from tests.conftest import py, spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
H = Health
Make = Callable[..., Supervisor]


@pytest.fixture(autouse=True)
async def close_shared_client() -> AsyncIterator[None]:
    """Torn down after the supervisors (autouse fixtures are set up first, so finish last)."""
    yield
    await checks.close_probes()


class FlipServer:
    """An HTTP server on 127.0.0.1, port 0, in a thread: answers `status` on `/` after `delay` seconds.

    Any other path answers 500, so following a redirect would be noticed.
    """

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                if server.delay:
                    threading.Event().wait(server.delay)
                status = server.status if self.path == "/" else 500
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the probe timed out and went away first

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FlipServer]:
    srv = FlipServer()
    yield srv
    srv.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, **kw: Any) -> HealthSpec:
    kw.setdefault("interval", 0.1)
    kw.setdefault("timeout", 5.0)
    return HealthSpec(check=HttpCheck(url), **kw)


def tcp(address: str, **kw: Any) -> HealthSpec:
    kw.setdefault("interval", 0.1)
    kw.setdefault("timeout", 5.0)
    return HealthSpec(check=TcpCheck(address), **kw)


def exec_check(code: str, *args: str, **kw: Any) -> HealthSpec:
    kw.setdefault("interval", 0.1)
    kw.setdefault("timeout", 10.0)
    return HealthSpec(check=ExecCheck((*py(code), *args)), **kw)


def startup(**kw: Any) -> StartupCheck:
    kw.setdefault("initial_delay", 0.05)
    kw.setdefault("interval", 0.1)
    return StartupCheck(**kw)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def of(name: str, pred: Callable[[ProcessStatus], bool]) -> Callable[[ProcessStatus], bool]:
    return lambda s: s.name == name and pred(s)


# -- no health table ----------------------------------------------------------------------------


async def test_without_health_table_a_live_pid_is_healthy(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("plain"))
    async with sup.subscribe() as events:
        await sup.start("plain")
        running = await wait_state(events, "plain", S.RUNNING)
    assert running.health is H.HEALTHY
    stopped = await sup.stop("plain")
    assert stopped.health is H.UNKNOWN


# -- http -----------------------------------------------------------------------------------------


async def test_http_failure_and_recovery_without_restart(make_supervisor: Make, server: FlipServer) -> None:
    sup = make_supervisor(spec("web", health=http(server.url, interval=0.2, failures=5)))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        running = await wait_state(events, "web", S.RUNNING, seen=seen)
        assert running.health is H.UNKNOWN, "unknown until the first periodic probe (after interval)"
        healthy = await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="web healthy",
                                 seen=seen)
        assert healthy.state is S.RUNNING and healthy.reason == "running"
        server.status = 500
        failing = await wait_for(events, of("web", lambda s: s.health is H.UNHEALTHY), what="web failing",
                                 seen=seen)
        assert failing.state is S.RUNNING
        assert failing.reason == "health: HTTP 500 (1/5 failures)"
        server.status = 204
        back = await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="web recovered",
                              seen=seen)
    assert back.state is S.RUNNING and back.reason == "running"
    assert back.pid == running.pid and back.restarts == 0
    assert [s.state for s in seen[seen.index(running):]] == [S.RUNNING] * 4, "no restart, one event per change"


async def test_idle_healthy_process_publishes_nothing(make_supervisor: Make, server: FlipServer) -> None:
    sup = make_supervisor(spec("web", health=http(server.url, interval=0.05)))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="web healthy")
        probes_then = len(server.paths)
        await poll_until(lambda: len(server.paths) >= probes_then + 5, what="five more probes")
        await sup.add(spec("marker", autostart=False))  # publishes one status: a fence in the stream
        between = []
        async for event in events:
            if event.name == "marker":
                break
            between.append(event)
    assert between == [], "successful probes of a healthy process must not publish"


async def test_http_failures_restart_through_the_policy(make_supervisor: Make, server: FlipServer) -> None:
    sup = make_supervisor(spec("web", health=http(server.url, failures=2), backoff=(0.1,), max_restarts=5))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        first = await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="web healthy")
        server.status = 500
        crashed = await wait_state(events, "web", S.CRASHED, seen=seen)
        server.status = 200
        assert crashed.reason.startswith("health: HTTP 500 (2/2 failures); stopping it: sent SIGTERM")
        assert crashed.health is H.UNHEALTHY
        retrying = await wait_state(events, "web", S.RETRYING, seen=seen)
        assert retrying.reason == "health: HTTP 500 (2/2 failures); retry 1/5"
        assert retrying.health is H.UNKNOWN and retrying.pid is None
        again = await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="healthy again",
                               seen=seen)
    assert again.restarts == 1 and again.consecutive_failures == 1
    assert again.pid != first.pid and gone(first.pid)
    states = [s.state for s in seen]
    assert states[states.index(S.CRASHED):][:4] == [S.CRASHED, S.RETRYING, S.STARTING, S.RUNNING]
    starting = next(s for s in seen if s.state is S.STARTING)
    assert starting.reason == "restart 1/5 after health: HTTP 500 (2/2 failures)"
    [run] = await sup.history("web")
    assert run.end_reason is EndReason.HEALTH and run.pid == first.pid
    assert run.exit_code == -signal.SIGTERM, "stopped with its stop_signal"


async def test_redirect_is_healthy_and_not_followed(make_supervisor: Make, server: FlipServer) -> None:
    server.status = 302
    sup = make_supervisor(spec("web", health=http(server.url)))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_for(events, of("web", lambda s: s.health is H.HEALTHY), what="3xx counts as healthy")
    assert set(server.paths) == {"/"}, "the redirect to /elsewhere was not followed"


async def test_http_probe_that_hangs_times_out(make_supervisor: Make, server: FlipServer) -> None:
    server.delay = 1.0
    sup = make_supervisor(spec("web", health=http(server.url, timeout=0.2, failures=5)))
    async with sup.subscribe() as events:
        await sup.start("web")
        failing = await wait_for(events, of("web", lambda s: s.health is H.UNHEALTHY), what="a timeout")
    assert failing.reason == "health: timed out after 0.2s (1/5 failures)"


# -- startup check ------------------------------------------------------------------------------


async def test_startup_check_holds_starting_until_first_success(make_supervisor: Make,
                                                                server: FlipServer) -> None:
    server.status = 503
    sup = make_supervisor(spec("web", health=http(server.url, startup=startup(max_attempts=500))))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        first = await wait_for(events, of("web", lambda s: "startup 1/500" in s.reason), what="attempt 1")
        assert first.state is S.STARTING and first.pid is not None and first.health is H.UNKNOWN
        assert first.reason == "health: HTTP 503 (startup 1/500)"
        await wait_for(events, of("web", lambda s: "startup 2/500" in s.reason), what="attempt 2")
        assert (await sup.status("web")).state is S.STARTING
        server.status = 200
        running = await wait_state(events, "web", S.RUNNING, seen=seen)
    assert running.health is H.HEALTHY and running.reason == "running" and running.pid == first.pid
    assert all(s.state is S.STARTING for s in seen[:-1])


async def test_startup_fail_action_fail(make_supervisor: Make) -> None:
    check = http(f"http://127.0.0.1:{free_port()}/", startup=startup(max_attempts=3, fail_action=FailAction.FAIL))
    sup = make_supervisor(spec("web", health=check, backoff=(0.0,)))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        failed = await wait_state(events, "web", S.FAILED, seen=seen)
    reasons = [s.reason for s in seen if s.reason.startswith("health:")]
    assert reasons[:2] == ["health: connection refused (startup 1/3)", "health: connection refused (startup 2/3)"]
    assert failed.reason == "health: connection refused (startup 3/3); startup check failed (fail_action = fail)"
    assert failed.restarts == 0 and failed.pid is None and failed.health is H.UNKNOWN
    [run] = await sup.history("web")
    assert run.end_reason is EndReason.HEALTH and gone(run.pid)


async def test_startup_fail_action_disable(make_supervisor: Make) -> None:
    check = exec_check("import sys; sys.exit(1)", startup=startup(max_attempts=2, fail_action=FailAction.DISABLE))
    sup = make_supervisor(spec("web", health=check))
    async with sup.subscribe() as events:
        await sup.start("web")
        disabled = await wait_state(events, "web", S.DISABLED)
    assert disabled.reason == "health: exec exit 1 (startup 2/2); startup check failed (fail_action = disable)"
    [run] = await sup.history("web")
    assert run.end_reason is EndReason.HEALTH and gone(run.pid)


async def test_startup_fail_action_restart_counts_as_failure(make_supervisor: Make) -> None:
    check = tcp(f"127.0.0.1:{free_port()}", startup=startup(max_attempts=2))
    sup = make_supervisor(spec("web", health=check, backoff=(0.1,), max_restarts=1))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        failed = await wait_state(events, "web", S.FAILED, seen=seen)
    retrying = next(s for s in seen if s.state is S.RETRYING)
    assert retrying.reason == "health: connection refused (startup 2/2); retry 1/1"
    assert failed.reason == "health: connection refused (startup 2/2); gave up after 2 consecutive failures"
    assert failed.restarts == 1
    assert [r.end_reason for r in await sup.history("web")] == [EndReason.HEALTH] * 2


# -- tcp ------------------------------------------------------------------------------------------


async def _listener(host: str) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, host, 0)


async def test_tcp_check_follows_the_listener(make_supervisor: Make) -> None:
    listener = await _listener("127.0.0.1")
    port = listener.sockets[0].getsockname()[1]
    sup = make_supervisor(spec("db", health=tcp(f"127.0.0.1:{port}", failures=2), backoff=(600.0,)))
    async with sup.subscribe() as events:
        await sup.start("db")
        await wait_for(events, of("db", lambda s: s.health is H.HEALTHY), what="db healthy")
        listener.close()
        await listener.wait_closed()
        crashed = await wait_state(events, "db", S.CRASHED)
        assert crashed.reason.startswith("health: connection refused (2/2 failures)")
        retrying = await wait_state(events, "db", S.RETRYING)
    assert retrying.reason == "health: connection refused (2/2 failures); retry 1/5"
    assert retrying.next_retry_at is not None
    await sup.stop("db")


async def test_tcp_check_on_ipv6_loopback(make_supervisor: Make) -> None:
    try:
        listener = await _listener("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = listener.sockets[0].getsockname()[1]
    sup = make_supervisor(spec("db", health=tcp(f"[::1]:{port}")))
    try:
        async with sup.subscribe() as events:
            await sup.start("db")
            await wait_for(events, of("db", lambda s: s.health is H.HEALTHY), what="db healthy over ::1")
    finally:
        listener.close()


# -- exec -----------------------------------------------------------------------------------------

EXISTS = "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 3)"


async def test_exec_check_exit_status(make_supervisor: Make, tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flag.touch()
    sup = make_supervisor(spec("job", health=exec_check(EXISTS, str(flag), interval=0.2, failures=5)))
    async with sup.subscribe() as events:
        await sup.start("job")
        await wait_for(events, of("job", lambda s: s.health is H.HEALTHY), what="exit 0 is healthy")
        flag.unlink()
        failing = await wait_for(events, of("job", lambda s: s.health is H.UNHEALTHY), what="exit 3")
        assert failing.reason == "health: exec exit 3 (1/5 failures)"
        flag.touch()
        back = await wait_for(events, of("job", lambda s: s.health is H.HEALTHY), what="healthy again")
    assert back.reason == "running" and back.restarts == 0


HANGS = (
    "import os, subprocess, sys, time\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "with open(sys.argv[1], 'a') as f: f.write(f'{os.getpid()} {p.pid}\\n')\n"
    "time.sleep(600)\n"
)


def probe_pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def test_hung_exec_probe_is_killed_with_its_group(make_supervisor: Make, tmp_path: Path) -> None:
    pids_file = tmp_path / "probe-pids"
    sup = make_supervisor(spec("job", health=exec_check(HANGS, str(pids_file), timeout=1.5, failures=5)))
    async with sup.subscribe() as events:
        await sup.start("job")
        failing = await wait_for(events, of("job", lambda s: s.health is H.UNHEALTHY), what="a probe timeout")
    assert failing.reason == "health: timed out after 1.5s (1/5 failures)"
    probe, grandchild = probe_pids(pids_file)[:2]
    assert gone(probe), "the probe is killed and reaped before its result is reported"
    await poll_until(lambda: gone(grandchild), what="the probe's grandchild to be gone")
    await sup.stop("job")


async def test_stop_kills_the_probe_in_flight_and_never_restarts(make_supervisor: Make, tmp_path: Path) -> None:
    pids_file = tmp_path / "probe-pids"
    sup = make_supervisor(spec("job", health=exec_check(HANGS, str(pids_file), timeout=60.0)))
    async with sup.subscribe() as events:
        await sup.start("job")
        await wait_state(events, "job", S.RUNNING)
        await poll_until(lambda: len(probe_pids(pids_file)) == 2, what="a probe in flight")
        stopped = await sup.stop("job")
    probe, grandchild = probe_pids(pids_file)
    assert stopped.state is S.STOPPED and stopped.reason == "stopped by user" and stopped.restarts == 0
    assert gone(probe)
    await poll_until(lambda: gone(grandchild), what="the probe's grandchild to be gone")
    [run] = await sup.history("job")
    assert run.end_reason is EndReason.STOP


SLOW_PROBE = (
    "import os, sys, time\n"
    "def note(what):\n"
    "    with open(sys.argv[1], 'a') as f: f.write(f'{what} {os.getpid()}\\n')\n"
    "note('start'); time.sleep(0.4); note('end')\n"
)


async def test_probes_never_pile_up(make_supervisor: Make, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    sup = make_supervisor(spec("job", health=exec_check(SLOW_PROBE, str(trace), interval=0.05)))

    def ended() -> int:
        return trace.read_text().count("end") if trace.exists() else 0

    async with sup.subscribe() as events:
        await sup.start("job")
        await wait_state(events, "job", S.RUNNING)
        await poll_until(lambda: ended() >= 3, what="three probes slower than the interval")
    await sup.stop("job")
    in_flight = peak = 0
    for line in trace.read_text().splitlines():
        in_flight += 1 if line.startswith("start") else -1
        peak = max(peak, in_flight)
    assert peak == 1, trace.read_text()


async def test_stop_while_an_unhealthy_process_is_being_stopped(make_supervisor: Make, tmp_path: Path) -> None:
    ready = tmp_path / "ignoring-sigterm"
    code = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(600)\n"
    )
    # Healthy until the process ignores SIGTERM, so that its health stop must wait out stop_timeout.
    check = exec_check("import os, sys; sys.exit(1 if os.path.exists(sys.argv[1]) else 0)", str(ready), failures=1)
    sup = make_supervisor(spec("stubborn", code, health=check, stop_timeout=1.0))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("stubborn")
        crashed = await wait_state(events, "stubborn", S.CRASHED)
        assert crashed.reason == "health: exec exit 1 (1/1 failures); stopping it: sent SIGTERM, SIGKILL after 1s"
        stopped = await sup.stop("stubborn")
        await wait_state(events, "stubborn", S.STOPPED, seen=seen)
    assert [s.state for s in seen] == [S.STOPPING, S.STOPPED]
    assert stopped.state is S.STOPPED and stopped.restarts == 0
    [run] = await sup.history("stubborn")
    assert run.end_reason is EndReason.HEALTH and run.exit_code == -signal.SIGKILL


# -- dependencies ---------------------------------------------------------------------------------


async def test_dependency_waits_for_real_health(make_supervisor: Make, server: FlipServer) -> None:
    server.status = 500
    sup = make_supervisor(
        spec("db", health=http(server.url, failures=10_000)),
        spec("web", depends_on={"db": DependencyCondition.HEALTHY}),
    )
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_for(events, of("db", lambda s: "(3/10000 failures)" in s.reason), what="db failing",
                       seen=seen)
        web = await sup.status("web")
        assert web.state is S.STARTING and web.reason == "waiting for db (healthy)"
        server.status = 200
        await wait_state(events, "web", S.RUNNING, seen=seen)
    order = [(s.name, s.state, s.health) for s in seen]
    assert order.index(("db", S.RUNNING, H.HEALTHY)) < order.index(("web", S.RUNNING, H.HEALTHY))
    waiting = [s for s in seen if s.name == "web" and s.reason == "waiting for db (healthy)"]
    assert len(waiting) == 1, "a dependency's probe results are not news for the dependent"


# -- probes on their own --------------------------------------------------------------------------


async def test_shared_client_is_closed_and_remade(server: FlipServer) -> None:
    probe = http_kind.HttpProbe(server.url, 2.0)
    assert await probe.check() == checks.ProbeResult(True, "HTTP 200")
    client = http_kind._http_client()
    await checks.close_probes()
    assert client.is_closed
    assert await probe.check() == checks.ProbeResult(True, "HTTP 200")
    assert http_kind._http_client() is not client
    await checks.close_probes()
    await checks.close_probes()  # idempotent


async def test_probe_once_turns_every_failure_into_a_result() -> None:
    class Broken:
        async def check(self) -> checks.ProbeResult:
            raise RuntimeError("bug in a probe")

    class Slow:
        async def check(self) -> checks.ProbeResult:
            await asyncio.sleep(600)
            raise AssertionError("unreachable")

    assert await checks.probe_once(Broken(), 1.0) == checks.ProbeResult(False, "RuntimeError: bug in a probe")
    assert await checks.probe_once(Slow(), 0.01) == checks.ProbeResult(False, "timed out after 0.01s")
    missing = exec_kind.ExecProbe(["/nonexistent/pmtop-probe"], cwd=None, env=None)
    assert await checks.probe_once(missing, 1.0) == checks.ProbeResult(
        False, "command not found: /nonexistent/pmtop-probe"
    )
    unresolvable = tcp_kind.TcpProbe("pmtop-no-such-host.invalid:80")
    result = await checks.probe_once(unresolvable, 5.0)
    assert not result.ok and result.detail.startswith("cannot resolve host")


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("localhost:8000", ("localhost", 8000)),
     ("[::1]:5432", ("::1", 5432))],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert tcp_kind.parse_address(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", ":80", "host:http"])
def test_parse_address_refuses(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        tcp_kind.parse_address(address)


def test_httpx_is_imported_only_when_an_http_probe_runs() -> None:
    code = (
        "import sys\n"
        "import pmtop.core.checks, pmtop.core.checks.monitor, pmtop.core.process.machine\n"
        "assert 'httpx' not in sys.modules, 'httpx imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
