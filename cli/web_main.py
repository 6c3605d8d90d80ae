"""`pmtop web`: serve the dashboard to a browser, attached to this instance's daemon (SPEC §13).

Start-up, as seed 000's monitor does it and as the daemon does (SPEC §5):

1. `GET /health` on the web port. If `pmtop web` of this instance answers, print its link, open the
   browser, and exit 0: one web server per port. Anything else there is an error naming it (exit 2).
2. Bind the port (a busy port is the same error; the port never moves silently).
3. Find this instance's daemon, or start one with `pmtop --headless --detach` (it keeps running
   after `pmtop web` ends, like any daemon). Every browser session is a `pmtop` dashboard process
   attached to it, never a second supervisor; the daemon is looked for again before each session.
4. Serve until SIGINT or SIGTERM; then every session's dashboard is ended.

The gate is the daemon's own token (`<state>/<instance>/token`): the printed link carries it once.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pmtop.core.config import Config
from pmtop.core.daemon.instance import probe_health
from pmtop.core.daemon.service import find_existing, resolve_endpoint
from pmtop.core.errors import DaemonUnavailable, PmtopError, PortInUse, UsageError
from pmtop.core.locations import (
    TOKEN_ENV_VAR,
    DaemonRecord,
    InstancePaths,
    connectable,
    instance_paths,
    is_loopback,
    read_token,
)
from pmtop.core.version import __version__

from .daemon_main import config_mismatch_line, detach, load
from .locate import parse_port, read_token_file

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19890
SERVICE = "pmtop-web"
"""`cli/web/server.py`'s SERVICE: not imported from there, which would load aiohttp before step 1."""
SHUTDOWN_TIMEOUT = 10.0

log = logging.getLogger("pmtop.web")


def run_web(args: argparse.Namespace) -> int:
    config = load(args)
    paths = instance_paths(args.instance or config.daemon.instance)
    host = args.web_host or DEFAULT_HOST
    port = parse_web_port(args.web_port)
    wants_browser = not args.no_browser
    if args.theme is not None:
        check_theme_apart(args.theme)

    explicit = read_token_file(args.token_file) if args.token_file else None

    def token() -> str | None:  # as the dashboard finds it; read again for each check
        return explicit or os.environ.get(TOKEN_ENV_VAR) or read_token(paths.state_dir)

    running = probe_health(connectable(host), port)
    if running is not None:
        if running.get("service") == SERVICE and running.get("instance") == paths.instance:
            print(f"pmtop web is already serving instance {paths.instance!r} on port {port} "
                  f"(pid {running.get('pid')}):")
            url = page_url(host, port, token())
            if show(url, wants_browser):
                open_browser(url)
            return 0
        raise occupied(port, running)
    sock = bind(host, port)
    try:
        try:
            daemon = ensure_daemon(args, paths, config, note_mismatch=True)
        except DaemonUnavailable as exc:
            if exc.message:
                print(f"Error: {exc.message}", file=sys.stderr)
            return 1
        if not token():
            raise PmtopError(f"no token for instance {paths.instance!r} ({paths.state_dir / 'token'}); "
                             "refusing to serve the dashboard without one")
        return asyncio.run(serve(sock, args, paths, config, daemon, token))
    finally:
        sock.close()


def check_theme_apart(name: str) -> None:
    """`--theme` checked before anything starts, as `pmtop` does, but in a child: the web server
    itself never loads Textual (each session's dashboard does)."""
    code = "import sys; from pmtop.tui import check_theme; check_theme(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        message = lines[-1].split(": ", 1)[-1] if lines else f"cannot check the theme {name!r}"
        raise UsageError(message)


def parse_web_port(raw: object) -> int:
    """`--port` of `pmtop web`: 1-65535, default 19890 (`auto` means the default: there is no walk)."""
    return parse_port(raw) or DEFAULT_PORT


def page_url(host: str, port: int, token: str | None) -> str:
    where = connectable(host)
    where = f"[{where}]" if ":" in where else where
    return f"http://{where}:{port}/" + (f"?token={token}" if token else "")


# -- the port ---------------------------------------------------------------------------------------

def occupied(port: int, health: Mapping[str, Any]) -> PortInUse:
    """What answers on the port is not this instance's `pmtop web`."""
    if health.get("service") == SERVICE:
        return PortInUse(f"port {port} is already used by pmtop web of instance {health.get('instance')!r}. "
                         f"Choose another port with --port, or use --instance {health.get('instance')} "
                         "to open that one.")
    if health.get("service") == "pmtop":
        return PortInUse(f"port {port} is the API port of pmtop instance {health.get('instance')!r}. "
                         "Choose another port with --port.")
    return port_in_use(port)


def port_in_use(port: int) -> PortInUse:
    owner = port_owner(port)
    return PortInUse(f"port {port} is already in use by another program{f' ({owner})' if owner else ''}. "
                     "Stop it, or choose another port with --port.")


def port_owner(port: int) -> str | None:
    """`NAME, pid PID` of the process listening on the port, when this user may see it."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()}, pid {conn.pid}"
    except (psutil.Error, OSError):
        pass
    return None


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise port_in_use(port) from None
        if exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME):
            raise PortInUse(f"cannot listen on {host}: no such local address") from None
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


# -- the daemon -------------------------------------------------------------------------------------

def ensure_daemon(args: argparse.Namespace, paths: InstancePaths, config: Config, *,
                  note_mismatch: bool = False) -> DaemonRecord:
    """This instance's running daemon, started (detached) first when none answers."""
    endpoint = resolve_endpoint(config, args.host, args.port)
    existing = find_existing(paths, endpoint, config.path)
    if existing is None:
        daemon_args = argparse.Namespace(host=args.host, port=args.port, read_only=False)
        if detach(daemon_args, paths, config) != 0:
            raise DaemonUnavailable("")  # detach said why
        existing = find_existing(paths, endpoint, config.path)
        if existing is None:
            raise DaemonUnavailable(f"the daemon of instance {paths.instance!r} started but does not answer")
    elif note_mismatch and existing.config_differs:
        print(config_mismatch_line(existing.info.config), file=sys.stderr)
    return existing.info


def session_argv(args: argparse.Namespace, paths: InstancePaths, config: Config, daemon: DaemonRecord) -> list[str]:
    """A dashboard attached to exactly that daemon (`--web-session`: never a supervisor)."""
    argv = [sys.executable, "-m", "pmtop.cli.main", "--web-session", "--instance", paths.instance,
            "--host", connectable(daemon.host), "--port", str(daemon.port)]
    if config.path is not None:
        argv += ["--config", str(config.path)]
    if args.theme:
        argv += ["--theme", args.theme]
    if args.read_only:
        argv.append("--read-only")
    return argv


# -- serving ----------------------------------------------------------------------------------------

async def serve(sock: socket.socket, args: argparse.Namespace, paths: InstancePaths, config: Config,
                daemon: DaemonRecord, token: Callable[[], str | None]) -> int:
    from aiohttp import web

    from .web.gate import Gate
    from .web.server import SessionCommand, WebInfo, make_app

    host, port = args.web_host or DEFAULT_HOST, sock.getsockname()[1]
    gate = Gate(token, port=port)
    launch_lock = asyncio.Lock()

    async def launcher() -> SessionCommand:
        async with launch_lock:  # two tabs opened at once start at most one daemon
            info = await asyncio.to_thread(ensure_daemon, args, paths, config)
        return SessionCommand(session_argv(args, paths, config, info), env={TOKEN_ENV_VAR: token() or ""},
                              cwd=Path.cwd())

    app = make_app(gate, WebInfo(paths.instance, __version__, os.getpid(), port), launcher)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    start_log()
    print(f"pmtop web: the dashboard of instance {paths.instance!r} "
          f"(daemon {daemon.url}, pid {daemon.pid}), for a browser at:")
    if not is_loopback(host):
        print(f"Note: {host} is reachable from other machines over plain HTTP, and the token crosses the "
              "network unencrypted; an SSH tunnel to 127.0.0.1 is safer.", file=sys.stderr)
    url = page_url(host, port, token())
    if show(url, not args.no_browser):  # in a thread: some browser commands return only when closed
        threading.Thread(target=open_browser, args=(url,), name="pmtop-web-browser", daemon=True).start()
    print("Ctrl+C stops the web server; the daemon and its processes keep running.", flush=True)
    try:
        await stop.wait()
    finally:
        print("pmtop web: stopping", flush=True)
        await runner.cleanup()
    return 0


def start_log() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    for name in ("pmtop.web", "textual-serve"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if name == "pmtop.web" else logging.WARNING)


def show(url: str, wanted: bool) -> bool:
    """Print the link; say whether to open it (asked for, and a screen to show it on)."""
    print(f"  {url}", flush=True)
    if not wanted:
        return False
    if not has_display(os.environ):
        port = url.split("/")[2].rsplit(":", 1)[-1]
        print(f"  (no display here: open the link in a browser; from another machine through an SSH "
              f"tunnel: ssh -L {port}:127.0.0.1:{port} this-host)", flush=True)
        return False
    return True


def open_browser(url: str) -> None:
    try:
        if not webbrowser.open(url, new=2):
            print("  (no browser found to open the link)", flush=True)
    except webbrowser.Error as exc:
        print(f"  (could not open a browser: {exc})", flush=True)


def has_display(environ: Mapping[str, str]) -> bool:
    """A graphical session to open a browser in (without one, `webbrowser` would pick a console
    browser that takes over this terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
