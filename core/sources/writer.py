"""An import written as a commented `pmtop.toml`, checked by the real config loader before anyone sees it."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from .model import Imported, ImportResult


def render_toml(result: ImportResult) -> str:
    source = Path(result.path).name
    parts = [
        f"# pmtop.toml, imported from {source} ({result.source}) by `pmtop import`.\n"
        "# Check it, then run `pmtop` here. What did not map is in the report `pmtop import` printed, and\n"
        "# settings pmtop does not have yet are kept below as commented-out lines.\n"
    ]
    if result.defaults:
        parts.append("[defaults]\n" + "".join(f"{key(k)} = {value(v)}\n" for k, v in result.defaults.items()))
    for process in result.processes:
        parts.append(_process(process))
    text = "\n".join(parts)
    check(text)
    return text


def _table(process: Imported) -> dict[str, Any]:
    """The keys in the order people read them: command first, sub-tables last (tomli-w puts those after)."""
    order = ["command", "cwd", "env", "autostart", "enabled", "depends_on", "restart", "backoff", "max_restarts",
             "reset_after", "retry_forever", "retry_forever_interval", "stop_signal", "stop_timeout"]
    table = process.table
    return {key: table[key] for key in [*order, *table] if key in table} if table else {}


def _process(process: Imported) -> str:
    """`[process.NAME]` with inline values (arrays, env and depends_on tables), then its `[...health]`."""
    table = _table(process)
    header = f"process.{key(process.name)}"
    lines = [f"# {line}" for line in process.comments]
    lines.append(f"[{header}]")
    lines += [f"{key(k)} = {value(v)}" for k, v in table.items() if k != "health"]
    lines += [f"# {line}" for line in process.pending]
    if "health" in table:
        lines += ["", f"[{header}.health]", *(f"{key(k)} = {value(v)}" for k, v in table["health"].items())]
    return "\n".join(lines) + "\n"


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def value(item: Any) -> str:
    """A TOML inline value (JSON's string escapes are TOML's basic-string escapes)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }" if item else "{}"
    return "[" + ", ".join(value(v) for v in item) + "]"


def check(text: str) -> None:
    """Load `text` with the real loader: an import never writes a config that pmtop would refuse."""
    with tempfile.TemporaryDirectory(prefix="pmtop-import-") as folder:
        path = Path(folder) / "pmtop.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as exc:
            raise ConfigError(f"the imported config would not load ({exc.detail}, at {exc.key_path})") from None
