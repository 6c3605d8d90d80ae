"""process-compose YAML: `processes:` with commands, `depends_on` conditions, probes and availability.

process-compose runs each command through its shell (`shell.shell_command`, bash by default), so a
command that needs one keeps it (`bash -c ...`); a plain one becomes the argv itself. The liveness
probe (else the readiness probe) becomes `[health]`; the readiness probe's timing becomes its `startup`
check (pmtop keeps a process `starting` until the first success, as readiness does). `ready_log_line`
(a substring there) becomes pmtop's own (a regex that matches that text literally); unlike process-compose,
pmtop combines it with the probe (both must pass). `replicas` and `watch` map to pmtop's own (replicas
counted from 1, not 0).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any, Final

from .model import Imported, ImportResult
from .shell import parse_command

CONDITIONS: Final = {
    "process_started": "started",
    "process_healthy": "healthy",
    "process_completed_successfully": "completed",
    "process_completed": "completed",
    "process_log_ready": "healthy",
}
RESTART: Final = {"always": "always", "on_failure": "on-failure", "exit_on_failure": "on-failure", "no": "no"}
KNOWN: Final = {"command", "working_dir", "environment", "depends_on", "availability", "liveness_probe",
                "readiness_probe", "shutdown", "replicas", "ready_log_line", "disabled", "description",
                "namespace", "is_daemon", "log_location", "launch_timeout_seconds", "watch"}


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".yaml", ".yml") and "processes:" in text


def read(path: Path, text: str) -> ImportResult:
    import yaml

    result = ImportResult(source="process-compose", path=str(path))
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict) or not isinstance(document.get("processes"), dict):
        raise ValueError("no `processes:` mapping")
    shell = document.get("shell") or {}
    shell_argv = (str(shell.get("shell_command", "bash")), str(shell.get("shell_argument", "-c")))
    env = _env(document.get("environment"))
    if env:
        result.defaults["env"] = env
    for key in document:
        if key not in ("version", "processes", "environment", "shell", "log_location", "log_level"):
            result.dropped(key, "a process-compose setting with no pmtop equivalent")
    for key in ("log_location", "log_level"):
        if key in document:
            result.note(key, "pmtop keeps each process's output per run in its own log folder")
    for name, body in document["processes"].items():
        process = result.add(str(name))
        _process(process, body or {}, shell_argv, result)
    return result


def _env(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    env = {}
    for item in value or []:
        key, _, val = str(item).partition("=")
        env[key] = val
    return env


def _seconds(value: Any) -> str:
    number = float(value)
    return f"{int(number)}s" if number.is_integer() else f"{round(number * 1000)}ms"


def _process(process: Imported, body: dict[str, Any], shell: tuple[str, str], result: ImportResult) -> None:
    table = process.table
    who = process.name
    parsed = parse_command(str(body.get("command", "false")), shell=shell)
    table["command"] = parsed.argv
    if parsed.shell:
        result.note("command", f"uses the shell: runs through `{' '.join(shell)}`, as process-compose did", who)
    if parsed.cwd or body.get("working_dir"):
        table["cwd"] = str(body.get("working_dir") or parsed.cwd)
    env = {**_env(body.get("environment")), **parsed.env}
    if env:
        table["env"] = env
    if body.get("disabled"):
        table["enabled"] = False
    needs = {}
    for dep, spec in (body.get("depends_on") or {}).items():
        condition = str((spec or {}).get("condition", "process_started"))
        needs[str(dep)] = CONDITIONS.get(condition, "started")
        if condition == "process_completed":
            result.approximated("depends_on", f"{dep}: process_completed (any exit) -> completed (exit 0)", who)
        elif condition == "process_log_ready":
            result.approximated("depends_on", f"{dep}: process_log_ready -> healthy: {dep} is healthy once its "
                                              "ready_log_line has been seen (and its check, if it has one, passed)",
                                who)
        elif condition not in CONDITIONS:
            result.approximated("depends_on", f"{dep}: unknown condition {condition!r} -> started", who)
    if needs:
        table["depends_on"] = needs
    _availability(process, body.get("availability") or {}, result)
    _probes(process, body, result)
    shutdown = body.get("shutdown") or {}
    if "signal" in shutdown:
        try:
            table["stop_signal"] = signal.Signals(int(shutdown["signal"])).name.removeprefix("SIG")
        except ValueError:
            result.dropped("shutdown.signal", f"unknown signal {shutdown['signal']!r}", who)
    if "timeout_seconds" in shutdown:
        table["stop_timeout"] = _seconds(shutdown["timeout_seconds"])
    if "command" in shutdown:
        result.dropped("shutdown.command", f"{shutdown['command']!r}: pmtop stops a process with its signal", who)
    if "replicas" in body:
        table["replicas"] = int(body["replicas"])
        result.approximated("replicas", f"{body['replicas']}: named {who}-1, {who}-2... with PMTOP_REPLICA from 1 "
                                        "(process-compose: -0, -1... and PC_REPLICA_NUM from 0)", who)
    if isinstance(body.get("watch"), dict):
        _watch(process, body["watch"], result)
    if "ready_log_line" in body:
        text = str(body["ready_log_line"])
        table["ready_log_line"] = re.escape(text).replace("\\ ", " ")  # a space needs no escape
        if table["ready_log_line"] != text:
            result.note("ready_log_line", f"{text!r} is a substring in process-compose; written as a regex that "
                                          "matches it literally", who)
        if liveness_or_readiness(body):
            result.note("ready_log_line", "pmtop waits for the line and the readiness probe (process-compose "
                                          "takes one or the other)", who)
    if body.get("is_daemon"):
        result.dropped("is_daemon", "pmtop supervises processes that stay in the foreground", who)
    for key in ("description", "namespace"):
        if key in body:
            process.comments.append(f"{key}: {body[key]}")
    for key in body:
        if key not in KNOWN:
            result.dropped(key, "no pmtop equivalent", who)


def liveness_or_readiness(body: dict[str, Any]) -> bool:
    return bool(body.get("readiness_probe") or body.get("liveness_probe"))


def _watch(process: Imported, watch: dict[str, Any], result: ImportResult) -> None:
    """process-compose's `watch: {paths: [{path, exclude}], debounce, cascade}`: the same thing in pmtop."""
    paths, ignore = [], []
    for item in watch.get("paths") or []:
        path = item.get("path") if isinstance(item, dict) else item
        if path:
            paths.append(str(path))
            ignore += [str(x) for x in (item.get("exclude") or [])] if isinstance(item, dict) else []
    if not paths:
        result.dropped("watch", "no paths to watch", process.name)
        return
    table: dict[str, Any] = {"paths": paths}
    if ignore:
        table["ignore"] = ignore
    if "debounce" in watch:
        table["debounce"] = str(watch["debounce"])
    if watch.get("cascade"):
        table["cascade"] = True
    process.table["watch"] = table
    for key in watch:
        if key not in ("paths", "debounce", "cascade"):
            result.dropped(f"watch.{key}", f"{watch[key]!r}: no pmtop equivalent", process.name)


def _availability(process: Imported, availability: dict[str, Any], result: ImportResult) -> None:
    table = process.table
    restart = str(availability.get("restart", "no"))
    table["restart"] = RESTART.get(restart, "no")
    if restart == "exit_on_failure":
        result.approximated("availability.restart", "exit_on_failure: pmtop restarts the process instead of "
                                                    "stopping everything", process.name)
    if table["restart"] == "no":
        return
    # process-compose's defaults: a constant 1s back-off, and no limit (max_restarts 0 = unlimited).
    table["backoff"] = [_seconds(availability.get("backoff_seconds", 1))]
    limit = int(availability.get("max_restarts", 0))
    if limit == 0:
        table["retry_forever"] = True
        table["retry_forever_interval"] = table["backoff"][0]
    else:
        table["max_restarts"] = limit


def _probes(process: Imported, body: dict[str, Any], result: ImportResult) -> None:
    liveness, readiness = body.get("liveness_probe"), body.get("readiness_probe")
    probe = liveness or readiness
    if not probe:
        return
    health = _check(process, probe, result)
    if health is None:
        return
    if readiness:
        health["startup"] = {"initial_delay": _seconds(readiness.get("initial_delay_seconds", 0)),
                             "interval": _seconds(readiness.get("period_seconds", 10)),
                             "max_attempts": int(readiness.get("failure_threshold", 3))}
        if liveness and _check(process, readiness, result) != {k: v for k, v in health.items() if k != "startup"}:
            result.approximated("readiness_probe", "pmtop has one check: the liveness probe's, with the "
                                                   "readiness probe's timing as its start-up check", process.name)
    if probe.get("success_threshold", 1) != 1:
        result.dropped("success_threshold", "pmtop counts one success as healthy", process.name)
    process.table["health"] = health


def _check(process: Imported, probe: dict[str, Any], result: ImportResult) -> dict[str, Any] | None:
    health: dict[str, Any]
    if "http_get" in probe:
        get = probe["http_get"]
        host = get.get("host", "127.0.0.1")
        url = f"{get.get('scheme', 'http')}://{host}:{int(get.get('port', 80))}{get.get('path', '/')}"
        health = {"type": "http", "url": url}
    elif "exec" in probe:
        parsed = parse_command(str(probe["exec"].get("command", "false")), shell=("bash", "-c"))
        health = {"type": "exec", "command": parsed.argv}
    else:
        result.dropped("probe", "neither http_get nor exec", process.name)
        return None
    health["interval"] = _seconds(probe.get("period_seconds", 10))
    health["timeout"] = _seconds(probe.get("timeout_seconds", 1))
    health["failures"] = int(probe.get("failure_threshold", 3))
    return health
