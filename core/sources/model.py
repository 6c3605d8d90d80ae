"""What an import is: a source file read into `[process.NAME]` tables, plus what did not map.

Readers produce plain TOML-ready tables (the same keys `pmtop.toml` takes), never specs: the writer
renders them with their comments, and the result is loaded with the real config loader before it is
written, so an import can only ever produce a valid `pmtop.toml`. Whatever a reader cannot map goes to
the report (`Loss`, shared with `pmtop export`) and, for settings pmtop does not have yet
(`ready_log_line`...), also into the table as a commented-out line, so nothing is lost silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from ..export.model import Loss, LossKind

NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(slots=True)
class Imported:
    """One process as read from the source."""

    name: str
    table: dict[str, Any] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    """Lines written above its table (without the `# `)."""
    pending: list[str] = field(default_factory=list)
    """`key = value` lines for settings pmtop does not have yet, written commented out in its table."""


@dataclass(slots=True)
class ImportResult:
    source: str
    """The kind of file read: "procfile", "supervisord", ..."""
    path: str
    processes: list[Imported] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    losses: list[Loss] = field(default_factory=list)

    def lost(self, kind: LossKind, setting: str, detail: str, process: str | None = None) -> None:
        loss = Loss(setting=setting, kind=kind, detail=detail, process=process)
        if loss not in self.losses:
            self.losses.append(loss)

    def dropped(self, setting: str, detail: str, process: str | None = None) -> None:
        self.lost(LossKind.DROPPED, setting, detail, process)

    def approximated(self, setting: str, detail: str, process: str | None = None) -> None:
        self.lost(LossKind.APPROXIMATED, setting, detail, process)

    def note(self, setting: str, detail: str, process: str | None = None) -> None:
        self.lost(LossKind.NOTE, setting, detail, process)

    def later(self, process: Imported, key: str, value: str, detail: str) -> None:
        """A setting pmtop does not have yet: reported, and kept as a commented-out `key = value` line."""
        process.pending.append(f"{key} = {value}  # {detail}: not a pmtop setting yet")
        self.dropped(key, f"{detail} (kept as a comment: not a pmtop setting yet)", process.name)

    def add(self, name: str) -> Imported:
        """A new process named as close to `name` as pmtop's rules allow (renames are reported)."""
        wanted = name
        clean = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-._")[:64] or "process"
        if not clean[0].isalnum():
            clean = "p" + clean
        taken = {p.name for p in self.processes}
        candidate, n = clean, 2
        while candidate in taken:
            candidate, n = f"{clean}-{n}", n + 1
        if candidate != wanted:
            self.approximated("name", f"{wanted!r} is not a pmtop process name: written as {candidate!r}", candidate)
        process = Imported(name=candidate)
        self.processes.append(process)
        return process
