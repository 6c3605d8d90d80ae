"""`pmtop`: the command line. Parses arguments and hands over to a face.

    pmtop                    the dashboard (in-process supervisor, or attached to a running daemon)
    pmtop --attach URL...    the dashboard over several daemons (tokens from fleet.toml); --fleet: all of it
    pmtop --headless         the supervisor as a daemon with the HTTP API (--detach to background it)
    pmtop ps|start|...       a client of a running daemon's API
    pmtop web                the dashboard in a browser, attached to the daemon (started if need be)

The commands are declared in `cli/commands/` (each with its arguments, registered in `registry.py`);
this module builds the parser from that table. Errors become one line on stderr and an exit code
here, and only here (`commands.common.fail`). Nothing on the daemon or
client paths imports Textual: they must start fast and run without a terminal UI.
"""

from __future__ import annotations

import argparse
import os
import sys

from pmtop.core.errors import PmtopError
from pmtop.core.version import __version__

from . import commands  # noqa: F401  (registers every command)
from .commands.common import EXIT_BROKEN_PIPE, EXIT_USAGE, fail
from .registry import REGISTRY

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing itself costs `pmtop ps` ~4 ms)
    from typing import NoReturn

class Parser(argparse.ArgumentParser):
    """argparse, with its errors as the one line every pmtop error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"Error: {message} (see `{self.prog} --help`)\n")


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options that may stand before or after the command (`pmtop --port 1 ps`, `pmtop ps --port 1`)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", "-c", metavar="FILE", default=default,
                        help="config file (default: $PMTOP_CONFIG, else ./pmtop.toml)")
    parser.add_argument("--instance", metavar="NAME", default=default,
                        help="instance name: isolates state, logs, lock and port")
    parser.add_argument("--host", metavar="HOST", default=default, help="API address (default 127.0.0.1)")
    parser.add_argument("--port", metavar="PORT", default=default,
                        help='API port (default 19881), or "auto" for the first free one from there up')
    parser.add_argument("--token-file", metavar="FILE", default=default,
                        help="read the API token from FILE (default: $PMTOP_TOKEN, else this instance's token file)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pmtop",
        description="A process supervisor with a terminal control center.",
    )
    _common_options(parser, suppress=False)
    parser.add_argument("--headless", action="store_true", help="run the supervisor as a daemon, no dashboard")
    parser.add_argument("--detach", action="store_true",
                        help="with --headless: start in the background, return once it answers")
    parser.add_argument("--read-only", action="store_true", help="refuse every action; viewing only")
    parser.add_argument("--standalone", action="store_true",
                        help="watch no partner and restart none (see `pmtop watcher`), for this run")
    parser.add_argument("--theme", metavar="NAME", help="dashboard theme")
    parser.add_argument("--attach", nargs="+", metavar="URL",
                        help="one dashboard over these daemons (http://HOST:PORT; tokens from fleet.toml, "
                             "else --token-file or $PMTOP_TOKEN)")
    parser.add_argument("--fleet", action="store_true", help="one dashboard over every daemon of fleet.toml")
    parser.add_argument("--version", action="version", version=f"pmtop {__version__}")
    # Internal: a browser session of `pmtop web` only attaches, and ends with the web server.
    parser.add_argument("--web-session", action="store_true", help=argparse.SUPPRESS)
    common = Parser(add_help=False)
    _common_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for entry in REGISTRY.values():
        p = sub.add_parser(entry.name, parents=[common] if entry.common else [], help=entry.help,
                           description=entry.description)
        if entry.arguments is not None:
            entry.arguments(p)
        if entry.rest:
            p.add_argument("argv", nargs="*", metavar="-- CMD ARGS", help="the command to run, after `--`")
    return parser


def _split_rest(words: list[str]) -> tuple[list[str], list[str] | None]:
    """`pmtop add NAME [OPTIONS] -- CMD ARGS...`: what follows `--` after such a command is its argv,
    untouched by argparse (a `-c` there belongs to the command, not to pmtop)."""
    for i, word in enumerate(words):
        entry = REGISTRY.get(word)
        if entry is not None and entry.rest and "--" in words[i:]:
            cut = words.index("--", i)
            return words[:cut], words[cut + 1:]
    return words, None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words, rest = _split_rest(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(words)
    if rest is not None:
        args.argv = rest
    try:
        if args.command is not None:
            return REGISTRY[args.command].run(args)
        if args.attach or args.fleet:
            from .dashboard_main import run_fleet

            return run_fleet(args)
        if args.headless:
            from pmtop.core.system import lazy_tls

            lazy_tls.import_asyncio()  # OpenSSL (4 MB) only once an https:// health check needs it
            from .daemon_main import run_daemon

            return run_daemon(args)
        from .dashboard_main import run_dashboard

        return run_dashboard(args)
    except PmtopError as exc:
        return fail(exc)
    except BrokenPipeError:  # whoever read our stdout has gone: stop quietly, as `cat` does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
