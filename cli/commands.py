"""The scriptable client commands of SPEC §7: one small function per command, over `client.Client`.

Every command either succeeds (exit 0, its output on stdout: an aligned table, or JSON on request),
or prints exactly one line `Error: ...` on stderr and exits non-zero: 1 when there is no daemon, no
such process, or the daemon refuses (401/403/409), 2 for usage and config errors (400/422). Errors
are mapped here, once (`exit_code`). Nothing on this path imports Textual, httpx or aiohttp, and the
`pmtop ps` path imports no more than it needs (see `locate.py`): it must finish in 100 ms.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from pmtop.core import formats
from pmtop.core.api.protocol import process_path
from pmtop.core.errors import ActionRefused, ApiError, DaemonUnavailable, NoSuchProcess, PmtopError, UsageError
from pmtop.core.locations import is_loopback
from pmtop.core.states import ProcessState

from . import output
from .locate import Target, locate

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Final

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_BROKEN_PIPE: Final = 141
"""128 + SIGPIPE, what a shell reports for a program whose reader went away (`pmtop logs x | head`)."""
SHUTDOWN_TIMEOUT: Final = 30.0
SHUTDOWN_POLL: Final = 0.05
ADD_USAGE: Final = "pmtop add NAME [OPTIONS] -- CMD ARGS..."


def exit_code(exc: PmtopError) -> int:
    if isinstance(exc, ApiError):
        return EXIT_USAGE if exc.status in (400, 413, 422) else EXIT_ERROR
    return EXIT_USAGE if exc.code in ("config_invalid", "usage") else EXIT_ERROR


def fail(exc: PmtopError) -> int:
    """The one line on stderr, and the exit code."""
    print(f"Error: {' '.join(exc.message.split())}", file=sys.stderr, flush=True)
    return exit_code(exc)


def run_command(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except PmtopError as exc:
        return fail(exc)
    except BrokenPipeError:  # whoever read our stdout has gone: stop quietly, as `cat` does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return EXIT_BROKEN_PIPE


# ---------------------------------------------------------------------------------------- helpers

def target_of(args: argparse.Namespace) -> Target:
    return locate(
        instance=getattr(args, "instance", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        token_file=getattr(args, "token_file", None),
        config=getattr(args, "config", None),
    )


def emit(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    """Indented for a person at a terminal; one compact line for a program (the C encoder, which
    `indent` would swap for the pure-Python one: ~10 ms more for `pmtop ps --json` at 200)."""
    emit(json.dumps(data, indent=2) if sys.stdout.isatty() else json.dumps(data, separators=(",", ":")))


def colour() -> bool:
    return output.use_colour(sys.stdout)


def terminal_width() -> int | None:
    if not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


# --------------------------------------------------------------------------------------- commands

def ps(args: argparse.Namespace) -> int:
    with target_of(args).client() as client:
        statuses = client.processes()
    if args.json:
        emit_json({"processes": statuses})
    elif not statuses:
        emit("No processes. Add one with `pmtop add NAME -- COMMAND`, or declare them in pmtop.toml (`pmtop init`).")
    else:
        emit(output.process_table(statuses, colour=colour(), width=terminal_width()))
    return EXIT_OK


def action(args: argparse.Namespace) -> int:
    """`start|stop|restart|enable|disable NAME... | --all`.

    `--all` starts in declaration order (start and restart leave disabled processes alone); several
    names stop in one request, which the daemon orders by `depends_on`, dependents first. Names are
    checked before anything is done; a refusal that concerns one
    process (409) is reported and the others still get their turn; a refusal of the whole request
    (no daemon, no token, read-only) stops at once.
    """
    verb = args.command
    if args.all and args.names:
        raise UsageError(f"name the processes to {verb}, or give --all, not both")
    if not args.all and not args.names:
        raise UsageError(f"name the processes to {verb} (pmtop {verb} NAME...), or give --all")
    failures = 0
    done: list[dict[str, Any]] = []
    with target_of(args).client() as client:
        names = list(dict.fromkeys(args.names))
        if args.all or len(names) > 1:
            known = client.processes()
            declared = [s["name"] for s in known]
            if args.all:
                skip = ({s["name"] for s in known if s["state"] == ProcessState.DISABLED}
                        if verb in ("start", "restart") else set())
                names = [n for n in declared if n not in skip]
            unknown = [n for n in names if n not in declared]
            if unknown:
                raise NoSuchProcess(unknown[0])
            if verb == "stop":  # one request: the daemon stops dependents before what they depend on
                done = list(client.request("POST", "/processes/*/stop", {"names": names}, wait=True)["processes"])
                names = []
        for name in names:
            try:
                done.append(client.act(name, verb))
            except (NoSuchProcess, ActionRefused) as exc:
                if len(names) == 1:
                    raise
                failures += 1
                fail(exc)
    if args.json:
        emit_json({"processes": done})
    elif done:
        emit(output.status_lines(done, colour=colour()))
    elif not names and not done:
        emit(f"No processes to {verb}.")
    return EXIT_ERROR if failures else EXIT_OK


def logs(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more (got {args.lines})")
    stream = "stderr" if args.stderr else "stdout"
    with target_of(args).client() as client:
        if not args.follow:
            query = urlencode({"stream": stream, "lines": args.lines})
            data = client.request("GET", f"{process_path(args.name, 'logs')}?{query}")
            lines = data.get("lines", []) if isinstance(data, dict) else []
            emit("\n".join(str(line) for line in lines))
            return EXIT_OK
        for line in client.follow_logs(args.name, stream, args.lines):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    print(f"pmtop: {args.name} was removed; no more lines will come.", file=sys.stderr)
    return EXIT_OK


def add(args: argparse.Namespace) -> int:
    if not args.argv:
        raise UsageError(f"no command to run: {ADD_USAGE}")
    if args.argv[0].startswith("-"):
        raise UsageError(f"put the command after `--`: {ADD_USAGE}")
    if args.session is not None and args.scope not in (None, "session"):
        raise UsageError(f"--session makes a session process; it cannot have --scope {args.scope}")
    if args.scope == "session" and args.session is None:
        raise UsageError("--scope session needs --session PID (the process whose exit removes it)")
    table: dict[str, Any] = {
        "name": args.name,
        "command": list(args.argv),
        "cwd": os.path.abspath(args.cwd) if args.cwd else os.getcwd(),
    }
    if args.restart is not None:
        table["restart"] = args.restart
    if args.env:
        table["env"] = parse_env(args.env)
    if args.no_start:
        table["start"] = False
    target = target_of(args)
    with target.client() as client:
        daemon_config = client.health().get("config")
        runs_ours = (daemon_config is not None and target.config is not None
                     and same_file(Path(daemon_config), target.config))
        if args.session is not None:
            table.update(scope="session", session_pid=args.session)
        elif args.scope == "project" or (args.scope is None and runs_ours):
            project = target.config.parent if target.config is not None else Path.cwd()
            table.update(scope="project", project=str(project))
        else:
            table["scope"] = args.scope or "global"
        status = client.request("POST", "/processes", table, wait=True)
    emit(output.status_lines([status], colour=colour()))
    if table["scope"] == "project" and daemon_config is not None and same_file(
            Path(table["project"]), Path(daemon_config).parent):
        emit(f"Saved in {daemon_config}.")
    return EXIT_OK


def rm(args: argparse.Namespace) -> int:
    with target_of(args).client() as client:
        client.request("DELETE", process_path(args.name), wait=True)
    emit(f"Removed {args.name}.")
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    target = target_of(args)
    with target.client() as client:
        data = client.request("GET", "/status")
    if args.json:
        emit_json(data)
        return EXIT_OK
    host, port = str(data.get("host") or target.host), data.get("port") or target.port
    pairs = [
        ("instance", str(data.get("instance", target.instance))),
        ("url", f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"),
        ("pid", str(data.get("pid", "?"))),
        ("uptime", formats.duration(float(data.get("uptime") or 0))),
        ("version", str(data.get("version", "?"))),
        ("config", str(data.get("config") or "none")),
        ("processes", output.counts_line(data.get("counts") or {}, int(data.get("processes") or 0))),
    ]
    if data.get("adopted"):
        pairs.append(("adopted", ", ".join(map(str, data["adopted"]))))
    if data.get("partner"):
        pairs.append(("partner", describe_partner(data["partner"])))
    if data.get("read_only"):
        pairs.append(("read-only", "yes"))
    emit(output.key_values(pairs))
    return EXIT_OK


def reload(args: argparse.Namespace) -> int:
    with target_of(args).client() as client:
        result = client.request("POST", "/monitor/reload", wait=True)
    changes = [(what, result.get(what) or []) for what in ("added", "changed", "removed")]
    if not any(names for _, names in changes):
        emit("Reloaded: nothing changed.")
    else:
        emit("Reloaded: " + "; ".join(f"{what} {', '.join(names) or '-'}" for what, names in changes) + ".")
    return EXIT_OK


def shutdown(args: argparse.Namespace) -> int:
    """Ask the daemon to stop, then wait until it no longer answers and (when local) its PID is gone."""
    target = target_of(args)
    with target.client() as client:
        pid = int(client.health().get("pid") or 0)
        client.request("POST", "/monitor/shutdown")
    local = is_loopback(target.host)
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while time.monotonic() < deadline:
        if not client.alive() and not (local and pid_running(pid)):
            emit(f"pmtop daemon for instance {target.instance!r} (pid {pid}) stopped.")
            return EXIT_OK
        time.sleep(SHUTDOWN_POLL)  # another process's exit cannot be awaited portably; bounded by the deadline
    raise DaemonUnavailable(f"the pmtop daemon (pid {pid}) is still running {SHUTDOWN_TIMEOUT:g}s after it was "
                            "asked to shut down")


def instances(args: argparse.Namespace) -> int:
    from .locate import running_daemons

    rows = [{
        "instance": info.instance,
        "url": info.url,
        "host": info.host,
        "port": info.port,
        "pid": health.get("pid", info.pid),
        "uptime": health.get("uptime"),
        "version": health.get("version"),
        "config": health.get("config"),
    } for info, health in running_daemons()]
    if args.json:
        emit_json({"instances": rows})
    elif not rows:
        emit("No pmtop daemon is running.")
    else:
        cells = [[r["instance"], r["url"], str(r["pid"]),
                  formats.duration(float(r["uptime"])) if isinstance(r["uptime"], int | float) else "-",
                  r["config"] or "-"] for r in rows]
        emit(output.table(("INSTANCE", "URL", "PID", "UPTIME", "CONFIG"), cells, colour=colour()))
    return EXIT_OK


def init(args: argparse.Namespace) -> int:
    from .starter import STARTER

    path = Path(args.config) if getattr(args, "config", None) else Path.cwd() / "pmtop.toml"
    try:
        with open(path, "w" if args.force else "x", encoding="utf-8") as file:
            file.write(STARTER)
    except FileExistsError:
        raise ActionRefused(f"{path} already exists; pmtop init never overwrites a config") from None
    except OSError as exc:
        raise ActionRefused(f"cannot write {path}: {exc.strerror or exc}") from None
    emit(f"Wrote {path}. Edit it, then run `pmtop` (dashboard) or `pmtop --headless --detach` (daemon).")
    return EXIT_OK


def token(args: argparse.Namespace) -> int:
    """Print this instance's token, creating it (0600, in a 0700 folder) if no daemon made it yet,
    so that Prometheus or a script can be set up before the first start."""
    from pmtop.core.daemon.instance import ensure_token, make_private
    from pmtop.core.locations import instance_paths

    paths = instance_paths(target_of(args).instance)
    make_private(paths)
    emit(ensure_token(paths))
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    from .convert import export as run

    return run(args)


def import_(args: argparse.Namespace) -> int:
    from .convert import import_ as run

    return run(args)


COMMANDS: Final[Mapping[str, Callable[[argparse.Namespace], int]]] = {
    "ps": ps,
    "start": action,
    "stop": action,
    "restart": action,
    "enable": action,
    "disable": action,
    "logs": logs,
    "add": add,
    "rm": rm,
    "status": status,
    "reload": reload,
    "shutdown": shutdown,
    "token": token,
    "instances": instances,
    "init": init,
    "export": export,
    "import": import_,
}


# ------------------------------------------------------------------------------------ small parts

def parse_env(items: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env takes KEY=VALUE (got {item!r})")
        env[key] = value
    return env


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def pid_running(pid: int) -> bool:
    """Is `pid` alive (a zombie, exited but not yet reaped by its parent, counts as gone)?"""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass  # no /proc (macOS): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_partner(partner: object) -> str:
    if isinstance(partner, dict):
        return ", ".join(f"{k} {v}" for k, v in partner.items() if v is not None) or "none"
    return str(partner)
