"""`pmtop web`: the dashboard in a browser (the server itself is `cli/web_main.py` and `cli/web/`)."""

from __future__ import annotations

import argparse

from ..registry import command


def _web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file (default: $PMTOP_CONFIG, else ./pmtop.toml)")
    parser.add_argument("--instance", metavar="NAME", default=argparse.SUPPRESS, help="instance name")
    parser.add_argument("--host", dest="web_host", metavar="HOST", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", dest="web_port", metavar="PORT", help="port to serve on (default 19890)")
    parser.add_argument("--no-browser", action="store_true", help="print the link, do not open a browser")
    parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="the browser's dashboard refuses every action")
    parser.add_argument("--theme", metavar="NAME", default=argparse.SUPPRESS, help="dashboard theme")


@command("web", help="serve the dashboard to a browser (token-gated)", arguments=_web_arguments, common=False,
         description="Serve the dashboard to a browser, attached to this instance's daemon (started first if none "
         "runs). Options before `web` (--host, --port) pick the daemon; these pick the web server's address.")
def web(args: argparse.Namespace) -> int:
    from ..web_main import run_web

    return run_web(args)
