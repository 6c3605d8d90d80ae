"""Plain `pmtop`: until the dashboard lands, the supervisor in the foreground."""

from __future__ import annotations

import argparse


def run_dashboard(args: argparse.Namespace) -> int:
    from .daemon_main import run_daemon

    return run_daemon(args)
