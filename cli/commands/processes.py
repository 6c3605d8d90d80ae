"""The commands that act on processes: `ps`, `start|stop|restart|enable|disable`, `logs`, `add`, `rm`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlencode

from pmtop.core.api.protocol import process_path
from pmtop.core.errors import ActionRefused, NoSuchProcess, UsageError
from pmtop.core.states import ProcessState

from .. import output
from ..registry import command
from .common import EXIT_ERROR, EXIT_OK, colour, emit, emit_json, fail, json_option, target_of, terminal_width

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    import argparse
    from collections.abc import Sequence
    from typing import Any, Final

ACTIONS: Final = ("start", "stop", "restart", "enable", "disable")
ADD_USAGE: Final = "pmtop add NAME [OPTIONS] -- CMD ARGS..."


def _ps_arguments(parser: argparse.ArgumentParser) -> None:
    json_option(parser)
    parser.add_argument("--fleet", action="store_true",
                        help="every process of every daemon in fleet.toml, with its host")


@command("ps", help="list processes", arguments=_ps_arguments)
def ps(args: argparse.Namespace) -> int:
    if args.fleet:
        return ps_fleet(args)
    with target_of(args).client() as client:
        statuses = client.processes()
    if args.json:
        emit_json({"processes": statuses})
    elif not statuses:
        emit("No processes. Add one with `pmtop add NAME -- COMMAND`, or declare them in pmtop.toml (`pmtop init`).")
    else:
        emit(output.process_table(statuses, colour=colour(), width=terminal_width()))
    return EXIT_OK


def ps_fleet(args: argparse.Namespace) -> int:
    """`ps --fleet`: every daemon of fleet.toml at once; the unreachable ones named on stderr (exit 1)."""
    from ..fleet import ask_all, report_unreachable, the_fleet

    daemons = the_fleet()
    results = ask_all(daemons, lambda client: client.processes())
    statuses = [{"host": daemon.label, **status} for daemon, result in zip(daemons, results, strict=True)
                if isinstance(result, list) for status in result]
    unreachable = report_unreachable(daemons, results)
    if args.json:
        emit_json({"processes": statuses, "unreachable": unreachable})
    elif statuses:
        emit(output.process_table(statuses, colour=colour(), width=terminal_width(), hosts=True))
    elif not unreachable:
        emit("No processes on any daemon of the fleet.")
    return EXIT_ERROR if unreachable else EXIT_OK


def _action_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("--all", action="store_true", help="every process")
    json_option(parser, "print the new statuses as JSON")


@command(*ACTIONS, help="{name} processes", arguments=_action_arguments)
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


def _logs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--stderr", action="store_true", help="stderr instead of stdout")
    parser.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="lines of history (default 50)")


@command("logs", help="show a process's output", arguments=_logs_arguments)
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


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--session", type=int, metavar="PID", help="stop and remove it when PID exits")
    parser.add_argument("--restart", choices=["always", "on-failure", "no"], help="restart policy")
    parser.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment (repeatable)")
    parser.add_argument("--scope", choices=["global", "project", "session"], help="default: project if the "
                        "daemon runs a config file, else global; session with --session")
    parser.add_argument("--no-start", action="store_true", help="register without starting")


@command("add", help="register a process: pmtop add NAME -- CMD ARGS...", arguments=_add_arguments, rest=True)
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


def _name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")


@command("rm", help="stop and deregister a process", arguments=_name_argument)
def rm(args: argparse.Namespace) -> int:
    with target_of(args).client() as client:
        client.request("DELETE", process_path(args.name), wait=True)
    emit(f"Removed {args.name}.")
    return EXIT_OK


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
