"""The process table: one row per process, kept current cell by cell.

It renders the dashboard's `StatusStore` (the source of truth) and owns only what is the view's own:
rows, cells, order, filter and marks.

Invariants:
- `_drawn` holds, per row, the status its cells were last rendered from; an update renders the store's
  newest status and diffs it against that, so updates may arrive late or twice and still end right.
- An update touches only the cells whose inputs changed (`update_cell`); rows are added or removed only
  when processes are, or when the filter changes; the columns are rebuilt only when the width changes
  which columns fit. So 1,000 rows cost what the changed cells cost.
- The cursor stays on the same process across sorting, filtering, additions and removals.
- Only rows in view are written to at once; an update of a row out of view is recorded (`_stale`)
  and applied when the row scrolls, sorts or filters into view. With 1,000 processes whose facts
  change every second, that is ~70 rows' worth of `update_cell` a second instead of 1,000.
- A cell or row is rendered again only when it changed (`CachedTable`).
- Over a fleet, a row is greyed while its daemon is out of reach (`StatusStore.greyed`); `_greyed`
  holds the rows drawn so, and a row whose daemon went or came back is rendered again whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets.data_table import RowDoesNotExist, RowKey

from pmtop.core.model import ProcessStatus

from ..state import StatusStore
from ..theming import CellStyles
from .cached_table import CachedTable
from .columns import (
    BY_KEY,
    CELL_PADDING,
    CellContext,
    Column,
    Layout,
    NameCell,
    badge_room,
    changed_columns,
    plan_layout,
)


def matches(status: ProcessStatus, query: str) -> bool:
    """Every word of `query` must match: a part of the name, or the start of the state (`fail`, `run`)."""
    for word in query.lower().split():
        if word not in status.name.lower() and not status.state.value.startswith(word):
            return False
    return True


class ProcessTable(CachedTable, inherit_bindings=False):
    """The table of processes. The screen owns the actions; this widget owns rows, cells and order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]

    class SelectionChanged(Message):
        """The highlighted process is another one, or its status changed, or the marks did."""

        def __init__(self, name: str | None) -> None:
            super().__init__()
            self.name = name

    def __init__(self, store: StatusStore, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(cursor_type="row", cell_padding=CELL_PADDING, id=id)
        self.store = store
        self.clock = clock
        self.marked: set[str] = set()
        self.query_text = ""
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.cell_styles: CellStyles | None = None
        self._layout: Layout | None = None
        self._planned: set[str] = set()
        """The names the current layout was planned for (a longer newcomer may need a wider name column)."""
        self._drawn: dict[str, ProcessStatus] = {}
        self._sort_keys: dict[str, object] = {}
        """Per row, the sort key it had when the rows were last sorted."""
        self._stale: set[str] = set()
        """Rows out of view whose cells lag behind the store (brought up to date on coming into view)."""
        self._greyed: set[str] = set()
        """Rows drawn greyed (their daemon out of reach when they were drawn)."""
        self._hosts: tuple[str, ...] = ()
        """The fleet's hosts the current layout was planned for (the HOST column shows for several)."""

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._catch_up, init=False)

    # -- reading ----------------------------------------------------------------------------------

    @property
    def selected(self) -> str | None:
        """The name of the process under the cursor, if any row is shown."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor briefly points past the last row while rows are removed
            return None
        return key.value

    @property
    def targets(self) -> list[str]:
        """What an action applies to: the marked processes when any are marked, else the selected one."""
        if self.marked:  # only those in view: a filter never hides what a key press acts on
            order = self.store.view_order
            return sorted((n for n in self.marked if n in self.rows and n in order), key=order.__getitem__)
        name = self.selected
        return [name] if name is not None else []

    def shown_names(self) -> list[str]:
        return [key.value for key in self._ordered_keys() if key.value is not None]

    def cell_text(self, name: str, column: str) -> str:
        """The text a person sees in one cell ('' for a hidden column): what the tests read."""
        if self._layout is None or column not in self._layout.keys:
            return ""
        if name in self._stale:
            self._rerender(name)
        return self.get_cell(name, column).plain

    # -- writing ----------------------------------------------------------------------------------

    def apply(self, names: Iterable[str]) -> bool:
        """Bring the rows of `names` up to the store's statuses; True when the selected process was among them."""
        selected = self.selected
        touched = False
        resort = False
        column = BY_KEY[self.sort_column] if self.sort_column else None
        view = self._view()
        statuses = self.store.view
        for name in names:
            touched = touched or name == selected
            status = statuses.get(name)
            if status is None:
                self._forget(name)
                continue
            if name not in self._planned:
                self._planned.add(name)
                if self._layout is not None and len(status.local_name) > self._layout.width_of("name"):
                    self._layout = None  # a longer name: re-plan the columns once
            shown = name in self.rows
            wanted = matches(status, self.query_text)
            if wanted and not shown:
                self._add(status)
                resort = True
            elif shown and not wanted:
                self._remove(name)
            elif shown:
                drawn = self._drawn.get(name)
                if drawn is None or not self._in_view(name, view):
                    self._stale.add(name)
                elif self.store.greyed(name) != (name in self._greyed):
                    self._rerender(name)  # its daemon went or came back: every cell changes look
                else:
                    self._update(drawn, status)
                resort = resort or (column is not None and self._sort_keys.get(name) != column.sort_key(status))
        if self._layout is None:
            self.relayout(force=True)
        elif resort:
            self._resort(selected)
        return touched

    def _view(self) -> tuple[int, int]:
        """Indices of the first and last row in view (all rows while the size is not known yet)."""
        if self.size.height == 0:
            return 0, self.row_count
        first = int(self.scroll_y)
        return first, first + self.size.height

    def _in_view(self, name: str, view: tuple[int, int] | None = None) -> bool:
        index = self._row_locations.get(RowKey(name))
        if index is None:
            return False
        first, last = view or self._view()
        return first <= index <= last

    def _rerender(self, name: str) -> None:
        self._stale.discard(name)
        status = self.store.view.get(name)
        if status is not None and self._layout is not None and name in self.rows:
            for column in self._layout.columns:
                self._set(name, column.key, self._cell(status, column))
            self._drawn[name] = status
            self._note_greyed(name)

    def _catch_up(self, *_: object) -> None:
        """Rows that came into view (scrolled, sorted, filtered) get the updates they missed."""
        if self._stale:
            view = self._view()
            for name in [n for n in self._stale if self._in_view(n, view)]:
                self._rerender(name)

    def _add(self, status: ProcessStatus) -> None:
        if self._layout is None:
            return  # the coming relayout adds every row
        self.add_row(*self._cells(status, self._layout.columns), key=status.name)
        self._drawn[status.name] = status
        self._note_greyed(status.name)

    def _note_greyed(self, name: str) -> None:
        if self.store.greyed(name):
            self._greyed.add(name)
        else:
            self._greyed.discard(name)

    def _remove(self, name: str) -> None:
        self.remove_row(name)
        self._drawn.pop(name, None)
        self._sort_keys.pop(name, None)
        self._stale.discard(name)
        self._greyed.discard(name)

    def _forget(self, name: str) -> None:
        self.marked.discard(name)
        self._planned.discard(name)
        if name in self.rows:
            self._remove(name)

    def _update(self, old: ProcessStatus, new: ProcessStatus) -> None:
        assert self._layout is not None
        for column in changed_columns(old, new, self._layout.columns):
            self._set(new.name, column.key, self._cell(new, column))
        self._drawn[new.name] = new

    def _set(self, name: str, column: str, text: Text) -> None:
        """`update_cell`, unless the cell would look the same (a ticking uptime that shows `3h05m`)."""
        old = self.get_cell(name, column)
        if old.plain != text.plain or old.style != text.style or old.spans != text.spans:
            self.update_cell(name, column, text)

    def _cell_context(self, name: str, column: Column) -> CellContext:
        assert self.cell_styles is not None and self._layout is not None
        width = self._layout.width_of(column.key)
        folded = len(self.store.groups.get(name, ())) if self.store.fold and name not in self.store.statuses else 0
        return CellContext(self.clock(), self.cell_styles, name in self.marked, width, folded, self.store.greyed(name))

    def _cell(self, status: ProcessStatus, column: Column) -> Text:
        return column.cell(status, self._cell_context(status.name, column))

    def _cells(self, status: ProcessStatus, columns: Iterable[Column]) -> list[Text]:
        return [self._cell(status, c) for c in columns]

    def refresh_clock_cells(self, *, backoff: bool = True, uptime: bool = False, scheduled: bool = False) -> None:
        """Re-render the time-dependent cells: countdowns of `retrying` rows (or, with `scheduled`, of
        rows waiting for a scheduled run), uptimes of visible rows."""
        if self._layout is None:
            return
        keys = self._layout.keys
        statuses = self.store.view
        if (backoff or scheduled) and "backoff" in keys:
            column = BY_KEY["backoff"]
            rows = (self.store.ticking(scheduled=False) if backoff else set()) | (
                self.store.ticking(scheduled=True) if scheduled else set())
            for name in rows:
                if name not in statuses or name not in self.rows:
                    continue
                if self._in_view(name):
                    self._set(name, "backoff", self._cell(statuses[name], column))
                else:
                    self._stale.add(name)
        if uptime and "uptime" in keys:
            column = BY_KEY["uptime"]
            for name in self._visible_names():
                status = statuses.get(name)
                if status is not None and status.pid is not None:
                    self._set(name, "uptime", self._cell(status, column))

    def _visible_names(self) -> list[str]:
        first = int(self.scroll_y)
        height = max(1, self.size.height)
        ordered = self._ordered_keys()
        return [k.value for k in ordered[first: first + height] if k.value is not None]

    def _ordered_keys(self) -> list[RowKey]:
        return [row.key for row in self.ordered_rows]

    def hosts_changed(self) -> None:
        """The fleet's hosts changed (they are known once its links are): the HOST column may come or go."""
        if self.store.hosts != self._hosts:
            self.relayout()

    def restyle(self, styles: CellStyles) -> None:
        """The theme changed: every coloured cell is rendered again, once."""
        self.cell_styles = styles
        self.relayout(force=True)

    # -- layout, order, filter, marks -------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.relayout()
        self._catch_up()

    def relayout(self, *, force: bool = False) -> None:
        """Choose the columns for the current width; rebuild the table only if they changed."""
        if self.cell_styles is None or self.size.width == 0:
            return
        available = self.size.width - 2  # keep room for the vertical scrollbar
        statuses = self.store.view
        self._hosts = self.store.hosts
        groups = self.store.groups if self.store.fold else {}
        badges = {s.local_name: badge_room(s, len(groups.get(n, ())) if n not in self.store.statuses else 0)
                  for n, s in statuses.items() if s.watching or s.hook_error or n in groups}
        layout = plan_layout(available, (s.local_name for s in statuses.values()), badges, self._hosts)
        self._planned = set(statuses)
        if not force and layout == self._layout:
            return
        selected = self.selected
        self._layout = layout
        self._stale.clear()
        self._drawn.clear()
        self._sort_keys.clear()
        self._greyed.clear()
        self.clear(columns=True)
        for column, width in zip(layout.columns, layout.widths, strict=True):
            label = Text(column.label + self._sort_arrow(column.key), justify=column.justify)
            self.add_column(label, width=width, key=column.key)
        for status in statuses.values():  # (the store keeps the core's order)
            if matches(status, self.query_text):
                self._add(status)
        self._resort(selected)

    def _sort_arrow(self, key: str) -> str:
        if key != self.sort_column:
            return ""
        return " ▼" if self.sort_reverse else " ▲"

    def sort_by(self, column: str | None, *, reverse: bool | None = None) -> None:
        """Sort by a column (None: declaration order); choosing the same column again flips the order."""
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column and column is not None else False
        self.sort_column, self.sort_reverse = column, reverse
        self.relayout(force=True)

    def _resort(self, keep: str | None) -> None:
        column = BY_KEY[self.sort_column] if self.sort_column else None
        statuses, order, sort_keys, drawn = self.store.view, self.store.view_order, self._sort_keys, self._drawn
        last = len(order)

        def key(cell: Text) -> object:
            # A row the store no longer has (its removal is on the way) sorts by what it shows, last.
            name = cell.process_name if isinstance(cell, NameCell) else cell.plain
            if column is None:
                return (0, order.get(name, last))
            sort_key = sort_keys[name] = column.sort_key(statuses.get(name) or drawn[name])
            return (sort_key, order.get(name, last))

        if self.row_count:
            self.sort("name", key=key, reverse=self.sort_reverse)
        self._restore_cursor(keep)
        self._catch_up()

    def _restore_cursor(self, name: str | None) -> None:
        if name is None or name not in self.rows:
            return
        try:
            index = self.get_row_index(name)
        except RowDoesNotExist:
            return
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False, scroll=True)

    def set_query(self, query: str) -> None:
        """Show only the processes matching `query` (see `matches`)."""
        if query == self.query_text:
            return
        self.query_text = query
        selected = self.selected
        for name, status in self.store.view.items():
            wanted, shown = matches(status, query), name in self.rows
            if wanted and not shown:
                self._add(status)
            elif shown and not wanted:
                self._remove(name)
        self._resort(selected)
        self.post_message(self.SelectionChanged(self.selected))

    def toggle_mark(self, name: str) -> None:
        self.marked.symmetric_difference_update({name})
        status = self.store.view.get(name)
        if self._layout is not None and "name" in self._layout.keys and name in self.rows and status is not None:
            self.update_cell(name, "name", self._cell(status, BY_KEY["name"]))
        self.post_message(self.SelectionChanged(self.selected))

    def clear_marks(self) -> None:
        for name in list(self.marked):
            self.toggle_mark(name)

