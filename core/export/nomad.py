"""A Nomad job (HCL, `raw_exec`): one group per dependency island, so dependencies stay on one node.

    nomad job run APP.nomad.hcl        (the raw_exec driver must be enabled on the clients)

Within a group, a process that others depend on and that depends on nothing itself becomes a
`prestart` task: a sidecar (`sidecar = true`, keeps running) for `started`/`healthy`, a run-to-completion
task for `completed`. Nomad has no deeper ordering than prestart -> main, so longer chains are reported.
Islands whose processes all have `restart = "no"` go to a second, `batch` job (`APP-batch.nomad.hcl`):
a service job would replace an allocation whose tasks have finished.

A scheduled process is a periodic batch job of its own (`APP-NAME.nomad.hcl`: Nomad's `periodic` is per
job), `prohibit_overlap` from `overlap`, `time_zone` the local zone. `replicas` is the group's `count`
when the process has its group to itself.

Restart policy is per task (`restart`); `reschedule` is off, as pmtop keeps a failed process failed on
its machine. Checks come from `[health]` (`provider = "nomad"` for http/tcp, Consul `script` checks for
exec) with `check_restart` for the failure count. The argv is exec'd directly: `/usr/bin/env -C DIR`
gives it its working folder (raw_exec has no such option) and finds a bare program name on the PATH.
Nomad's own validation rules are kept: restart `interval` >= 5s and >= attempts x delay; check
`interval`/`timeout` >= 1s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Final

from ..checks.exec import ExecCheck
from ..checks.heartbeat import HeartbeatCheck
from ..checks.http import HttpCheck
from ..checks.tcp import TcpCheck
from ..config import Config
from ..model import DependencyCondition, FailAction, ProcessSpec, RestartPolicy, Scope
from .common import dependents, describe_check, dns_label, endpoint, islands, probe_argv, probeable, seconds, start_order
from .hcl import Block
from .model import ExportOptions, ExportResult, SimpleTarget
from .notes import app_notes
from .rules import Context, Report, Rules
from .timers import cron_line, zone_name

MIN_RESTART_INTERVAL: Final = 5.0
"""Nomad refuses a restart `interval` below 5s."""
MIN_CHECK: Final = 1.0
"""Nomad refuses check intervals and timeouts below 1s."""
MAX_KILL_TIMEOUT: Final = 30.0
"""A Nomad client's default `max_kill_timeout`: longer `kill_timeout`s are cut to it."""
MIB: Final = 1024 * 1024


@dataclass(slots=True)
class Task:
    process: ProcessSpec
    block: Block
    group: Block
    app: str
    batch: bool
    provider: str
    """The service provider of the task's group (Nomad wants one per group)."""
    role: str = "main"
    """"main", "sidecar" (prestart, keeps running) or "prestart" (runs to completion first)."""
    ports: dict[str, int] = field(default_factory=dict)


RULES: Final = Rules[Task]("nomad")


# ------------------------------------------------------------------------------------------ rules

@RULES.maps("command", "cwd")
def _command(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    task.block.set("driver", "raw_exec")
    config = task.block.block("config")
    argv = list(spec.command)
    if spec.cwd:
        config.set("command", "/usr/bin/env")
        config.set("args", ["-C", spec.cwd, *argv])
        ctx.note(spec, "cwd", f"the task runs in {spec.cwd} through `/usr/bin/env -C` (GNU coreutils): "
                              "the folder must exist on the node")
    elif argv[0].startswith("/"):
        config.set("command", argv[0])
        if argv[1:]:
            config.set("args", argv[1:])
    else:
        config.set("command", "/usr/bin/env")
        config.set("args", argv)
    if any("${" in word for word in argv):
        ctx.approximated(spec, "command", "Nomad interpolates ${...} in args at run time; those words will "
                                          "not reach the program as written")


@RULES.maps("env")
def _env(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    env = dict(spec.env)
    if spec.port is not None:
        env.setdefault("PORT", str(spec.port))  # as pmtop gives it (the port rule reports the rest)
    if not env:
        return
    task.block.set("env", env)
    if any("-" in key for key in spec.env):
        ctx.approximated(spec, "env", "Nomad turns '-' in variable names into '_'")
    if any("${" in value for value in spec.env.values()):
        ctx.approximated(spec, "env", "Nomad interpolates ${...} in values at run time")


@RULES.maps("depends_on")
def _depends_on(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    """The lifecycle itself is decided per island in `render`; this reports what Nomad cannot order."""
    for dep, condition in spec.depends_on.items():
        if condition is DependencyCondition.HEALTHY:
            ctx.approximated(spec, "depends_on", f"{dep} = healthy: Nomad starts main tasks once prestart "
                                                 "sidecars run, without waiting for their checks")


@RULES.maps("autostart", "enabled", "scope")
def _membership(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    if spec.scope is Scope.SESSION:
        ctx.dropped(spec, "scope", '"session": nothing stops the task when a session PID exits')


@RULES.maps("restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval")
def _restart(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    restart = spec.restart
    block = task.block.block("restart")
    if restart.policy is RestartPolicy.NO:
        block.set("attempts", 0)
        block.set("mode", "fail")
        return
    delay = restart.backoff[0]
    attempts = restart.max_restarts
    interval = max(restart.reset_after, attempts * delay, MIN_RESTART_INTERVAL)
    mode = "delay" if restart.retry_forever and attempts > 0 else "fail"
    block.set("attempts", attempts)
    block.set("delay", seconds(delay))
    block.set("interval", seconds(interval))
    block.set("mode", mode)
    if restart.policy is RestartPolicy.ON_FAILURE and not task.batch and task.role != "prestart":
        ctx.approximated(spec, "restart", '"on-failure": a Nomad service task is restarted after a clean '
                                          "exit too")
    if len(set(restart.backoff)) > 1:
        shown = "[" + ", ".join(seconds(b) for b in restart.backoff) + "]"
        ctx.approximated(spec, "backoff", f"{shown}: Nomad waits delay = {seconds(delay)} (plus up to 25% "
                                          "jitter) before every restart")
    ctx.approximated(spec, "max_restarts", f"{attempts} consecutive failures (forgiven after "
                                           f"{seconds(restart.reset_after)} of running): Nomad allows {attempts} "
                                           f"restarts within {seconds(interval)}")
    if mode == "delay":
        ctx.approximated(spec, "retry_forever", f"pmtop retries every {seconds(restart.retry_forever_interval)}"
                                                " after giving up; Nomad (mode = \"delay\") waits for the next "
                                                f"{seconds(interval)} interval")


@RULES.maps("replicas")
def _replicas(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    """(`count` is set per group in `render`.)"""
    if spec.replicas is not None:
        ctx.approximated(spec, "replicas", f"{spec.replicas}: each allocation has NOMAD_ALLOC_INDEX (from 0) "
                                           "instead of PMTOP_REPLICA (from 1); `nomad job scale` scales it")


@RULES.maps("schedule", "overlap", "run_on_start", "catch_up")
def _schedule(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    """(The `periodic` block is the job's, written in `render`; this reports what it cannot say.)"""
    schedule = spec.schedule
    if schedule is None:
        return
    line = cron_line(schedule.rule, seconds=True)
    if not line.exact:
        ctx.approximated(spec, "schedule", line.why)
    if schedule.overlap.value != "skip":
        ctx.approximated(spec, "overlap", f'"{schedule.overlap}": prohibit_overlap skips a time while a run '
                                          "goes on")
    if schedule.catch_up:
        ctx.dropped(spec, "catch_up", "Nomad does not run the times its servers missed")
    if schedule.run_on_start:
        ctx.dropped(spec, "run_on_start", f"`nomad job periodic force {task.app}-{spec.name}` runs it now")
    if spec.depends_on:
        ctx.approximated(spec, "depends_on", "a periodic job of its own: nothing orders it after "
                                             + ", ".join(spec.depends_on))


@RULES.maps("watch", "hooks")
def _watch_hooks(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    if spec.watch is not None:
        ctx.dropped(spec, "watch", "Nomad does not restart a task when files change")
    if spec.hooks is not None:
        ctx.dropped(spec, "hooks", "on " + ", ".join(spec.hooks.on) + ": Nomad has no hooks on task events "
                                   "(follow `nomad event stream` instead)")


@RULES.maps("stop_signal", "stop_timeout")
def _stop(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    task.block.set("kill_signal", spec.stop_signal.name)
    task.block.set("kill_timeout", seconds(spec.stop_timeout))
    if spec.stop_timeout > MAX_KILL_TIMEOUT:
        ctx.note(spec, "stop_timeout", f"clients cut kill_timeout to their max_kill_timeout "
                                       f"(default {seconds(MAX_KILL_TIMEOUT)})")


@RULES.maps("log_max_bytes", "log_backups", "log_keep_runs")
def _logs(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    logs = task.block.block("logs")
    size = max(1, math.ceil(spec.logs.max_bytes / MIB))
    logs.set("max_files", spec.logs.backups + 1)
    logs.set("max_file_size", size)
    if spec.logs.max_bytes != size * MIB:
        ctx.approximated(spec, "log_max_bytes", f"Nomad rotates at whole MB: max_file_size = {size}")
    if "log_keep_runs" in ctx.settings:
        ctx.approximated(spec, "log_keep_runs", "Nomad keeps logs per allocation until it is garbage-collected")


@RULES.maps("health")
def _health(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    health = spec.health
    if health is None:
        return
    if not probeable(health):
        ctx.dropped(spec, "health", f"{describe_check(health)}: Nomad has no sd_notify (nothing hears READY=1 or "
                                    "keeps a watchdog); give the task an http or tcp check")
        return
    service = task.block.block("service")
    service.set("name", dns_label(f"{task.app}-{spec.name}"))
    service.set("provider", task.provider)
    check = Block("check")
    where = endpoint(health)
    if where is not None:
        label = dns_label(spec.name).replace("-", "_")
        task.ports[label] = where.port
        service.set("port", label)
        check.set("type", "tcp" if isinstance(health.check, TcpCheck) else "http")
        if isinstance(health.check, HttpCheck):
            check.set("path", where.path)
            if where.scheme == "https":
                check.set("protocol", "https")
        if where.loopback:
            ctx.approximated(spec, "health", f"Nomad checks the node's address at port {where.port}, not "
                                             f"{where.host}: the process must listen there")
    elif isinstance(health.check, HeartbeatCheck):
        check.set("type", "script")
        check.set("command", "python3")
        check.set("args", probe_argv(health, interval=0, attempts=1, initial_delay=0)[1:])
        ctx.note(spec, "health", "the heartbeat check is a Consul script check running python3 (pmtop's probe, "
                                 "standard library only)")
    elif isinstance(health.check, ExecCheck):
        command = health.check.command
        check.set("type", "script")
        check.set("command", command[0])
        if command[1:]:
            check.set("args", list(command[1:]))
        ctx.note(spec, "health", "exec checks become Consul script checks (provider = \"consul\"); "
                                 "the command must be an absolute path")
    interval, timeout = max(health.interval, MIN_CHECK), max(health.timeout, MIN_CHECK)
    check.set("interval", seconds(interval))
    check.set("timeout", seconds(timeout))
    if (interval, timeout) != (health.interval, health.timeout):
        ctx.approximated(spec, "health", f"interval {seconds(health.interval)} / timeout "
                                         f"{seconds(health.timeout)}: Nomad checks no faster than every 1s")
    restart = check.block("check_restart")
    restart.set("limit", health.failures)
    startup = health.startup
    if startup is not None:
        grace = startup.initial_delay + startup.interval * startup.max_attempts
        restart.set("grace", seconds(math.ceil(grace)))
        ctx.approximated(spec, "health.startup", f"{startup.max_attempts} probes every "
                                                 f"{seconds(startup.interval)}: Nomad gives the task "
                                                 f"check_restart.grace = {seconds(math.ceil(grace))} instead")
        if startup.fail_action is not FailAction.RESTART:
            ctx.approximated(spec, "health.startup.fail_action", f'"{startup.fail_action}": Nomad restarts '
                                                                 "a task whose checks keep failing")
    service.body.append(check)


@RULES.maps("port")
def _port(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    if spec.port is None:
        return
    label = dns_label(spec.name).replace("-", "_")
    if task.ports.get(label, spec.port) != spec.port:  # its health check connects elsewhere
        label += "_port"
    task.ports[label] = spec.port
    ctx.approximated(spec, "port", f"a static port {spec.port} on the node: Nomad places the group where it is "
                                   "free, rather than failing the start as pmtop does")


@RULES.maps("env_file")
def _env_file(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    """A template per file, read on the node at each start and turned into the task's environment."""
    for i, file in enumerate(spec.env_file, start=1):
        template = task.block.block("template")
        template.set("source", file)
        template.set("destination", f"local/env-{i}.env")
        template.set("env", True)
    if spec.env_file:
        ctx.approximated(spec, "env_file", "template blocks with env = true: the files must exist on the node, are "
                                           "read at each start and rendered as templates ({{ }} is Nomad's syntax)")


@RULES.maps("ready_log_line")
def _ready_log_line(spec: ProcessSpec, task: Task, ctx: Context) -> None:
    if spec.ready_log_line is not None:
        ctx.dropped(spec, "ready_log_line", f"/{spec.ready_log_line}/: Nomad cannot wait for a line of output; a "
                                            "check on the service is its way to say ready")


# ----------------------------------------------------------------------------------------- render

def render(config: Config, options: ExportOptions) -> ExportResult:
    app = options.name
    report = Report()
    source = config.path.name if config.path else "pmtop.toml"
    waiters = dependents(config)
    jobs = {"service": Block("job", (app,)), "batch": Block("job", (f"{app}-batch",))}
    for kind, job in jobs.items():
        job.comment(f"The processes of {source}, written by `pmtop export nomad`.")
        job.set("type", kind)
    scheduled = [spec for spec in config.processes if spec.schedule is not None]
    for island in islands(_without(config, scheduled, report)):
        batch = all(spec.restart.policy is RestartPolicy.NO for spec in island)
        _group(jobs["batch" if batch else "service"], island, waiters, app, batch, report)
    periodic = {}
    for spec in scheduled:
        job = periodic[f"{app}-{spec.name}.nomad.hcl"] = Block("job", (f"{app}-{spec.name}",))
        job.comment(f"{spec.name} of {source} on its schedule, written by `pmtop export nomad`.")
        job.set("type", "batch")
        assert spec.schedule is not None
        block = job.block("periodic")
        block.set("crons", [cron_line(spec.schedule.rule, seconds=True).text])
        block.set("prohibit_overlap", True)
        zone = zone_name()
        if zone is not None:
            block.set("time_zone", zone)
        if not spec.enabled:
            block.set("enabled", False)
        _group(job, [dataclasses.replace(spec, depends_on={})], {}, app, True, report, rules_spec=spec)
    for setting, detail in app_notes(logs="nomad alloc logs (rotated by the logs block)",
                                     control="the Nomad API and its ACL tokens"):
        report.note(setting, detail)
    report.note("reschedule", "off (attempts = 0), as pmtop keeps a failed process failed on its machine; "
                              "turn it on to let Nomad move a failed group to another node")
    files = {f"{app}.nomad.hcl": jobs["service"].render() + "\n"}
    if any(isinstance(item, Block) for item in jobs["batch"].body):
        files[f"{app}-batch.nomad.hcl"] = jobs["batch"].render() + "\n"
    if not any(isinstance(item, Block) for item in jobs["service"].body):
        del files[f"{app}.nomad.hcl"]
    files.update({name: job.render() + "\n" for name, job in periodic.items()})
    return ExportResult(target="nomad", files=files, losses=tuple(report.losses))


def _without(config: Config, scheduled: list[ProcessSpec], report: Report) -> Config:
    """The config without its scheduled processes (each is a job of its own), and nothing waiting for them."""
    gone = {spec.name for spec in scheduled}
    kept = []
    for spec in config.processes:
        if spec.name in gone:
            continue
        waits = [dep for dep in spec.depends_on if dep in gone]
        for dep in waits:
            report.approximated("depends_on", f"{dep} is a periodic job of its own: nothing orders "
                                              f"{spec.name} after it", spec.name)
        kept.append(dataclasses.replace(spec, depends_on={d: c for d, c in spec.depends_on.items() if d not in gone}))
    return dataclasses.replace(config, processes=tuple(kept))


def _group(job: Block, island: list[ProcessSpec], waiters: dict[str, dict[str, DependencyCondition]],
           app: str, batch: bool, report: Report, *, rules_spec: ProcessSpec | None = None) -> None:
    ordered = start_order(island)
    group = job.block("group", ordered[-1].name)
    running = [spec for spec in island if spec.enabled and (spec.autostart or spec.schedule is not None)]
    replicas = [spec for spec in island if spec.replicas is not None]
    count = replicas[0].replicas if len(island) == 1 and replicas and replicas[0].replicas is not None else 1
    group.set("count", count if running else 0)
    for spec in replicas if len(island) > 1 else ():
        report.approximated("replicas", f"{spec.replicas}: shares group {ordered[-1].name!r} with the processes it "
                                        "depends on or that depend on it; count = 1", spec.name)
    if running and len(running) < len(island):
        for spec in island:
            if spec not in running:
                report.approximated("enabled" if not spec.enabled else "autostart",
                                    f"Nomad starts every task of group {ordered[-1].name!r}: "
                                    f"{spec.name} runs with the others", spec.name)
    elif not running:
        report.note("enabled", f"group {ordered[-1].name!r} has count = 0: "
                               f"`nomad job scale {job.labels[0]} {ordered[-1].name} 1` starts it")
    reschedule = group.block("reschedule")
    reschedule.set("attempts", 0)
    reschedule.set("unlimited", False)
    network = Block("network")
    provider = "consul" if any(s.health and isinstance(s.health.check, ExecCheck | HeartbeatCheck)
                               for s in island) else "nomad"
    tasks = []
    for spec in ordered:
        conditions = set(waiters.get(spec.name, {}).values())
        role = "main"
        if conditions and not spec.depends_on:
            role = "prestart" if DependencyCondition.COMPLETED in conditions else "sidecar"
        task = Task(process=spec, block=Block("task", (spec.name,)), group=group, app=app, batch=batch,
                    provider=provider, role=role)
        RULES.apply(rules_spec or spec, task, report)
        if role != "main":
            lifecycle = task.block.block("lifecycle")
            lifecycle.set("hook", "prestart")
            lifecycle.set("sidecar", role == "sidecar")
        tasks.append(task)
        for label, port in task.ports.items():
            network.block("port", label).set("static", port)
    roles = {task.process.name: task.role for task in tasks}
    for spec in island:
        for dep in spec.depends_on:
            if roles[dep] == "main":
                report.approximated("depends_on", f"{dep} depends on others itself, so both run as main tasks: "
                                                  f"Nomad orders only prestart before main", spec.name)
    if network.body:
        group.body.append(network)
    group.body.extend(task.block for task in tasks)


TARGET: Final = SimpleTarget(name="nomad", summary="a Nomad job (HCL, raw_exec)", renderer=render)
