"""The main view: header, process table, the selected process's reason, filter, footer.

It follows the core with one exclusive worker that only records events into `_pending` (the newest per
process); `_flush` applies them to the table at most ten times a second, cell by cell, inside one
`batch_update`. The first event after a quiet spell is applied within `FIRST_FLUSH_DELAY`, so a key
press shows its effect at once while a burst from 1,000 processes still costs one repaint.

In attached mode a lost daemon (`DaemonUnavailable`, or the event stream ending) is a header state:
the worker waits with a growing backoff and subscribes again, then re-reads every status.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import cached_property
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input
from textual.worker import Worker, WorkerState

from pmtop.core.errors import DaemonUnavailable, PmtopError
from pmtop.core.model import (
    STARTABLE_STATES,
    STOPPABLE_STATES,
    ProcessEvent,
    ProcessRemoved,
    ProcessState,
    ProcessStatus,
)

from ..widgets.filter_bar import FilterBar
from ..widgets.header import StatusHeader
from ..widgets.process_table import ProcessTable
from ..widgets.reason_bar import ReasonBar
from .confirm import ConfirmScreen

if TYPE_CHECKING:
    from ..app import PmtopApp

FLUSH_INTERVAL: Final = 0.1
"""At most this often the table is updated from the event stream."""
FIRST_FLUSH_DELAY: Final = 0.01
"""After a quiet spell, wait this long for the rest of a burst before applying the first event."""
COUNTDOWN_INTERVAL: Final = 0.1
RECONNECT_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 5.0)
PARTNER_REFRESH: Final = 3.0
"""Seconds between two looks at the partner's state (the watch itself checks every 3 s)."""

#: Which states each per-process action makes sense in (the rest are shown disabled).
ACTION_STATES: Final[dict[str, frozenset[ProcessState]]] = {
    "start": STARTABLE_STATES,
    "stop": STOPPABLE_STATES | {ProcessState.FAILED},
    "restart": frozenset(ProcessState) - {ProcessState.DISABLED, ProcessState.STOPPING},
    "toggle_enabled": frozenset(ProcessState),
    "remove": frozenset(ProcessState),
}
#: Actions that need a selected row but change nothing.
VIEW_ACTIONS: Final = frozenset({"logs", "details", "mark"})
#: Actions refused in read-only mode.
CHANGING_ACTIONS: Final = frozenset({*ACTION_STATES, "add", "stop_all"})


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # `?` first, so that even an 80-column footer shows where every other key is explained.
        Binding("question_mark", "app.help", "Help", id="app-help", tooltip="Keys and states"),
        Binding("s", "start", "Start", id="process-start",
                tooltip="Start the process; on a failed or retrying one, retry now"),
        Binding("x", "stop", "Stop", id="process-stop", tooltip="Stop the process (its whole group)"),
        Binding("r", "restart", "Restart", id="process-restart", tooltip="Stop the process, then start it"),
        Binding("e", "toggle_enabled", "Enable/Disable", id="process-enable",
                tooltip="Disable (stops it; it will not start) or enable again"),
        Binding("enter,l", "logs", "Logs", id="process-logs", key_display="l",
                tooltip="Follow the process's output"),
        Binding("i", "details", "Details", id="process-details", tooltip="Config, reason and run history"),
        Binding("a", "add", "Add", id="process-add", tooltip="Add a process (saved to pmtop.toml)"),
        Binding("d", "remove", "Remove", id="process-remove", tooltip="Stop and forget the process"),
        Binding("space", "mark", "Mark", id="process-mark", tooltip="Mark rows; actions apply to marked rows"),
        Binding("slash", "filter", "Filter", id="table-filter", tooltip="Filter by name or state"),
        Binding("escape", "clear", "Clear", id="table-clear", show=False, tooltip="Clear marks and filter"),
        Binding("t", "app.next_theme", "Theme", id="app-theme", tooltip="Next theme (remembered)"),
        Binding("q", "app.quit", "Quit", id="app-quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self._pending: dict[str, ProcessEvent] = {}
        self._flush_timer: Timer | None = None
        self._last_flush = 0.0
        self._countdown: Timer | None = None
        self._bindings_signature: tuple[object, ...] | None = None

    @property
    def pmtop(self) -> PmtopApp:
        from ..app import PmtopApp

        assert isinstance(self.app, PmtopApp)
        return self.app

    # The widgets are looked up once: `check_action` and every flush use them (query_one is not free).
    @cached_property
    def table(self) -> ProcessTable:
        return self.query_one(ProcessTable)

    @cached_property
    def header(self) -> StatusHeader:
        return self.query_one(StatusHeader)

    @cached_property
    def reason_bar(self) -> ReasonBar:
        return self.query_one(ReasonBar)

    def compose(self) -> ComposeResult:
        app = self.pmtop
        yield StatusHeader(app.mode, clock=app.clock, id="header")
        yield ProcessTable(clock=app.clock, id="processes")
        yield ReasonBar(id="reason")
        yield FilterBar(id="filter-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        app = self.pmtop
        header = self.header
        header.read_only = app.read_only
        self._countdown = self.set_interval(COUNTDOWN_INTERVAL, self._tick_countdown, pause=True)
        self.set_interval(1.0, self._tick_uptime)
        self.set_interval(PARTNER_REFRESH, self._refresh_partner)
        self.restyle()
        self.table.focus()
        self._selection_changed()
        self.follow_core()

    def restyle(self) -> None:
        """Apply the current theme's state and health colours to every coloured cell."""
        styles = self.pmtop.cell_styles()
        self.table.restyle(styles)
        self.header.restyle(styles)
        self._selection_changed()

    # -- following the core -----------------------------------------------------------------------

    @work(exclusive=True, group="core-events", exit_on_error=False)
    async def follow_core(self) -> None:
        controller = self.pmtop.controller
        header = self.header
        attempt = 0
        while True:
            try:
                async with controller.subscribe(facts=True) as events:
                    info = await controller.info()
                    snapshot = await controller.processes()
                    self.pmtop.set_supervisor(info)
                    header.info, header.lost, attempt = info, None, 0
                    self._resync(snapshot)
                    async for event in events:
                        self._pending[event.name] = event
                        self._schedule_flush()
                if self.pmtop.mode == "local":
                    return  # the supervisor shut down (quitting): nothing more will happen
                raise DaemonUnavailable("the daemon closed the event stream")
            except (DaemonUnavailable, OSError) as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                header.lost = f"daemon lost — reconnecting (attempt {attempt})"
                self.log.warning(f"event stream lost: {exc}; retrying in {delay}s")
                await asyncio.sleep(delay)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """An unexpected error in the follower is shown, and following starts over."""
        if event.worker.group == "core-events" and event.state is WorkerState.ERROR:
            self.notify(f"Lost the event stream: {event.worker.error}", severity="error")
            self.header.lost = "event stream failed — reconnecting"
            self.set_timer(RECONNECT_DELAYS[-1], self.follow_core)

    def _resync(self, snapshot: Iterable[ProcessStatus]) -> None:
        """After (re)subscribing: the snapshot wins, and processes no longer there are dropped."""
        fresh = {s.name: s for s in snapshot}
        for name in self.table.statuses:
            if name not in fresh:
                self._pending[name] = ProcessRemoved(name)
        self._pending.update(fresh)
        self._flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            delay = max(FIRST_FLUSH_DELAY, self._last_flush + FLUSH_INTERVAL - time.monotonic())
            self._flush_timer = self.set_timer(delay, self._flush, name="flush")

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        events, self._pending = list(self._pending.values()), {}
        table = self.table
        with self.app.batch_update():
            touched = table.apply(events)
            self.header.count(table.statuses.values())
        if self._countdown is not None:
            if table.retrying_count:
                self._countdown.resume()
            else:
                self._countdown.pause()
        if touched:
            self._selection_changed()
        self.pmtop.statuses_changed.publish({e.name for e in events})

    @work(exclusive=True, group="partner", exit_on_error=False)
    async def _refresh_partner(self) -> None:
        """The partner's state (SPEC §9) is no process event: the dashboard, which samples facts every
        second anyway while it is open, asks for it now and then."""
        info = self.header.info
        if info is None:
            return
        with contextlib.suppress(PmtopError, OSError):
            fresh = await self.pmtop.controller.info()
            if fresh != info:
                self.header.info = fresh

    def _tick_countdown(self) -> None:
        self.table.refresh_clock_cells(backoff=True)

    def _tick_uptime(self) -> None:
        """Once a second: the uptimes in view and the header's, in one repaint."""
        with self.app.batch_update():
            self.table.refresh_clock_cells(backoff=False, uptime=True)
            self.header.refresh()

    # -- selection --------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    @on(ProcessTable.SelectionChanged)
    def _selection_changed(self) -> None:
        table = self.table
        name = table.selected
        status = table.statuses.get(name) if name is not None else None
        marked = table.targets if table.marked else []
        self.reason_bar.show(status, marked=marked, styles=table.cell_styles)
        # The footer is rebuilt on `refresh_bindings`: only when what `check_action` sees has changed.
        signature = (name, tuple(table.statuses[n].state for n in table.targets), bool(marked),
                     table.query_text, self.pmtop.read_only)
        if signature != self._bindings_signature:
            self._bindings_signature = signature
            self.refresh_bindings()

    @on(DataTable.RowSelected)
    def _row_clicked(self) -> None:
        self.action_logs()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.table.sort_by(event.column_key.value)

    # -- actions ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        table = self.table
        if action == "clear":
            return bool(table.marked or table.query_text) or False
        if self.pmtop.read_only and action in CHANGING_ACTIONS:
            return None
        if action in ACTION_STATES:
            allowed = ACTION_STATES[action]
            return any(table.statuses[n].state in allowed for n in table.targets) or None
        if action in VIEW_ACTIONS:
            return table.selected is not None or None
        return True

    def targets_for(self, action: str, names: Iterable[str] | None = None) -> list[str]:
        """The processes `action` applies to now (marked, else selected) and makes sense for."""
        table = self.table
        allowed = ACTION_STATES[action]
        chosen = table.targets if names is None else list(names)
        return [n for n in chosen if n in table.statuses and table.statuses[n].state in allowed]

    @staticmethod
    def allowed_for(action: str, state: ProcessState) -> bool:
        return state in ACTION_STATES[action] if action in ACTION_STATES else True

    def run_for(self, action: str, name: str) -> None:
        """A palette entry: `action` on one named process, whatever is selected or marked."""
        if action == "remove":
            self.action_remove([name])
        elif action in ACTION_STATES:
            self.act(action, [name])
        elif action == "logs":
            self.action_logs(name)
        elif action == "details":
            self.action_details(name)
        elif action == "mark":
            self.table.toggle_mark(name)

    def act(self, action: str, names: Iterable[str] | None = None) -> None:
        """Run a per-process action on `names` (default: marked, else selected) in the background."""
        if self.pmtop.read_only:
            self.notify("Read-only: actions are refused.", severity="warning")
            return
        targets = self.targets_for(action, names)
        if targets:
            self.run_worker(self._run(action, targets), group="actions")

    async def _run(self, action: str, names: list[str]) -> None:
        if action == "stop" and len(names) > 1:  # the core orders it: dependents stop first
            try:
                await self.pmtop.controller.stop_many(names)
            except PmtopError as exc:
                self.notify(exc.message, title="stop refused", severity="error")
            return
        statuses = self.table.statuses
        results = await asyncio.gather(
            *(self._call(action, n, statuses[n].state) for n in names), return_exceptions=True
        )
        for name, result in zip(names, results):
            title = f"{action.replace('_', ' ')} refused"
            if isinstance(result, PmtopError):
                self.notify(f"{name}: {result.message}", title=title, severity="error")
            elif isinstance(result, BaseException):
                self.notify(f"{name}: {result!r}", title=title, severity="error")

    async def _call(self, action: str, name: str, state: ProcessState) -> None:
        controller = self.pmtop.controller
        match action:
            case "start":
                await controller.start(name)
            case "stop":
                await controller.stop(name)
            case "restart":
                await controller.restart(name)
            case "toggle_enabled" if state is ProcessState.DISABLED:
                await controller.enable(name)
            case "toggle_enabled":
                await controller.disable(name)
            case "remove":
                await controller.remove(name)
            case _:
                raise ValueError(f"unknown action {action!r}")

    def action_start(self) -> None:
        self.act("start")

    def action_stop(self) -> None:
        self.act("stop")

    def action_restart(self) -> None:
        self.act("restart")

    def action_toggle_enabled(self) -> None:
        self.act("toggle_enabled")

    def action_remove(self, names: list[str] | None = None) -> None:
        targets = self.targets_for("remove", names)
        if not targets or self.pmtop.read_only:
            return
        listed = ", ".join(targets)
        question = ConfirmScreen(
            f"Remove {listed}?",
            "It is stopped and forgotten; a project process is also removed from its pmtop.toml.",
            yes="Remove",
        )
        self.app.push_screen(question, lambda ok: self.act("remove", targets) if ok else None)

    def action_stop_all(self) -> None:
        running = [n for n, s in self.table.statuses.items() if s.state in ACTION_STATES["stop"]]
        if not running or self.pmtop.read_only:
            self.notify("Nothing to stop.")
            return
        question = ConfirmScreen(f"Stop all {len(running)} running processes?", ", ".join(running), yes="Stop all")
        self.app.push_screen(question, lambda ok: self.act("stop", running) if ok else None)

    def action_logs(self, name: str | None = None) -> None:
        from .logs import LogScreen

        name = name or self.table.selected
        if name is not None:
            self.app.push_screen(LogScreen(name))

    def action_details(self, name: str | None = None) -> None:
        from .details import DetailsScreen

        name = name or self.table.selected
        if name is not None:
            self.app.push_screen(DetailsScreen(name))

    def action_add(self) -> None:
        from .add_process import AddProcessScreen

        if not self.pmtop.read_only:
            self.app.push_screen(AddProcessScreen(), self._added)

    def _added(self, name: str | None) -> None:
        if name is not None:
            self.notify(f"Added {name}.")

    def action_mark(self) -> None:
        table = self.table
        name = table.selected
        if name is not None:
            table.toggle_mark(name)
            table.action_cursor_down()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear(self) -> None:
        self.table.clear_marks()
        self.query_one(FilterBar).clear_filter()

    def action_sort(self, column: str) -> None:
        self.table.sort_by(column or None)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_query(event.value)
        self.refresh_bindings()

    @on(FilterBar.Done)
    def _filter_done(self) -> None:
        self.table.focus()
