"""The supervisor in the foreground, one line per state change (what `--headless` runs)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import TextIO

from pmtop.core.config import Config
from pmtop.core.daemon_log import start_daemon_log, stop_daemon_log
from pmtop.core.model import ProcessEvent, ProcessRemoved
from pmtop.core.paths import instance_paths
from pmtop.core.supervisor import Supervisor

NO_PROCESSES_HINT = (
    "No processes configured. Add one with `pmtop add NAME -- COMMAND`, with `a` in the dashboard, "
    "or write a starter pmtop.toml with `pmtop init`."
)


def format_event(event: ProcessEvent, now: float | None = None) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    if isinstance(event, ProcessRemoved):
        return f"{stamp}  {event.name:<16} removed"
    pid = f"pid {event.pid}" if event.pid else ""
    return f"{stamp}  {event.name:<16} {event.state:<9} {pid:<11} {event.reason}".rstrip()


def run_foreground(config: Config, *, instance: str | None = None, out: TextIO = sys.stdout) -> int:
    return asyncio.run(_run(config, instance or config.daemon.instance, out))


async def _run(config: Config, instance: str, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    paths = instance_paths(instance)
    log_path, log_handler = start_daemon_log(paths)
    supervisor = Supervisor(config.processes, paths=paths)
    stop_requested = asyncio.Event()
    forced = False

    def on_signal() -> None:
        nonlocal forced
        if stop_requested.is_set():  # a second Ctrl-C: do not wait out stop timeouts
            forced = True
            for runner in supervisor._runners.values():
                loop.create_task(runner.kill_now())
        stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async def print_events() -> None:
        async with supervisor.subscribe() as events:
            async for event in events:
                print(format_event(event), file=out, flush=True)

    printer = asyncio.create_task(print_events())
    where = f"{config.path}" if config.path else "no config file"
    print(f"pmtop: supervising {len(config.processes)} process(es) from {where} "
          f"(instance {instance}); Ctrl-C stops them all", file=out, flush=True)
    print(f"pmtop: logs in {paths.log_dir} (this run: {log_path.name})", file=out, flush=True)
    if not config.processes:
        print(NO_PROCESSES_HINT, file=out, flush=True)
    await supervisor.boot()
    await stop_requested.wait()
    if config.daemon.stop_on_exit:
        await supervisor.shutdown()
        await printer
    else:
        printer.cancel()
    stop_daemon_log(log_handler)
    return 130 if forced else 0
