"""`pmtop watcher`: the second supervisor of SPEC §9 (the daemon itself is `cli/watcher_main.py`)."""

from __future__ import annotations

import argparse

from ..registry import command


def _watcher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detach", action="store_true", help="start in the background, return once it answers")


@command("watcher", help="run the watcher: a second supervisor that restarts this instance's daemon, and is "
         "restarted by it (port 19882)", arguments=_watcher_arguments,
         description="Run the watcher instance (`watcher`, or `NAME-watcher` for --instance NAME), which checks "
         "this instance's daemon every 3 s and restarts it, and is restarted by it. --port and --host are the "
         "watcher's own address (default 127.0.0.1:19882).")
def watcher(args: argparse.Namespace) -> int:
    from ..watcher_main import run_watcher

    return run_watcher(args)
