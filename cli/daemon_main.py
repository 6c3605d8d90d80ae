"""`pmtop --headless`: load the config and run the supervisor."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pmtop.core.config import Config, DaemonSettings, find_config, load_config


def load(args: argparse.Namespace) -> Config:
    path = find_config(args.config, os.environ, Path.cwd())
    return load_config(path) if path is not None else Config(None, DaemonSettings(), ())


def run_daemon(args: argparse.Namespace) -> int:
    from .foreground import run_foreground

    return run_foreground(load(args), instance=args.instance)
