"""`port = N` (SPEC §10) against real listeners: the port is shown before it binds, checked free before
each start (a held port fails the start at once, naming its holder, instead of a crash loop), given as
`$PORT`, and found among the process's listening ports once it binds."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import psutil
import pytest

from pmtop.core.config.schema import parse_process
from pmtop.core.errors import ConfigError
from pmtop.core.model import ProcessState, ProcessStatus
from pmtop.core.supervisor import Supervisor
from pmtop.core.system import ports
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]

SERVER = """
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen()
print("listening on", os.environ["PORT"], flush=True)
time.sleep(600)
"""


def free_port(family: socket.AddressFamily = socket.AF_INET) -> int:
    with socket.socket(family) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real listener held by this test's own process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


async def test_a_held_port_fails_the_start_at_once_naming_the_holder(make_supervisor: Make,
                                                                    listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    sup = make_supervisor(spec("web", SERVER, port=port))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        failed = await wait_state(events, "web", S.FAILED, seen=seen)
    assert failed.reason == f"port {port} is held by pid {os.getpid()} ({comm(os.getpid())})"
    assert failed.restarts == 0 and failed.pid is None
    assert [s.state for s in seen] == [S.STARTING, S.FAILED], "no crash loop: nothing was spawned"
    [run] = await sup.history("web")
    assert run.pid is None and run.stderr_tail == (failed.reason,)
    listener.close()
    async with sup.subscribe() as events:
        await sup.start("web")  # the holder is gone: a retry works
        running = await wait_state(events, "web", S.RUNNING)
    assert running.port == port


async def test_the_holder_is_another_program(make_supervisor: Make) -> None:
    port = free_port()
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        await poll_until(lambda: bool(ports.listening(port)), what="the other program listening")
        sup = make_supervisor(spec("web", SERVER, port=port))
        async with sup.subscribe() as events:
            await sup.start("web")
            failed = await wait_state(events, "web", S.FAILED)
        assert failed.reason == f"port {port} is held by pid {other.pid} ({comm(other.pid)})"
    finally:
        other.kill()
        other.wait()


async def test_an_ipv6_listener_holds_the_port_too(make_supervisor: Make) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6) as six:
        try:
            six.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1 on this machine")
        six.listen()
        port = six.getsockname()[1]
        sup = make_supervisor(spec("web", SERVER, port=port))
        async with sup.subscribe() as events:
            await sup.start("web")
            failed = await wait_state(events, "web", S.FAILED)
    assert failed.reason.startswith(f"port {port} is held by pid {os.getpid()}")


async def test_a_free_port_is_given_as_PORT_and_shown_before_and_after_it_binds(make_supervisor: Make) -> None:
    port = free_port()
    sup = make_supervisor(spec("web", SERVER, port=port))
    assert (await sup.status("web")).port == port, "declared before anything runs"
    async with sup.subscribe(facts=True) as events:
        await sup.start("web")
        bound = await wait_for(events, lambda s: s.name == "web" and port in s.ports, what="web listening")
    assert bound.state is S.RUNNING and bound.port == port
    assert await sup.logs("web") == [f"listening on {port}"]
    assert bound.to_dict()["port"] == port and ProcessStatus.from_dict(bound.to_dict()) == bound


async def test_env_sets_its_own_PORT(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web", "import os; print(os.environ['PORT'])", port=free_port(), env={"PORT": "1"}))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_state(events, "web", S.STOPPED)
    assert await sup.logs("web") == ["1"]


async def test_a_leftover_of_its_own_earlier_run_is_killed_not_blamed(make_supervisor: Make) -> None:
    """The restart path checks the port too. A grandchild that escaped its group and kept the port is
    provably the ended run's own (`system.strays`): it is killed before the check, so the restart finds
    the port free instead of failing on it."""
    port = free_port()
    escaper = f"""
import os, socket, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {SERVER!r}], start_new_session=True, env=os.environ)
print(child.pid, flush=True)
time.sleep(600)
"""
    sup = make_supervisor(spec("web", escaper, port=port, backoff=(0.0,)))
    async with sup.subscribe() as events:
        await sup.start("web")
        first = await wait_state(events, "web", S.RUNNING)
        await poll_until(lambda: bool(ports.listening(port)), what="the escaped grandchild listening")
        leftover = int((await sup.logs("web"))[0])
        try:
            psutil.Process(first.pid).kill()  # type: ignore[arg-type]
            again = await wait_for(events, lambda s: s.state is S.RUNNING and s.pid != first.pid, what="the restart")
            assert again.restarts == 1
            assert not psutil.pid_exists(leftover) or psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, 9)
    await poll_until(lambda: bool(ports.listening(port)), what="the new run's grandchild on the freed port")


def test_listening_agrees_with_proc_net(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    inodes = ports.listening(port)
    assert inodes and inodes == {i for i, p in ports.proc_net_listeners().items() if p == port}
    assert ports.listening(free_port()) == frozenset()
    holder = ports.holder(port)
    assert holder is not None and holder.pid == os.getpid()


@pytest.mark.parametrize("value", [0, 65536, "8000", True])
def test_port_must_be_a_port_number(tmp_path: object, value: object) -> None:
    from pathlib import Path

    with pytest.raises(ConfigError) as caught:
        parse_process("web", {"command": "x", "port": value}, base_dir=Path("/"))
    assert caught.value.message.startswith("process.web.port: must be an integer from 1 to 65535 (got ")
