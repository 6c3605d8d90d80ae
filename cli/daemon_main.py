"""`pmtop --headless`: the supervisor as a daemon serving the API (SPEC §5).

In the foreground it prints one line per state change (for a terminal or systemd's journal);
`--detach` starts it in a new session and returns only once it verifiably serves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from pmtop.core.config import Config, DaemonSettings, find_config, load_config
from pmtop.core.daemon.instance import pid_file, probe_health, read_daemon_info
from pmtop.core.daemon.logfile import daemon_logs, start_daemon_log, stop_daemon_log
from pmtop.core.daemon.service import Daemon, Endpoint, find_existing, resolve_endpoint
from pmtop.core.errors import PmtopError
from pmtop.core.files import PRIVATE_FILE, private_dir
from pmtop.core.formats import live_reason
from pmtop.core.locations import DaemonRecord, InstancePaths, instance_paths
from pmtop.core.model import ProcessEvent, ProcessRemoved
from pmtop.core.process.logs import tail_lines

DETACH_TIMEOUT = 10.0
NO_PROCESSES_HINT = (
    "No processes configured. Add one with `pmtop add NAME -- COMMAND`, with `a` in the dashboard, "
    "or write a starter pmtop.toml with `pmtop init`."
)


def load(args: argparse.Namespace) -> Config:
    path = find_config(args.config, os.environ, Path.cwd())
    return load_config(path) if path is not None else Config(None, DaemonSettings(), ())


def run_daemon(args: argparse.Namespace) -> int:
    config = load(args)
    paths = instance_paths(args.instance or config.daemon.instance)
    endpoint = resolve_endpoint(config, args.host, args.port)
    existing = find_existing(paths, endpoint, config.path)
    if existing is not None:
        info = existing.info
        print(f"pmtop is already running for instance {paths.instance!r} at {info.url} (pid {info.pid}).")
        if existing.config_differs:
            print(config_mismatch_line(info.config))
        return 0
    if args.detach:
        return detach(args, paths, config)
    raise_open_file_limit()
    code = asyncio.run(serve(config, paths, endpoint, read_only=args.read_only,
                             standalone=getattr(args, "standalone", False)))
    # Every process is stopped (or handed over), every file written and closed: skip the
    # interpreter's teardown, which takes longer than stopping 200 processes did.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def config_mismatch_line(theirs: str | None) -> str:
    runs = f"runs {theirs}" if theirs else "runs no config file"
    return (f"Note: that daemon {runs}, not this folder's config; use --instance NAME or --port PORT "
            "for a separate supervisor.")


def raise_open_file_limit() -> None:
    """Each process holds seven descriptors here (both ends of two pipes, two logs, a pidfd): 1,024 is
    too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def format_event(event: ProcessEvent, now: float | None = None) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    if isinstance(event, ProcessRemoved):
        return f"{stamp}  {event.name:<16} removed"
    pid = f"pid {event.pid}" if event.pid else ""
    reason = live_reason(event.reason, event.state, event.next_retry_at, time.time() if now is None else now)
    return f"{stamp}  {event.name:<16} {event.state:<9} {pid:<11} {reason}".rstrip()


async def serve(config: Config, paths: InstancePaths, endpoint: Endpoint, *, read_only: bool,
                out: TextIO = sys.stdout, standalone: bool = False) -> int:
    """Run the daemon until SIGTERM/SIGINT (a second SIGINT kills the processes without waiting)."""
    loop = asyncio.get_running_loop()
    daemon = Daemon(config, instance=paths.instance, endpoint=endpoint, read_only=read_only, standalone=standalone)
    log_path, log_handler = start_daemon_log(paths)
    forced = False

    def on_interrupt() -> None:
        nonlocal forced
        if daemon.shutdown_requested.is_set() and daemon.supervisor is not None:
            forced = True  # a second Ctrl-C: do not wait out stop timeouts
            daemon.supervisor.kill_all()
        daemon.request_shutdown()

    def on_hangup() -> None:
        loop.create_task(reload(daemon, out))

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, daemon.request_shutdown)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        supervisor = daemon.prepare()
        where = str(config.path) if config.path else "no config file"
        write(out, f"pmtop: instance {paths.instance!r}: {len(supervisor.names)} process(es) from {where}; "
                   f"logs in {paths.log_dir} (this run: {log_path.name})\n")
        if not supervisor.names:
            write(out, NO_PROCESSES_HINT + "\n")
        async with supervisor.subscribe() as events:  # before launch: no event is missed
            printer = loop.create_task(print_events(events, out))
            info = await daemon.launch()
            adopted = f"; adopted {', '.join(daemon.adopted)}" if daemon.adopted else ""
            write(out, f"pmtop: serving {info.url} (pid {info.pid}){adopted}\n")
            await daemon.shutdown_requested.wait()
            await daemon.stop(stop_processes=False if daemon.restart_requested else None)
            await printer  # the bus is closed: the last lines are printed, then it ends
    except PmtopError as exc:
        logging.getLogger("pmtop.core").error("start-up failed: %s", exc.message)
        raise
    finally:
        stop_daemon_log(log_handler)
    if daemon.restart_requested:
        # Same address: with `--port auto` the first free port may no longer be the one it had.
        argv = with_port(sys.argv[1:], daemon.info_record.port) if daemon.info_record else sys.argv[1:]
        os.execv(sys.executable, [sys.executable, "-m", "pmtop.cli.main", *argv])
    return 130 if forced else 0


def with_port(argv: list[str], port: int) -> list[str]:
    """`argv` with its `--port` (any spelling) replaced by `port`."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--port":
            skip = True
        elif not word.startswith("--port="):
            out.append(word)
    return [*out, "--port", str(port)]


async def reload(daemon: Daemon, out: TextIO) -> None:
    try:
        result = await daemon.reload()
    except PmtopError as exc:  # an invalid new config is refused; the old one stays in force
        write(out, f"pmtop: reload refused, the running config stays: {exc.message}\n")
        logging.getLogger("pmtop.core").error("reload refused: %s", exc.message)
        return
    write(out, "pmtop: reloaded: " + ", ".join(f"{k} {v or '-'}" for k, v in result.items()) + "\n")


async def print_events(events: AsyncIterator[ProcessEvent], out: TextIO) -> None:
    """One line per change."""
    async for event in events:
        write(out, format_event(event) + "\n")


def write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except (BrokenPipeError, ValueError):  # nobody reads our stdout any more; the log file has it all
        pass


# -- --detach ---------------------------------------------------------------------------------------

def detach(args: argparse.Namespace, paths: InstancePaths, config: Config, *, face: list[str] | None = None) -> int:
    """Start the daemon in a new session; succeed only when its PID file holds its PID, its port
    is bound, and `/health` answers with that PID (SPEC §5). `face`: what to run instead of
    `--headless --instance INSTANCE` (`pmtop watcher` detaches this way too)."""
    face = face if face is not None else ["--headless", "--instance", paths.instance]
    command = [sys.executable, "-m", "pmtop.cli.main", *face]
    if config.path is not None:
        command += ["--config", str(config.path)]
    for flag, value in (("--host", args.host), ("--port", args.port)):
        if value is not None:
            command += [flag, str(value)]
    if args.read_only:
        command.append("--read-only")
    if getattr(args, "standalone", False):
        command.append("--standalone")
    private_dir(paths.log_dir)
    console = paths.log_dir / "detach-console.log"
    started = time.time()
    console_fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=console_fd,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        os.close(console_fd)
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            other = _other_supervisor(paths, deadline)
            if other is not None:  # started at the same time as another, which won the instance lock
                print(f"pmtop is already running for instance {paths.instance!r} at {other.url} (pid {other.pid}).")
                return 0
            return detach_failed(f"the daemon exited with status {child.returncode} during start-up",
                                 paths, console, started)
        info = read_daemon_info(paths)
        if info is not None and info.pid == child.pid and _pid_file_holds(paths, info.port, child.pid):
            health = probe_health(info.host, info.port, timeout=1.0)
            if health and health.get("service") == "pmtop" and health.get("pid") == child.pid:
                print(f"pmtop daemon started: instance {paths.instance!r} at {info.url} (pid {child.pid})")
                return 0
        time.sleep(0.05)  # polling a child we cannot await from here; bounded by the deadline
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
    return detach_failed(f"the daemon did not answer within {DETACH_TIMEOUT:g}s", paths, console, started)


def _other_supervisor(paths: InstancePaths, deadline: float) -> DaemonRecord | None:
    """The supervisor that holds the instance lock, once it serves (None: nobody holds it)."""
    from pmtop.core.daemon.peer import lock_holder

    lock = paths.state_dir / "instance.lock"
    while time.monotonic() < deadline:
        holder = lock_holder(lock)
        if holder is None:
            return None
        info = read_daemon_info(paths)
        if info is not None and info.pid == holder:
            health = probe_health(info.host, info.port, timeout=1.0)
            if health and health.get("service") == "pmtop" and health.get("pid") == holder:
                return info
        time.sleep(0.05)  # another process's start-up cannot be awaited from here; bounded by the deadline
    return None


def _pid_file_holds(paths: InstancePaths, port: int, pid: int) -> bool:
    try:
        return int(pid_file(paths, port).read_text().strip()) == pid
    except (OSError, ValueError):
        return False


def detach_failed(reason: str, paths: InstancePaths, console: Path, started: float) -> int:
    print(f"Error: pmtop daemon did not start: {reason}.", file=sys.stderr)
    shown = [line for line in tail_lines(console, 15) if line.strip()]
    recent = [p for p in daemon_logs(paths.log_dir) if p.stat().st_mtime >= started - 1 and p.stat().st_size]
    if recent:
        shown += [f"--- {recent[-1]}"] + tail_lines(recent[-1], 15)
    for line in shown:
        print(f"  {line}", file=sys.stderr)
    return 1
