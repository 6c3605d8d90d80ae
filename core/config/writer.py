"""Adding and removing `[process.NAME]` tables in a user's `pmtop.toml` without losing their comments.

tomli-w can only write a whole document, which would drop every comment, so edits are made on the
text: a new table is rendered with tomli-w and appended; a removed table is cut out together with its
sub-tables (`[process.NAME.health]`) and the comment lines directly above its header. The result is
parsed again before it is written (atomically), so a bad edit can never reach the disk.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, format_key_path
from ..files import write_atomic

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def add_process_table(path: Path, name: str, table: Mapping[str, Any]) -> None:
    """Append `[process.NAME]` (and its sub-tables) to the config file at `path`."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = _parse(text, path)
    if name in (document.get("process") or {}):
        raise ConfigError(f"already declared in {path.name}", key_path=format_key_path(("process", name)))
    import tomli_w  # only the few who add a process pay for the import

    rendered = tomli_w.dumps({"process": {name: dict(table)}})
    if text and not text.endswith("\n"):
        text += "\n"
    new_text = f"{text}\n{rendered}" if text.strip() else rendered
    _parse(new_text, path)
    write_atomic(path, new_text.encode("utf-8"), mode=_mode(path))


def remove_process_table(path: Path, name: str) -> bool:
    """Cut `[process.NAME]` and its sub-tables out of the file; False when it is not declared there."""
    text = path.read_text(encoding="utf-8")
    document = _parse(text, path)
    if name not in (document.get("process") or {}):
        return False
    lines = text.splitlines(keepends=True)
    keep: list[str] = []
    cut: list[str] = []  # lines of the table being removed, since its header
    removing = False
    for line in lines:
        match = _HEADER.match(line)
        if match:
            was_removing, removing = removing, _belongs_to(match.group(1), name)
            if removing:  # its own comment block goes too, unless that block opens the file
                block = _comment_block_at_end(keep)
                if block and len(block) < len(keep):
                    del keep[-len(block):]
            elif was_removing:  # the comment block directly above the next header is that table's
                above = _comment_block_at_end(cut)
                keep.extend(["\n", *above] if above else [])
            cut = []
        if removing:
            cut.append(line)
        else:
            keep.append(line)
    new_text = re.sub(r"\n{3,}", "\n\n", "".join(keep))
    if name in (_parse(new_text, path).get("process") or {}):  # declared in a form we cannot cut
        raise ConfigError("declared in a form pmtop cannot edit (inline table); remove it by hand",
                          file=str(path), key_path=format_key_path(("process", name)))
    write_atomic(path, new_text.encode("utf-8"), mode=_mode(path))
    return True


def _comment_block_at_end(lines: list[str]) -> list[str]:
    block: list[str] = []
    for line in reversed(lines):
        if not line.lstrip().startswith("#"):
            break
        block.insert(0, line)
    return block


def _belongs_to(header: str, name: str) -> bool:
    keys = _split_key(header)
    return len(keys) >= 2 and keys[0] == "process" and keys[1] == name


def _split_key(header: str) -> list[str]:
    """`process."web.v2".health` -> ["process", "web.v2", "health"]."""
    keys: list[str] = []
    for match in re.finditer(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*(?:\.|$)', header):
        token = match.group(1)
        keys.append(token[1:-1] if token[0] in "\"'" else token)
    return keys


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML, not edited: {exc}", file=str(path)) from None


def _mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644
