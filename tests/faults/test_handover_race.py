"""A hand-over never records the processes as gone (the cause of the flaky dashboard hand-over test).

Registry saves are coalesced: an event schedules one 50 ms later. A hand-over (`stop` with the
processes left running) saves the registry, then lets go of the processes; a save still pending from
the last event used to run after that and record no live process at all, so the successor started
every process a second time.
"""

from __future__ import annotations

import asyncio
import os
import signal

import psutil

from pmtop.core.config import Config, DaemonSettings
from pmtop.core.daemon.registry import Registry
from pmtop.core.daemon.service import Daemon, Endpoint
from tests.conftest import spec
from tests.waiting import poll_until


async def test_a_save_pending_at_hand_over_does_not_forget_the_processes(pmtop_home: object) -> None:
    config = Config(None, DaemonSettings(instance="race"), (spec("web"),))
    daemon = Daemon(config, instance="race", endpoint=Endpoint("127.0.0.1", 0))
    supervisor = daemon.prepare()
    await daemon.launch()
    pid = None
    try:
        status = await supervisor.status("web")
        pid = status.pid
        assert pid is not None
        # The API server first (as stop does), so that the event below lands right before the hand-over.
        server, daemon._server = daemon._server, None  # noqa: SLF001
        assert server is not None
        await server.close()
        runner = supervisor._runners["web"]  # noqa: SLF001
        runner.restarts += 1  # something the registry records (an event that changes none of it saves nothing)
        runner.publish()  # an event: a save will be pending
        await poll_until(lambda: daemon._save_handle is not None, what="a save pending")  # noqa: SLF001
        pending = daemon._save_handle  # noqa: SLF001
        assert pending is not None
        await daemon.stop(stop_processes=False)
        # Until the moment that save was due (and a loop turn past it): the registry must still hold it.
        loop = asyncio.get_running_loop()
        due = loop.create_future()
        loop.call_at(pending.when(), loop.call_soon, due.set_result, None)
        await due
        live = Registry(daemon.paths.state_dir / "registry.json").load().live
        assert "web" in live and live["web"].pid == pid, "the successor finds the process to adopt"
    finally:
        if pid is not None and psutil.pid_exists(pid):
            os.killpg(pid, signal.SIGKILL)
            psutil.Process(pid).wait(10)
