"""A DataTable that renders again only what changed, and repaints only the rows that did.

Why: DataTable keys all its render caches on one table-wide update counter, so a single `update_cell`
re-renders every visible cell (~0.2 ms each, ~800 cells at 250x70) and repaints the whole table. With
1,000 processes whose facts change every second that alone costs more than the dashboard's budget.
Here each cell and each row carries a stamp that changes when (and only when) its content does; the
overridden `_render_cell` and `_render_line_in_row` cache on those stamps, and `update_cell` repaints
just the changed rows, once per batch.

What does change is rendered on a short path: with every visible row changing once a second (1,000
processes' CPU and RSS), rendering is most of the dashboard's CPU. A row is assembled from its cells
without DataTable's per-row look-ups of CSS styles (`_assemble_row`), and a one-line cell is rendered
as rich would render it, without the `Styled(Padding(Text))` layers and their two `render_lines`
(`render_text_cell`, ~5x cheaper). Tables with fixed rows or columns, row labels, zebra stripes or a
cell or column cursor, and cells other than one-line texts, take DataTable's own way. The look is the
same segment for segment (tests/tui/test_cached_table.py renders both ways and compares).

These override private DataTable methods: Textual is pinned exactly (pyproject), and the snapshot and
pilot tests render through them, so an upgrade that changes them fails loudly rather than subtly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual._segment_tools import line_crop
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, CursorType, Row, RowKey

SegmentLines = list[list[Segment]]


@dataclass(frozen=True, slots=True)
class _Pass:
    """What the lines of one `render_lines` read alike (DataTable asks again for each line, or cell)."""

    style: Style
    """The widget's own."""
    width: int
    columns: tuple[tuple[int, ColumnKey, str, int], ...]
    """Index, key, key as a string, width with padding: in display order."""
    show_cursor: bool
    css_foreground: bool
    css_background: bool
    console: Console


class CachedTable(DataTable[Text]):
    _cell_updates = 0
    """How many of DataTable's `_update_count` were cell updates, which move no row (read while
    DataTable's `__init__` runs, hence here)."""

    def __init__(self, *, cursor_type: CursorType = "row", cell_padding: int = 1, id: str | None = None) -> None:
        super().__init__(cursor_type=cursor_type, cell_padding=cell_padding, id=id)
        self._stamps = itertools.count(1)
        self._cell_stamp: dict[tuple[str, str], int] = {}
        self._row_stamp: dict[str, int] = {}
        self._layout_stamp = 0
        self._cells_rendered: LRUCache[tuple[object, ...], SegmentLines] = LRUCache(20_000)
        self._rows_rendered: LRUCache[tuple[object, ...], tuple[SegmentLines, SegmentLines]] = LRUCache(2_000)
        self._pre_styles: LRUCache[tuple[object, ...], Style] = LRUCache(20_000)
        """A cell's style under its text: the row's, its place (meta, for the mouse) and the cursor's."""
        self._dirty_rows: set[int] = set()
        self._style_ids: dict[Style, int] = {}
        self._render_pass: _Pass | None = None
        """While `render_lines` runs: what every line reads alike, asked once."""

    def clear(self, columns: bool = False) -> CachedTable:
        """Also forgets every stamp: what is added next is new (column labels included)."""
        self._layout_stamp += 1
        self._cell_stamp.clear()
        self._row_stamp.clear()
        super().clear(columns)
        return self

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Text, *,
                    update_width: bool = False) -> None:
        """As `DataTable.update_cell`, but repaints only the rows that changed, once per batch of updates
        (DataTable repaints the whole table on every call). Column widths are fixed, so `update_width`
        is never needed.
        """
        row = RowKey(row_key) if isinstance(row_key, str) else row_key
        column = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        index = self._row_locations.get(row)
        if index is None or column not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row][column] = value
        self._update_count += 1  # (DataTable's own render caches key on it)
        self._cell_updates += 1
        stamp = next(self._stamps)
        self._cell_stamp[(_key(row), _key(column))] = stamp
        self._row_stamp[_key(row)] = stamp
        if not self._dirty_rows:
            self.call_next(self._paint)
        self._dirty_rows.add(index)

    def notify_style_update(self) -> None:
        """The CSS changed (DataTable forgets its renders; so do these)."""
        self._cells_rendered.clear()
        self._rows_rendered.clear()
        self._pre_styles.clear()
        super().notify_style_update()

    @property
    def _row_layout(self) -> int:
        """Changes when DataTable counts an update that may move or resize rows (add, remove, sort,
        clear, resize); cell updates do neither, so what depends only on the rows' order is kept."""
        return self._update_count - self._cell_updates

    @property
    def ordered_rows(self) -> list[Row]:
        """As DataTable's, but not made again after each cell update (it walks every row: 900 a frame)."""
        key = (self.row_count, self._row_layout)
        rows = self._ordered_row_cache.get(key)
        if rows is None:
            get_key = self._row_locations.get_key
            rows = self._ordered_row_cache[key] = [self.rows[row] for index in range(self.row_count)
                                                   if (row := get_key(index)) is not None]
        return rows

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        """As DataTable's (each line's row, and line in it), kept across cell updates as `ordered_rows`."""
        key = self._row_layout
        offsets = self._offset_cache.get(key)
        if offsets is None:
            offsets = self._offset_cache[key] = [(row.key, y) for row in self.ordered_rows for y in range(row.height)]
        return offsets

    def _paint(self) -> None:
        rows, self._dirty_rows = self._dirty_rows, set()
        if len(rows) > 8:
            self.refresh()  # one region for the lot: cheaper for the compositor than dozens
        else:
            for index in rows:
                self.refresh_row(index)

    def add_row(self, *cells: Text, height: int | None = 1, key: str | None = None,
                label: Text | str | None = None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        stamp = next(self._stamps)
        for column in self.columns:
            self._cell_stamp[(_key(row_key), _key(column))] = stamp
        self._row_stamp[_key(row_key)] = stamp
        return row_key

    # -- rendering ---------------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        self._render_pass = self._make_pass()
        try:
            return super().render_lines(crop)
        finally:
            self._render_pass = None

    def _make_pass(self) -> _Pass:
        columns = tuple((index, column.key, _key(column.key), column.get_render_width(self))
                        for index, column in enumerate(self.ordered_columns))
        return _Pass(super().rich_style, self.size.width, columns, self.show_cursor,
                     self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
                     self.app.console)

    def _pass(self) -> _Pass:
        return self._render_pass if self._render_pass is not None else self._make_pass()

    @property
    def rich_style(self) -> Style:
        """As Widget's, but asked once per `render_lines` (DataTable asks for every line it renders)."""
        return self._render_pass.style if self._render_pass is not None else super().rich_style

    def _style_id(self, style: Style) -> int:
        """A number for `style` in cache keys: hashing and comparing a Style costs Python calls."""
        found = self._style_ids.get(style)
        if found is None:
            if len(self._style_ids) > 1_000:
                self._style_ids.clear()  # (numbers are never reused: forgotten styles only miss)
            found = self._style_ids[style] = next(self._stamps)
        return found

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """As DataTable's, for the data rows of a plain table (`_plain_rows`) without simplifying the
        line again: its cells are simplified, and no two cells share a style (each carries its place as
        meta), so it would not change."""
        if not self._plain_rows():
            return super()._render_line(y, x1, x2, base_style)
        width = self._pass().width
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        if row_key not in self._row_locations:  # the header
            return super()._render_line(y, x1, x2, base_style)
        _, cells = self._render_line_in_row(row_key, line_no, base_style, self.cursor_coordinate, self.hover_coordinate)
        segments = line_crop(list(itertools.chain.from_iterable(cells)), x1, x2, width)
        return Strip(segments).adjust_cell_length(width, base_style)

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style,
                            cursor_location: Coordinate, hover_location: Coordinate,
                            ) -> tuple[list[list[Segment]], list[list[Segment]]]:
        row = _key(row_key)
        found = self._row_locations.get(row_key)
        index = -1 if found is None else found
        cursor, hover = cursor_location.row == index, hover_location.row == index
        key = (row, index, line_no, base_style, cursor, hover, self.cursor_type, self.show_cursor,
               self._show_hover_cursor, self._row_stamp.get(row, 0), self._layout_stamp, self._pseudo_class_state,
               self._pass().width)
        rendered = self._rows_rendered.get(key)
        if rendered is None:
            if index >= 0 and self._plain_rows():
                rendered = self._assemble_row(row_key, row, index, line_no, base_style, cursor, hover)
            else:
                rendered = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self._rows_rendered[key] = rendered
        return rendered

    def _plain_rows(self) -> bool:
        """No fixed rows or columns, no row labels, no zebra stripes, a row cursor: what `_assemble_row` does."""
        return (self.cursor_type == "row" and not self.fixed_rows and not self.fixed_columns
                and not self.zebra_stripes and not (self._labelled_row_exists and self.show_row_labels))

    def _assemble_row(self, row_key: RowKey, row: str, index: int, line_no: int, base_style: Style, cursor: bool,
                      hover: bool) -> tuple[SegmentLines, SegmentLines]:
        """A data row's line as `DataTable._render_line_in_row` makes it for a plain table (`_plain_rows`):
        its cells, then its style extended to the widget's width. Most of its cells did not change: they
        are looked up here, with what they have in common worked out once."""
        now = self._pass()
        stamps, rendered = self._cell_stamp, self._cells_rendered
        common = self._cell_key_common(base_style, cursor, hover)
        cells: SegmentLines = []
        used = 0
        for column_index, column_key, column, width in now.columns:
            used += width
            key = (index, column_index, stamps.get((row, column), 0), width, common)
            lines = rendered.get(key)
            if lines is None:
                lines = rendered[key] = self._new_cell(row_key, column_key, index, column_index, base_style, width,
                                                       cursor, hover)
            cells.append(lines[line_no])
        extend_style, _ = self._get_styles_to_render_cell(False, False, False, hover, cursor, now.show_cursor,
                                                          self._show_hover_cursor, False, False)
        extend_style = base_style + extend_style + Style.from_meta({"row": index, "column": 0, "out_of_bounds": True})
        cells.append([Segment(" " * max(0, now.width - used), extend_style)])
        return [], cells

    def _cell_key_common(self, base_style: Style, cursor: bool, hover: bool) -> tuple[object, ...]:
        """What a cell's cache key shares with the rest of its row (the key: row and column index,
        stamp, width, this)."""
        return (self._layout_stamp, self._style_id(base_style), cursor, hover, self._show_hover_cursor,
                self._pseudo_class_state)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """As DataTable's, each line simplified (fewer segments for every later step of the frame)."""
        row_key = self._header_row_key if row_index == -1 else self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (row_index, column_index, self._cell_stamp.get((_key(row_key), _key(column_key)), 0), width,
               self._cell_key_common(base_style, cursor, hover))
        lines = self._cells_rendered.get(key)
        if lines is None:
            lines = self._cells_rendered[key] = self._new_cell(row_key, column_key, row_index, column_index,
                                                               base_style, width, cursor, hover)
        return lines

    def _new_cell(self, row_key: RowKey, column_key: ColumnKey, row_index: int, column_index: int, base_style: Style,
                  width: int, cursor: bool, hover: bool) -> SegmentLines:
        """A cell rendered anew: on the short path if it can take it, else by DataTable; simplified."""
        lines = self._render_text_cell(row_key, column_key, row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            lines = [list(Segment.simplify(line))
                     for line in super()._render_cell(row_index, column_index, base_style, width, cursor, hover)]
        return lines

    def _render_text_cell(self, row_key: RowKey, column_key: ColumnKey, row_index: int, column_index: int,
                          base_style: Style, width: int, cursor: bool, hover: bool) -> SegmentLines | None:
        """A data cell as `DataTable._render_cell` renders it (simplified), when it is a one-line text (else None)."""
        if row_index < self.fixed_rows or column_index < self.fixed_columns:  # (also the header and labels)
            return None
        row = self.rows.get(row_key)
        cell = self._data.get(row_key, {}).get(column_key)
        if row is None or row.height != 1 or not isinstance(cell, Text):
            return None
        now = self._pass()
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, now.show_cursor, self._show_hover_cursor, now.css_foreground,
            now.css_background)
        place = (self._style_id(base_style), self._style_id(component_style), row_index, column_index)
        pre_style = self._pre_styles.get(place)
        if pre_style is None:
            pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            self._pre_styles[place] = pre_style
        line = render_text_cell(now.console, cell, width, self.cell_padding, pre_style, post_style)
        return None if line is None else [line]



def _key(key: RowKey | ColumnKey | str | None) -> str:
    if key is None or isinstance(key, str):
        return str(key)
    return str(key.value)


_NULL = Style.null()


def render_text_cell(console: Console, cell: Text, width: int, padding: int, pre_style: Style,
                     post_style: Style) -> list[Segment] | None:
    """The one line `console.render_lines(Styled(Padding(cell, (0, padding)), pre_style, post_style),
    options of width and height 1, no_wrap)` gives, simplified, for a one-line, left or right justified,
    no-wrap text; None for any other cell. The steps are rich's own (`Text.wrap`, `Lines.justify`,
    `Text.join`, `Text.render`, `Segment.adjust_line_length`, `Segment.apply_style`), minus what cannot
    apply to such a cell; for a text of one style that fits (most cells), what they come to.
    """
    inner = width - 2 * padding
    plain = cell.plain
    justify, overflow = cell.justify, cell.overflow
    if (not cell or inner <= 0 or not cell.no_wrap or justify not in ("left", "right") or overflow is None
            or overflow == "ignore" or "\n" in plain or "\t" in plain):
        return None  # (an empty cell is drawn as DataTable's own empty text)
    segments: list[Segment]
    if not cell.spans and cell_len(plain) <= inner:
        if justify == "left":
            text = plain + " " * (inner - cell_len(plain))
        else:
            text = plain.rstrip()
            text = " " * (inner - cell_len(text)) + text
        segments = [Segment(text, console.get_style(cell.style, default=_NULL) if cell.style else None)]
    else:
        line = cell.copy()  # Text.wrap: one line, no wrapping; then Lines.justify, then truncate
        if justify == "left":
            line.truncate(inner, overflow=overflow, pad=True)
        else:
            line.rstrip()
            line.truncate(inner, overflow=overflow)
            line.pad_left(inner - cell_len(line.plain))
        line.truncate(inner, overflow=overflow)
        if line.style:  # Text("\n").join([line]): its style becomes a span under its own spans
            line.spans = [Span(0, len(line), line.style), *line.spans]
            line.style = ""
        segments = Segment.adjust_line_length(list(line.render(console)), inner, style=_NULL, pad=True)
    if padding:
        pad = Segment(" " * padding, _NULL)
        segments = [pad, *segments, pad]
    if pre_style:
        segments = [Segment(text, pre_style + style) for text, style, _ in segments]
    if post_style:
        segments = [Segment(text, style + post_style if style else post_style) for text, style, _ in segments]
    return list(Segment.simplify(segments))
