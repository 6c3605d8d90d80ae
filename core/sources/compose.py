"""Compose files: each service's command, environment, `depends_on` conditions, healthcheck and restart.

The other half of `pmtop export compose`, so that an export can be read back: the service's
`entrypoint` + `command` are the argv (Compose splits a string like a shell, without running one),
a healthcheck that runs pmtop's own probe becomes the http or tcp check it came from, any other
`CMD` healthcheck an exec check. The image and everything container-specific are reported.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Final

from ..export.common import PROBE_SCRIPT
from .model import Imported, ImportResult

CONDITIONS: Final = {"service_started": "started", "service_healthy": "healthy",
                     "service_completed_successfully": "completed"}
KNOWN: Final = {"deploy", "scale", "image", "entrypoint", "command", "working_dir", "environment", "depends_on",
                "restart", "stop_signal", "stop_grace_period", "healthcheck", "logging", "profiles", "build",
                "env_file", "ports"}


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".yaml", ".yml") and re.search(r"^services:", text, re.M) is not None


def _literal(text: str) -> str:
    return text.replace("$$", "$")


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [_literal(str(v)) for v in value]
    return [_literal(w) for w in shlex.split(str(value))]


def read(path: Path, text: str) -> ImportResult:
    import yaml

    result = ImportResult(source="compose", path=str(path))
    document = yaml.safe_load(text) or {}
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise ValueError("no `services:` mapping")
    for name, body in services.items():
        _service(result.add(str(name)), body or {}, result)
    return result


def _duration(value: Any) -> str:
    return str(value).replace(" ", "")


def _service(process: Imported, body: dict[str, Any], result: ImportResult) -> None:
    table, who = process.table, process.name
    argv = [*_words(body.get("entrypoint")), *_words(body.get("command"))]
    if not argv:
        result.dropped("command", "none given: the image's default command; written as `false`", who)
        argv = ["false"]
    table["command"] = argv
    if "image" in body:
        process.comments.append(f"image: {body['image']}")
        result.note("image", f"{body['image']}: pmtop runs the command on this machine", who)
    if "working_dir" in body:
        table["cwd"] = str(body["working_dir"])
    environment = body.get("environment")
    if isinstance(environment, dict):
        table["env"] = {str(k): _literal(str(v)) for k, v in environment.items() if v is not None}
    elif isinstance(environment, list):
        table["env"] = dict(_literal(str(item)).partition("=")[::2] for item in environment)
    _env_file(process, body.get("env_file"), result)
    _ports(process, body.get("ports"), result)
    depends = body.get("depends_on")
    if isinstance(depends, list):
        table["depends_on"] = [str(d) for d in depends]
    elif isinstance(depends, dict):
        table["depends_on"] = {str(d): CONDITIONS.get(str((s or {}).get("condition", "service_started")), "started")
                               for d, s in depends.items()}
    _restart(process, str(body.get("restart", "no")), result)
    if "stop_signal" in body:
        table["stop_signal"] = str(body["stop_signal"]).removeprefix("SIG")
    if "stop_grace_period" in body:
        table["stop_timeout"] = _duration(body["stop_grace_period"])
    _logging(process, body.get("logging") or {}, result)
    profiles = body.get("profiles") or []
    if "disabled" in profiles:
        table["enabled"] = False
    elif profiles:
        table["autostart"] = False
    if body.get("healthcheck"):
        _healthcheck(process, body["healthcheck"], result)
    deploy = body.get("deploy") or {}
    if isinstance(deploy, dict) and isinstance(deploy.get("replicas"), int):
        table["replicas"] = deploy["replicas"]
        result.approximated("deploy.replicas", f"{deploy['replicas']}: replicas {who}-1... each told apart by "
                                               "PMTOP_REPLICA (a port they share in Compose needs one each here)", who)
        for key in deploy:
            if key != "replicas":
                result.dropped(f"deploy.{key}", "container-specific, no pmtop equivalent", who)
    elif "scale" in body and isinstance(body["scale"], int):
        table["replicas"] = body["scale"]
    for key in body:
        if key not in KNOWN:
            result.dropped(key, "container-specific, no pmtop equivalent", who)


def _env_file(process: Imported, value: Any, result: ImportResult) -> None:
    """Compose's `env_file` (a path, a list, or entries with `path` and `required`) is pmtop's own."""
    if value is None:
        return
    entries = value if isinstance(value, list) else [value]
    files = []
    for entry in entries:
        if isinstance(entry, dict):
            if not entry.get("required", True):
                result.approximated("env_file", f"{entry.get('path')}: optional in Compose, required by pmtop",
                                    process.name)
            entry = entry.get("path")
        files.append(str(entry))
    process.table["env_file"] = files[0] if len(files) == 1 else files


_PORT: Final = re.compile(r"(?:(?:\[[^\]]*\]|[^:]*):)?(?:(\d+)(?:-\d+)?:)?(\d+)(?:-\d+)?(?:/(tcp|udp))?")


def _ports(process: Imported, value: Any, result: ImportResult) -> None:
    """The first TCP port the container listens on (the published one's target) becomes `port`."""
    targets: list[int] = []
    for entry in value or []:
        if isinstance(entry, dict):
            if entry.get("protocol", "tcp") == "tcp" and "target" in entry:
                targets.append(int(entry["target"]))
            continue
        match = _PORT.fullmatch(str(entry))
        if match is not None and match.group(3) in (None, "tcp"):
            targets.append(int(match.group(2)))
    if not targets:
        return
    process.table["port"] = targets[0]
    env = process.table.get("env", {})
    if env.get("PORT") == str(targets[0]):
        del env["PORT"]  # pmtop gives $PORT itself
    if len(targets) > 1:
        result.dropped("ports", f"{', '.join(map(str, targets[1:]))}: pmtop declares one port per process",
                       process.name)
    result.note("ports", f"{targets[0]} is the port the process listens on on this machine (nothing to publish)",
                process.name)


def _restart(process: Imported, restart: str, result: ImportResult) -> None:
    table = process.table
    if restart.startswith("on-failure"):
        table["restart"] = "on-failure"
        _, _, count = restart.partition(":")
        if count:
            table["max_restarts"] = int(count)
        else:
            table["retry_forever"] = True
    elif restart in ("always", "unless-stopped"):
        table["restart"] = "always"
        table["retry_forever"] = True
    else:
        table["restart"] = "no"


def _logging(process: Imported, logging: dict[str, Any], result: ImportResult) -> None:
    options = logging.get("options") or {}
    if "max-size" in options:
        size = str(options["max-size"]).upper()
        process.table["log_max_bytes"] = size + ("B" if size[-1:] in "KMG" else "")
    if "max-file" in options:
        process.table["log_backups"] = max(0, int(options["max-file"]) - 1)


def _healthcheck(process: Imported, check: dict[str, Any], result: ImportResult) -> None:
    test = check.get("test")
    if check.get("disable") or test in (["NONE"], "NONE"):
        return
    words = [_literal(str(w)) for w in test] if isinstance(test, list) else ["CMD-SHELL", str(test)]
    health: dict[str, Any]
    if words[0] == "CMD" and len(words) >= 6 and words[2:4] == ["-c", PROBE_SCRIPT] and words[4] in ("http", "tcp"):
        kind, target = words[4], words[5]
        health = {"type": kind, "url" if kind == "http" else "address": target}
    elif words[0] == "CMD" and len(words) >= 11 and words[2:4] == ["-c", PROBE_SCRIPT] and words[4] == "heartbeat":
        health = {"type": "heartbeat", "path": words[5], "max_age": float(words[10])}
    elif words[0] == "CMD":
        health = {"type": "exec", "command": words[1:]}
    else:
        health = {"type": "exec", "command": ["sh", "-c", " ".join(words[1:])]}
    for key, name in (("interval", "interval"), ("timeout", "timeout")):
        if key in check:
            health[name] = _duration(check[key])
    if "retries" in check:
        health["failures"] = int(check["retries"])
    if "start_interval" in check:
        health["startup"] = {"interval": _duration(check["start_interval"])}
        result.approximated("healthcheck.start_period", "the start period becomes a start-up check at "
                                                        "start_interval", process.name)
    process.table["health"] = health
