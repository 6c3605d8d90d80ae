"""Where a key is in a TOML text: the line numbers of the config errors (`pmtop.toml`, `fleet.toml`).

tomllib gives values without positions, so a problem found by the rules (which know only the key path)
is placed by scanning the text. Best effort, standard library only, and cheap to import: the client
commands load `fleet.toml` on `pmtop ps --fleet`'s budget.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from typing import Final

    KeyPath = tuple[str, ...]


_SYNTAX_POSITION: Final = re.compile(r"(.*) \((?:at line (\d+), column (\d+)|at end of document)\)", re.S)


def syntax_error_position(message: str, text: str) -> tuple[str, int, int]:
    """Split tomllib's `Invalid value (at line 3, column 5)` into message, line and column."""
    match = _SYNTAX_POSITION.fullmatch(message)
    if match is None:
        return message, 1, 1
    what = match.group(1)
    what = what[:1].lower() + what[1:]
    if match.group(2) is not None:
        return what, int(match.group(2)), int(match.group(3))
    return what, text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


_KEY_PART: Final = re.compile(r"""[ \t]*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')[ \t]*""")


def _read_key(text: str, pos: int) -> tuple[list[str], int] | None:
    """The dotted key starting at `pos` (bare or quoted parts) and where it ends, or None."""
    parts: list[str] = []
    while True:
        match = _KEY_PART.match(text, pos)
        if match is None:
            return None
        bare, basic, literal = match.groups()
        if basic is not None:
            try:
                basic = json.loads(f'"{basic}"')
            except ValueError:
                pass
        parts.append(bare if bare is not None else basic if basic is not None else literal)
        pos = match.end()
        if not text.startswith(".", pos):
            return parts, pos
        pos += 1


def find_line(text: str, path: KeyPath) -> int | None:
    """Best-effort line of the key (or table) at `path`, found by scanning the TOML text.

    Each table header and `key = value` line gets the key path it declares; the line whose path
    shares the longest prefix with `path` wins (a full match of its own path preferred, the first
    line on ties). So a missing key points at its table's header, a bad value at its key.
    """
    best_score, best_line = 0, None
    header: list[str] = []
    multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if multiline is not None:
            if line.count(multiline) % 2 == 1:
                multiline = None
            continue
        stripped = line.lstrip()
        declared: list[str] | None = None
        if stripped.startswith("["):
            opening = 2 if stripped.startswith("[[") else 1
            got = _read_key(stripped, opening)
            if got is not None:
                rest = stripped[got[1]:].lstrip("]").strip()
                if stripped[got[1]:].startswith("]" * opening) and (not rest or rest.startswith("#")):
                    header = declared = got[0]
        else:
            got = _read_key(stripped, 0)
            if got is not None and stripped.startswith("=", got[1]):
                declared = header + got[0]
                value = stripped[got[1] + 1:]
                multiline = next((d for d in ('"""', "'''") if value.count(d) % 2 == 1), None)
        if declared is None:
            continue
        common = 0
        while common < min(len(declared), len(path)) and declared[common] == path[common]:
            common += 1
        score = 2 * common + (common == len(declared))
        if common and score > best_score:
            best_score, best_line = score, number
    return best_line


def item_line(text: str, array: KeyPath, index: int, key: str | None = None) -> int | None:
    """Best-effort line of element `index` (0-based) of the array at `array`, or of its `key`.

    Both spellings of an array of tables are found: `[[fleet.daemons]]` headers (the element's `key =`
    line, else its header), and an inline array `daemons = [ {...}, {...} ]`, whose elements are
    counted while strings and comments are skipped (an inline table is one line in TOML 1.0, so its
    line is the line of its keys). None when the text does not hold that element.
    """
    found = _table_array_line(text, array, index, key)
    if found is not None:
        return found
    return _inline_item_line(text, array, index)


def _table_array_line(text: str, array: KeyPath, index: int, key: str | None) -> int | None:
    count = -1
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith("["):
            if header_line is not None:
                break  # the element ended without the key
            if stripped.startswith("[["):
                got = _read_key(stripped, 2)
                if got is not None and tuple(got[0]) == array and stripped.startswith("]]", got[1]):
                    count += 1
                    if count == index:
                        header_line = number
                        if key is None:
                            return number
            continue
        if header_line is not None and key is not None:
            got = _read_key(stripped, 0)
            if got is not None and got[0] == [key] and stripped.startswith("=", got[1]):
                return number
    return header_line


def _inline_item_line(text: str, array: KeyPath, index: int) -> int | None:
    start = find_line(text, array)
    if start is None:
        return None
    lines = text.splitlines(keepends=True)
    offset = sum(len(line) for line in lines[: start - 1])
    equals = text.find("=", offset)
    if equals < 0:
        return None
    pos, line, depth, count, expecting = equals + 1, start, 0, -1, False
    while pos < len(text):
        char = text[pos]
        if char == "\n":
            line += 1
        elif char == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
            continue
        elif char in "\"'":
            if depth == 1 and expecting:
                count, expecting = count + 1, False
                if count == index:
                    return line
            end = _string_end(text, pos)
            line += text.count("\n", pos, end)
            pos = end
            continue
        elif char in "[{":
            if depth == 1 and expecting:
                count, expecting = count + 1, False
                if count == index:
                    return line
            depth += 1
            expecting = depth == 1
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return None
        elif char == ",":
            expecting = expecting or depth == 1
        elif not char.isspace():
            if depth == 0:
                return None  # not an array
            if depth == 1 and expecting:
                count, expecting = count + 1, False
                if count == index:
                    return line
        pos += 1
    return None


def _string_end(text: str, pos: int) -> int:
    """Where the TOML string starting at `pos` ends (just past its closing quote)."""
    quote = text[pos]
    if text.startswith(quote * 3, pos):
        end = text.find(quote * 3, pos + 3)
        return len(text) if end < 0 else end + 3
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and quote == '"':
            pos += 2
            continue
        if char == quote or char == "\n":
            return pos + 1
        pos += 1
    return pos
