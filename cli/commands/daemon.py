"""The commands about the daemon itself: `status`, `reload`, `shutdown`, `token`, `instances`."""

from __future__ import annotations

import os
import time

from pmtop.core import formats
from pmtop.core.errors import DaemonUnavailable
from pmtop.core.locations import is_loopback

from .. import output
from ..registry import command
from .common import EXIT_ERROR, EXIT_OK, colour, emit, emit_json, json_option, target_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Final

SHUTDOWN_TIMEOUT: Final = 30.0
SHUTDOWN_POLL: Final = 0.05


@command("status", help="the daemon's own status", arguments=json_option)
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
    if data.get("problems"):
        pairs.append(("problems", "; ".join(map(str, data["problems"]))))
    if data.get("read_only"):
        pairs.append(("read-only", "yes"))
    emit(output.key_values(pairs))
    return EXIT_OK


@command("reload", help="reload the daemon's config file")
def reload(args: argparse.Namespace) -> int:
    with target_of(args).client() as client:
        result = client.request("POST", "/monitor/reload", wait=True)
    changes = [(what, result.get(what) or []) for what in ("added", "changed", "removed")]
    if not any(names for _, names in changes):
        emit("Reloaded: nothing changed.")
    else:
        emit("Reloaded: " + "; ".join(f"{what} {', '.join(names) or '-'}" for what, names in changes) + ".")
    return EXIT_OK


@command("shutdown", help="stop the daemon (and its processes)")
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


@command("token", help="print this instance's API token (for curl or Prometheus)")
def token(args: argparse.Namespace) -> int:
    """Print this instance's token, creating it (0600, in a 0700 folder) if no daemon made it yet,
    so that Prometheus or a script can be set up before the first start."""
    from pmtop.core.daemon.instance import ensure_token, make_private
    from pmtop.core.locations import instance_paths

    paths = instance_paths(target_of(args).instance)
    make_private(paths)
    emit(ensure_token(paths))
    return EXIT_OK


def _instances_arguments(parser: argparse.ArgumentParser) -> None:
    json_option(parser)
    parser.add_argument("--fleet", action="store_true", help="the daemons of fleet.toml instead, and how each answers")


@command("instances", help="every running pmtop daemon of this user", arguments=_instances_arguments)
def instances(args: argparse.Namespace) -> int:
    if args.fleet:
        return fleet_instances(args)
    from ..locate import running_daemons

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


def fleet_instances(args: argparse.Namespace) -> int:
    """`instances --fleet`: each daemon of fleet.toml, whether it answers (with its token), and who it is."""
    from ..fleet import ask_all, link_state, report_unreachable, the_fleet

    daemons = the_fleet()
    results = ask_all(daemons, lambda client: client.request("GET", "/status"))
    rows: list[dict[str, Any]] = []
    for daemon, result in zip(daemons, results, strict=True):
        answered = result if isinstance(result, dict) else {}
        rows.append({
            "host": daemon.label,
            "url": daemon.url,
            "state": link_state(result),
            "instance": answered.get("instance"),
            "pid": answered.get("pid"),
            "uptime": answered.get("uptime"),
            "version": answered.get("version"),
            "processes": answered.get("processes"),
            "counts": answered.get("counts"),
        })
    unreachable = report_unreachable(daemons, results)
    if args.json:
        emit_json({"fleet": rows, "unreachable": unreachable})
    else:
        cells = [[r["host"], r["url"], r["state"], r["instance"] or "-", str(r["pid"] or "-"),
                  formats.duration(float(r["uptime"])) if isinstance(r["uptime"], int | float) else "-",
                  output.counts_line(r["counts"] or {}, int(r["processes"] or 0)) if r["state"] == "up" else "-"]
                 for r in rows]
        emit(output.table(("HOST", "URL", "STATE", "INSTANCE", "PID", "UPTIME", "PROCESSES"), cells, colour=colour(),
                          colours={2: {"up": "\033[32m", "refused": "\033[1;31m", "unreachable": "\033[31m"}}))
    return EXIT_ERROR if unreachable else EXIT_OK


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
    """`up: watcher at 127.0.0.1:19882 (pid 4242), 1 restart; answering (pid 4242)`."""
    if not isinstance(partner, dict):
        return str(partner)
    words = str(partner.get("state", "?"))
    if partner.get("instance"):
        where = f" at {partner['host']}:{partner['port']}" if partner.get("host") and partner.get("port") else ""
        pid = f" (pid {partner['pid']})" if partner.get("pid") else ""
        words += f": {partner['instance']}{where}{pid}"
    restarts = partner.get("restarts")
    if isinstance(restarts, int) and restarts:
        words += f", {restarts} restart{'s' if restarts != 1 else ''}"
    if partner.get("reason"):
        words += f"; {partner['reason']}"
    return words
