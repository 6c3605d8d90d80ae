"""systemd user units: one `APP-NAME.service` per process and an `APP.target` that wants them.

    systemctl --user link ./APP-*.service ./APP.target  (or copy them to ~/.config/systemd/user/)
    systemctl --user start APP.target                   systemctl --user enable APP.target  (at login)

Lessons from foreman's systemd export, whose bugs users hit for years: `ExecStart=` gets the argv
itself, each word quoted by systemd's own rules (never a `sh -c` glued line), and nothing says
`StopWhenUnneeded=`, which stopped whole apps when one unit went away. Units are `PartOf=` the target,
so stopping or restarting the target stops or restarts them all, and the target `Wants=` them, so
starting it starts them all (except the disabled and the not-autostarted).

`depends_on` becomes `Requires=` + `After=`. `healthy` is made real by a readiness gate on the
dependency: an `ExecStartPost=` probe (Python standard library, see `common.PROBE_SCRIPT`), so the
dependency's start job, which `After=` waits for, ends only once its check passes. `completed` makes the
dependency `Type=oneshot` with `RemainAfterExit=yes`, whose start job ends when it has exited 0.

The dev loop (SPEC §11): a `schedule` becomes a `.timer` (`OnCalendar=` in local time, `Persistent=`
for `catch_up`, `AccuracySec=1s` since systemd's default minute would blur the times) that the target
wants instead of the service, a `Type=oneshot` one; systemd never starts a unit that is still running,
which is `overlap = "skip"` exactly. `replicas` becomes a template unit (`APP-web@.service`, with
`PMTOP_REPLICA=%i`) of which the target wants `@1`...`@n`, so `systemctl --user start APP-web@4`
scales it up.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Final

from ..checks.notify import NotifyCheck
from ..config import Config
from ..model import DependencyCondition, FailAction, HealthSpec, ProcessSpec, RestartPolicy, Scope
from .common import dependents, describe_check, probe_argv, seconds, whole_seconds
from .model import ExportOptions, ExportResult, SimpleTarget
from .notes import app_notes
from .rules import Context, Report, Rules
from .timers import calendar_event, interval_seconds

#: Where a systemd user manager looks for a program named without a path (systemd.service(5)).
SYSTEMD_PATH: Final = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
STEPS_VERSION: Final = 254
"""The first systemd with `RestartSteps=` and `RestartMaxDelaySec=`."""
DEFAULT_START_TIMEOUT: Final = 90.0
#: Signals that systemd counts as a clean end (exit by them is "success" and not restarted on-failure),
#: while pmtop counts them as a crash unless it sent them itself.
CLEAN_SIGNALS: Final = "SIGHUP SIGINT SIGTERM SIGPIPE"


@dataclass(slots=True)
class Unit:
    """One unit file, as ordered `key=value` lines per section."""

    process: ProcessSpec
    name: str
    app: str
    sections: dict[str, list[tuple[str, str]]] = field(
        default_factory=lambda: {"Unit": [], "Service": []})
    version: int = STEPS_VERSION
    """The systemd the unit is written for."""
    oneshot: bool = False
    """Others wait for it to complete: `Type=oneshot`."""
    gate: bool = False
    """Its health check gates its start (`ExecStartPost=`): others wait for it healthy, or it has a startup check."""
    units_of: dict[str, list[str]] = field(default_factory=dict)
    """Process name -> the units it runs as (several for a `replicas` process; see `render`)."""
    timer: list[tuple[str, str]] = field(default_factory=list)
    """The `[Timer]` section of its `.timer`, for a scheduled process."""

    def set(self, section: str, key: str, value: str) -> None:
        self.sections.setdefault(section, []).append((key, value))

    def render(self, source: str) -> str:
        lines = [f"# {self.name}: process {self.process.name!r} of {source}, written by `pmtop export systemd`."]
        for section, entries in self.sections.items():
            if entries:
                lines += ["", f"[{section}]", *(f"{key}={value}" for key, value in entries)]
        return "\n".join(lines) + "\n"


RULES: Final = Rules[Unit]("systemd")


def unit_name(app: str, process: str) -> str:
    return f"{app}-{process}.service"


# --------------------------------------------------------------------------------------- quoting

_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")
_C_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a",
                     "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def _specifiers(text: str) -> str:
    """`%` starts a specifier (`%h`, `%n`) in nearly every unit setting; `%%` is a literal one."""
    return text.replace("%", "%%")


def quote_word(word: str, *, first: bool = False, dollars: bool = True) -> str:
    """One word of a systemd command line or assignment list, read back by systemd as exactly `word`.

    Double quotes with C escapes (systemd.syntax(7)); `%` doubled (specifiers) and, in command lines,
    `$` doubled (systemd substitutes `$VAR` there). A lone `;` would separate commands, so it is `\\;`.
    The first word of a command is quoted when it starts with one of systemd's prefixes (`-@:+!`).
    """
    text = _specifiers(word)
    if dollars:
        text = text.replace("$", "$$")
    if text == ";":
        return "\\;"
    if text and all(c in _SAFE for c in text) and not (first and text[0] in "-@:+!"):
        return text
    out = []
    for char in text:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def command_line(argv: list[str] | tuple[str, ...]) -> str:
    return " ".join(quote_word(word, first=i == 0) for i, word in enumerate(argv))


# ------------------------------------------------------------------------------------------ rules

def _program(word: str, ctx: Context, spec: ProcessSpec) -> str:
    """A bare program name stays bare when systemd's fixed search path finds the same file; else absolute."""
    if os.sep in word:
        return word
    found = shutil.which(word)
    if found is None:
        ctx.note(spec, "command", f"{word!r} is not on this machine's PATH; systemd will look for it in "
                                  f"{':'.join(SYSTEMD_PATH)}")
        return word
    if os.path.dirname(found) in SYSTEMD_PATH:
        return word
    ctx.note(spec, "command", f"{word!r} written as {found} (systemd does not search $PATH)")
    return found


def _notify(spec: ProcessSpec) -> NotifyCheck | None:
    check = spec.health.check if spec.health is not None else None
    return check if isinstance(check, NotifyCheck) else None


@RULES.maps("command")
def _command(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    argv = [_program(spec.command[0], ctx, spec), *spec.command[1:]]
    scheduled = spec.schedule is not None
    unit.set("Service", "Type", "oneshot" if unit.oneshot or scheduled else "notify" if _notify(spec) else "exec")
    if unit.oneshot and not scheduled:  # (a timer could not start it again while it "remained")
        unit.set("Service", "RemainAfterExit", "yes")
    unit.set("Service", "ExecStart", command_line(argv))


@RULES.maps("cwd")
def _cwd(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.cwd:
        unit.set("Service", "WorkingDirectory", _specifiers(spec.cwd))


@RULES.maps("env")
def _env(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    for key, value in spec.env.items():
        unit.set("Service", "Environment", quote_word(f"{key}={value}", dollars=False))


@RULES.maps("env_file")
def _env_file(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    """(A setting of a later pmtop: dotenv files, later ones winning, as systemd's are.)"""
    files = ctx.settings.get("env_file")
    for path in [files] if isinstance(files, str) else files or ():
        unit.set("Service", "EnvironmentFile", _specifiers(str(path)))
    both = sorted(set(spec.env) & set(spec.file_env))
    if both:
        ctx.approximated(spec, "env_file", f"{', '.join(both)}: set by env and by a file; systemd lets "
                                           "EnvironmentFile= win over Environment= (pmtop: env wins)")
    if files:
        ctx.note(spec, "env_file", "EnvironmentFile= reads KEY=VALUE lines; dotenv's `export` and "
                                   "${VAR} expansion are not understood by systemd, and it reads the files at "
                                   "each start (pmtop when it loads or reloads its config)")


@RULES.maps("port")
def _port(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.port is None or spec.replicas is not None:
        return  # (replicas: each instance's port differs, see `_replicas`)
    if "PORT" not in spec.env:
        unit.set("Service", "Environment", f"PORT={spec.port}")
    ctx.approximated(spec, "port", f"{spec.port} is given as $PORT, but systemd does not check that it is free "
                                   "before a start: a busy port makes the process fail (and Restart= retry it)")


@RULES.maps("ready_log_line")
def _ready_log_line(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.ready_log_line is None:
        return
    ctx.dropped(spec, "ready_log_line", f"/{spec.ready_log_line}/: systemd cannot wait for a line of output, so "
                                        "the unit counts as started once its process runs; for a real gate, have "
                                        "the program send READY=1 (type = \"notify\" in pmtop, Type=notify here)")


@RULES.maps("depends_on")
def _depends_on(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    for dep in spec.depends_on:
        for name in unit.units_of.get(dep, [unit_name(unit.app, dep)]):
            unit.set("Unit", "Requires", name)
            unit.set("Unit", "After", name)


@RULES.maps("autostart", "enabled", "scope")
def _membership(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    unit.set("Unit", "PartOf", f"{unit.app}.target")
    if not spec.enabled:
        ctx.approximated(spec, "enabled", f"false: not wanted by {unit.app}.target, but systemd can still start "
                                          f"it by hand or for a dependent (`systemctl --user mask {unit.name}` "
                                          "forbids it)")
    elif not spec.autostart:
        ctx.note(spec, "autostart", f"false: not wanted by {unit.app}.target; "
                                    f"`systemctl --user start {unit.name}` starts it")
    if spec.scope is Scope.SESSION:
        ctx.dropped(spec, "scope", '"session": nothing stops the unit when a session PID exits')


@RULES.maps("restart")
def _restart(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    policy = spec.restart.policy
    if spec.schedule is not None and policy is RestartPolicy.ALWAYS:
        policy = RestartPolicy.ON_FAILURE  # (a clean exit ends a scheduled run in pmtop too: exact)
    elif unit.oneshot and policy is RestartPolicy.ALWAYS:
        ctx.approximated(spec, "restart", '"always" on a process others wait to complete: a oneshot unit '
                                          "cannot restart after success; Restart=on-failure")
        policy = RestartPolicy.ON_FAILURE
    unit.set("Service", "Restart", policy.value)
    if policy is RestartPolicy.ON_FAILURE and spec.schedule is None:  # (systemd refuses it on Type=oneshot)
        unit.set("Service", "RestartForceExitStatus", CLEAN_SIGNALS)
    elif policy is RestartPolicy.ON_FAILURE:
        ctx.approximated(spec, "restart", '"on-failure": a run killed by SIGTERM, SIGINT, SIGHUP or SIGPIPE '
                                          "counts as clean for a oneshot unit, and is not restarted")


def systemd_delays(first: float, last: float, steps: int, count: int) -> list[float]:
    """The delays systemd >= 254 waits before restart 1..count (its service_restart_usec_next)."""
    delays = []
    for n in range(1, count + 1):
        if n <= 1 or steps == 0 or first <= 0 or first >= last:
            delays.append(first)
        elif n > steps:
            delays.append(last)
        else:
            delays.append(first * (last / first) ** ((n - 1) / steps))
    return delays


@RULES.maps("backoff")
def _backoff(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.restart.policy is RestartPolicy.NO:
        return
    backoff = list(spec.restart.backoff)
    first, last = backoff[0], backoff[-1]
    unit.set("Service", "RestartSec", seconds(first))
    if len(set(backoff)) == 1:
        return
    shown = "[" + ", ".join(seconds(b) for b in backoff) + "]"
    if unit.version < STEPS_VERSION or last <= first:
        ctx.approximated(spec, "backoff", f"{shown}: systemd {unit.version} waits RestartSec={seconds(first)} "
                                          f"before every restart (RestartSteps= needs systemd {STEPS_VERSION})")
        return
    steps = len(backoff) - 1
    unit.set("Service", "RestartSteps", str(steps))
    unit.set("Service", "RestartMaxDelaySec", seconds(last))
    got = systemd_delays(first, last, steps, len(backoff))
    if any(abs(a - b) > 0.01 * b for a, b in zip(got, backoff, strict=True)):
        ctx.approximated(spec, "backoff", f"{shown}: systemd grows the delay geometrically: "
                                          "[" + ", ".join(_short(d) for d in got) + "]")


def _short(value: float) -> str:
    return seconds(round(value, 1 if value < 10 else 0))


@RULES.maps("max_restarts", "reset_after", "retry_forever", "retry_forever_interval")
def _limits(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    restart = spec.restart
    if restart.policy is RestartPolicy.NO:
        return
    if restart.retry_forever:
        unit.set("Unit", "StartLimitIntervalSec", "0")
        ctx.approximated(spec, "retry_forever", f"after {restart.max_restarts} failures pmtop retries every "
                                                f"{seconds(restart.retry_forever_interval)}; systemd keeps "
                                                "restarting at the last backoff delay (StartLimitIntervalSec=0)")
        return
    delays = [restart.backoff[min(i, len(restart.backoff) - 1)] for i in range(restart.max_restarts)]
    window = whole_seconds(sum(delays) + restart.reset_after, 1)
    unit.set("Unit", "StartLimitIntervalSec", f"{window}s")
    unit.set("Unit", "StartLimitBurst", str(restart.max_restarts + 1))
    ctx.approximated(spec, "max_restarts", f"{restart.max_restarts} consecutive failures (forgiven after "
                                           f"{seconds(restart.reset_after)} of running): systemd gives up after "
                                           f"{restart.max_restarts + 1} starts within {window}s")


@RULES.maps("stop_signal", "stop_timeout")
def _stop(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    unit.set("Service", "KillMode", "control-group")
    unit.set("Service", "KillSignal", spec.stop_signal.name)
    unit.set("Service", "TimeoutStopSec", seconds(spec.stop_timeout))


@RULES.maps("log_max_bytes", "log_backups", "log_keep_runs")
def _logs(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    for key in ("log_max_bytes", "log_backups", "log_keep_runs"):
        if key in ctx.settings:
            ctx.approximated(spec, key, "journald keeps the output, with its own size limits "
                                        "(SystemMaxUse= in journald.conf)")


@RULES.maps("health")
def _health(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    health = spec.health
    if health is None:
        return
    notify = _notify(spec)
    if notify is not None:
        _notify_health(spec, unit, ctx, health, notify)
        return
    if not unit.gate:
        ctx.dropped(spec, "health", f"{describe_check(health)} every {seconds(health.interval)}: systemd does "
                                    "not check a running unit (and nothing waits for it healthy, so no gate)")
        return
    startup = health.startup
    if startup is not None:
        interval, attempts, delay = startup.interval, startup.max_attempts, startup.initial_delay
    else:
        interval, attempts, delay = health.interval, 0, 0.0
    probe = probe_argv(health, interval=interval, attempts=attempts, initial_delay=delay)
    probe[0] = _program(probe[0], ctx, spec)
    unit.set("Service", "ExecStartPost", command_line(probe))
    budget = delay + attempts * (interval + health.timeout) + 5 if attempts else DEFAULT_START_TIMEOUT
    if budget > DEFAULT_START_TIMEOUT:
        unit.set("Service", "TimeoutStartSec", f"{whole_seconds(budget)}s")
    ctx.approximated(spec, "health", f"{describe_check(health)}: checked until it passes at start "
                                     "(ExecStartPost= readiness gate); systemd does not re-check a running "
                                     f"unit, so {health.failures} failures -> restart is lost")
    if startup is not None and startup.fail_action is not FailAction.RESTART:
        ctx.approximated(spec, "health.startup.fail_action", f'"{startup.fail_action}": a failed start-up '
                                                             "check fails the start, and Restart= decides")


def _notify_health(spec: ProcessSpec, unit: Unit, ctx: Context, health: HealthSpec, check: NotifyCheck) -> None:
    """sd_notify is systemd's own protocol: Type=notify (set by the command rule) is the readiness gate."""
    unit.set("Service", "NotifyAccess", "all")  # pmtop believes any process of the run's session, too
    if unit.oneshot:
        ctx.approximated(spec, "health", "a process others wait to complete is Type=oneshot, which ignores READY=1")
    startup = health.startup
    if startup is not None:
        budget = startup.initial_delay + startup.max_attempts * startup.interval
        unit.set("Service", "TimeoutStartSec", seconds(budget))
        if startup.fail_action is not FailAction.RESTART:
            ctx.approximated(spec, "health.startup.fail_action", f'"{startup.fail_action}": a start that times out '
                                                                 "fails, and Restart= decides")
    if check.watchdog is not None:
        unit.set("Service", "WatchdogSec", seconds(check.watchdog))
        if health.failures != 1:
            ctx.approximated(spec, "health", f"systemd acts on the first missed WATCHDOG=1 (SIGABRT, then Restart=); "
                                             f"pmtop waits for {health.failures} missed periods in a row")


# ---------------------------------------------------------------------------------- the dev loop

@RULES.maps("schedule", "overlap", "run_on_start", "catch_up")
def _schedule(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    schedule = spec.schedule
    if schedule is None:
        return
    every = interval_seconds(schedule.rule)
    if every is not None:
        unit.timer += [("OnActiveSec", seconds(every)), ("OnUnitActiveSec", seconds(every))]
        ctx.approximated(spec, "schedule", f"{schedule.rule!r}: OnUnitActiveSec= counts from the last start, "
                                           "so a late start moves the later ones (pmtop keeps a fixed grid)")
        if schedule.catch_up:
            ctx.dropped(spec, "catch_up", "Persistent= only applies to calendar timers: a missed interval is not run")
    else:
        event = calendar_event(schedule.rule)
        if not event.text:
            ctx.dropped(spec, "schedule", event.why)
            return
        unit.timer.append(("OnCalendar", event.text))
        if not event.exact:
            ctx.approximated(spec, "schedule", event.why)
        if schedule.catch_up:
            unit.timer.append(("Persistent", "true"))
    unit.timer.append(("AccuracySec", "1s"))
    if schedule.overlap.value == "queue":
        ctx.approximated(spec, "overlap", '"queue": systemd skips a time while the last run goes on')
    elif schedule.overlap.value == "replace":
        ctx.approximated(spec, "overlap", '"replace": systemd skips a time while the last run goes on '
                                          "(it never stops a run for the next)")
    if schedule.run_on_start:
        ctx.note(spec, "run_on_start", f"true: {unit.app}.target also wants the service, so it runs when the "
                                       "target starts")
    ctx.note(spec, "schedule", "missed times are reported in pmtop's reason; systemd logs only the runs")


@RULES.maps("replicas")
def _replicas(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.replicas is None:
        return
    unit.set("Service", "Environment", "PMTOP_REPLICA=%i")
    ctx.note(spec, "replicas", f"{spec.replicas}: a template unit, {unit.name}, of which the target wants "
                               f"@1..@{spec.replicas}; `systemctl --user start {unit.name.replace('@', '@4')}` "
                               "adds one (pmtop scale's way)")
    if "port" in ctx.settings:
        ctx.approximated(spec, "port", "PORT = port + replica - 1 is not set: systemd cannot compute it; "
                                       "derive it from $PMTOP_REPLICA in the program")


@RULES.maps("watch")
def _watch(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.watch is not None:
        ctx.dropped(spec, "watch", f"{', '.join(spec.watch.paths)}: systemd does not restart a unit when files "
                                   "change (a .path unit can only start one)")


@RULES.maps("hooks")
def _hooks(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
    if spec.hooks is not None:
        ctx.dropped(spec, "hooks", "on " + ", ".join(spec.hooks.on) + ": write an OnFailure= unit of your own "
                                   "for failures; systemd has no health events")


# ----------------------------------------------------------------------------------------- render

def render(config: Config, options: ExportOptions) -> ExportResult:
    app = options.name
    report = Report()
    source = config.path.name if config.path else "pmtop"
    waiters = dependents(config)
    files: dict[str, str] = {}
    wanted: list[str] = []
    units_of = _replica_units(app, config)
    for spec in config.processes:
        conditions = set(waiters.get(spec.name, {}).values())
        name = f"{app}-{spec.name}@.service" if spec.replicas is not None else unit_name(app, spec.name)
        unit = Unit(process=spec, name=name, app=app, version=options.systemd_version,
                    oneshot=DependencyCondition.COMPLETED in conditions,
                    gate=spec.health is not None and _notify(spec) is None and (
                        DependencyCondition.HEALTHY in conditions or spec.health.startup is not None),
                    units_of=units_of)
        unit.set("Unit", "Description", f"{app}: {spec.name} (from {source})" +
                 (" replica %i" if spec.replicas is not None else ""))
        RULES.apply(spec, unit, report)
        files[unit.name] = unit.render(source)
        if not (spec.enabled and spec.autostart):
            continue
        if unit.timer:
            timer = f"{app}-{spec.name}.timer"
            files[timer] = _timer(unit, timer, source)
            wanted.append(timer)
            if spec.schedule is not None and spec.schedule.run_on_start:
                wanted.append(unit.name)
        elif spec.schedule is None:
            wanted += units_of.get(spec.name, [unit.name])
    files[f"{app}.target"] = _target(app, source, wanted)
    if any(spec.depends_on for spec in config.processes):
        report.approximated("depends_on", "Requires=: a process whose dependency fails to start fails too "
                                          "(pmtop keeps it waiting), and stopping or restarting a dependency "
                                          "by hand stops or restarts its dependents")
    for setting, detail in app_notes(logs=f"journald: journalctl --user -u '{app}-*'",
                                     control="systemctl --user, under your own user's rights"):
        report.note(setting, detail)
    return ExportResult(target="systemd", files=files, losses=tuple(report.losses))


def _replica_units(app: str, config: Config) -> dict[str, list[str]]:
    """`web` -> `APP-web@1.service`... for every `replicas` process, and `web-2` -> its own instance."""
    found: dict[str, list[str]] = {}
    for spec in config.processes:
        if spec.replicas is None:
            continue
        names = [f"{app}-{spec.name}@{i}.service" for i in range(1, spec.replicas + 1)]
        found[spec.name] = names
        for i, name in enumerate(names, start=1):
            found[f"{spec.name}-{i}"] = [name]
    return found


def _timer(unit: Unit, name: str, source: str) -> str:
    lines = [f"# {name}: when {unit.process.name!r} of {source} runs, written by `pmtop export systemd`.",
             "", "[Unit]", f"Description={unit.app}: {unit.process.name} on its schedule "
             f"({_specifiers(unit.process.schedule.rule if unit.process.schedule else '')})",
             f"PartOf={unit.app}.target", "", "[Timer]", *(f"{key}={value}" for key, value in unit.timer),
             f"Unit={unit.name}"]
    return "\n".join(lines) + "\n"


def _target(app: str, source: str, wanted: list[str]) -> str:
    lines = [f"# {app}.target: the processes of {source}, written by `pmtop export systemd`.",
             "", "[Unit]", f"Description={app}: every process of {source}"]
    if wanted:
        lines.append("Wants=" + " ".join(wanted))
    lines += ["", "[Install]", "WantedBy=default.target"]
    return "\n".join(lines) + "\n"


TARGET: Final = SimpleTarget(name="systemd", summary="systemd user units and a .target", renderer=render)
