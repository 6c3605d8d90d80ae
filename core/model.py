"""The data model every face of pmtop shares: states, specs and status snapshots.

Everything here is immutable. A `ProcessSpec` is what the user asked for (config, `pmtop add`, the
dashboard's form); a `ProcessStatus` is one snapshot of what is true now. The enums are `StrEnum`s so
the API, the CLI and the dashboard all print the same lower-case words (SPEC §3).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar, Final

# The states, health words and named groups of states live in the cheap leaf `states` (the CLI imports
# it without this module); the number formats in `formats`. Re-exported: `from pmtop.core.model import
# ProcessState` keeps working.
from .formats import signal_name as signal_name
from .states import ACTIVE_STATES as ACTIVE_STATES
from .states import STARTABLE_STATES as STARTABLE_STATES
from .states import STOPPABLE_STATES as STOPPABLE_STATES
from .states import Health as Health
from .states import ProcessState as ProcessState


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NO = "no"


class Scope(StrEnum):
    GLOBAL = "global"
    PROJECT = "project"
    SESSION = "session"


class DependencyCondition(StrEnum):
    STARTED = "started"
    HEALTHY = "healthy"
    COMPLETED = "completed"


class FailAction(StrEnum):
    RESTART = "restart"
    DISABLE = "disable"
    FAIL = "fail"


class EndReason(StrEnum):
    """Why a run ended (SPEC §3 run history)."""

    EXIT = "exit"
    CRASH = "crash"
    HEALTH = "health"
    STOP = "stop"
    DEPENDENCY = "dependency"
    SUPERVISOR_EXIT = "supervisor-exit"


@dataclass(frozen=True, slots=True)
class StartupCheck:
    """Probing right after spawn: the process stays `starting` until the first success."""

    initial_delay: float = 0.0
    interval: float = 0.5
    max_attempts: int = 30
    fail_action: FailAction = FailAction.RESTART


@dataclass(frozen=True, slots=True)
class CheckParams:
    """What one kind of health check needs; each kind (a module of `core/checks`) defines its own."""

    KIND: ClassVar[str] = ""
    """The `type` of its `[health]` table."""


@dataclass(frozen=True, slots=True)
class HealthSpec:
    check: CheckParams
    """The kind and its own settings (`HttpCheck(url)`, `TcpCheck(address)`, `ExecCheck(command)`...)."""
    interval: float = 3.0
    timeout: float = 2.0
    failures: int = 2
    """Consecutive failures before the process is declared unhealthy and restarted."""
    startup: StartupCheck | None = None

    @property
    def type(self) -> str:
        return self.check.KIND


@dataclass(frozen=True, slots=True)
class RestartSpec:
    """The restart policy; `core.policy.decide` is its only interpreter."""

    policy: RestartPolicy = RestartPolicy.ON_FAILURE
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    """Delay before restart n (1-based); the last value repeats."""
    max_restarts: int = 5
    """Consecutive failures tolerated; the next one makes the process `failed`."""
    reset_after: float = 300.0
    """Running this long (seconds) resets the consecutive-failure counter."""
    retry_forever: bool = False
    retry_forever_interval: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class LogSpec:
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 3
    keep_runs: int = 10


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One process as the user declared it. Compared by value, so a reload can tell what changed."""

    name: str
    command: tuple[str, ...]
    cwd: str | None = None
    """Absolute after loading (relative paths are resolved against the config file's folder)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Merged over the supervisor's own environment at spawn time."""
    autostart: bool = True
    enabled: bool = True
    depends_on: Mapping[str, DependencyCondition] = field(default_factory=dict)
    scope: Scope = Scope.PROJECT
    project: str | None = None
    """The folder of the config file that declared a `project` process."""
    session_pid: int | None = None
    """For `session` processes: stopped and removed when this PID exits."""
    restart: RestartSpec = field(default_factory=RestartSpec)
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    logs: LogSpec = field(default_factory=LogSpec)
    health: HealthSpec | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished run, kept in a per-process history of the last `HISTORY_LENGTH` runs."""

    pid: int | None
    started_at: float
    ended_at: float
    exit_code: int | None
    """Negative: killed by that signal number (as `subprocess` reports it)."""
    end_reason: EndReason
    stderr_tail: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def signal(self) -> str | None:
        return signal_name(-self.exit_code) if self.exit_code is not None and self.exit_code < 0 else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["end_reason"] = str(self.end_reason)
        data["stderr_tail"] = list(self.stderr_tail)
        data["duration"] = round(self.duration, 3)
        data["signal"] = self.signal
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        return cls(
            pid=data.get("pid"),
            started_at=float(data["started_at"]),
            ended_at=float(data["ended_at"]),
            exit_code=data.get("exit_code"),
            end_reason=EndReason(data["end_reason"]),
            stderr_tail=tuple(data.get("stderr_tail") or ()),
        )


HISTORY_LENGTH: Final = 20
STREAMS: Final = ("stdout", "stderr")
"""A process's output streams: each run has a log file of each."""


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One snapshot of a process, as published on every change. Times are Unix epoch seconds."""

    name: str
    state: ProcessState
    reason: str = ""
    """One human line that explains the state (SPEC §3): nobody should need a log to learn why."""
    pid: int | None = None
    ports: tuple[int, ...] = ()
    health: Health = Health.UNKNOWN
    restarts: int = 0
    """Restarts made by the restart policy since the supervisor started managing the process."""
    consecutive_failures: int = 0
    """What `max_restarts` counts; reset by `reset_after` of stable running and by a manual start."""
    exit_code: int | None = None
    started_at: float | None = None
    next_retry_at: float | None = None
    cpu_percent: float | None = None
    memory_rss: int | None = None
    scope: Scope = Scope.PROJECT
    command: tuple[str, ...] = ()
    host: str | None = None
    """The fleet host that reported it (SPEC §12), whose label then prefixes `name` (`web1/api`);
    None from a single supervisor, and never on the wire of one daemon's API."""

    @property
    def local_name(self) -> str:
        """The name its own supervisor knows it by (`api` of `web1/api`)."""
        return self.name[len(self.host) + 1:] if self.host is not None else self.name

    def to_dict(self) -> dict[str, Any]:
        # Written out (not dataclasses.asdict, which deep-copies): this runs for every process of
        # every `GET /processes` and every event streamed.
        data: dict[str, Any] = {
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "pid": self.pid,
            "ports": list(self.ports),
            "health": self.health.value,
            "restarts": self.restarts,
            "consecutive_failures": self.consecutive_failures,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "next_retry_at": self.next_retry_at,
            "cpu_percent": self.cpu_percent,
            "memory_rss": self.memory_rss,
            "scope": self.scope.value,
            "command": list(self.command),
        }
        if self.host is not None:
            data["host"] = self.host
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, host: str | None = None) -> ProcessStatus:
        """The status the API sent; with `host`, as fleet host `host` shows it (named `host/name`): made
        so at once, because a fleet dashboard does this for every status of every daemon it follows."""
        host = host if host is not None else data.get("host")
        return cls(
            name=data["name"] if host is None or "host" in data else fleet_name(host, data["name"]),
            state=_STATES.get(data["state"]) or ProcessState(data["state"]),  # (a dict: this runs 1,000 times a second)
            reason=data.get("reason", ""),
            pid=data.get("pid"),
            ports=tuple(data.get("ports") or ()),
            health=_HEALTHS.get(data.get("health", "unknown")) or Health(data["health"]),
            restarts=int(data.get("restarts", 0)),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            exit_code=data.get("exit_code"),
            started_at=data.get("started_at"),
            next_retry_at=data.get("next_retry_at"),
            cpu_percent=data.get("cpu_percent"),
            memory_rss=data.get("memory_rss"),
            scope=_SCOPES.get(data.get("scope", "project")) or Scope(data["scope"]),
            command=tuple(data.get("command") or ()),
            host=host,
        )

    def on_host(self, host: str) -> ProcessStatus:
        """This status as fleet host `host` shows it: named `host/name`, carrying its host."""
        return replace(self, name=fleet_name(host, self.name), host=host)


_STATES: Final[dict[object, ProcessState]] = {s.value: s for s in ProcessState}
_HEALTHS: Final[dict[object, Health]] = {h.value: h for h in Health}
_SCOPES: Final[dict[object, Scope]] = {s.value: s for s in Scope}

FLEET_SEPARATOR: Final = "/"


def fleet_name(host: str, name: str) -> str:
    """`web1/api`: how a fleet names process `name` of its daemon labelled `host` (SPEC §12). Labels never
    contain the separator and process names never do, so the split is unambiguous."""
    return f"{host}{FLEET_SEPARATOR}{name}"


@dataclass(frozen=True, slots=True)
class LiveChild:
    """A child as its supervisor last saw it alive."""

    pid: int
    create_time: float
    """psutil's create time: with the PID, the identity of the process."""
    started_at: float
    run_dir: str | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    pipes: Mapping[str, int] = field(default_factory=dict)
    """stream -> pipe inode of the child's stdout/stderr, to reattach the output after adoption."""
    keeper_fds: Mapping[str, int] = field(default_factory=dict)
    """stream -> fd number in the child that holds that pipe's read end (see spawner)."""


@dataclass(frozen=True, slots=True)
class SupervisorInfo:
    """Who is supervising: what the dashboard header and `pmtop status` show."""

    instance: str
    pid: int
    started_at: float
    version: str
    config: str | None = None
    """The config file the supervisor runs, if any."""
    host: str | None = None
    port: int | None = None
    """Where its API listens; None while it serves none."""
    read_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupervisorInfo:
        return cls(
            instance=str(data["instance"]),
            pid=int(data["pid"]),
            started_at=float(data.get("started_at") or 0.0),
            version=str(data.get("version", "")),
            config=data.get("config"),
            host=data.get("host"),
            port=data.get("port"),
            read_only=bool(data.get("read_only", False)),
        )


@dataclass(frozen=True, slots=True)
class ProcessRemoved:
    """Published when a process is deregistered, so that subscribers drop its row."""

    name: str


#: What `Controller.subscribe()` yields.
ProcessEvent = ProcessStatus | ProcessRemoved


class LinkState(StrEnum):
    """How a fleet reaches one of its daemons (SPEC §12): the dashboard header's word for each host."""

    CONNECTING = "connecting"
    """Not heard from yet."""
    UP = "up"
    """Following its events."""
    RECONNECTING = "reconnecting"
    """Lost (or never reached): trying again, with a growing delay. Its processes show as last seen."""
    REFUSED = "refused"
    """It answers, but refuses us (a wrong or missing token, a Host it does not serve): trying again
    more slowly, with the token read afresh each time."""


@dataclass(frozen=True, slots=True)
class HostLink:
    """One daemon of a fleet as the fleet sees it now."""

    host: str
    """Its label: the HOST column's word, and the prefix of its processes' names."""
    url: str
    state: LinkState = LinkState.CONNECTING
    detail: str = ""
    """Why it is not up (`wrong token`, `no pmtop daemon answers at ...`); empty when up."""
    attempt: int = 0
    """Failed attempts in a row (0 when up)."""
    info: SupervisorInfo | None = None
    """Who supervises there, once it has been reached."""

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP


def describe_exit(exit_code: int | None) -> str:
    """`exit 1`, `killed by SIGKILL`: the words a reason line uses for how a run ended."""
    if exit_code is None:
        return "exit unknown"
    if exit_code < 0:
        return f"killed by {signal_name(-exit_code)}"
    return f"exit {exit_code}"
