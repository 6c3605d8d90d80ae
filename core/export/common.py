"""Helpers every target shares: names, the dependency graph, health targets, the readiness probe."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from .. import checks
from ..checks.exec import ExecCheck
from ..checks.heartbeat import HeartbeatCheck
from ..checks.http import HttpCheck
from ..checks.notify import NotifyCheck
from ..checks.tcp import TcpCheck
from ..config import Config
from ..model import DependencyCondition, HealthSpec, ProcessSpec
from ..values import format_duration

# --------------------------------------------------------------------------------------------- names

_NOT_DNS: Final = re.compile(r"[^a-z0-9-]+")


def dns_label(name: str, *, limit: int = 63) -> str:
    """`name` as an RFC 1123 label (lower case letters, digits, '-'), as Kubernetes and Nomad services want."""
    label = _NOT_DNS.sub("-", name.lower()).strip("-")[:limit].strip("-")
    return label or "app"


def default_app_name(config: Config) -> str:
    """The instance name if the config sets one, else the config file's folder, else `pmtop`."""
    if config.daemon.instance != "default":
        return dns_label(config.daemon.instance)
    if config.path is not None:
        return dns_label(config.path.resolve().parent.name)
    return "pmtop"


def seconds(value: float) -> str:
    """A duration as pmtop writes it ("2s", "250ms"), for reports."""
    text = format_duration(value)
    return text if isinstance(text, str) else f"{text}s"


def whole_seconds(value: float, minimum: int = 0) -> int:
    """Rounded up to whole seconds (targets that only take integers); at least `minimum`."""
    return max(minimum, math.ceil(value - 1e-9))


# ---------------------------------------------------------------------------------------- dependencies

def dependents(config: Config) -> dict[str, dict[str, DependencyCondition]]:
    """For each process, who depends on it and how: `{"db": {"web": healthy}}`."""
    result: dict[str, dict[str, DependencyCondition]] = {spec.name: {} for spec in config.processes}
    for spec in config.processes:
        for dep, condition in spec.depends_on.items():
            result.setdefault(dep, {})[spec.name] = condition
    return result


def islands(config: Config) -> list[list[ProcessSpec]]:
    """The connected parts of the dependency graph, each in declaration order, in order of first member."""
    parent = {spec.name: spec.name for spec in config.processes}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for spec in config.processes:
        for dep in spec.depends_on:
            parent[root(dep)] = root(spec.name)
    groups: dict[str, list[ProcessSpec]] = {}
    for spec in config.processes:
        groups.setdefault(root(spec.name), []).append(spec)
    return list(groups.values())


def start_order(processes: Iterable[ProcessSpec]) -> list[ProcessSpec]:
    """Dependencies before dependents, otherwise declaration order (the config has no cycles)."""
    specs = list(processes)
    names = {spec.name for spec in specs}
    done: set[str] = set()
    ordered: list[ProcessSpec] = []
    while len(ordered) < len(specs):
        for spec in specs:
            if spec.name not in done and all(d in done or d not in names for d in spec.depends_on):
                ordered.append(spec)
                done.add(spec.name)
                break
    return ordered


# -------------------------------------------------------------------------------------------- health

@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an http or tcp check connects."""

    host: str
    port: int
    scheme: str = "http"
    path: str = "/"

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def endpoint(health: HealthSpec) -> Endpoint | None:
    """The host and port of an http or tcp check (None for exec)."""
    check = health.check
    if isinstance(check, HttpCheck):
        parts = urlsplit(check.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Endpoint(host=parts.hostname or "127.0.0.1", port=port, scheme=parts.scheme, path=path)
    if isinstance(check, TcpCheck):
        host, _, number = check.address.rpartition(":")
        return Endpoint(host=host.strip("[]"), port=int(number), scheme="tcp", path="")
    return None


def describe_check(health: HealthSpec) -> str:
    return checks.describe(health)


#: A readiness probe in Python's standard library, for targets that have no probe of their own
#: (systemd's `ExecStartPost=`, Compose's `healthcheck`, Kubernetes' and Nomad's for a heartbeat).
#: Arguments: KIND TARGET TIMEOUT INTERVAL ATTEMPTS INITIAL_DELAY [COMMAND... | MAX_AGE]; ATTEMPTS 0 = until
#: the target's own start timeout. It mirrors pmtop's probes: http is healthy on 2xx/3xx (redirects not
#: followed, no proxies), tcp on a connection, exec on exit 0 within the timeout, heartbeat on a file
#: touched within MAX_AGE seconds.
PROBE_SCRIPT: Final = """\
import os, socket, subprocess, sys, time, urllib.error, urllib.request
kind, target = sys.argv[1], sys.argv[2]
timeout, interval, attempts, delay = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args): return None
def ok():
    try:
        if kind == "http":
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), Keep)
            try: status = opener.open(target, timeout=timeout).status
            except urllib.error.HTTPError as error: status = error.code
            return 200 <= status < 400
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            socket.create_connection((host.strip("[]"), int(port)), timeout).close()
            return True
        if kind == "heartbeat":
            return time.time() - os.stat(target).st_mtime <= float(sys.argv[7])
        return subprocess.run(sys.argv[7:], timeout=timeout).returncode == 0
    except Exception:
        return False
time.sleep(delay)
tries = 0
while not ok():
    tries += 1
    if attempts and tries >= attempts: sys.exit(1)
    time.sleep(interval)
"""


def probe_target(health: HealthSpec) -> tuple[str, tuple[str, ...]]:
    """What PROBE_SCRIPT checks for `health` (TARGET), and the words after its fixed arguments."""
    check = health.check
    if isinstance(check, HttpCheck):
        return check.url, ()
    if isinstance(check, TcpCheck):
        return check.address, ()
    if isinstance(check, ExecCheck):
        return "-", check.command
    if isinstance(check, HeartbeatCheck):
        return check.path, (number(check.max_age),)
    return "-", ()


def probe_argv(health: HealthSpec, *, interval: float, attempts: int, initial_delay: float) -> list[str]:
    """`python3 -c PROBE_SCRIPT ...` for `health`: the words of a command, never a shell line."""
    target, rest = probe_target(health)
    return ["python3", "-c", PROBE_SCRIPT, health.type, target, number(health.timeout),
            number(interval), str(attempts), number(initial_delay), *rest]


def probeable(health: HealthSpec) -> bool:
    """Can PROBE_SCRIPT check it? (Not a `notify` check: only the process itself can say READY=1.)"""
    return not isinstance(health.check, NotifyCheck)


def number(value: float) -> str:
    """`2`, `0.25`: a number as a command-line word."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def argv_has(words: Sequence[str], *needles: str) -> bool:
    return any(needle in word for word in words for needle in needles)
