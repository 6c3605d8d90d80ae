"""`pmtop`: the command line. Parses arguments and hands over to a face.

    pmtop                    the dashboard (in-process supervisor, or attached to a running daemon)
    pmtop --headless         the supervisor as a daemon with the HTTP API (--detach to background it)
    pmtop ps|start|...       a client of a running daemon's API
    pmtop web                the dashboard in a browser, attached to the daemon (started if need be)

Errors become one line on stderr and an exit code here, and only here. Nothing on the daemon or
client paths imports Textual: they must start fast and run without a terminal UI.
"""

from __future__ import annotations

import argparse
import sys

from pmtop.core.errors import PmtopError
from pmtop.core.version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing itself costs `pmtop ps` ~4 ms)
    from typing import NoReturn

EXIT_ERROR = 1
EXIT_USAGE = 2

ACTIONS = ("start", "stop", "restart", "enable", "disable")


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
    parser.add_argument("--theme", metavar="NAME", help="dashboard theme")
    parser.add_argument("--version", action="version", version=f"pmtop {__version__}")
    # Internal: a browser session of `pmtop web` only attaches, and ends with the web server.
    parser.add_argument("--web-session", action="store_true", help=argparse.SUPPRESS)
    common = Parser(add_help=False)
    _common_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    ps = sub.add_parser("ps", parents=[common], help="list processes")
    ps.add_argument("--json", action="store_true", help="print JSON")
    for action in ACTIONS:
        p = sub.add_parser(action, parents=[common], help=f"{action} processes")
        p.add_argument("names", nargs="*", metavar="NAME")
        p.add_argument("--all", action="store_true", help=f"{action} every process")
        p.add_argument("--json", action="store_true", help="print the new statuses as JSON")
    logs = sub.add_parser("logs", parents=[common], help="show a process's output")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--stderr", action="store_true", help="stderr instead of stdout")
    logs.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="lines of history (default 50)")
    add = sub.add_parser("add", parents=[common], help="register a process: pmtop add NAME -- CMD ARGS...")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--session", type=int, metavar="PID", help="stop and remove it when PID exits")
    add.add_argument("--restart", choices=["always", "on-failure", "no"], help="restart policy")
    add.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    add.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment (repeatable)")
    add.add_argument("--scope", choices=["global", "project", "session"], help="default: project if the "
                     "daemon runs a config file, else global; session with --session")
    add.add_argument("--no-start", action="store_true", help="register without starting")
    add.add_argument("argv", nargs="*", metavar="-- CMD ARGS", help="the command, after `--`")
    rm = sub.add_parser("rm", parents=[common], help="stop and deregister a process")
    rm.add_argument("name", metavar="NAME")
    status = sub.add_parser("status", parents=[common], help="the daemon's own status")
    status.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("reload", parents=[common], help="reload the daemon's config file")
    sub.add_parser("shutdown", parents=[common], help="stop the daemon (and its processes)")
    sub.add_parser("token", parents=[common], help="print this instance's API token (for curl or Prometheus)")
    instances = sub.add_parser("instances", parents=[common], help="every running pmtop daemon of this user")
    instances.add_argument("--json", action="store_true", help="print JSON")
    web = sub.add_parser("web", help="serve the dashboard to a browser (token-gated)",
                         description="Serve the dashboard to a browser, attached to this instance's daemon "
                         "(started first if none runs). Options before `web` (--host, --port) pick the daemon; "
                         "these pick the web server's address.")
    web.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS,
                     help="config file (default: $PMTOP_CONFIG, else ./pmtop.toml)")
    web.add_argument("--instance", metavar="NAME", default=argparse.SUPPRESS, help="instance name")
    web.add_argument("--host", dest="web_host", metavar="HOST", help="address to serve on (default 127.0.0.1)")
    web.add_argument("--port", dest="web_port", metavar="PORT", help="port to serve on (default 19890)")
    web.add_argument("--no-browser", action="store_true", help="print the link, do not open a browser")
    web.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                     help="the browser's dashboard refuses every action")
    web.add_argument("--theme", metavar="NAME", default=argparse.SUPPRESS, help="dashboard theme")
    init = sub.add_parser("init", parents=[common], help="write a commented starter pmtop.toml here")
    init.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    export = sub.add_parser("export", parents=[common], help="write this config as systemd units, a Nomad job, "
                            "Kubernetes manifests, a Compose file or a Procfile, with a fidelity report")
    export.add_argument("target", metavar="TARGET", help="systemd | nomad | kubernetes | compose | procfile")
    export.add_argument("--out", "-o", metavar="DIR", default=".",
                        help="folder to write to (default: here; - prints the files instead)")
    export.add_argument("--name", metavar="APP", help="the app's name (default: the config's folder)")
    export.add_argument("--strict", action="store_true",
                        help="fail, writing nothing, if any setting cannot be expressed exactly")
    export.add_argument("--image", metavar="IMAGE", help="container image (kubernetes, compose)")
    export.add_argument("--systemd-version", type=int, metavar="N",
                        help="the systemd the units are for (default: this machine's)")
    export.add_argument("--force", action="store_true", help="overwrite files that exist")
    imp = sub.add_parser("import", parents=[common], help="turn a Procfile, supervisord .conf, process-compose "
                         "YAML or PM2 ecosystem JSON into a commented pmtop.toml")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--output", "-o", metavar="FILE", default="pmtop.toml",
                     help="where to write (default: ./pmtop.toml; never overwritten; - prints it)")
    imp.add_argument("--format", choices=["procfile", "supervisord", "process-compose", "pm2", "compose"],
                     help="the file's kind (default: from its name and content)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] | None = None
    if "add" in words and "--" in words[words.index("add"):]:  # `add NAME [options] -- CMD ARGS...`
        cut = words.index("--", words.index("add"))
        words, command = words[:cut], words[cut + 1:]
    args = parser.parse_args(words)
    if command is not None:
        args.argv = command
    try:
        if args.command == "web":
            from .web_main import run_web

            return run_web(args)
        if args.command is not None:
            from .commands import run_command

            return run_command(args)
        if args.headless:
            from .daemon_main import run_daemon

            return run_daemon(args)
        from .dashboard_main import run_dashboard

        return run_dashboard(args)
    except PmtopError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.code in ("config_invalid", "port_in_use", "usage") else EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
