"""`registry.json`: what a supervisor must hand to its successor.

- processes registered at run time (`pmtop add`, the API, the dashboard) that live in no config file:
  `global` and `session` ones, as config tables;
- for every live child: PID, process create time, run folder, restart counters, and the pipe inodes
  of its stdout and stderr, so that a supervisor started after a crash can adopt it (SPEC §4);
- for every scheduled process, the last time of its schedule accounted for, so that a successor can
  report (and with `catch_up` run) what came due while no supervisor ran;
- for every group of replicas scaled away from its declared count, that count.

A PID alone proves nothing (PIDs are reused); PID plus create time identifies a process. The file is
written atomically; a missing or corrupt one never stops a supervisor from starting: it is set aside
with a warning and rebuilt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import set_aside, write_atomic
from ..model import LiveChild, ProcessStatus

log = logging.getLogger("pmtop.core")

FORMAT_VERSION = 1


@dataclass(slots=True)
class RegistryData:
    live: dict[str, LiveChild] = field(default_factory=dict)
    added: dict[str, dict[str, Any]] = field(default_factory=dict)
    """name -> process table (config keys plus scope, project, session_pid) of run-time additions."""
    schedules: dict[str, float] = field(default_factory=dict)
    """Scheduled process -> the last time of its schedule accounted for (Unix seconds)."""
    scaled: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Group of replicas -> (its count, the `replicas` declared then), when a `scale` changed it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "live": {name: _live_json(child) for name, child in self.live.items()},
            "added": self.added,
            "schedules": self.schedules,
            "scaled": {name: {"count": count, "declared": declared} for name, (count, declared) in self.scaled.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> RegistryData:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a pmtop registry (version 1)")
        live = {}
        for name, entry in (data.get("live") or {}).items():
            live[str(name)] = LiveChild(
                pid=int(entry["pid"]),
                create_time=float(entry["create_time"]),
                started_at=float(entry["started_at"]),
                run_dir=entry.get("run_dir"),
                restarts=int(entry.get("restarts", 0)),
                consecutive_failures=int(entry.get("consecutive_failures", 0)),
                pipes={str(k): int(v) for k, v in (entry.get("pipes") or {}).items()},
                keeper_fds={str(k): int(v) for k, v in (entry.get("keeper_fds") or {}).items()},
                group=int(entry["group"]) if entry.get("group") is not None else (
                    None if "group" in entry else int(entry["pid"])),  # older registries: its own group
                foreign=bool(entry.get("foreign", False)),
            )
        added = data.get("added") or {}
        if not isinstance(added, dict) or not all(isinstance(v, dict) for v in added.values()):
            raise ValueError("'added' must map names to process tables")
        schedules = {str(k): float(v) for k, v in (data.get("schedules") or {}).items()}
        scaled = {str(k): (int(v["count"]), int(v["declared"])) for k, v in (data.get("scaled") or {}).items()}
        return cls(live=live, added={str(k): dict(v) for k, v in added.items()}, schedules=schedules, scaled=scaled)


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> RegistryData:
        """The saved registry; an empty one if there is none or it is unreadable (set aside, logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return RegistryData()
        try:
            return RegistryData.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            aside = set_aside(self.path)
            log.warning("registry %s is corrupt (%s); set aside as %s and rebuilt", self.path, exc, aside.name)
            return RegistryData()

    def save(self, data: RegistryData) -> None:
        self.write(self.encode(data))

    @staticmethod
    def encode(data: RegistryData) -> bytes:
        # Compact, so that json's C encoder does it (an indented dump runs the Python encoder: 3-4x slower).
        return (json.dumps(data.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()

    def write(self, blob: bytes) -> None:
        """Atomically and durably (fsync of the file and its folder): may block for milliseconds; any thread."""
        write_atomic(self.path, blob, mode=0o600)


def _live_json(child: LiveChild) -> dict[str, Any]:
    # By hand: `dataclasses.asdict` deep-copies field by field (tens of ms for 1,000 children).
    return {
        "pid": child.pid, "create_time": child.create_time, "started_at": child.started_at, "run_dir": child.run_dir,
        "restarts": child.restarts, "consecutive_failures": child.consecutive_failures, "pipes": dict(child.pipes),
        "keeper_fds": dict(child.keeper_fds), "group": child.group, "foreign": child.foreign,
    }


def recorded_facts(status: ProcessStatus) -> tuple[object, ...]:
    """What of a status the registry records (or depends on): a change of anything else (live facts,
    health, the reason) needs no save. The PID stands for the run (its folder, pipes, group)."""
    return (status.pid, status.restarts, status.consecutive_failures, status.next_run_at)
