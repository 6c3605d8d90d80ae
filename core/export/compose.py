"""A Compose file: one service per process; `depends_on` conditions map one to one.

    docker compose -f APP.compose.yaml up -d

`started` -> `service_started`, `healthy` -> `service_healthy`, `completed` ->
`service_completed_successfully`. The argv is the service's `entrypoint` (which replaces the image's
ENTRYPOINT and CMD, so the argv runs exactly as written). `[health]` becomes a `healthcheck`: exec checks
run their own command; http and tcp checks run pmtop's probe (`common.PROBE_SCRIPT`, one attempt) with
the image's `python3`. Log rotation is the json-file driver's `max-size`/`max-file`. A disabled process
gets the profile `disabled`, a not-autostarted one `manual`, so `docker compose up` leaves them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from ..checks.exec import ExecCheck
from ..config import Config
from ..model import DependencyCondition, FailAction, ProcessSpec, RestartPolicy, Scope
from .common import PROBE_SCRIPT, describe_check, number, probe_target, probeable, seconds
from .model import ExportOptions, ExportResult, SimpleTarget
from .notes import app_notes
from .rules import Context, Report, Rules
from .yaml_text import dump_all

PLACEHOLDER_IMAGE: Final = "registry.example/REPLACE-ME:latest"
CONDITIONS: Final = {
    DependencyCondition.STARTED: "service_started",
    DependencyCondition.HEALTHY: "service_healthy",
    DependencyCondition.COMPLETED: "service_completed_successfully",
}


def literal(text: str) -> str:
    """Compose interpolates `$VAR` in values; `$$` is a literal `$`."""
    return text.replace("$", "$$")


@dataclass(slots=True)
class Service:
    process: ProcessSpec
    image: str
    has_check: dict[str, bool]
    """For each process, whether its service has a healthcheck (`service_healthy` needs one)."""
    body: dict[str, Any] = field(default_factory=dict)


RULES: Final = Rules[Service]("compose")


@RULES.maps("command")
def _command(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    service.body["image"] = service.image
    service.body["entrypoint"] = [literal(word) for word in spec.command]


@RULES.maps("cwd")
def _cwd(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.cwd:
        service.body["working_dir"] = spec.cwd
        ctx.note(spec, "cwd", f"working_dir {spec.cwd} must exist in the image")


@RULES.maps("env")
def _env(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.env:
        service.body["environment"] = {key: literal(value) for key, value in spec.env.items()}


@RULES.maps("env_file")
def _env_file(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    """(A setting of a later pmtop: Compose reads dotenv files itself, later ones winning.)"""
    files = ctx.settings.get("env_file")
    if files:
        service.body["env_file"] = [files] if isinstance(files, str) else list(files)


@RULES.maps("depends_on")
def _depends_on(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if not spec.depends_on:
        return
    needs: dict[str, dict[str, str]] = {}
    for dep, condition in spec.depends_on.items():
        if condition is DependencyCondition.HEALTHY and not service.has_check.get(dep, False):
            condition = DependencyCondition.STARTED  # pmtop: without a check, running is healthy
        needs[dep] = {"condition": CONDITIONS[condition]}
    service.body["depends_on"] = needs


@RULES.maps("autostart", "enabled", "scope")
def _membership(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if not spec.enabled:
        service.body["profiles"] = ["disabled"]
        ctx.note(spec, "enabled", "false: profile \"disabled\", left out of `docker compose up`")
    elif not spec.autostart:
        service.body["profiles"] = ["manual"]
        ctx.note(spec, "autostart", "false: profile \"manual\" (`docker compose --profile manual up` starts it)")
    if spec.scope is Scope.SESSION:
        ctx.dropped(spec, "scope", '"session": nothing stops the service when a session PID exits')


@RULES.maps("restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval")
def _restart(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    restart = spec.restart
    if restart.policy is RestartPolicy.NO:
        service.body["restart"] = "no"
        return
    if restart.policy is RestartPolicy.ALWAYS:
        service.body["restart"] = "always"
        if not restart.retry_forever:
            ctx.approximated(spec, "max_restarts", f'"always" never gives up (pmtop: failed after '
                                                   f"{restart.max_restarts} consecutive failures)")
    elif restart.retry_forever:
        service.body["restart"] = "on-failure"
    else:
        service.body["restart"] = f"on-failure:{restart.max_restarts}"
        ctx.approximated(spec, "max_restarts", f"on-failure:{restart.max_restarts} counts every restart of the "
                                               f"container (pmtop forgives after {seconds(restart.reset_after)} "
                                               "of running)")
    ctx.approximated(spec, "backoff", "Docker's own delay (100ms, doubling) replaces "
                                      "[" + ", ".join(seconds(b) for b in restart.backoff) + "]")


@RULES.maps("stop_signal", "stop_timeout")
def _stop(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    service.body["stop_signal"] = spec.stop_signal.name
    service.body["stop_grace_period"] = seconds(spec.stop_timeout)


@RULES.maps("log_max_bytes", "log_backups", "log_keep_runs")
def _logs(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    size = spec.logs.max_bytes
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size % factor == 0:
            text = f"{size // factor}{unit}"
            break
    else:
        text = f"{math.ceil(size / 1024)}k"
        ctx.approximated(spec, "log_max_bytes", f"rounded up to {text}")
    service.body["logging"] = {"driver": "json-file",
                               "options": {"max-size": text, "max-file": str(spec.logs.backups + 1)}}
    if "log_keep_runs" in ctx.settings:
        ctx.approximated(spec, "log_keep_runs", "a container's log ends with the container, not per run")


@RULES.maps("health")
def _health(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    health = spec.health
    if health is None:
        return
    if not probeable(health):
        ctx.dropped(spec, "health", f"{describe_check(health)}: Docker has no sd_notify (nothing hears READY=1 or "
                                    "keeps a watchdog); give the service a healthcheck")
        return
    kind = health.check
    if isinstance(kind, ExecCheck):
        test = ["CMD", *(literal(word) for word in kind.command)]
    else:
        target, rest = probe_target(health)
        test = ["CMD", "python3", "-c", PROBE_SCRIPT, health.type, literal(target), number(health.timeout),
                "0", "1", "0", *rest]
        ctx.note(spec, "health", f"{health.type} checks run python3 in the container (pmtop's probe, standard "
                                 "library only)")
    check: dict[str, Any] = {"test": test, "interval": seconds(health.interval),
                             "timeout": seconds(health.timeout), "retries": health.failures}
    startup = health.startup
    if startup is not None:
        check["start_period"] = seconds(startup.initial_delay + startup.interval * startup.max_attempts)
        check["start_interval"] = seconds(startup.interval)
        if startup.fail_action is not FailAction.RESTART:
            ctx.approximated(spec, "health.startup.fail_action", f'"{startup.fail_action}": a container that '
                                                                 "never passes is only marked unhealthy")
    service.body["healthcheck"] = check
    ctx.approximated(spec, "health", f"{health.failures} failures make the container unhealthy, but Docker "
                                     "does not restart it")


@RULES.maps("replicas")
def _replicas(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.replicas is None:
        return
    service.body.setdefault("deploy", {})["replicas"] = spec.replicas
    ctx.approximated(spec, "replicas", f"{spec.replicas}: deploy.replicas; the containers are alike (no "
                                       "PMTOP_REPLICA), `docker compose up --scale` scales it")


@RULES.maps("schedule", "overlap", "run_on_start", "catch_up")
def _schedule(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.schedule is not None:
        ctx.dropped(spec, "schedule", f"{spec.schedule.rule!r}: Compose has no scheduler; run "
                                      f"`docker compose run --rm {spec.name}` from cron or a systemd timer")


@RULES.maps("watch")
def _watch(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.watch is not None:
        ctx.dropped(spec, "watch", "`docker compose watch` (develop.watch) syncs host files into a container "
                                   "built from source; not written")


@RULES.maps("hooks")
def _hooks(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.hooks is not None:
        ctx.dropped(spec, "hooks", "on " + ", ".join(spec.hooks.on) + ": Compose has no hooks on state changes "
                                   "(watch `docker events` instead)")


@RULES.maps("port")
def _port(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    """The port the process listens on, published on the same host port (and given as $PORT, as pmtop does)."""
    port = spec.port
    if port is None:
        return
    service.body["ports"] = [f"{port}:{port}"]
    if "PORT" not in spec.env:
        service.body.setdefault("environment", {})["PORT"] = str(port)
    ctx.note(spec, "port", f"published as {port}:{port}; a busy host port fails `docker compose up` (pmtop: this "
                           "process is `failed`, naming the program that holds it)")


@RULES.maps("ready_log_line")
def _ready_log_line(spec: ProcessSpec, service: Service, ctx: Context) -> None:
    if spec.ready_log_line is not None:
        ctx.dropped(spec, "ready_log_line", f"/{spec.ready_log_line}/: Compose cannot wait for a line of output; "
                                            "a healthcheck (and service_healthy) is its way to say ready")


def render(config: Config, options: ExportOptions) -> ExportResult:
    app = options.name
    report = Report()
    image = options.image or PLACEHOLDER_IMAGE
    has_check = {spec.name: spec.health is not None for spec in config.processes}
    services = {}
    for spec in config.processes:
        service = Service(process=spec, image=image, has_check=has_check)
        RULES.apply(spec, service, report)
        services[spec.name] = service.body
    if options.image is None:
        report.approximated("image", f"host programs are not in a container: every service runs the "
                                     f"placeholder {PLACEHOLDER_IMAGE}; build an image that holds the commands "
                                     "and pass it with --image")
    else:
        report.note("image", f"every service runs {options.image}: it must hold the commands")
    for setting, detail in app_notes(logs="docker compose logs (json-file driver, rotated)",
                                     control="the Docker socket, i.e. root-equivalent"):
        report.note(setting, detail)
    report.note("networking", "each process is its own container with its own 127.0.0.1: processes reach "
                              "each other by service name")
    source = config.path.name if config.path else "pmtop.toml"
    header = f"# The processes of {source}, written by `pmtop export compose`.\n"
    text = dump_all([{"name": app, "services": services}], header)
    return ExportResult(target="compose", files={f"{app}.compose.yaml": text}, losses=tuple(report.losses))


TARGET: Final = SimpleTarget(name="compose", summary="a Compose file", renderer=render)
