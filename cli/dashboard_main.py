"""Plain `pmtop`: the dashboard, over an in-process supervisor or attached to a running daemon.

SPEC §5: when a pmtop daemon of this instance already answers on the port, the dashboard attaches to
it through the HTTP client; otherwise this process becomes the supervisor (lock, port, API and all,
in Textual's event loop) and the dashboard drives it directly. Quitting a local dashboard either
stops every process or hands them to a headless daemon, which adopts them.

`pmtop --attach URL...` and `pmtop --fleet` open the dashboard over several daemons at once (SPEC §12):
a `FleetController` over the daemons that `fleet.toml` lists (or those named), never a supervisor.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from pmtop.core.daemon.logfile import start_daemon_log, stop_daemon_log
from pmtop.core.daemon.service import Daemon, find_existing, resolve_endpoint
from pmtop.core.errors import DaemonUnavailable, PmtopError
from pmtop.core.locations import TOKEN_ENV_VAR, InstancePaths, instance_paths, read_token

from .daemon_main import config_mismatch_line, detach, load, raise_open_file_limit
from .locate import read_token_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pmtop.core.config.fleet import FleetDaemon

EARLY_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_dashboard(args: argparse.Namespace) -> int:
    from pmtop.tui import check_theme

    if args.web_session:
        from .web.lifeline import end_with_parent

        end_with_parent()
    if args.theme is not None:
        check_theme(args.theme)
    config = load(args)
    paths = instance_paths(args.instance or config.daemon.instance)
    endpoint = resolve_endpoint(config, args.host, args.port)
    existing = find_existing(paths, endpoint, config.path)
    if existing is not None:
        if existing.config_differs:
            print(config_mismatch_line(existing.info.config), file=sys.stderr)
        token = ((read_token_file(args.token_file) if args.token_file else None)
                 or os.environ.get(TOKEN_ENV_VAR) or read_token(paths.state_dir))
        return asyncio.run(attached(existing.info.url, token, args))
    if args.web_session:  # a browser session attaches; it never becomes the supervisor
        raise DaemonUnavailable(f"no pmtop daemon of instance {paths.instance!r} answers at "
                                f"{endpoint.host}:{endpoint.port}")
    raise_open_file_limit()
    daemon = Daemon(config, instance=paths.instance, endpoint=endpoint, read_only=args.read_only,
                    standalone=getattr(args, "standalone", False))
    return asyncio.run(local(daemon, paths, args))


async def attached(url: str, token: str | None, args: argparse.Namespace) -> int:
    from pmtop.core.api.client import HttpController
    from pmtop.tui import run_app

    async with HttpController(url, token=token) as controller:
        await run_app(controller, mode="attached", theme=args.theme, read_only=args.read_only)
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    """`--attach URL...` (those daemons; each listed in fleet.toml keeps its token file and name) or
    `--fleet` (every daemon of fleet.toml): one dashboard over them all."""
    from pathlib import Path

    from pmtop.core.config.fleet import choose, load_fleet
    from pmtop.core.errors import UsageError
    from pmtop.tui import check_theme

    if args.headless or args.detach or args.web_session:
        raise UsageError("--attach and --fleet open the dashboard: they do not go with --headless or --detach")
    if args.attach and args.fleet:
        raise UsageError("give --attach URL... or --fleet (every daemon of fleet.toml), not both")
    if args.theme is not None:
        check_theme(args.theme)
    fleet = load_fleet()
    daemons = choose(fleet, args.attach)
    if args.token_file:  # for the named daemons that fleet.toml does not know
        read_token_file(args.token_file)
        known = fleet.by_url()
        daemons = tuple(d if d.url in known else d.with_token_file(Path(args.token_file).expanduser().absolute())
                        for d in daemons)
    return asyncio.run(fleet_dashboard(daemons, args))


async def fleet_dashboard(daemons: tuple[FleetDaemon, ...], args: argparse.Namespace) -> int:
    from pmtop.core.api.fleet import FleetController
    from pmtop.tui import run_app

    async with FleetController(daemons) as controller:
        await run_app(controller, mode="fleet", theme=args.theme, read_only=args.read_only)
    return 0


async def local(daemon: Daemon, paths: InstancePaths, args: argparse.Namespace) -> int:
    from pmtop.tui import QuitChoice, run_app

    _, log_handler = start_daemon_log(paths)
    loop = asyncio.get_running_loop()
    ended_early = asyncio.Event()  # a signal before the dashboard takes over its own handlers
    for sig in EARLY_SIGNALS:
        loop.add_signal_handler(sig, ended_early.set)
    try:
        supervisor = daemon.prepare()
        await daemon.launch()
        for sig in EARLY_SIGNALS:
            loop.remove_signal_handler(sig)
        if ended_early.is_set():
            await daemon.stop(stop_processes=True)
            return 0

        async def on_quit(choice: QuitChoice) -> None:
            if choice is QuitChoice.HAND_OVER:
                # The successor takes over this address (with `--port auto` it might find another).
                port = daemon.info_record.port if daemon.info_record else args.port
                await daemon.stop(stop_processes=False)
                # In a thread: the dashboard keeps drawing (and hearing signals) while it waits.
                successor = argparse.Namespace(**{**vars(args), "port": str(port)})
                if await asyncio.to_thread(detach, successor, paths, daemon.config) != 0:
                    raise PmtopError("the headless daemon did not start; the processes keep running "
                                     "unsupervised (see the daemon log)")
            else:
                await daemon.stop(stop_processes=True)

        try:
            await run_app(supervisor, mode="local", theme=args.theme, read_only=args.read_only,
                          on_quit=on_quit)
        except BaseException:
            # The dashboard died (its terminal went away, a bug): the processes must not be orphaned.
            logging.getLogger("pmtop.core").exception("the dashboard ended abnormally; stopping everything")
            raise
        finally:
            if not daemon.stopped:
                await daemon.stop(stop_processes=True)
    finally:
        stop_daemon_log(log_handler)
    return 0
