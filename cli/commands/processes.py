"""The commands that act on processes: `ps`, `start|stop|restart|enable|disable`, `logs`, `scale`, `add`, `adopt`,
`rm`."""

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
    from collections.abc import Mapping, Sequence
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
    names stop in one request, which the daemon orders by `depends_on`, dependents first. The name of
    a `replicas` process stands for all its replicas. Names are checked before anything is done; a
    refusal that concerns one process (409) is reported and the others still get their turn; a refusal
    of the whole request (no daemon, no token, read-only) stops at once.
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
        known: list[dict[str, Any]] | None = None
        if not args.all and len(names) == 1:  # the common case: one request
            try:
                done.append(client.act(names[0], verb))
                names = []
            except NoSuchProcess:
                known = client.processes()
                if not any(s.get("group") == names[0] for s in known):
                    raise
        if args.all or len(names) > 1 or known is not None:
            known = client.processes() if known is None else known
            declared = [s["name"] for s in known]
            if args.all:
                skip = ({s["name"] for s in known if s["state"] == ProcessState.DISABLED}
                        if verb in ("start", "restart") else set())
                names = [n for n in declared if n not in skip]
            names = list(dict.fromkeys(expand_groups(names, known)))
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
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="one process: its stdout (or --stderr); several, or a replicas process: merged")
    parser.add_argument("--all", "-a", action="store_true",
                        help="every process's output, merged in the order it was written, each line with its time")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--stderr", action="store_true", help="stderr instead of stdout (one process)")
    parser.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="lines of history (default 50)")
    parser.add_argument("--grep", metavar="RE", help="only lines this regular expression finds something in (merged)")
    parser.add_argument("--since", metavar="WHEN",
                        help='only lines written since: "10m", "2h" back from now, or an ISO time (merged)')


@command("logs", help="show a process's output, or every process's (--all)", arguments=_logs_arguments)
def logs(args: argparse.Namespace) -> int:
    """One process's stream as it is on disk; or, with `--all`, several names, a replicas process, a
    `--grep` or a `--since`, the merged view: every line with its time and its process's name (SPEC §11)."""
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more (got {args.lines})")
    if args.all and args.names:
        raise UsageError("name the processes whose output to show, or give --all, not both")
    if not args.all and not args.names:
        raise UsageError("name a process (pmtop logs NAME), or give --all for every process's output")
    merged = args.all or len(args.names) > 1 or args.grep is not None or args.since is not None
    if merged and args.stderr:
        raise UsageError("--stderr is for one process's log; the merged view shows both streams")
    with target_of(args).client() as client:
        if not merged:
            try:
                return _one_log(client, args)
            except NoSuchProcess:  # perhaps a replicas process: its replicas' output, merged
                pass
        return _merged_log(client, args)


def _one_log(client: Any, args: argparse.Namespace) -> int:
    name = args.names[0]
    stream = "stderr" if args.stderr else "stdout"
    if not args.follow:
        query = urlencode({"stream": stream, "lines": args.lines})
        data = client.request("GET", f"{process_path(name, 'logs')}?{query}")
        lines = data.get("lines", []) if isinstance(data, dict) else []
        emit("\n".join(str(line) for line in lines))
        return EXIT_OK
    for line in client.follow_logs(name, stream, args.lines):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    print(f"pmtop: {name} was removed; no more lines will come.", file=sys.stderr)
    return EXIT_OK


def _merged_log(client: Any, args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"lines": args.lines}
    if args.names:
        query["names"] = ",".join(args.names)
    if args.grep:
        query["grep"] = args.grep
    if args.since:
        query["since"] = args.since
    listed = client.request("GET", "/processes?facts=0").get("processes", [])  # their order gives the colours
    painter = output.LogPainter(colour=colour(), order=[str(p.get("name", "")) for p in listed])
    if not args.follow:
        data = client.request("GET", f"/logs?{urlencode(query)}")
        emit(painter.lines(data.get("lines", [])))
        return EXIT_OK
    query["follow"] = 1
    for line in client.follow_merged(urlencode(query)):
        sys.stdout.write(painter.line(line) + "\n")
        sys.stdout.flush()
    return EXIT_OK


def _scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("replicas", type=int, metavar="N")
    json_option(parser, "print the replicas' statuses as JSON")


@command("scale", help="run N replicas of a process: pmtop scale web 5", arguments=_scale_arguments)
def scale(args: argparse.Namespace) -> int:
    """New replicas start (if the group runs); fewer stop the highest first. Not written to pmtop.toml:
    a reload keeps the count unless the file's `replicas` changed (as `kubectl scale` and a manifest)."""
    if args.replicas < 0:
        raise UsageError(f"the number of replicas must be 0 or more (got {args.replicas})")
    with target_of(args).client() as client:
        data = client.request("POST", process_path(args.name, "scale"), {"replicas": args.replicas}, wait=True)
    statuses = data.get("processes", [])
    if args.json:
        emit_json(data)
    elif statuses:
        emit(output.status_lines(statuses, colour=colour()))
    else:
        emit(f"{args.name}: 0 replicas.")
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
    _new_keys(parser)


def _new_keys(parser: argparse.ArgumentParser) -> None:
    """The SPEC §10 keys that make sense on a command line (`[health]` tables belong in pmtop.toml)."""
    parser.add_argument("--listen", dest="declared_port", type=int, metavar="PORT",
                        help="the TCP port it listens on (`port` in pmtop.toml; --port is the daemon's): "
                             "checked free before each start, given as $PORT")
    parser.add_argument("--env-file", action="append", default=[], metavar="FILE",
                        help="a dotenv file (repeatable; later ones win, --env wins over all)")
    parser.add_argument("--ready-log-line", metavar="REGEX",
                        help="starting until a line of its output matches REGEX")


def new_keys(args: argparse.Namespace) -> dict[str, Any]:
    """`--listen`, `--env-file`, `--ready-log-line` as process-table keys (files made absolute: the
    daemon reads them, from its own folder)."""
    table: dict[str, Any] = {}
    if args.declared_port is not None:
        table["port"] = args.declared_port
    if args.env_file:
        table["env_file"] = [os.path.abspath(os.path.expanduser(f)) for f in args.env_file]
    if args.ready_log_line is not None:
        table["ready_log_line"] = args.ready_log_line
    return table


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
    table.update(new_keys(args))
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


def _adopt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--pid", type=int, required=True, metavar="PID", help="the running process to watch")
    parser.add_argument("--restart", choices=["always", "on-failure", "no"],
                        help="what to do once it exits (runs CMD; default on-failure)")
    parser.add_argument("--session", type=int, metavar="PID", help="stop and remove it when PID exits")
    parser.add_argument("--cwd", metavar="DIR", help="working directory for CMD (default: the current one)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment for CMD")
    _new_keys(parser)


@command("adopt", help="watch a process someone else started: pmtop adopt NAME --pid PID [-- CMD ARGS...]",
         arguments=_adopt_arguments, rest=True)
def adopt(args: argparse.Namespace) -> int:
    """A run-time registration (never written to pmtop.toml: a PID is this machine's, now), global unless
    `--session` makes it a session process. After `--`: what the restart policy runs once it has exited."""
    if args.argv and args.argv[0].startswith("-"):
        raise UsageError("put the command after `--`: pmtop adopt NAME --pid PID [-- CMD ARGS...]")
    table: dict[str, Any] = {"name": args.name, "pid": args.pid,
                             "cwd": os.path.abspath(args.cwd) if args.cwd else os.getcwd()}
    if args.argv:
        table["command"] = list(args.argv)
    if args.restart is not None:
        table["restart"] = args.restart
    if args.env:
        table["env"] = parse_env(args.env)
    table.update(new_keys(args))
    if args.session is not None:
        table.update(scope="session", session_pid=args.session)
    else:
        table["scope"] = "global"
    with target_of(args).client() as client:
        status = client.request("POST", "/processes", table, wait=True)
    emit(output.status_lines([status], colour=colour()))
    if not args.argv:
        emit(f"Once pid {args.pid} exits, {args.name} stays stopped (no command to restart it with).")
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

def expand_groups(names: Sequence[str], known: Sequence[Mapping[str, Any]]) -> list[str]:
    """A `replicas` process's name stands for its replicas (`web` -> `web-1`, `web-2`, ...)."""
    out: list[str] = []
    for name in names:
        members = [s["name"] for s in known if s.get("group") == name and s["name"] != name]
        out.extend(members or [name])
    return out


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
