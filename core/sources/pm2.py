"""PM2 ecosystem files, as JSON (`ecosystem.config.json`, or a `.js` whose exported object is JSON).

PM2 picks an interpreter by the script's extension (node for .js, python for .py, bash for .sh, ...)
unless `interpreter` says otherwise (`none`: run the script itself). It restarts on any exit
(`autorestart`), gives up after `max_restarts` restarts that each lived less than `min_uptime`
(pmtop's `max_restarts` and `reset_after`), waits `restart_delay` or an exponential delay
(`exp_backoff_restart_delay`: x1.5 up to 15s) between them, and stops with SIGINT, then SIGKILL after
`kill_timeout`. `instances` become replicas, `watch`/`ignore_watch`/`watch_delay` a watch, and
`cron_restart` a schedule: a job's times (`autorestart: false`, PM2's way to write a cron job), or a
service's restarts (run at start-up, each time replacing the run that goes on).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any, Final

from ..schedule import parse_schedule
from .model import Imported, ImportResult

INTERPRETERS: Final = {".js": "node", ".mjs": "node", ".cjs": "node", ".ts": "ts-node", ".py": "python",
                       ".sh": "bash", ".rb": "ruby", ".php": "php", ".coffee": "coffee", ".pl": "perl"}
EXP_BACKOFF_MAX: Final = 15000
KNOWN: Final = {"name", "script", "args", "interpreter", "interpreter_args", "node_args", "cwd", "env",
                "instances", "exec_mode", "autorestart", "max_restarts", "min_uptime", "restart_delay",
                "exp_backoff_restart_delay", "kill_timeout", "watch", "ignore_watch", "cron_restart", "watch_delay"}


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".json", ".js", ".cjs") and "apps" in text


def _json_of(text: str) -> Any:
    """The JSON document, or the object a `module.exports = {...}` file exports when it is JSON."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    match = re.search(r"module\.exports\s*=\s*", text)
    if match is None:
        raise ValueError("neither JSON nor `module.exports = {...}`")
    body = text[match.end():].strip().rstrip(";").strip()
    try:
        return json.loads(body)
    except ValueError:
        raise ValueError("the exported object is not JSON; write it as JSON first: node -e "
                         "'console.log(JSON.stringify(require(\"./ecosystem.config.js\"), null, 2))'") from None


def _ms(value: Any) -> str:
    number = int(value) if isinstance(value, int | float) else int(str(value).removesuffix("ms") or 0)
    return f"{number // 1000}s" if number % 1000 == 0 else f"{number}ms"


def read(path: Path, text: str) -> ImportResult:
    result = ImportResult(source="pm2", path=str(path))
    document = _json_of(text)
    apps = document.get("apps") if isinstance(document, dict) else document
    if not isinstance(apps, list):
        raise ValueError("no `apps` list")
    for number, app in enumerate(apps):
        if not isinstance(app, dict) or "script" not in app:
            result.dropped("apps", f"entry {number} has no script")
            continue
        process = result.add(str(app.get("name") or PurePosixPath(str(app["script"])).stem))
        _app(process, app, result)
    return result


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(str(value))


def _app(process: Imported, app: dict[str, Any], result: ImportResult) -> None:
    table = process.table
    who = process.name
    script = str(app["script"])
    interpreter = app.get("interpreter")
    args = _words(app.get("args"))
    if interpreter is None:
        interpreter = INTERPRETERS.get(PurePosixPath(script).suffix)
        if interpreter is not None:
            result.note("interpreter", f"{script} runs with {interpreter}, as PM2 picks it by extension", who)
    if interpreter in (None, "none"):
        table["command"] = [script, *args]
    else:
        extra = _words(app.get("interpreter_args", app.get("node_args")))
        table["command"] = [str(interpreter), *extra, script, *args]
    if "cwd" in app:
        table["cwd"] = str(app["cwd"])
    if app.get("env"):
        table["env"] = {str(k): str(v) for k, v in app["env"].items()}
    for key in app:
        if key.startswith("env_"):
            result.dropped(key, "PM2's --env sets; only `env` is imported", who)
    table["restart"] = "always" if app.get("autorestart", True) else "no"
    table["max_restarts"] = int(app.get("max_restarts", 16))
    table["reset_after"] = _ms(app.get("min_uptime", 1000))
    if "exp_backoff_restart_delay" in app:
        delay, delays = float(app["exp_backoff_restart_delay"]), list[str]()
        while delay < EXP_BACKOFF_MAX and len(delays) < 20:
            delays.append(_ms(round(delay)))
            delay *= 1.5
        table["backoff"] = [*delays, _ms(EXP_BACKOFF_MAX)]
    else:
        table["backoff"] = [_ms(app.get("restart_delay", 0))]
    table["stop_signal"] = "INT"
    table["stop_timeout"] = _ms(app.get("kill_timeout", 1600))
    _instances(process, app, result)
    _watch(process, app, result)
    if "cron_restart" in app:
        _cron_restart(process, app, result)
    for key in app:
        if key not in KNOWN and not key.startswith("env_"):
            result.dropped(key, f"{json.dumps(app[key])[:40]}: no pmtop equivalent", who)


def _instances(process: Imported, app: dict[str, Any], result: ImportResult) -> None:
    """PM2's `instances` (cluster or fork mode): replicas; "max" and -1 count this machine's CPUs."""
    instances = app.get("instances", 1)
    cpus = os.cpu_count() or 1
    count = {"max": cpus, 0: cpus, "0": cpus, -1: max(1, cpus - 1), "-1": max(1, cpus - 1)}.get(instances)
    if count is None:
        try:
            count = int(instances)
        except (TypeError, ValueError):
            result.later(process, "replicas", json.dumps(instances), f"instances = {instances!r}")
            return
    if count == 1 and app.get("exec_mode") != "cluster":
        return
    process.table["replicas"] = count
    mode = app.get("exec_mode", "fork")
    result.approximated("instances", f"{instances!r} ({mode} mode): {count} replicas, each its own process with "
                                     "PMTOP_REPLICA from 1 (PM2: NODE_APP_INSTANCE from 0"
                                     + ("; cluster mode's shared port is not emulated: give each its own" if mode ==
                                        "cluster" else "") + ")", process.name)


def _watch(process: Imported, app: dict[str, Any], result: ImportResult) -> None:
    if not app.get("watch"):
        return
    paths = app["watch"] if isinstance(app["watch"], list) else ["."]
    table: dict[str, Any] = {"paths": [str(p) for p in paths]}
    if app.get("ignore_watch"):
        ignore = app["ignore_watch"]
        table["ignore"] = [str(i) for i in (ignore if isinstance(ignore, list) else [ignore])]
    if "watch_delay" in app:
        table["debounce"] = _ms(app["watch_delay"])
    process.table["watch"] = table
    result.note("watch", "pmtop also ignores .git, __pycache__, node_modules and editor files, and restarts "
                         "once per burst of changes", process.name)


def _cron_restart(process: Imported, app: dict[str, Any], result: ImportResult) -> None:
    """A job (`autorestart: false`) runs at those times; a service is restarted at them (started at start-up,
    each time replacing the run still going), which is what PM2 does."""
    rule = str(app["cron_restart"])
    try:
        parse_schedule(rule)
    except ValueError as exc:
        result.later(process, "schedule", json.dumps(rule), f"cron_restart {rule!r} ({exc})")
        return
    process.table["schedule"] = rule
    if app.get("autorestart", True) is False:
        return
    process.table["overlap"] = "replace"
    process.table["run_on_start"] = True
    result.approximated("cron_restart", f"{rule!r}: runs at start-up and is restarted at those times "
                                        "(overlap = \"replace\"); a clean exit in between is not restarted until "
                                        "the next time (PM2 would)", process.name)


def _inline(value: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
