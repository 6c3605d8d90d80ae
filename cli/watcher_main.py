"""`pmtop watcher`: the second supervisor of SPEC §9, which restarts an instance's daemon and is
restarted by it.

It is a daemon of its own instance (`watcher`, or `<instance>-watcher`; port 19882 unless `--port`)
with no processes: it serves `/alive`, `/health` and `/status` like any daemon, so the instance it
watches checks it the same way. `--instance` names the instance watched (default: the config's, else
`default`); the watched daemon is found through its `daemon.json`, and when it is not running at all,
at the config's address, and started (`pmtop --headless --detach` with the same config).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TextIO

from pmtop.core.config import Config, DaemonSettings
from pmtop.core.daemon.logfile import LOGGER_NAME, start_daemon_log, stop_daemon_log
from pmtop.core.daemon.partner import watcher_link
from pmtop.core.daemon.service import Daemon, find_existing, resolve_endpoint
from pmtop.core.daemon.watcher import WATCHER_PORT, watcher_instance
from pmtop.core.errors import PmtopError
from pmtop.core.locations import instance_paths

from .daemon_main import detach, load, write


def run_watcher(args: argparse.Namespace) -> int:
    config = load(args)
    watched = args.instance or config.daemon.instance
    own = watcher_instance(watched)
    paths = instance_paths(own)
    endpoint = resolve_endpoint(Config(None, DaemonSettings(instance=own, port=WATCHER_PORT), ()), args.host, args.port)
    existing = find_existing(paths, endpoint, None)
    if existing is not None:
        info = existing.info
        print(f"pmtop watcher is already running for instance {watched!r} at {info.url} (pid {info.pid}).")
        return 0
    if args.detach:
        return detach(args, paths, config, face=["watcher", "--instance", watched])
    target = resolve_endpoint(config, None, None)
    link = watcher_link(watched, host=target.host, port=target.port, config=config.path)
    daemon = Daemon(Config(None, DaemonSettings(instance=own), ()), instance=own, endpoint=endpoint, partner=link)
    return asyncio.run(serve(daemon, watched))


async def serve(daemon: Daemon, watched: str, out: TextIO = sys.stdout) -> int:
    """Until SIGTERM or SIGINT; every change of the watched instance's state is printed and logged."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_shutdown)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # nothing to reload: no config of its own
    log_path, log_handler = start_daemon_log(daemon.paths)
    console = logging.StreamHandler(out)
    console.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    logging.getLogger(LOGGER_NAME).addHandler(console)
    try:
        daemon.prepare()
        info = await daemon.launch()
        write(out, f"pmtop watcher: watching instance {watched!r}; serving {info.url} (pid {info.pid}); "
                   f"log {log_path}\n")
        await daemon.shutdown_requested.wait()
        await daemon.stop()
    except PmtopError as exc:
        logging.getLogger(LOGGER_NAME).error("start-up failed: %s", exc.message)
        raise
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(console)
        stop_daemon_log(log_handler)
    return 0
