"""Kubernetes manifests: a Deployment per process (a Job for `restart = "no"`), probes from `[health]`.

    kubectl apply -f APP.k8s.yaml

Host binaries are not in a container: every container runs `--image` (or a placeholder that the report
names), with the process's argv as its `command` (which replaces the image's ENTRYPOINT and CMD), its
`cwd` as `workingDir` and its `env`. The check becomes a liveness and a readiness probe (the same check,
`failureThreshold = failures`), and `startup` a startupProbe. Kubernetes has no start order between
workloads, so `depends_on` is reported, not written. A `schedule` makes a CronJob (`concurrencyPolicy`
from `overlap`, `timeZone` the local zone), `replicas` the Deployment's `replicas`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..checks.exec import ExecCheck
from ..checks.heartbeat import HeartbeatCheck
from ..checks.tcp import TcpCheck
from ..config import Config
from ..model import FailAction, HealthSpec, ProcessSpec, RestartPolicy, Scope
from .common import describe_check, dns_label, endpoint, probe_argv, probeable, seconds, whole_seconds
from .model import ExportOptions, ExportResult, SimpleTarget
from .notes import app_notes
from .rules import Context, Report, Rules
from .timers import cron_line, zone_name
from .yaml_text import dump_all

PLACEHOLDER_IMAGE: Final = "registry.example/REPLACE-ME:latest"


@dataclass(slots=True)
class Workload:
    process: ProcessSpec
    app: str
    image: str
    job: bool
    container: dict[str, Any] = field(default_factory=dict)
    pod: dict[str, Any] = field(default_factory=dict)
    """Pod spec keys besides `containers`."""
    spec: dict[str, Any] = field(default_factory=dict)
    """Deployment or Job spec keys besides the template."""
    cron: dict[str, Any] = field(default_factory=dict)
    """A scheduled process's CronJob spec keys besides the job template."""

    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.process.name, "app.kubernetes.io/part-of": self.app}

    def manifest(self) -> dict[str, Any]:
        name = dns_label(f"{self.app}-{self.process.name}")
        template = {"metadata": {"labels": self.labels()},
                    "spec": {**self.pod, "containers": [self.container]}}
        if self.cron:
            return {"apiVersion": "batch/v1", "kind": "CronJob",
                    "metadata": {"name": name, "labels": self.labels()},
                    "spec": {**self.cron, "jobTemplate": {"spec": {**self.spec, "template": template}}}}
        if self.job:
            return {"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": name, "labels": self.labels()},
                    "spec": {**self.spec, "template": template}}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": self.labels()},
                "spec": {**self.spec, "selector": {"matchLabels": self.labels()}, "template": template}}


RULES: Final = Rules[Workload]("kubernetes")


@RULES.maps("command")
def _command(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    work.container["name"] = dns_label(spec.name)
    work.container["image"] = work.image
    work.container["command"] = list(spec.command)


@RULES.maps("cwd")
def _cwd(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.cwd:
        work.container["workingDir"] = spec.cwd
        ctx.note(spec, "cwd", f"workingDir {spec.cwd} must exist in the image")


@RULES.maps("env")
def _env(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.env:
        work.container["env"] = [{"name": key, "value": value} for key, value in spec.env.items()]


@RULES.maps("depends_on")
def _depends_on(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    for dep, condition in spec.depends_on.items():
        ctx.dropped(spec, "depends_on", f"{dep} = {condition}: Kubernetes has no start order between "
                                        "workloads (wait in an initContainer, or retry in the app)")


@RULES.maps("autostart", "enabled", "scope")
def _membership(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if not (spec.enabled and spec.autostart):
        key = "enabled" if not spec.enabled else "autostart"
        if work.job:
            work.spec["suspend"] = True
            ctx.note(spec, key, "false: the Job is suspended (spec.suspend: true)")
        else:
            work.spec["replicas"] = 0
            ctx.note(spec, key, "false: replicas: 0 (kubectl scale starts it)")
    elif not work.job:
        work.spec["replicas"] = 1
    if spec.scope is Scope.SESSION:
        ctx.dropped(spec, "scope", '"session": nothing stops the workload when a session PID exits')


@RULES.maps("restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval")
def _restart(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    restart = spec.restart
    if work.job:
        work.pod["restartPolicy"] = "Never"
        work.spec["backoffLimit"] = 0
        if spec.schedule is not None and restart.policy is not RestartPolicy.NO:
            work.spec["backoffLimit"] = restart.max_restarts
            ctx.approximated(spec, "backoff", f"a failed run is retried up to backoffLimit: {restart.max_restarts} "
                                              "times, with the Job controller's own back-off (10s, doubling)")
        return
    if restart.policy is RestartPolicy.ON_FAILURE:
        ctx.approximated(spec, "restart", '"on-failure": a Deployment restarts its container after a clean '
                                          "exit too")
    ctx.approximated(spec, "backoff", "kubelet's own back-off (10s, doubling to 5m) replaces "
                                      "[" + ", ".join(seconds(b) for b in restart.backoff) + "]")
    if not restart.retry_forever:
        ctx.approximated(spec, "max_restarts", f"a Deployment never gives up (pmtop: failed after "
                                               f"{restart.max_restarts} consecutive failures)")


@RULES.maps("stop_signal", "stop_timeout")
def _stop(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    grace = whole_seconds(spec.stop_timeout)
    work.pod["terminationGracePeriodSeconds"] = grace
    if grace != spec.stop_timeout:
        ctx.approximated(spec, "stop_timeout", f"{seconds(spec.stop_timeout)} -> terminationGracePeriodSeconds: "
                                               f"{grace} (whole seconds)")
    if spec.stop_signal.name != "SIGTERM":
        ctx.approximated(spec, "stop_signal", f"{spec.stop_signal.name}: the kubelet sends the image's "
                                              "STOPSIGNAL (SIGTERM unless the image says otherwise)")


@RULES.maps("log_max_bytes", "log_backups", "log_keep_runs")
def _logs(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    for key in ("log_max_bytes", "log_backups", "log_keep_runs"):
        if key in ctx.settings:
            ctx.approximated(spec, key, "the kubelet rotates container logs by its own settings "
                                        "(containerLogMaxSize, containerLogMaxFiles)")


def _probe(spec: ProcessSpec, health: HealthSpec, ctx: Context) -> dict[str, Any]:
    where = endpoint(health)
    if isinstance(health.check, ExecCheck):
        return {"exec": {"command": list(health.check.command)}}
    if isinstance(health.check, HeartbeatCheck):
        ctx.note(spec, "health", "the heartbeat check runs python3 in the container (pmtop's probe, standard "
                                 "library only); the file must be in the container")
        return {"exec": {"command": probe_argv(health, interval=0, attempts=1, initial_delay=0)}}
    assert where is not None
    if where.loopback:
        ctx.approximated(spec, "health", f"{describe_check(health)}: the kubelet probes the pod's IP, not "
                                         f"{where.host}: the process must listen on 0.0.0.0")
    if isinstance(health.check, TcpCheck):
        return {"tcpSocket": {"port": where.port}}
    return {"httpGet": {"path": where.path, "port": where.port, "scheme": where.scheme.upper()}}


def _timing(spec: ProcessSpec, ctx: Context, setting: str, **values: float) -> dict[str, int]:
    """Kubernetes takes whole seconds (at least 1); a rounded value is reported."""
    out = {}
    for key, value in values.items():
        whole = whole_seconds(value, 0 if key == "initialDelaySeconds" else 1)
        out[key] = whole
        if whole != value:
            ctx.approximated(spec, setting, f"{key}: {seconds(value)} -> {whole} (whole seconds, at least 1)")
    return out


@RULES.maps("health")
def _health(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    health = spec.health
    if health is None:
        return
    if not probeable(health):
        ctx.dropped(spec, "health", f"{describe_check(health)}: Kubernetes has no sd_notify (the kubelet neither "
                                    "hears READY=1 nor keeps a watchdog); give the container a readiness probe")
        return
    probe = _probe(spec, health, ctx)
    timing = _timing(spec, ctx, "health", periodSeconds=health.interval, timeoutSeconds=health.timeout)
    work.container["livenessProbe"] = {**probe, **timing, "failureThreshold": health.failures}
    work.container["readinessProbe"] = {**probe, **timing, "failureThreshold": health.failures}
    startup = health.startup
    if startup is not None:
        work.container["startupProbe"] = {
            **probe,
            **_timing(spec, ctx, "health.startup", initialDelaySeconds=startup.initial_delay,
                      periodSeconds=startup.interval, timeoutSeconds=health.timeout),
            "failureThreshold": startup.max_attempts,
        }
        if startup.fail_action is not FailAction.RESTART:
            ctx.approximated(spec, "health.startup.fail_action", f'"{startup.fail_action}": the kubelet '
                                                                 "restarts a container whose startupProbe fails")


@RULES.maps("schedule", "overlap", "run_on_start", "catch_up")
def _schedule(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    schedule = spec.schedule
    if schedule is None:
        return
    line = cron_line(schedule.rule)
    work.cron["schedule"] = line.text
    if not line.exact:
        ctx.approximated(spec, "schedule", line.why)
    zone = zone_name()
    if zone is not None:
        work.cron["timeZone"] = zone
    else:
        ctx.approximated(spec, "schedule", "the local time zone has no name here: the CronJob runs in the "
                                           "controller's zone (set spec.timeZone)")
    policy = {"skip": "Forbid", "queue": "Forbid", "replace": "Replace"}[schedule.overlap.value]
    work.cron["concurrencyPolicy"] = policy
    if schedule.overlap.value == "queue":
        ctx.approximated(spec, "overlap", '"queue": concurrencyPolicy: Forbid skips a time while a run goes on')
    if schedule.catch_up:
        work.cron["startingDeadlineSeconds"] = 3600
        ctx.approximated(spec, "catch_up", "true: a time missed by less than startingDeadlineSeconds (1h) is "
                                           "started late, once")
    else:
        work.cron["startingDeadlineSeconds"] = 60
        ctx.note(spec, "catch_up", "false: a time missed by more than a minute is skipped "
                                   "(startingDeadlineSeconds: 60)")
    if schedule.run_on_start:
        ctx.dropped(spec, "run_on_start", "a CronJob does not run when it is created "
                                          "(kubectl create job --from=cronjob/NAME runs it once)")
    if not (spec.enabled and spec.autostart):
        work.cron["suspend"] = True


@RULES.maps("replicas")
def _replicas(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.replicas is None:
        return
    if work.job or work.cron:
        work.spec["parallelism"] = work.spec["completions"] = spec.replicas
        work.spec["completionMode"] = "Indexed"
        ctx.approximated(spec, "replicas", f"{spec.replicas}: an Indexed Job; each pod has "
                                           "JOB_COMPLETION_INDEX (from 0) instead of PMTOP_REPLICA (from 1)")
        return
    if spec.enabled and spec.autostart:
        work.spec["replicas"] = spec.replicas
    ctx.approximated(spec, "replicas", f"{spec.replicas}: Deployment replicas are alike: no PMTOP_REPLICA "
                                       "(a StatefulSet gives each an ordinal); `kubectl scale` scales it")


@RULES.maps("watch")
def _watch(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.watch is not None:
        ctx.dropped(spec, "watch", "a container's files come from its image: rebuild and roll out instead")


@RULES.maps("hooks")
def _hooks(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.hooks is not None:
        ctx.dropped(spec, "hooks", "on " + ", ".join(spec.hooks.on) + ": use the cluster's alerting "
                                   "(kube-state-metrics and Alertmanager) instead")


@RULES.maps("ready_log_line")
def _ready_log_line(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    """No probe can read a container's log: a note for a startupProbe."""
    if spec.ready_log_line is None:
        return
    instead = ("the startupProbe from [health] is its only start gate now" if "startupProbe" in work.container
               else "give the container a startupProbe that checks readiness instead (a file it writes once "
                    "ready, an endpoint)")
    ctx.dropped(spec, "ready_log_line", f"/{spec.ready_log_line}/: a probe cannot read the container's log; {instead}")


@RULES.maps("env_file")
def _env_file(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    """The files are on this machine, not in the cluster: a ConfigMap per file, made from it by kubectl."""
    if not spec.env_file:
        return
    names = [dns_label(f"{work.app}-{spec.name}-env" + (f"-{i}" if len(spec.env_file) > 1 else ""))
             for i in range(1, len(spec.env_file) + 1)]
    work.container["envFrom"] = [{"configMapRef": {"name": name}} for name in names]  # later ones win, env over all
    made = "; ".join(f"kubectl create configmap {name} --from-env-file={file}"
                     for name, file in zip(names, spec.env_file, strict=True))
    ctx.approximated(spec, "env_file", f"envFrom ConfigMaps that must exist first: {made} (use a Secret for "
                                       "secrets; Kubernetes does not expand ${VAR} in them)")


@RULES.maps("port")
def _port(spec: ProcessSpec, work: Workload, ctx: Context) -> None:
    if spec.port is None:
        return
    work.container["ports"] = [{"containerPort": spec.port, "protocol": "TCP"}]
    if "PORT" not in spec.env:
        work.container.setdefault("env", []).append({"name": "PORT", "value": str(spec.port)})
    ctx.note(spec, "port", f"containerPort {spec.port}: each pod has its own network, so no other program can "
                           "hold it (pmtop checks it is free before each start)")


def render(config: Config, options: ExportOptions) -> ExportResult:
    app = options.name
    report = Report()
    image = options.image or PLACEHOLDER_IMAGE
    documents = []
    for spec in config.processes:
        job = spec.restart.policy is RestartPolicy.NO or spec.schedule is not None
        work = Workload(process=spec, app=app, image=image, job=job)
        RULES.apply(spec, work, report)
        documents.append(work.manifest())
    if options.image is None:
        report.approximated("image", f"host programs are not in a container: every container runs the "
                                     f"placeholder {PLACEHOLDER_IMAGE}; build an image that holds the commands "
                                     "and pass it with --image")
    else:
        report.note("image", f"every container runs {options.image}: it must hold the commands")
    for setting, detail in app_notes(logs="kubectl logs (the previous run: --previous)",
                                     control="the Kubernetes API and its RBAC"):
        report.note(setting, detail)
    report.note("networking", "each process is its own pod with its own 127.0.0.1: processes reach each "
                              "other through Services, which are not written")
    source = config.path.name if config.path else "pmtop.toml"
    header = f"# The processes of {source}, written by `pmtop export kubernetes`.\n"
    return ExportResult(target="kubernetes", files={f"{app}.k8s.yaml": dump_all(documents, header)},
                        losses=tuple(report.losses))


TARGET: Final = SimpleTarget(name="kubernetes", summary="Kubernetes Deployments and Jobs with probes",
                             renderer=render)
