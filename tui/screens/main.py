"""The main view: header, process table, the selected process's reason, filter, footer.

It renders the app's `StatusStore`: on each batch the store publishes (at most ten a second), the
table updates the changed rows cell by cell and the header its counts, in one `batch_update`. Its
actions come from the one table in `actions`: the footer, `check_action` (what makes sense for the
marked or selected processes, and nothing that changes anything in read-only mode) and the palette.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import ClassVar, Final, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.signal import Signal
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input

from pmtop.core.errors import PmtopError
from pmtop.core.model import ProcessState

from ..actions import MAIN, available, main_bindings
from ..state import INFO_REFRESH
from ..widgets.filter_bar import FilterBar
from ..widgets.header import StatusHeader
from ..widgets.process_table import ProcessTable
from ..widgets.reason_bar import ReasonBar
from .add_process import AddProcessScreen
from .base import DashboardScreen
from .confirm import ConfirmScreen
from .details import DetailsScreen
from .logs import LogScreen
from .merged_logs import MergedLogScreen

COUNTDOWN_INTERVAL: Final = 0.1
T = TypeVar("T")


class MainScreen(DashboardScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = main_bindings()

    def __init__(self) -> None:
        super().__init__(id="main")
        self._countdown: Timer | None = None
        self._bindings_signature: tuple[object, ...] | None = None

    # The widgets are looked up once: `check_action` and every update use them (query_one is not free).
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
        yield ProcessTable(app.store, clock=app.clock, id="processes")
        yield ReasonBar(id="reason")
        yield FilterBar(id="filter-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        store = self.pmtop.store
        self._follow(store.changed, self._show_changes)
        self._follow(store.connection_changed, self._connection_changed)
        self._countdown = self.set_interval(COUNTDOWN_INTERVAL, self._tick_countdown, pause=True)
        self.set_interval(1.0, self._tick_uptime)
        self.set_interval(INFO_REFRESH, store.refresh_info)  # the partner's state, in the header
        self.restyle()  # renders every row the store already has
        self.table.focus()
        self._connection_changed()
        self._show_changes(set())

    def restyle(self) -> None:
        """Apply the current theme's state and health colours to every coloured cell."""
        styles = self.pmtop.cell_styles()
        self.table.restyle(styles)
        self.header.restyle(styles)
        self._selection_changed()

    # -- following the store ----------------------------------------------------------------------

    def _follow(self, signal: Signal[T], show: Callable[[T], None]) -> None:
        """Show what the store publishes as it publishes it: within the store's flush, so in the same
        frame and in the store's order (the header knows the daemon before the rows appear)."""

        def shown(data: T) -> None:
            try:
                show(data)
            except Exception as error:  # a signal swallows its subscribers' errors: fail as any handler would
                self.call_next(_raise, error)

        signal.subscribe(self, shown, immediate=True)

    def _show_changes(self, names: set[str]) -> None:
        store = self.pmtop.store
        with self.app.batch_update():
            touched = self.table.apply(names)
            self.header.count(store.counts)
        if self._countdown is not None:
            if store.retrying:
                self._countdown.resume()
            else:
                self._countdown.pause()
        if touched:
            self._selection_changed()

    def _connection_changed(self, _: None = None) -> None:
        store, header = self.pmtop.store, self.header
        header.info, header.lost, header.read_only = store.info, store.lost, self.pmtop.read_only
        header.links = store.links
        self.table.hosts_changed()
        self._selection_changed()  # read-only may have changed: the footer follows; a host's link too

    def _tick_countdown(self) -> None:
        self.table.refresh_clock_cells(backoff=True)
        self._show_reason()

    def _tick_uptime(self) -> None:
        """Once a second: the uptimes in view, the next runs of scheduled processes, the header's uptime,
        in one repaint."""
        with self.app.batch_update():
            self.table.refresh_clock_cells(backoff=False, uptime=True, scheduled=True)
            self.header.refresh()
            if self.pmtop.store.scheduled:
                self._show_reason()

    # -- selection --------------------------------------------------------------------------------

    def _show_reason(self) -> str | None:
        table = self.table
        name = table.selected
        store = self.pmtop.store
        status = store.view.get(name) if name is not None else None
        marked = table.targets if table.marked else []
        link = store.link_of(name) if name is not None and store.greyed(name) else None
        self.reason_bar.show(status, marked=marked, styles=table.cell_styles, now=self.pmtop.clock(), link=link)
        return name

    @on(DataTable.RowHighlighted)
    @on(ProcessTable.SelectionChanged)
    def _selection_changed(self) -> None:
        name = self._show_reason()
        table = self.table
        # The footer is rebuilt on `refresh_bindings`: only when what `check_action` sees has changed.
        signature = (name, tuple(self._states(table.targets)), bool(table.marked), table.query_text,
                     self.pmtop.read_only)
        if signature != self._bindings_signature:
            self._bindings_signature = signature
            self.refresh_bindings()

    def _states(self, names: Iterable[str]) -> Iterable[ProcessState]:
        store = self.pmtop.store
        statuses = store.statuses
        return (statuses[m].state for n in names for m in store.members(n) if m in statuses)

    def _replica_selected(self) -> str | None:
        """The group of replicas the selected row belongs to (or is, folded)."""
        name = self.table.selected
        status = self.pmtop.store.view.get(name) if name is not None else None
        return status.group if status is not None else None

    @on(DataTable.RowSelected)
    def _row_clicked(self) -> None:
        self.action_logs()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.table.sort_by(event.column_key.value)

    # -- actions ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        spec = MAIN.get(action)
        if spec is None:
            return True
        table = self.table
        return available(spec, read_only=self.pmtop.read_only, selected=table.selected is not None,
                         target_states=self._states(table.targets),
                         marks_or_filter=bool(table.marked or table.query_text),
                         replica=self._replica_selected() is not None)

    def targets_for(self, action: str, names: Iterable[str] | None = None) -> list[str]:
        """The processes `action` applies to now (marked, else selected) and makes sense for."""
        allowed = MAIN[action].states
        store = self.pmtop.store
        statuses = store.statuses
        chosen = self.table.targets if names is None else list(names)
        members = [m for n in chosen for m in store.members(n)]  # a folded group: its replicas
        return [n for n in dict.fromkeys(members) if n in statuses and statuses[n].state in allowed]

    def run_for(self, action: str, name: str) -> None:
        """A palette entry: `action` on one named process, whatever is selected or marked."""
        if action == "remove":
            self.action_remove([name])
        elif action == "logs":
            self.action_logs(name)
        elif action == "details":
            self.action_details(name)
        elif action == "mark":
            self.table.toggle_mark(name)
        elif action in ("scale_up", "scale_down"):
            self._scale(name, 1 if action == "scale_up" else -1)
        else:
            self.act(action, [name])

    def act(self, action: str, names: Iterable[str] | None = None) -> None:
        """Run a per-process action on `names` (default: marked, else selected) in the background."""
        if self.pmtop.read_only:
            self.notify("Read-only: actions are refused.", severity="warning")
            return
        targets = self.targets_for(action, names)
        if targets:
            self.run_worker(self._run(action, targets), group="actions")

    async def _run(self, action: str, names: list[str]) -> None:
        controller = self.pmtop.controller
        if action == "stop" and len(names) > 1:  # the core orders it: dependents stop first
            try:
                await controller.stop_many(names)
            except PmtopError as exc:
                self.notify(exc.message, title="stop refused", severity="error")
            return
        statuses = self.pmtop.store.statuses
        results = await asyncio.gather(
            *(self._call(action, n, statuses[n].state) for n in names), return_exceptions=True
        )
        for name, result in zip(names, results, strict=True):
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
        running = self.pmtop.store.in_states(MAIN["stop"].states)
        if not running or self.pmtop.read_only:
            self.notify("Nothing to stop.")
            return
        question = ConfirmScreen(f"Stop all {len(running)} running processes?", ", ".join(running), yes="Stop all")
        self.app.push_screen(question, lambda ok: self.act("stop", running) if ok else None)

    def action_logs(self, name: str | None = None) -> None:
        name = name or self.table.selected
        if name is None:
            return
        members = self.pmtop.store.members(name)
        if members == [name]:
            self.app.push_screen(LogScreen(name))
        elif members:  # a folded group: its replicas' output, merged
            self.app.push_screen(MergedLogScreen(members, title=f"{name} ×{len(members)}"))

    def action_details(self, name: str | None = None) -> None:
        name = name or self.table.selected
        members = self.pmtop.store.members(name) if name is not None else []
        if members:  # (a folded group: its first replica's)
            self.app.push_screen(DetailsScreen(members[0]))

    def action_merged_logs(self) -> None:
        self.app.push_screen(MergedLogScreen())

    def action_fold(self) -> None:
        store = self.pmtop.store
        if not store.groups and not store.fold:
            self.notify("No replicas to fold (a process with `replicas = N` has them).")
            return
        with self.app.batch_update():
            store.set_fold(not store.fold)
        self.notify("Replicas folded: one row per group." if store.fold else "Replicas unfolded.", timeout=2)

    def action_scale_up(self) -> None:
        group = self._replica_selected()
        if group is not None:
            self._scale(group, 1)

    def action_scale_down(self) -> None:
        group = self._replica_selected()
        if group is not None:
            self._scale(group, -1)

    def _scale(self, name: str, step: int) -> None:
        """One replica more or fewer of `name`'s group (a replica's name stands for its group)."""
        store = self.pmtop.store
        status = store.statuses.get(name) or store.view.get(name)
        group = status.group if status is not None and status.group else name
        if self.pmtop.read_only:
            self.notify("Read-only: actions are refused.", severity="warning")
            return
        count = max(0, len(store.groups.get(group, ())) + step)
        self.run_worker(self._scale_to(group, count), group="actions")

    async def _scale_to(self, group: str, count: int) -> None:
        try:
            await self.pmtop.controller.scale(group, count)
        except PmtopError as exc:
            self.notify(exc.message, title="scale refused", severity="error")
        else:
            self.notify(f"{group}: {count} replica{'s' if count != 1 else ''}", timeout=2)

    def action_add(self) -> None:
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


def _raise(error: Exception) -> None:
    raise error
