"""`type = "notify"` (SPEC §10): systemd's sd_notify protocol, spoken by real clients (the `sdnotify`
package, `systemd-notify` where installed) to the socket pmtop gives each child.

Children wait on FIFOs the test opens when it wants them to go on: no test sleeps."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from pmtop.core.checks import parse_health
from pmtop.core.checks.notify import NotifyCheck
from pmtop.core.errors import Invalid
from pmtop.core.model import FailAction, Health, HealthSpec, ProcessSpec, ProcessState, ProcessStatus, RestartPolicy, StartupCheck
from pmtop.core.supervisor import Supervisor
from pmtop.core.system import notify
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
_HELD: list[int] = []

pytest.importorskip("sdnotify")

#: sdnotify's client: STATUS while loading, READY=1 once argv[1] (a FIFO) is opened, then WATCHDOG=1 every
#: 50 ms until the file argv[2] exists; prints its sd_notify environment first.
SERVICE = """
import os, sys, time
import sdnotify
print(os.environ["NOTIFY_SOCKET"], os.environ.get("WATCHDOG_USEC"), flush=True)
n = sdnotify.SystemdNotifier(debug=True)
n.notify("STATUS=loading the catalogue")
with open(sys.argv[1]) as go:
    go.read(1)
n.notify("READY=1\\nSTATUS=serving 3 shops")
while not os.path.exists(sys.argv[2]):
    n.notify("WATCHDOG=1")
    time.sleep(0.05)
time.sleep(600)
"""


@pytest.fixture
def fifos(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    def make(name: str) -> Path:
        path = tmp_path / name
        os.mkfifo(path)
        return path

    yield make
    while _HELD:
        os.close(_HELD.pop())


def release(path: Path) -> None:
    """Let the child go on (read-write: never blocks, and the byte waits until the child reads)."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, b"x")
    _HELD.append(fd)


def of(name: str, pred: Callable[[ProcessStatus], bool]) -> Callable[[ProcessStatus], bool]:
    return lambda s: s.name == name and pred(s)


def notified(name: str, code: str, *args: str, watchdog: float | None = None, **kw: object) -> ProcessSpec:
    health = kw.pop("health", HealthSpec(NotifyCheck(watchdog), failures=2))
    base = spec(name, code, health=health, **kw)
    return dataclasses.replace(base, command=(*base.command, *args))


async def test_ready_status_and_watchdog_with_the_sdnotify_package(make_supervisor: Make, fifos: Callable[[str], Path],
                                                                   tmp_path: Path) -> None:
    go, stall = fifos("go"), tmp_path / "stall"
    sup = make_supervisor(notified("api", SERVICE, str(go), str(stall), watchdog=0.5, backoff=(0.0,)))
    async with sup.subscribe() as events:
        await sup.start("api")
        loading = await wait_for(events, of("api", lambda s: "loading" in s.reason), what="STATUS while starting")
        assert loading.state is S.STARTING
        assert loading.reason == "waiting for READY=1 (status: loading the catalogue)"
        release(go)
        running = await wait_state(events, "api", S.RUNNING)
        assert running.reason == "serving 3 shops" and running.health is Health.HEALTHY, "STATUS is the reason"
        socket_path, usec = (await sup.logs("api"))[0].split()  # printed before READY=1
        assert usec == "500000"
        assert socket_path == notify.socket_path(notify.socket_folder(sup.paths.state_dir), "api")
        state = sup._runners["api"]._notifications._state  # type: ignore[union-attr]
        await poll_until(lambda: state is not None and state.last_ping is not None, what="a first WATCHDOG=1")
        stall.touch()  # no more WATCHDOG=1
        missed = await wait_for(events, of("api", lambda s: s.health is Health.UNHEALTHY), what="a missed period")
        assert missed.reason.startswith("health: no WATCHDOG=1 for ") and missed.reason.endswith(
            "(watchdog 500ms) (1/2 failures)")
        crashed = await wait_state(events, "api", S.CRASHED)
        assert "(2/2 failures); stopping it" in crashed.reason
        again = await wait_for(events, of("api", lambda s: s.restarts == 1 and s.pid is not None), what="restart")
    assert again.state is S.STARTING and again.reason.startswith("waiting for READY=1")


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="systemd-notify is not installed")
async def test_systemd_notify_itself(make_supervisor: Make) -> None:
    code = ("import subprocess, time\n"
            "subprocess.run(['systemd-notify', '--ready', '--status=told by systemd-notify'], check=True)\n"
            "time.sleep(600)\n")
    sup = make_supervisor(notified("svc", code))
    async with sup.subscribe() as events:
        await sup.start("svc")
        running = await wait_state(events, "svc", S.RUNNING)
    assert running.reason == "told by systemd-notify" and running.health is Health.HEALTHY


async def test_a_message_from_outside_the_run_is_ignored(make_supervisor: Make, fifos: Callable[[str], Path],
                                                        tmp_path: Path) -> None:
    """This test's own process (another session) sends READY=1 to the child's socket: not believed."""
    go = fifos("go")
    sup = make_supervisor(notified("api", SERVICE, str(go), str(tmp_path / "stall")))
    async with sup.subscribe() as events:
        await sup.start("api")
        await wait_for(events, of("api", lambda s: "loading" in s.reason), what="the child's own STATUS")
        path = notify.socket_path(notify.socket_folder(sup.paths.state_dir), "api")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"READY=1\nSTATUS=forged", path)
            stranger.sendto(b"STATUS=fence", path)  # a marker: once it is ignored too, READY=1 was
        sup._runners["api"]._notifications.drain()  # type: ignore[union-attr]
        status = await sup.status("api")
        assert status.state is S.STARTING and "forged" not in status.reason and "fence" not in status.reason
        release(go)
        running = await wait_state(events, "api", S.RUNNING)
    assert running.reason == "serving 3 shops"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can send as another user")
async def test_another_user_cannot_reach_the_socket(make_supervisor: Make, fifos: Callable[[str], Path],
                                                    tmp_path: Path) -> None:
    go = fifos("go")
    sup = make_supervisor(notified("api", SERVICE, str(go), str(tmp_path / "stall")))
    async with sup.subscribe() as events:
        await sup.start("api")
        await wait_for(events, of("api", lambda s: "loading" in s.reason), what="socket in use")
    path = Path(notify.socket_path(notify.socket_folder(sup.paths.state_dir), "api"))
    folder = path.parent.stat()
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.geteuid()
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    nobody = subprocess.run(
        [sys.executable, "-c",
         "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\n"
         "try:\n    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', sys.argv[1])\n"
         "except PermissionError:\n    sys.exit(13)\n", str(path)],
        capture_output=True, text=True, timeout=30)
    assert nobody.returncode == 13, nobody.stderr


#: Starts `sleep 600` in its own session (argv[1] == "own") or the launcher's, names it MAINPID= with
#: READY=1, and exits at once (a launcher that hands over to its server), unless told to stay.
LAUNCHER = """
import os, subprocess, sys, time
import sdnotify
server = subprocess.Popen(["sleep", "600"], start_new_session=sys.argv[1] == "own")
print(server.pid, flush=True)
sdnotify.SystemdNotifier(debug=True).notify(f"MAINPID={server.pid}\\nREADY=1")
if sys.argv[1] == "own":
    time.sleep(600)
"""


def _printed(sup: Supervisor, name: str) -> bool:
    """Has the current run written to its stdout.log? (Its folder is named at the spawn but made a
    moment after the exec: until then there is no file to look at.)"""
    current = sup._runners[name].runs.current
    try:
        return current is not None and (current / "stdout.log").stat().st_size > 0
    except FileNotFoundError:
        return False


async def test_mainpid_moves_the_run_to_the_launchers_server(make_supervisor: Make) -> None:
    sup = make_supervisor(notified("srv", LAUNCHER, "same"))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("srv")
        first = await wait_for(events, of("srv", lambda s: s.pid is not None), what="spawned", seen=seen)
        await poll_until(lambda: _printed(sup, "srv"), what="the server's PID printed")
        server_pid = int((await sup.logs("srv"))[0])
        moved = await wait_for(events, of("srv", lambda s: s.pid == server_pid and s.state is S.RUNNING),
                               what="running as the server", seen=seen)
        assert moved.pid != first.pid
        await poll_until(lambda: not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status()
                         == psutil.STATUS_ZOMBIE, what="the launcher gone")
        status = await sup.status("srv")
        assert status.state is S.RUNNING and status.pid == server_pid, "the launcher's exit did not end the run"
        stopped = await sup.stop("srv")
    assert stopped.state is S.STOPPED
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE


async def test_the_moved_main_exiting_ends_the_run(make_supervisor: Make) -> None:
    from pmtop.core.model import RestartSpec

    sup = make_supervisor(notified("srv", LAUNCHER, "same", restart=RestartSpec(policy=RestartPolicy.NO)))
    async with sup.subscribe() as events:
        await sup.start("srv")
        await poll_until(lambda: _printed(sup, "srv"), what="the server's PID printed")
        server_pid = int((await sup.logs("srv"))[0])
        await wait_for(events, of("srv", lambda s: s.pid == server_pid), what="followed")
        os.kill(server_pid, signal.SIGKILL)
        failed = await wait_state(events, "srv", S.FAILED)
    assert failed.reason.startswith(f"pid {server_pid} exited (status unknown: not pmtop's child) after ")
    assert failed.reason.endswith("; restart = no")


async def test_mainpid_outside_the_session_is_refused(make_supervisor: Make) -> None:
    sup = make_supervisor(notified("srv", LAUNCHER, "own"))
    async with sup.subscribe() as events:
        await sup.start("srv")
        running = await wait_state(events, "srv", S.RUNNING)
        await poll_until(lambda: _printed(sup, "srv"), what="the outsider's PID printed")
    outsider = int((await sup.logs("srv"))[0])
    try:
        assert running.pid != outsider and (await sup.status("srv")).pid == running.pid
    finally:
        os.kill(outsider, signal.SIGKILL)


#: READY=1, then STOPPING=1 when argv[1] is opened, then exits 0 when argv[2] is (or never, if "hang").
STOPPER = """
import sys, time
import sdnotify
n = sdnotify.SystemdNotifier(debug=True)
n.notify("READY=1")
with open(sys.argv[1]) as go:
    go.read(1)
n.notify("STOPPING=1\\nSTATUS=draining connections")
if sys.argv[2] == "hang":
    time.sleep(600)
with open(sys.argv[2]) as go:
    go.read(1)
"""


async def test_stopping_then_a_clean_exit(make_supervisor: Make, fifos: Callable[[str], Path]) -> None:
    stop, leave = fifos("stop"), fifos("leave")
    sup = make_supervisor(notified("svc", STOPPER, str(stop), str(leave)))
    async with sup.subscribe() as events:
        await sup.start("svc")
        await wait_state(events, "svc", S.RUNNING)
        release(stop)
        stopping = await wait_for(events, of("svc", lambda s: s.reason.startswith("stopping")), what="STOPPING=1")
        assert stopping.state is S.RUNNING
        assert stopping.reason == "stopping (it sent STOPPING=1): draining connections"
        release(leave)
        stopped = await wait_state(events, "svc", S.STOPPED)
    assert stopped.reason.startswith("exit 0 (it had sent STOPPING=1) after ")
    [run] = await sup.history("svc")
    assert run.end_reason == "exit"


async def test_stopping_but_still_running_after_stop_timeout(make_supervisor: Make,
                                                             fifos: Callable[[str], Path]) -> None:
    stop = fifos("stop")
    sup = make_supervisor(notified("svc", STOPPER, str(stop), "hang", stop_timeout=0.3, backoff=(60.0,)))
    async with sup.subscribe() as events:
        await sup.start("svc")
        await wait_state(events, "svc", S.RUNNING)
        release(stop)
        crashed = await wait_state(events, "svc", S.CRASHED)
    assert crashed.reason.startswith("said STOPPING=1 but was still running 0.3s later (stop_timeout); stopping it")


async def test_watchdog_trigger_restarts_at_once(make_supervisor: Make) -> None:
    code = ("import sdnotify, time\nn = sdnotify.SystemdNotifier(debug=True)\n"
            "n.notify('READY=1')\nn.notify('WATCHDOG=trigger')\ntime.sleep(600)\n")
    sup = make_supervisor(notified("svc", code, watchdog=60.0, backoff=(60.0,)))
    async with sup.subscribe() as events:
        await sup.start("svc")
        crashed = await wait_state(events, "svc", S.CRASHED)
    assert crashed.reason.startswith("health: the process sent WATCHDOG=trigger; stopping it")


async def test_no_ready_within_the_startup_budget(make_supervisor: Make) -> None:
    health = HealthSpec(NotifyCheck(), startup=StartupCheck(interval=0.1, max_attempts=3, fail_action=FailAction.FAIL))
    sup = make_supervisor(notified("svc", "import time; time.sleep(600)", health=health))
    async with sup.subscribe() as events:
        await sup.start("svc")
        failed = await wait_state(events, "svc", S.FAILED)
    assert failed.reason == "no READY=1 within 0.3s; startup check failed (fail_action = fail)"


async def test_processes_without_a_notify_check_get_no_socket(make_supervisor: Make) -> None:
    code = "import os; print(os.environ.get('NOTIFY_SOCKET', 'none'), flush=True)"
    sup = make_supervisor(spec("plain", code))
    async with sup.subscribe() as events:
        await sup.start("plain")
        await wait_state(events, "plain", S.STOPPED)
    assert await sup.logs("plain") == ["none"]
    assert sup._runners["plain"]._notifications is None


def test_notify_takes_no_interval_or_timeout() -> None:
    with pytest.raises(Invalid) as caught:
        parse_health({"type": "notify", "interval": "1s"}, ("process", "a", "health"))
    assert caught.value.message == ('process.a.health.interval: not used by a "notify" check (the process sends '
                                    'READY=1 to $NOTIFY_SOCKET; optional watchdog = "10s")')
    assert parse_health({"type": "notify"}, ("h",)).check == NotifyCheck(None)
    assert parse_health({"type": "notify", "watchdog": "10s"}, ("h",)).check == NotifyCheck(10.0)


def test_datagrams_are_parsed_as_systemd_does() -> None:
    assert notify.parse(b"READY=1\nSTATUS=a=b\nnonsense\n=x\nWATCHDOG=1") == {
        "READY": "1", "STATUS": "a=b", "WATCHDOG": "1"}


def test_a_long_state_folder_moves_the_sockets_somewhere_short(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    folder = notify.socket_folder(deep)
    assert folder != deep / "notify"
    assert len(os.fsencode(notify.socket_path(folder, "n" * 64))) <= 107
    assert notify.socket_folder(deep) == folder, "the same folder on every start (a successor finds it)"
    assert notify.socket_folder(tmp_path / "other" / ("x" * 60) / ("y" * 60)) != folder
