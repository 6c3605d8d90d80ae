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


class Overlap(StrEnum):
    """What a schedule does when a run is still going at the next time (SPEC §11)."""

    SKIP = "skip"
    """Let the current run finish; that time is skipped (and said so in the reason)."""
    QUEUE = "queue"
    """Run once more right after the current run ends (at most one run waits)."""
    REPLACE = "replace"
    """Stop the current run, then start the new one."""


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


# ---------------------------------------------------------------------------- the dev loop (SPEC §11)
# Issue 12: schedules, replicas, watch, hooks. Kept together so that a merge with other branches that
# add their own settings (issue 11: `port`, `env_file`, ...) touches separate lines.

@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """`schedule` and its companions: the process runs at these times instead of at start-up."""

    rule: str
    """As written: a 5-field cron expression (`"*/5 * * * *"`, local time) or `"every 30s"`."""
    overlap: Overlap = Overlap.SKIP
    run_on_start: bool = False
    """Also run once when the supervisor starts (or the process is enabled or added)."""
    catch_up: bool = False
    """A time missed while no supervisor ran is run once at start-up (it is always reported)."""


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """`watch`: restart the process when files change."""

    paths: tuple[str, ...]
    """Globs (`src/**/*.py`), folders or files, relative to the process's `cwd`."""
    ignore: tuple[str, ...] = ()
    """Globs whose matches never count (on top of the usual editor, VCS and cache files)."""
    debounce: float = 0.5
    """Seconds a burst of changes must settle before the one restart it causes."""
    cascade: bool = False
    """Also restart, in dependency order, the processes that depend on this one."""


HOOK_EVENTS: Final = (*(state.value for state in ProcessState), "unhealthy", "recovered")
"""What a hook's `on` may name: a state entered, health turning `unhealthy`, or `recovered` (running and
healthy again after a crash, a failure or bad health)."""
HOOK_PLACEHOLDERS: Final = ("name", "state", "reason", "pid", "exit_code", "event", "health", "instance")
"""`{name}`... in a hook command's words; each word is substituted on its own (never a shell)."""
DEFAULT_HOOK_EVENTS: Final = ("crashed", "failed", "unhealthy", "recovered")


@dataclass(frozen=True, slots=True)
class HookSpec:
    """`[hooks]` (for every process) or `[process.NAME.hooks]`: tell someone when things happen."""

    on: tuple[str, ...] = DEFAULT_HOOK_EVENTS
    command: tuple[str, ...] | None = None
    """Run with the placeholders filled in, in its own process group, killed after `timeout`."""
    url: str | None = None
    """POSTed the status as JSON (with `event`), retried with backoff, bounded."""
    timeout: float = 10.0
    """Seconds one command or one POST attempt may take."""


@dataclass(frozen=True, slots=True)
class Replica:
    """Set on each instance of a `replicas` process: `web-2` is `Replica("web", 2)`."""

    group: str
    index: int
    """1-based: `PMTOP_REPLICA` in its environment."""

    @property
    def name(self) -> str:
        return replica_name(self.group, self.index)


def replica_name(group: str, index: int) -> str:
    """`web-2`: the name of replica `index` of `group`."""
    return f"{group}-{index}"


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One process as the user declared it. Compared by value, so a reload can tell what changed."""

    name: str
    command: tuple[str, ...]
    """Empty only for a process adopted by PID without a command (`pmtop adopt NAME --pid PID`):
    pmtop watches it, and has nothing to start once it has exited."""
    cwd: str | None = None
    """Absolute after loading (relative paths are resolved against the config file's folder)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Merged over the supervisor's own environment (and `file_env`) at spawn time."""
    env_file: tuple[str, ...] = ()
    """Dotenv files, absolute after loading; read when the config is loaded or reloaded (not at each
    start), into `file_env`, so a broken file is a config error and a changed one a changed spec."""
    file_env: Mapping[str, str] = field(default_factory=dict)
    """What the `env_file`s held at the last load, later files winning; `env` wins over all of it."""
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
    ready_log_line: str | None = None
    """A regular expression: a fresh run stays `starting` until a line of its stdout or stderr matches
    (and, with a startup check, that passes too)."""
    port: int | None = None
    """The TCP port the process is meant to listen on: shown before it binds, checked free before each
    start (held by another program: the start fails, the state is `failed`), and given as `$PORT`."""
    # -- the dev loop (issue 12) --
    schedule: ScheduleSpec | None = None
    replicas: int | None = None
    """On a template (`replicas = 3` in its table): the supervisor runs `NAME-1`...`NAME-n` instead."""
    replica: Replica | None = None
    """On an instance of a template: which one (the name is then `group-index`)."""
    watch: WatchSpec | None = None
    hooks: HookSpec | None = None


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
    port: int | None = None
    """The declared port (`port = 8000`), whether or not anything listens on it yet (`ports` says)."""
    # -- the dev loop (issue 12) --
    next_run_at: float | None = None
    """A scheduled process: when it runs next (the faces count down to it: `next run in 3m12s`)."""
    group: str | None = None
    """A replica: the name of its `replicas` process (`web` for `web-2`), so faces can fold them."""
    watching: bool = False
    """Its `watch` is armed: a change to its files restarts it."""
    hook_error: str | None = None
    """The last hook of this process that failed, and how (cleared by the next one that works)."""
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
            "port": self.port,
            "next_run_at": self.next_run_at,
            "group": self.group,
            "watching": self.watching,
            "hook_error": self.hook_error,
        }
        if self.host is not None:
            data["host"] = self.host
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, host: str | None = None) -> ProcessStatus:
        """The status the API sent; with `host`, as fleet host `host` shows it (named `host/name`): made
        so at once, because a fleet dashboard does this for every status of every daemon it follows."""
        host = host if host is not None else data.get("host")
        label = host if "host" not in data else None  # (a status named by its fleet already is not renamed)
        group = data.get("group")
        return cls(
            name=fleet_name(label, data["name"]) if label is not None else data["name"],
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
            port=data.get("port"),
            next_run_at=data.get("next_run_at"),
            group=fleet_name(label, group) if label is not None and group is not None else group,
            watching=bool(data.get("watching", False)),
            hook_error=data.get("hook_error"),
            host=host,
        )

    def on_host(self, host: str) -> ProcessStatus:
        """This status as fleet host `host` shows it: named `host/name`, carrying its host."""
        group = fleet_name(host, self.group) if self.group is not None else None
        return replace(self, name=fleet_name(host, self.name), group=group, host=host)


_STATES: Final[dict[object, ProcessState]] = {s.value: s for s in ProcessState}
_HEALTHS: Final[dict[object, Health]] = {h.value: h for h in Health}
_SCOPES: Final[dict[object, Scope]] = {s.value: s for s in Scope}

FLEET_SEPARATOR: Final = "/"


def fleet_name(host: str, name: str) -> str:
    """`web1/api`: how a fleet names process `name` of its daemon labelled `host` (SPEC §12). Labels never
    contain the separator and process names never do, so the split is unambiguous."""
    return f"{host}{FLEET_SEPARATOR}{name}"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a process's output with when it was written: the merged log view (SPEC §11)."""

    time: float
    """When pmtop read it from the process's pipe (Unix seconds, to the millisecond)."""
    name: str
    stream: str
    """`stdout` or `stderr` (empty for a note of pmtop's own, such as lines skipped)."""
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "name": self.name, "stream": self.stream, "line": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogLine:
        return cls(float(data["time"]), str(data["name"]), str(data.get("stream", "")), str(data["line"]))


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
    group: int | None = None
    """The process group its stop signals go to (its own PID for every child pmtop spawns); None for a
    process adopted by PID that does not lead its group, which is signalled alone."""
    foreign: bool = False
    """Started outside pmtop and adopted by PID (`pmtop adopt`)."""


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
    partner: str | None = None
    """The partner's state (`up`, `restarting`, `lost`...: SPEC §9); None when it has none."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupervisorInfo:
        partner = data.get("partner")
        if isinstance(partner, Mapping):
            partner = partner.get("state")
        return cls(
            instance=str(data["instance"]),
            pid=int(data["pid"]),
            started_at=float(data.get("started_at") or 0.0),
            version=str(data.get("version", "")),
            config=data.get("config"),
            host=data.get("host"),
            port=data.get("port"),
            read_only=bool(data.get("read_only", False)),
            partner=str(partner) if partner and partner != "none" else None,
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
