"""`pmtop`: the command line. Parses arguments, finds the config, and hands over to a face.

Errors become one line on stderr and an exit code here, and only here. Nothing in this module
imports Textual: the daemon and the client commands must start fast and run without a terminal UI.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pmtop.core.errors import PmtopError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pmtop",
        description="A process supervisor with a terminal control center.",
    )
    parser.add_argument("--config", "-c", metavar="FILE", help="config file (default: $PMTOP_CONFIG, else ./pmtop.toml)")
    parser.add_argument("--instance", metavar="NAME", help="instance name: isolates state, logs and port")
    parser.add_argument("--headless", action="store_true", help="run the supervisor without the dashboard")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from pmtop.core.config import find_config, load_config, Config, DaemonSettings

        path = find_config(args.config, os.environ, Path.cwd())
        config = load_config(path) if path is not None else Config(None, DaemonSettings(), ())
        from .foreground import run_foreground

        return run_foreground(config, instance=args.instance)
    except PmtopError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
