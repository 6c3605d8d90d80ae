"""The process lifecycle against real children: every state of SPEC §3 and the edges between them."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from pmtop.core.errors import ActionRefused
from pmtop.core.model import EndReason, ProcessSpec, ProcessState, RestartPolicy, RestartSpec
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_start_run_stop(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("web"))
    async with sup.subscribe() as events:
        await sup.start("web")
        running = await wait_state(events, "web", S.RUNNING)
        assert running.pid is not None and running.started_at is not None
        assert os.getpgid(running.pid) == running.pid, "the child leads its own process group"
        status = await sup.stop("web")
    assert status.state is S.STOPPED and status.reason == "stopped by user"
    assert status.pid is None and status.exit_code == -signal.SIGTERM
    assert gone(running.pid)
    [run] = await sup.history("web")
    assert run.end_reason is EndReason.STOP and run.pid == running.pid and run.signal == "SIGTERM"


async def test_every_change_is_published_in_order(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("job", "import sys; sys.exit(3)", policy=RestartPolicy.NO))
    seen: list = []
    async with sup.subscribe() as events:
        await sup.start("job")
        failed = await wait_state(events, "job", S.FAILED, seen=seen)
    assert [s.state for s in seen] == [S.STARTING, S.RUNNING, S.CRASHED, S.FAILED]
    assert failed.exit_code == 3
    assert failed.reason.startswith("exit 3 after ") and failed.reason.endswith("; restart = no")


async def test_clean_exit_under_on_failure_is_stopped(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("once", "print('done')"))
    async with sup.subscribe() as events:
        await sup.start("once")
        stopped = await wait_state(events, "once", S.STOPPED)
    assert stopped.exit_code == 0 and stopped.reason.startswith("exit 0 after")
    [run] = await sup.history("once")
    assert run.end_reason is EndReason.EXIT
    assert await sup.logs("once") == ["done"]


async def test_crash_backs_off_then_restarts(make_supervisor: Make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pmtop.core")
    sup = make_supervisor(spec("flaky", "import sys; sys.exit(1)", backoff=(0.2, 0.4), max_restarts=5))
    seen: list = []
    async with sup.subscribe() as events:
        await sup.start("flaky")
        first = await wait_state(events, "flaky", S.RETRYING, seen=seen)
        assert first.next_retry_at is not None
        crashed_at = next(s for s in seen if s.state is S.CRASHED)
        # No countdown in the reason (it would go stale): the faces make one from next_retry_at.
        assert first.reason.startswith("exit 1 after") and first.reason.endswith("s; retry 1/5")
        assert crashed_at.exit_code == 1
        second = await wait_state(events, "flaky", S.RETRYING, seen=seen)
        assert second.reason.endswith("; retry 2/5")
        third = await wait_state(events, "flaky", S.RETRYING, seen=seen)
        assert third.reason.endswith("; retry 3/5")
    assert third.restarts == 2 and third.consecutive_failures == 3
    # The daemon's log says how long each wait is, as it begins; the last backoff value repeats.
    waits = [m for m in caplog.messages if m.startswith("flaky: waiting")]
    assert waits[:3] == ["flaky: waiting 0.2s for retry 1/5", "flaky: waiting 0.4s for retry 2/5",
                         "flaky: waiting 0.4s for retry 3/5"]
    # The delay is carried as an absolute time, from the moment of the decision.
    assert 0.35 <= second.next_retry_at - first.next_retry_at <= 5
    history = await sup.history("flaky")
    assert [r.end_reason for r in history] == [EndReason.CRASH] * 3


async def test_max_restarts_then_failed_and_manual_retry(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("bad", "import sys; sys.exit(2)", backoff=(0.0,), max_restarts=2))
    async with sup.subscribe() as events:
        await sup.start("bad")
        failed = await wait_state(events, "bad", S.FAILED)
        assert failed.consecutive_failures == 3 and failed.restarts == 2
        assert "gave up after 3 consecutive failures" in failed.reason
        assert len(await sup.history("bad")) == 3
        # A manual start retries at once with a fresh counter.
        await sup.start("bad")
        starting = await wait_for(events, lambda s: s.state is S.RUNNING, what="bad running again")
        assert starting.consecutive_failures == 0
        await wait_state(events, "bad", S.FAILED)
    assert len(await sup.history("bad")) == 6


async def test_restart_no_exit_zero_is_stopped(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("task", "pass", policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("task")
        stopped = await wait_state(events, "task", S.STOPPED)
    assert stopped.exit_code == 0


async def test_always_restarts_clean_exits(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("loop", "pass", policy=RestartPolicy.ALWAYS, backoff=(0.0,), max_restarts=2))
    async with sup.subscribe() as events:
        await sup.start("loop")
        failed = await wait_state(events, "loop", S.FAILED)
    assert failed.exit_code == 0 and failed.restarts == 2


async def test_retry_forever_keeps_retrying(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("stubborn", "import sys; sys.exit(1)", backoff=(0.0,), max_restarts=1,
                               retry_forever=True, retry_forever_interval=0.3))
    async with sup.subscribe() as events:
        await sup.start("stubborn")
        forever = await wait_for(events, lambda s: s.state is S.RETRYING, what="retrying forever")
        assert forever.consecutive_failures == 2
        assert forever.reason.endswith("; retry 2, retrying forever") and forever.next_retry_at is not None
        again = await wait_for(events, lambda s: s.state is S.RETRYING and s.consecutive_failures == 3,
                               what="a third failure, still retrying")
    assert again.restarts == 2
    statuses = {s.name: s for s in await sup.processes()}
    assert statuses["stubborn"].state is not S.FAILED


async def test_reset_after_forgives_stable_runs(make_supervisor: Make) -> None:
    # Runs 0.6 s then fails; stable after 0.2 s; so it never reaches max_restarts = 1.
    sup = make_supervisor(spec("steady", "import time, sys; time.sleep(0.6); sys.exit(1)",
                               backoff=(0.0,), max_restarts=1, reset_after=0.2))
    async with sup.subscribe() as events:
        await sup.start("steady")
        await wait_for(events, lambda s: s.state is S.RUNNING and s.consecutive_failures == 1,
                       what="running after a first failure")
        reset = await wait_for(events, lambda s: s.state is S.RUNNING and "failure count reset" in s.reason,
                               what="the counter reset")
        assert reset.consecutive_failures == 0
        await wait_for(events, lambda s: s.state is S.RUNNING and s.restarts == 2, what="a second restart")
    assert all(s.state is not S.FAILED for s in await sup.processes())


async def test_start_while_retrying_retries_now(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("slowretry", "import sys; sys.exit(1)", backoff=(600.0,)))
    async with sup.subscribe() as events:
        await sup.start("slowretry")
        await wait_state(events, "slowretry", S.RETRYING)
        await sup.start("slowretry")
        running = await wait_state(events, "slowretry", S.RUNNING)
        assert running.next_retry_at is None and running.consecutive_failures == 0
        await wait_state(events, "slowretry", S.RETRYING)


async def test_stop_cancels_pending_retry(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("r", "import sys; sys.exit(1)", backoff=(0.3,)))
    async with sup.subscribe() as events:
        await sup.start("r")
        await wait_state(events, "r", S.RETRYING)
        stopped = await sup.stop("r")
        assert stopped.state is S.STOPPED and stopped.next_retry_at is None
        # A fresh process that starts after the backoff would have passed: the old retry must not fire.
        await sup.add(spec("marker", "import time; time.sleep(0.5)"))
        await wait_state(events, "marker", S.STOPPED)
    assert len(await sup.history("r")) == 1
    assert (await sup.status("r")).state is S.STOPPED


async def test_missing_command_is_a_clear_failure(make_supervisor: Make) -> None:
    missing = ProcessSpec(name="ghost", command=("/nonexistent/pmtop-no-such-binary",),
                          restart=RestartSpec(backoff=(0.0,), max_restarts=1))
    sup = make_supervisor(missing)
    async with sup.subscribe() as events:
        await sup.start("ghost")
        failed = await wait_state(events, "ghost", S.FAILED)
    assert "command not found: /nonexistent/pmtop-no-such-binary" in failed.reason
    history = await sup.history("ghost")
    assert history[-1].pid is None and history[-1].stderr_tail == (
        "command not found: /nonexistent/pmtop-no-such-binary",
    )


async def test_bad_cwd_is_a_clear_failure(make_supervisor: Make, tmp_path) -> None:
    sup = make_supervisor(spec("nocwd", cwd=str(tmp_path / "missing"), policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("nocwd")
        failed = await wait_state(events, "nocwd", S.FAILED)
    assert "working directory not found" in failed.reason


async def test_grandchild_is_killed_with_its_group(make_supervisor: Make) -> None:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    sup = make_supervisor(spec("parent", code))
    async with sup.subscribe() as events:
        await sup.start("parent")
        running = await wait_state(events, "parent", S.RUNNING)
    await poll_until(lambda: bool(asyncio_safe_logs(sup)), what="the grandchild's PID in the log")
    grandchild = int(asyncio_safe_logs(sup)[0])
    assert psutil.Process(grandchild).ppid() == running.pid
    await sup.stop("parent")
    await poll_until(lambda: gone(grandchild), what="the grandchild to be gone", timeout=10)


def asyncio_safe_logs(sup: Supervisor) -> list[str]:
    from pmtop.core.process import logs

    runner = sup._runners["parent"]
    return logs.tail_lines(runner.run_dir / "stdout.log", 5) if runner.run_dir else []


async def test_grandchild_of_a_crashed_leader_is_killed(make_supervisor: Make) -> None:
    code = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(p.pid, flush=True)\n"
        "sys.exit(1)\n"
    )
    sup = make_supervisor(spec("parent", code, policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("parent")
        await wait_state(events, "parent", S.FAILED)
    await poll_until(lambda: bool(asyncio_safe_logs(sup)), what="the grandchild's PID in the log")
    grandchild = int(asyncio_safe_logs(sup)[0])
    await poll_until(lambda: gone(grandchild), what="the orphaned grandchild to be killed", timeout=10)


async def test_sigterm_ignorer_is_killed_after_stop_timeout(make_supervisor: Make) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    sup = make_supervisor(spec("stubborn", code, stop_timeout=0.5))
    async with sup.subscribe() as events:
        await sup.start("stubborn")
        await wait_state(events, "stubborn", S.RUNNING)
        await poll_until(lambda: asyncio_logs(sup, "stubborn") == ["ready"], what="handler installed")
        seen: list = []
        started = time.monotonic()
        stopped = await sup.stop("stubborn")
        elapsed = time.monotonic() - started
        await wait_state(events, "stubborn", S.STOPPED, seen=seen)
    assert stopped.exit_code == -signal.SIGKILL
    assert elapsed >= 0.5, "SIGKILL only after stop_timeout"
    assert any(s.state is S.STOPPING and "SIGKILL after 0.5s" in s.reason for s in seen)


def asyncio_logs(sup: Supervisor, name: str) -> list[str]:
    from pmtop.core.process import logs

    runner = sup._runners[name]
    return logs.tail_lines(runner.run_dir / "stdout.log", 5) if runner.run_dir else []


async def test_stopped_process_still_receives_the_stop_signal(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("frozen", stop_timeout=30.0))
    async with sup.subscribe() as events:
        await sup.start("frozen")
        running = await wait_state(events, "frozen", S.RUNNING)
    os.kill(running.pid, signal.SIGSTOP)
    await poll_until(lambda: psutil.Process(running.pid).status() == psutil.STATUS_STOPPED, what="SIGSTOP")
    stopped = await sup.stop("frozen")
    assert stopped.exit_code == -signal.SIGTERM, "SIGCONT let it receive SIGTERM; no SIGKILL needed"


async def test_disable_and_enable(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("svc"), spec("off", enabled=False))
    assert (await sup.status("off")).state is S.DISABLED
    with pytest.raises(ActionRefused, match="disabled"):
        await sup.start("off")
    async with sup.subscribe() as events:
        await sup.start("svc")
        await wait_state(events, "svc", S.RUNNING)
        disabled = await sup.disable("svc")
        assert disabled.state is S.DISABLED and disabled.pid is None
        await sup.enable("svc")
        await wait_state(events, "svc", S.RUNNING)
        enabled = await sup.enable("off")
        assert enabled.state in (S.STARTING, S.RUNNING)
        await wait_state(events, "off", S.RUNNING)


async def test_restart_gives_a_new_pid(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("svc"))
    async with sup.subscribe() as events:
        await sup.start("svc")
        first = await wait_state(events, "svc", S.RUNNING)
        await sup.restart("svc")
        second = await wait_state(events, "svc", S.RUNNING)
    assert second.pid != first.pid and gone(first.pid)
    assert second.restarts == 0, "a requested restart is not a policy restart"


async def test_add_and_remove_at_run_time(make_supervisor: Make) -> None:
    sup = make_supervisor()
    async with sup.subscribe() as events:
        added = await sup.add(spec("late"))
        assert added.state in (S.STARTING, S.RUNNING)
        running = await wait_state(events, "late", S.RUNNING)
        await sup.remove("late")
        removed = [e async for e in _until_removed(events, "late")]
    assert removed and gone(running.pid)
    assert [s.name for s in await sup.processes()] == []


async def _until_removed(events, name):
    from pmtop.core.model import ProcessRemoved

    async for event in events:
        if isinstance(event, ProcessRemoved) and event.name == name:
            yield event
            return


async def test_unknown_names_are_refused(make_supervisor: Make) -> None:
    from pmtop.core.errors import NoSuchProcess

    sup = make_supervisor()
    for action in (sup.start, sup.stop, sup.restart, sup.enable, sup.disable, sup.status, sup.remove):
        with pytest.raises(NoSuchProcess, match="no process named 'nope'"):
            await action("nope")


async def test_a_stop_between_the_spawn_and_the_run_folder_stops_the_new_process(make_supervisor: Make) -> None:
    """A starting process execs first, then yields before its log files are attached (so a boot
    spawns everything first): a stop in that moment signals the new process and records its run."""
    sup = make_supervisor(spec("quick"))
    runner = sup._runners["quick"]  # noqa: SLF001
    await runner.start()
    # the lifecycle's first step: spawned, then its head start (a millisecond: look at every loop step)
    await poll_until(lambda: runner.pid is not None, what="spawned", timeout=10, interval=0)
    pid = runner.pid
    assert pid is not None, "spawned"
    assert runner.state is S.STARTING, "in the moment between the exec and the run's log files (not yet running)"
    await sup.stop("quick")
    status = await sup.status("quick")
    assert status.state is S.STOPPED and status.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    runs = await sup.history("quick")
    assert len(runs) == 1 and runs[0].pid == pid and runs[0].end_reason is EndReason.STOP


async def test_only_an_immediate_restart_yields_the_cpu_to_its_new_program(
    make_supervisor: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spawn of a crash's immediate restart hands the CPU to the new program (`sched_yield`, so
    that its exec is not preempted by the supervisor); a start, and a restart after a delay, do not."""
    from pmtop.core.system import spawner

    asked: list[bool] = []
    real_spawn = spawner.spawn

    def spawn(*args: object, yield_cpu: bool = False, **kwargs: object) -> spawner.Child:
        asked.append(yield_cpu)
        return real_spawn(*args, yield_cpu=yield_cpu, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spawner, "spawn", spawn)
    sup = make_supervisor(spec("flaky", backoff=(0.0, 0.05)))
    async with sup.subscribe() as events:
        await sup.start("flaky")
        for _ in range(2):  # a restart at once, then one after its 0.05 s backoff
            running = await wait_state(events, "flaky", S.RUNNING)
            assert running.pid is not None
            os.kill(running.pid, signal.SIGKILL)
            await wait_state(events, "flaky", S.CRASHED)
        await wait_state(events, "flaky", S.RUNNING)
    assert asked == [False, True, False]


async def test_a_stop_in_a_restarts_head_start_stops_the_new_process(make_supervisor: Make) -> None:
    """An immediate restart spawns, then gives the new program its head start before the crash's news
    and the new run's log files: a stop in that moment stops the new process and records both runs."""
    sup = make_supervisor(spec("flaky", backoff=(0.0,)))
    runner = sup._runners["flaky"]  # noqa: SLF001
    async with sup.subscribe() as events:
        await sup.start("flaky")
        first = await wait_state(events, "flaky", S.RUNNING)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    await poll_until(lambda: runner._child is not None and runner._child.pid != first.pid,  # noqa: SLF001
                     what="restarted", timeout=10, interval=0)  # every loop step: the head start lasts a millisecond
    assert runner._child is not None and runner._child.pid != first.pid, "restarted"  # noqa: SLF001
    second = runner._child.pid  # noqa: SLF001
    assert runner.pid is None and runner.state is S.RUNNING, "in the head start: the crash is not news yet"
    status = await sup.stop("flaky")
    assert status.state is S.STOPPED and status.pid is None and status.reason == "stopped by user"
    assert gone(second)
    runs = await sup.history("flaky")
    assert [(r.pid, r.end_reason) for r in runs] == [(first.pid, EndReason.CRASH), (second, EndReason.STOP)]
