"""A Procfile: `name: command` lines for foreman, honcho, Heroku and friends.

A Procfile line is a shell command, so the argv is joined with POSIX shell quoting (`shlex.join`): the
shell's word splitting gives back exactly the argv. `env` becomes `KEY=value` assignments before the
command and a `cwd` other than the config's folder a leading `cd DIR &&` (runners start commands in the
Procfile's folder, so the Procfile belongs beside pmtop.toml). That is all a Procfile can say: every
other setting is in the report, and a command that spans lines (a Procfile line cannot) or a disabled
process is written as a comment.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..config import Config
from ..model import ProcessSpec, RestartPolicy, Scope
from .common import describe_check
from .model import ExportOptions, ExportResult, SimpleTarget
from .rules import Context, Report, Rules

#: What foreman and honcho accept as a process name.
PROCFILE_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_SHELL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True)
class Line:
    process: ProcessSpec
    base: Path | None
    name: str = ""
    words: list[str] = field(default_factory=list)
    """The command line's parts, already quoted, in order."""
    prefix: list[str] = field(default_factory=list)
    commented: str | None = None
    """Why the line is written as a comment (None: it is a live line)."""

    def render(self) -> str:
        text = f"{self.name}: {' '.join([*self.prefix, *self.words])}"
        if self.commented is None:
            return text
        if self.commented == "multi-line":
            return f"# {self.name}: its command spans several lines, which a Procfile line cannot (see pmtop.toml)"
        if self.commented == "schedule":
            return f"# {self.name} runs on a schedule in pmtop.toml; a Procfile has none:\n# {text}"
        return f"# {self.commented} = false in pmtop.toml:\n# {text}"


RULES: Final = Rules[Line]("procfile")


@RULES.maps("command")
def _command(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    line.name = spec.name if PROCFILE_NAME.fullmatch(spec.name) else re.sub(r"[^A-Za-z0-9_-]", "_", spec.name)
    if line.name != spec.name:
        ctx.approximated(spec, "name", f"Procfile names are letters, digits, '_' and '-': written as {line.name}")
    line.words = [shlex.join(spec.command)]
    if any("\n" in word for word in spec.command):
        line.commented = "multi-line"
        ctx.dropped(spec, "command", "spans several lines, which a Procfile line cannot: written as a comment")


@RULES.maps("cwd")
def _cwd(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.cwd and (line.base is None or Path(spec.cwd) != line.base):
        line.prefix[:0] = ["cd", shlex.quote(spec.cwd), "&&"]


@RULES.maps("env")
def _env(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if not spec.env:
        return
    assignments = [f"{key}={shlex.quote(value)}" for key, value in spec.env.items()]
    if all(_SHELL_NAME.fullmatch(key) for key in spec.env):
        line.prefix.extend(assignments)
    else:
        line.prefix.extend(["env", *assignments])


@RULES.maps("port")
def _port(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    """Runners set `$PORT` themselves (5000, 5100, ...); this process's own wins, as in pmtop."""
    if spec.port is None:
        return
    if "PORT" not in spec.env:
        line.prefix.append(f"PORT={spec.port}")
    ctx.approximated(spec, "port", f"{spec.port} is given as $PORT, but no runner checks that it is free "
                                   "before the start")


@RULES.maps("env_file")
def _env_file(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.env_file:
        files = shlex.quote(",".join(spec.env_file))
        ctx.dropped(spec, "env_file", f"a Procfile line cannot name its dotenv files: run the Procfile with "
                                      f"`honcho start -e {files}` or `foreman start -e {files}` (every line gets them)")


@RULES.maps("ready_log_line")
def _ready_log_line(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.ready_log_line is not None:
        ctx.dropped(spec, "ready_log_line", f"/{spec.ready_log_line}/: a Procfile starts every line at once and "
                                            "waits for nothing")


@RULES.maps("autostart", "enabled", "scope")
def _membership(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if not (spec.enabled and spec.autostart):
        key = "enabled" if not spec.enabled else "autostart"
        line.commented = line.commented or key
        ctx.approximated(spec, key, "false: written as a comment (a Procfile starts every line)")
    if spec.scope is Scope.SESSION:
        ctx.dropped(spec, "scope", '"session": nothing stops it when a session PID exits')


@RULES.maps("restart", "backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval")
def _restart(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.restart.policy is not RestartPolicy.NO:
        ctx.dropped(spec, "restart", f'"{spec.restart.policy}": Procfile runners restart nothing; when one '
                                     "process exits, foreman and honcho stop them all")
    else:
        ctx.approximated(spec, "restart", '"no": when it exits, even with status 0, foreman and honcho stop '
                                          "every process")
    for key in ("backoff", "max_restarts", "reset_after", "retry_forever", "retry_forever_interval"):
        if key in ctx.settings:
            ctx.dropped(spec, key, "no restarts, so no restart policy")


@RULES.maps("replicas")
def _replicas(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.replicas is not None:
        ctx.approximated(spec, "replicas", f"{spec.replicas}: a Procfile line is one process; "
                                           f"`foreman start -m {line.name or spec.name}={spec.replicas}` runs "
                                           "that many (with $PORT from its base port, not PMTOP_REPLICA)")


@RULES.maps("schedule", "overlap", "run_on_start", "catch_up")
def _schedule(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.schedule is not None:  # a line would run it once at start, and its exit would stop everything
        line.commented = "schedule"
        ctx.dropped(spec, "schedule", f"{spec.schedule.rule!r}: written as a comment (a Procfile has no "
                                      "schedules; run it from cron or a systemd timer)")


@RULES.maps("watch", "hooks")
def _watch_hooks(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    for key in ("watch", "hooks"):
        if key in ctx.settings:
            ctx.dropped(spec, key, "a Procfile says only what to run")


@RULES.maps("depends_on")
def _depends_on(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.depends_on:
        ctx.dropped(spec, "depends_on", f"{', '.join(spec.depends_on)}: a Procfile starts every line at once")


@RULES.maps("stop_signal", "stop_timeout")
def _stop(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if "stop_signal" in ctx.settings:
        ctx.dropped(spec, "stop_signal", f"{spec.stop_signal.name}: runners send SIGTERM")
    if "stop_timeout" in ctx.settings:
        ctx.approximated(spec, "stop_timeout", "the runner's own timeout applies (foreman -t, honcho: 5s)")


@RULES.maps("log_max_bytes", "log_backups", "log_keep_runs")
def _logs(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    for key in ("log_max_bytes", "log_backups", "log_keep_runs"):
        if key in ctx.settings:
            ctx.dropped(spec, key, "runners print output to their terminal; nothing is kept")


@RULES.maps("health")
def _health(spec: ProcessSpec, line: Line, ctx: Context) -> None:
    if spec.health is not None:
        ctx.dropped(spec, "health", f"{describe_check(spec.health)}: a Procfile has no health checks")


def render(config: Config, options: ExportOptions) -> ExportResult:
    report = Report()
    base = config.base_dir.resolve() if config.base_dir else None
    source = config.path.name if config.path else "pmtop.toml"
    lines = [f"# The processes of {source}, written by `pmtop export procfile`. Keep it beside {source}."]
    for spec in config.processes:
        line = Line(process=spec, base=base)
        RULES.apply(spec, line, report)
        lines.append(line.render())
    report.note("per-run logs", "the runner prints every process's output to its terminal; nothing is kept")
    report.note("adoption", "pmtop adopts processes that a previous pmtop left running; a Procfile runner "
                            "starts them again")
    return ExportResult(target="procfile", files={"Procfile": "\n".join(lines) + "\n"},
                        losses=tuple(report.losses))


TARGET: Final = SimpleTarget(name="procfile", summary="a Procfile (foreman, honcho)", renderer=render)
