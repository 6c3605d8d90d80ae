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

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, CursorType, RowKey

SegmentLines = list[list[Segment]]


class CachedTable(DataTable[Text]):
    def __init__(self, *, cursor_type: CursorType = "row", cell_padding: int = 1, id: str | None = None) -> None:
        super().__init__(cursor_type=cursor_type, cell_padding=cell_padding, id=id)
        self._stamps = itertools.count(1)
        self._cell_stamp: dict[tuple[str, str], int] = {}
        self._row_stamp: dict[str, int] = {}
        self._layout_stamp = 0
        self._cells_rendered: LRUCache[tuple[object, ...], SegmentLines] = LRUCache(20_000)
        self._rows_rendered: LRUCache[tuple[object, ...], tuple[SegmentLines, SegmentLines]] = LRUCache(2_000)
        self._dirty_rows: set[int] = set()

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
        self._update_count += 1
        stamp = next(self._stamps)
        self._cell_stamp[(_key(row), _key(column))] = stamp
        self._row_stamp[_key(row)] = stamp
        if not self._dirty_rows:
            self.call_next(self._paint)
        self._dirty_rows.add(index)

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

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style,
                            cursor_location: Coordinate, hover_location: Coordinate,
                            ) -> tuple[list[list[Segment]], list[list[Segment]]]:
        found = self._row_locations.get(row_key)
        index = -1 if found is None else found
        key = (_key(row_key), index, line_no, base_style, cursor_location.row == index,
               hover_location.row == index, self.cursor_type, self.show_cursor, self._show_hover_cursor,
               self._row_stamp.get(_key(row_key), 0), self._layout_stamp, self._pseudo_class_state,
               self.size.width)
        rendered = self._rows_rendered.get(key)
        if rendered is None:
            if index >= 0 and self._plain_rows():
                rendered = self._assemble_row(index, line_no, base_style, cursor_location.row == index,
                                              hover_location.row == index)
            else:
                rendered = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self._rows_rendered[key] = rendered
        return rendered

    def _plain_rows(self) -> bool:
        """No fixed rows or columns, no row labels, no zebra stripes, a row cursor: what `_assemble_row` does."""
        return (self.cursor_type == "row" and not self.fixed_rows and not self.fixed_columns
                and not self.zebra_stripes and not (self._labelled_row_exists and self.show_row_labels))

    def _assemble_row(self, index: int, line_no: int, base_style: Style, cursor: bool, hover: bool,
                      ) -> tuple[SegmentLines, SegmentLines]:
        """A data row's line as `DataTable._render_line_in_row` makes it for a plain table (`_plain_rows`):
        its cells, then its style extended to the widget's width."""
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        cells = [self._render_cell(index, column, base_style, width, cursor, hover)[line_no]
                 for column, width in enumerate(widths)]
        extend_style, _ = self._get_styles_to_render_cell(False, False, False, hover, cursor, self.show_cursor,
                                                          self._show_hover_cursor, False, False)
        extend_style = base_style + extend_style + Style.from_meta({"row": index, "column": 0, "out_of_bounds": True})
        cells.append([Segment(" " * max(0, self.size.width - sum(widths)), extend_style)])
        return [], cells

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        row_key = self._header_row_key if row_index == -1 else self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (row_index, column_index, self._cell_stamp.get((_key(row_key), _key(column_key)), 0),
               self._layout_stamp, base_style, width, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state)
        lines = self._cells_rendered.get(key)
        if lines is None:
            lines = self._render_text_cell(row_key, column_key, row_index, column_index, base_style, width, cursor,
                                           hover)
            if lines is None:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells_rendered[key] = lines
        return lines

    def _render_text_cell(self, row_key: RowKey, column_key: ColumnKey, row_index: int, column_index: int,
                          base_style: Style, width: int, cursor: bool, hover: bool) -> SegmentLines | None:
        """A data cell as `DataTable._render_cell` renders it, when it is a one-line text (else None)."""
        if row_index < self.fixed_rows or column_index < self.fixed_columns:  # (also the header and labels)
            return None
        row = self.rows.get(row_key)
        cell = self._data.get(row_key, {}).get(column_key)
        if row is None or row.height != 1 or not isinstance(cell, Text):
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        line = render_text_cell(self.app.console, cell, width, self.cell_padding, pre_style, post_style)
        return None if line is None else [line]



def _key(key: RowKey | ColumnKey | str | None) -> str:
    if key is None or isinstance(key, str):
        return str(key)
    return str(key.value)


_NULL = Style.null()


def render_text_cell(console: Console, cell: Text, width: int, padding: int, pre_style: Style,
                     post_style: Style) -> list[Segment] | None:
    """The one line `console.render_lines(Styled(Padding(cell, (0, padding)), pre_style, post_style),
    options of width and height 1, no_wrap)` gives, for a one-line, left or right justified, no-wrap
    text; None for any other cell. The steps are rich's own (`Text.wrap`, `Lines.justify`, `Text.join`,
    `Segment.adjust_line_length`, `Segment.apply_style`), minus what cannot apply to such a cell.
    """
    inner = width - 2 * padding
    plain = cell.plain
    justify, overflow = cell.justify, cell.overflow
    if (not cell or inner <= 0 or not cell.no_wrap or justify not in ("left", "right") or overflow is None
            or overflow == "ignore" or "\n" in plain or "\t" in plain):
        return None  # (an empty cell is drawn as DataTable's own empty text)
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
    return segments
