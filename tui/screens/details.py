"""Details (`i`): one process's status and reason, its config as it would read in `pmtop.toml`, and its
run history (why each run ended, its exit, the last lines of its stderr). Refreshed when the process
changes state, so a crash is seen here as it happens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import tomli_w
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from pmtop.core import checks
from pmtop.core import formats as fmt
from pmtop.core.checks.notify import NotifyCheck
from pmtop.core.config import spec_to_table
from pmtop.core.errors import PmtopError
from pmtop.core.model import FailAction, ProcessSpec, ProcessStatus, RestartPolicy, RunRecord
from pmtop.core.process.watch import budget
from pmtop.core.values import format_duration

from ..actions import bindings
from .base import DashboardScreen
from .logs import LogScreen


class DetailsScreen(DashboardScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("details")

    def __init__(self, name: str) -> None:
        super().__init__(classes="details-screen")
        self.process = name
        self.history: list[RunRecord] = []
        self.config_text = ""
        """The process's table as it would read in `pmtop.toml`."""
        self._shown: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(id="details-status")
            yield Static("In effect", classes="section-title")
            yield Static(id="details-policy")
            yield Static("Config", classes="section-title")
            yield Static(id="details-config")
            yield Static("Run history (newest first)", classes="section-title")
            yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
            yield Static(id="details-stderr")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#history", DataTable)
        table.add_columns("#", "started", "ran", "pid", "exit", "ended by", "last stderr line")
        self.pmtop.store.changed.subscribe(self, self._statuses_changed)
        self._show_status()
        self.load()

    def _statuses_changed(self, names: set[str]) -> None:
        if self.process in names:
            self._show_status()
            status = self.pmtop.store.get(self.process)
            key = (status.state, status.pid, status.restarts) if status is not None else None
            if key != self._shown:
                self.load()

    def _show_status(self) -> None:
        status = self.pmtop.store.get(self.process)
        self.query_one("#details-status", Static).update(self._status_text(status))

    def _status_text(self, status: ProcessStatus | None) -> Text:
        text = Text()
        text.append(f" {self.process} ", style="bold reverse")
        if status is None:
            text.append("  removed", style="italic")
            return text
        styles, now = self.pmtop.cell_styles(), self.pmtop.clock()
        text.append("  ")
        text.append(status.state.value, style=styles.states[status.state])
        facts = [
            f"pid {status.pid}" if status.pid is not None else "",
            f"up {fmt.duration(fmt.uptime_seconds(status.state, status.pid, status.started_at, now))}"
            if status.pid is not None else "",
            f"health {status.health.value}" if status.pid is not None else "",
            f"restarts {status.restarts}",
            f"consecutive failures {status.consecutive_failures}" if status.consecutive_failures else "",
            f"exit {fmt.exit_code(status.exit_code)}" if status.exit_code is not None else "",
            f"next retry {fmt.clock_time(status.next_retry_at)}" if status.next_retry_at is not None else "",
            f"next run {fmt.clock_time(status.next_run_at)}" if status.next_run_at is not None else "",
            f"replica of {status.group}" if status.group is not None else "",
            "watching its files" if status.watching else "",
            f"ports {fmt.ports(status.ports, status.port)}" if status.ports or status.port else "",
            f"scope {status.scope.value}",
        ]
        text.append("  " + "  ".join(f for f in facts if f))
        text.append("\nreason  ", style="bold")
        text.append(fmt.live_reason(status.reason, status.state, status.next_retry_at, now, status.next_run_at) or "-")
        if status.hook_error:
            text.append("\nhook    ", style="bold")
            text.append(status.hook_error, style=styles.error)
        if status.command:
            text.append("\ncommand ", style="bold")
            text.append(" ".join(status.command))
        return text

    @work(exclusive=True, group="details-load", exit_on_error=False)
    async def load(self) -> None:
        controller = self.pmtop.controller
        status = self.pmtop.store.get(self.process)
        self._shown = (status.state, status.pid, status.restarts) if status is not None else None
        try:
            spec = await controller.spec(self.process)
            history = await controller.history(self.process)
        except PmtopError as exc:
            self.query_one("#details-config", Static).update(Text(exc.message, style="italic"))
            return
        info = self.pmtop.store.info
        base = Path(info.config).parent if info is not None and info.config else None
        self.config_text = tomli_w.dumps({"process": {spec.name: spec_to_table(spec, base_dir=base)}}).strip()
        self.query_one("#details-policy", Static).update(policy_text(spec))
        self.query_one("#details-config", Static).update(toml_text(self.config_text))
        self.history = list(reversed(history))
        table = self.query_one("#history", DataTable)
        table.clear()
        for number, run in zip(range(len(history), 0, -1), self.history, strict=True):
            last = run.stderr_tail[-1] if run.stderr_tail else ""
            table.add_row(
                str(number), fmt.clock_time(run.started_at), fmt.precise_duration(run.duration),
                "" if run.pid is None else str(run.pid), fmt.exit_code(run.exit_code) or "-",
                run.end_reason.value, last,
            )
        if not history:
            self.query_one("#details-stderr", Static).update(Text("No runs yet.", style="italic"))
        else:
            self._show_stderr(0)

    @on(DataTable.RowHighlighted, "#history")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_stderr(event.cursor_row)

    def _show_stderr(self, index: int) -> None:
        if not 0 <= index < len(self.history):
            return
        run = self.history[index]
        text = Text()
        text.append(f"Run #{len(self.history) - index}: last stderr lines\n", style="bold")
        text.append("\n".join(run.stderr_tail) if run.stderr_tail else "(nothing on stderr)",
                    style="" if run.stderr_tail else "italic")
        self.query_one("#details-stderr", Static).update(text)

    def action_back(self) -> None:
        self.dismiss()

    def action_logs(self) -> None:
        self.app.push_screen(LogScreen(self.process))


def _seconds(value: float) -> str:
    shown = format_duration(round(value, 3))  # a sum like 3 x 0.1 s reads as 0.3s
    return shown if isinstance(shown, str) else f"{shown:g}s"


def policy_text(spec: ProcessSpec) -> Text:
    """What the supervisor does with this process, defaults included (the config shows only what was set)."""
    restart = spec.restart
    lines: list[tuple[str, str]] = []
    how = f"{restart.policy.value}"
    if restart.policy is not RestartPolicy.NO:
        how += f"; backoff {', '.join(_seconds(d) for d in restart.backoff)}"
        if restart.retry_forever:
            how += (f"; after {restart.max_restarts} failures in a row, retries every "
                    f"{_seconds(restart.retry_forever_interval)}")
        else:
            how += f"; failed after {restart.max_restarts} failures in a row"
        how += f"; running {_seconds(restart.reset_after)} forgives them"
    lines.append(("restart", how))
    lines.append(("stop", f"SIG{spec.stop_signal.name.removeprefix('SIG')} to the group, "
                          f"SIGKILL after {_seconds(spec.stop_timeout)}"))
    if not spec.command:
        lines.append(("command", "none: adopted by PID, so nothing starts it again once it has exited"))
    lines.extend(_readiness_lines(spec))
    if spec.depends_on:
        lines.append(("needs", ", ".join(f"{name} ({cond.value})" for name, cond in spec.depends_on.items())))
    if spec.port is not None:
        given = "its env sets $PORT itself" if "PORT" in spec.env else "given as $PORT"
        lines.append(("port", f"{spec.port}: checked free before each start (held by another program: failed, "
                              f"naming it); {given}"))
    if spec.env_file:
        names = ", ".join(_shown_path(f, spec.cwd) for f in spec.env_file)
        count = len(spec.file_env)
        variables = f"{count} variable{'' if count == 1 else 's'}, " if count else ""
        lines.append(("env", f"from {names} ({variables}read at load and reload; later files and env win)"))
    lines += dev_loop_lines(spec)
    lines.append(("folder", spec.cwd or "(the supervisor's)"))
    text = Text()
    for i, (label, value) in enumerate(lines):
        text.append(("\n" if i else "") + f"{label:<8}", style="bold")
        text.append(value)
    return text


def _readiness_lines(spec: ProcessSpec) -> list[tuple[str, str]]:
    """When a run counts as up (gates and startup check) and when as healthy (its check), in words."""
    lines: list[tuple[str, str]] = []
    check = spec.health
    wait, action = budget(spec)
    give_up = f"else {'a restart' if action is FailAction.RESTART else action.value}"
    if spec.ready_log_line is not None:
        both = "; the startup check must pass too" if check is not None and check.startup is not None else ""
        lines.append(("ready", f"starting until a line of its output matches /{spec.ready_log_line}/, within "
                               f"{_seconds(wait)} ({give_up}){both}"))
    if check is None:
        return lines
    kind = checks.kind_of(check.check)
    if isinstance(check.check, NotifyCheck):
        lines.append(("ready", f"starting until it sends READY=1 over $NOTIFY_SOCKET, within {_seconds(wait)} "
                               f"({give_up}); STATUS= becomes its reason"))
        if check.check.watchdog is not None:
            missed = "one missed period" if check.failures == 1 else f"{check.failures} missed periods in a row"
            lines.append(("health", f"WATCHDOG=1 at least every {_seconds(check.check.watchdog)}; unhealthy after "
                                    f"{missed}, then restarted"))
        return lines
    lines.append(("health", f"{check.type} {kind.target(check.check)} every {_seconds(check.interval)}, timeout "
                            f"{_seconds(check.timeout)}, unhealthy after {check.failures} failures"))
    if check.startup is not None:
        startup = check.startup
        after = f" after {_seconds(startup.initial_delay)}" if startup.initial_delay else ""
        lines.append(("startup", f"probed every {_seconds(startup.interval)}{after}, up to {startup.max_attempts} "
                                 f"attempts ({give_up})"))
    return lines


def _shown_path(path: str, cwd: str | None) -> str:
    folder = os.path.dirname(path)
    return os.path.basename(path) if cwd is not None and folder == cwd else path


def dev_loop_lines(spec: ProcessSpec) -> list[tuple[str, str]]:
    """Schedule, replicas, watch and hooks, in words (SPEC §11)."""
    lines: list[tuple[str, str]] = []
    if spec.schedule is not None:
        schedule = spec.schedule
        how = f"runs at {schedule.rule!r} (local time), not at start-up" if not schedule.rule.startswith("every") \
            else f"runs {schedule.rule}, not at start-up"
        if schedule.run_on_start:
            how = how.replace(", not at start-up", ", and at start-up")
        how += f"; a run still going at the next time: {schedule.overlap.value}"
        how += "; a time missed while pmtop was down runs once" if schedule.catch_up else \
            "; a time missed while pmtop was down is reported"
        lines.append(("schedule", how))
    if spec.replica is not None:
        lines.append(("replica", f"{spec.replica.index} of {spec.replica.group} (PMTOP_REPLICA={spec.replica.index}); "
                                 f"+ and - scale {spec.replica.group}"))
    if spec.watch is not None:
        watch = spec.watch
        how = f"restarts on changes to {', '.join(watch.paths)}"
        if watch.ignore:
            how += f" (not {', '.join(watch.ignore)})"
        how += f", once per burst ({_seconds(watch.debounce)} quiet)"
        if watch.cascade:
            how += ", and what depends on it"
        lines.append(("watch", how))
    if spec.hooks is not None:
        hooks = spec.hooks
        to = " and ".join(x for x in (f"runs {hooks.command[0]}" if hooks.command else "",
                                      f"POSTs to {hooks.url}" if hooks.url else "") if x)
        lines.append(("hooks", f"on {', '.join(hooks.on)}: {to}"))
    return lines


def toml_text(document: str) -> Text:
    """TOML with its table headers and keys in bold: readable in every theme, light or dark."""
    text = Text(document)
    text.highlight_regex(r"(?m)^\[[^\]]+\]$", style="bold")
    text.highlight_regex(r"(?m)^[A-Za-z0-9_.\"-]+(?= = )", style="bold")
    return text
