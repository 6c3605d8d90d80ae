"""Adopting a PID (SPEC §10): a process someone else started, under watch like any other. Its exit is
noticed through a pidfd (it is not pmtop's child); stop signals its group only when it leads it; once it
exits, the restart policy runs the command if one was given, else it stays `stopped` with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from pmtop.core.config.schema import parse_process
from pmtop.core.errors import ActionRefused, ProcessExists
from pmtop.core.model import Health, HealthSpec, ProcessSpec, ProcessState
from pmtop.core.supervisor import Supervisor
from tests.conftest import py
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]


def adopted(name: str, command: tuple[str, ...] = (), **table: object) -> ProcessSpec:
    if command:
        table["command"] = list(command)
    return parse_process(name, table, base_dir=Path("/"), adopted=True)


class Foreign:
    """A process "someone else" started: its starter exits at once, so it is not this test's child (as
    for a real `pmtop adopt`, its exit status is nobody's to know but its new parent's)."""

    def __init__(self, *argv: str, session: bool = True, member: bool = False) -> None:
        code = ("import subprocess, sys\n"
                "p = subprocess.Popen(sys.argv[3:], start_new_session=sys.argv[1] == '1',\n"
                "                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                "print(p.pid, flush=True)\n")
        starter = subprocess.run([sys.executable, "-c", code, "1" if session else "0", "-", *argv],
                                 capture_output=True, text=True, check=True, timeout=30)
        self.pid = int(starter.stdout)
        try:
            self.proc: psutil.Process | None = psutil.Process(self.pid)
        except psutil.NoSuchProcess:  # a quick one (`true`) may be gone already
            self.proc = None

    def alive(self) -> bool:
        return not gone(self.pid)

    def kill(self) -> None:
        try:
            if self.proc is not None:
                self.proc.kill()
        except psutil.NoSuchProcess:
            pass

    def children(self) -> list[psutil.Process]:
        assert self.proc is not None
        return self.proc.children()


@pytest.fixture
def started() -> Iterator[Callable[..., Foreign]]:
    made: list[Foreign] = []

    def start(*argv: str, session: bool = True) -> Foreign:
        made.append(Foreign(*argv, session=session))
        return made[-1]

    yield start
    for foreign in made:
        for child in foreign.children() if foreign.alive() else []:
            child.kill()
        foreign.kill()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_a_foreign_process_is_watched_and_stays_stopped_after_it_exits(make_supervisor: Make,
                                                                            started: Callable[..., Foreign]) -> None:
    other = started("sleep", "600")
    sup = make_supervisor()
    async with sup.subscribe() as events:
        status = await sup.adopt_pid(adopted("napper"), other.pid)
        assert status.state is S.STARTING and status.reason == f"adopting pid {other.pid}"
        running = await wait_state(events, "napper", S.RUNNING)
        assert running.pid == other.pid and running.health is Health.HEALTHY
        assert running.command == ("sleep", "600"), "its command line, as the OS shows it"
        assert running.reason == f"adopted: started outside pmtop (pid {other.pid}); stop signals its process group"
        assert running.started_at == pytest.approx(psutil.Process(other.pid).create_time(), abs=0.05)
        [(_, facts)] = (await sup._fresh_facts()).values()  # facts of a process pmtop did not start
        assert facts.memory_rss
        other.kill()  # someone else ends it; pmtop notices through the pidfd
        stopped = await wait_state(events, "napper", S.STOPPED)
    assert stopped.reason.startswith(f"pid {other.pid} exited (status unknown: not pmtop's child) after ")
    assert stopped.reason.endswith("; adopted without a command, so nothing restarts it")
    [run] = await sup.history("napper")
    assert run.pid == other.pid and run.exit_code is None and run.end_reason == "crash"
    with pytest.raises(ActionRefused) as caught:
        await sup.start("napper")
    assert "without a command" in caught.value.message


async def test_with_a_command_the_policy_runs_it_after_the_exit(make_supervisor: Make,
                                                                started: Callable[..., Foreign]) -> None:
    other = started("sleep", "600")
    sup = make_supervisor()
    async with sup.subscribe() as events:
        await sup.adopt_pid(adopted("napper", py("import time; time.sleep(600)"), backoff="0s"), other.pid)
        await wait_state(events, "napper", S.RUNNING)
        other.kill()
        respawned = await wait_for(events, lambda s: s.name == "napper" and s.state is S.RUNNING
                                   and s.pid not in (None, other.pid), what="the command run in its place")
    assert respawned.restarts == 1 and respawned.command[0] == sys.executable
    assert psutil.Process(respawned.pid).ppid() == os.getpid(), "pmtop's own child now"


async def test_stop_signals_the_group_of_a_leader(make_supervisor: Make,
                                                  started: Callable[..., Foreign]) -> None:
    """A shell job: its leader and a member of its group; stop reaches both."""
    leader = started(sys.executable, "-c",
                     "import subprocess, time\nsubprocess.Popen(['sleep', '600'])\ntime.sleep(600)")
    await poll_until(lambda: bool(leader.children()), what="the member started")
    [member] = leader.children()
    sup = make_supervisor()
    async with sup.subscribe() as events:
        await sup.adopt_pid(adopted("job"), leader.pid)
        await wait_state(events, "job", S.RUNNING)
        stopped = await sup.stop("job")
    assert stopped.state is S.STOPPED and stopped.reason == "stopped by user"
    await poll_until(lambda: gone(leader.pid) and gone(member.pid), what="the whole group gone")


async def test_stop_signals_a_non_leader_alone(make_supervisor: Make,
                                               started: Callable[..., Foreign]) -> None:
    """A process in someone's group (here: this test's own) that does not lead it: only it is signalled."""
    loner = started("sleep", "600", session=False)
    assert os.getpgid(loner.pid) == os.getpgid(0) != loner.pid
    sibling = started("sleep", "600", session=False)
    assert os.getpgid(sibling.pid) == os.getpgid(loner.pid)
    sup = make_supervisor()
    async with sup.subscribe() as events:
        await sup.adopt_pid(adopted("loner"), loner.pid)
        running = await wait_state(events, "loner", S.RUNNING)
        assert running.reason.endswith("stop signals it alone (it does not lead its group)")
        await sup.stop("loner")
    await poll_until(lambda: not loner.alive(), what="the loner gone")
    assert sibling.alive(), "the rest of the group was left alone"


async def test_a_health_check_watches_it_too(make_supervisor: Make, started: Callable[..., Foreign],
                                             tmp_path: Path) -> None:
    from pmtop.core.checks.exec import ExecCheck

    flag = tmp_path / "ok"
    flag.touch()
    other = started("sleep", "600")
    check = HealthSpec(ExecCheck(py(f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)")),
                       interval=0.1, timeout=10.0, failures=2)
    sup = make_supervisor()
    async with sup.subscribe() as events:
        await sup.adopt_pid(adopted("napper", health=health_table(check)), other.pid)
        await wait_for(events, lambda s: s.name == "napper" and s.health is Health.HEALTHY, what="healthy")
        flag.unlink()
        crashed = await wait_state(events, "napper", S.CRASHED)
        stopped = await wait_state(events, "napper", S.STOPPED)
    assert "(2/2 failures); stopping it" in crashed.reason
    assert not other.alive() and "nothing restarts it" in stopped.reason


def _kernel_thread(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return bool(int(f.read().rsplit(b")", 1)[1].split()[6]) & 0x00200000)
    except (OSError, IndexError, ValueError):
        return False


def health_table(check: HealthSpec) -> dict[str, object]:
    from pmtop.core.checks import health_to_table

    return health_to_table(check)


async def test_what_may_not_be_adopted(make_supervisor: Make, started: Callable[..., Foreign]) -> None:
    sup = make_supervisor()
    refusals = {
        1: "cannot adopt pid 1: pid 1 is the system's init process; pmtop does not adopt it",
        os.getpid(): f"cannot adopt pid {os.getpid()}: pid {os.getpid()} is this pmtop itself",
    }
    kthread = next((pid for pid in psutil.pids() if _kernel_thread(pid)), None)
    if kthread is not None:  # a container's PID namespace shows none
        refusals[kthread] = f"cannot adopt pid {kthread}: pid {kthread} is a kernel thread"
    for pid, message in refusals.items():
        with pytest.raises(ActionRefused) as caught:
            await sup.adopt_pid(adopted("x"), pid)
        assert caught.value.message == message
    done = started("true")
    await poll_until(lambda: not done.alive(), what="true has exited")
    with pytest.raises(ActionRefused) as caught:
        await sup.adopt_pid(adopted("x"), done.pid)
    assert caught.value.message in (  # reaped by its new parent yet, or not
        f"cannot adopt pid {done.pid}: no process with pid {done.pid} is running",
        f"cannot adopt pid {done.pid}: pid {done.pid} has exited (it is a zombie waiting for its parent)")
    other = started("sleep", "600")
    await sup.adopt_pid(adopted("once"), other.pid)
    with pytest.raises(ActionRefused) as caught:
        await sup.adopt_pid(adopted("twice"), other.pid)
    assert caught.value.message == f"cannot adopt pid {other.pid}: pmtop already supervises it as once"
    with pytest.raises(ProcessExists):
        await sup.adopt_pid(adopted("once"), other.pid)
    assert sup.names == ["once"], "a refusal registers nothing"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
async def test_another_users_process_is_refused(make_supervisor: Make,
                                                started: Callable[..., Foreign]) -> None:
    theirs = started(sys.executable, "-c", "import os, time\nos.setgid(65534); os.setuid(65534)\ntime.sleep(600)")
    await poll_until(lambda: psutil.Process(theirs.pid).uids().real == 65534, what="dropped to nobody")
    sup = make_supervisor()
    with pytest.raises(ActionRefused) as caught:
        await sup.adopt_pid(adopted("theirs"), theirs.pid)
    assert caught.value.message == (f"cannot adopt pid {theirs.pid}: pid {theirs.pid} belongs to user id 65534, "
                                    f"not to the user running pmtop ({os.geteuid()})")


async def test_a_successor_supervisor_adopts_it_again(paths: object,
                                                      started: Callable[..., Foreign]) -> None:
    """Hand-over: the registry's live child keeps `foreign` and its group, so a successor watches it the same way."""
    from pmtop.core.locations import InstancePaths

    assert isinstance(paths, InstancePaths)
    other = started("sleep", "600", session=False)
    first = Supervisor([], paths=paths)
    spec = adopted("loner")
    async with first.subscribe() as events:
        await first.adopt_pid(spec, other.pid)
        await wait_state(events, "loner", S.RUNNING)
    live = first.live_children()
    assert live["loner"].foreign and live["loner"].group is None
    await first.detach()
    second = Supervisor([], paths=paths, runtime=[spec])
    try:
        async with second.subscribe() as events:
            assert await second.adopt(live) == ["loner"]
            status = await wait_state(events, "loner", S.RUNNING)
        assert status.pid == other.pid and status.command == ("sleep", "600")
        await second.stop("loner")
        assert not other.alive()
    finally:
        await second.shutdown()
