"""`type = "heartbeat"`: the process touches a file now and then; a file older than `max_age` is a failure.

For workers with no port to ask: a queue consumer touches `/tmp/worker.beat` after each job (or on a
timer), and a worker that hangs stops touching it. The age counts from the later of the file's mtime and
the start of the run, so a fresh run has `max_age` to write its first beat, and a file left by an earlier
run (or by nobody yet) is not held against it. A relative `path` is taken from the process's `cwd`.

The file is looked at in a worker thread: a `stat` on a network folder can hang, and the event loop
must not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..model import CheckParams
from ..values import KeyPath, format_duration, want_duration, want_str
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult


@dataclass(frozen=True, slots=True)
class HeartbeatCheck(CheckParams):
    KIND: ClassVar[str] = "heartbeat"
    path: str
    """As written: relative paths are taken from the process's working folder when probed."""
    max_age: float
    """Seconds: a file not touched for longer counts as a failure."""


def _seconds(value: float) -> str:
    text = format_duration(value)
    return text if isinstance(text, str) else f"{text:g}s"


def _age(seconds: float) -> str:
    """`42s`, `1.5s`, `3m10s`: how old, as a reason line says it."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60:02d}s"


class HeartbeatProbe:
    def __init__(self, params: HeartbeatCheck, context: ProbeContext) -> None:
        path = os.path.expanduser(params.path)
        self.path = os.path.join(context.cwd, path) if context.cwd and not os.path.isabs(path) else path
        self.shown = params.path
        self.max_age = params.max_age
        self.since = context.started_at if context.started_at is not None else time.time()

    async def check(self) -> ProbeResult:
        try:
            mtime: float | None = (await asyncio.to_thread(os.stat, self.path)).st_mtime
        except FileNotFoundError:
            mtime = None
        now = time.time()
        age = now - max(mtime if mtime is not None else self.since, self.since)
        limit = f"(max {_seconds(self.max_age)})"
        if mtime is None or mtime < self.since:
            what = "no heartbeat file yet" if mtime is None else "no heartbeat since the start"
            if age <= self.max_age:
                return ProbeResult(True, f"{what}, {_age(age)} after the start {limit}")
            return ProbeResult(False, f"{what} ({self.shown}) {_age(age)} after the start {limit}")
        if age <= self.max_age:
            return ProbeResult(True, f"heartbeat file is {_age(age)} old {limit}")
        return ProbeResult(False, f"heartbeat file is {_age(age)} old {limit}")


class Heartbeat(CheckKind[HeartbeatCheck]):
    name = "heartbeat"
    params = HeartbeatCheck
    keys = ("path", "max_age")
    example = 'path = "/tmp/worker.beat", max_age = "30s"'
    form = (
        FormField("path", "a file the process touches", "/tmp/worker.beat"),
        FormField("max_age", "older than this is stale", "30s"),
    )
    json_schema = {
        "path": {"type": "string", "minLength": 1,
                 "description": "The file the process touches (relative: from its cwd)."},
        "max_age": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "minLength": 1}],
                    "description": 'Older than this is a failure: seconds, or "30s", "5m".'},
    }

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> HeartbeatCheck:
        return HeartbeatCheck(
            path=want_str(table["path"], (*path, "path")),
            max_age=want_duration(table["max_age"], (*path, "max_age"), positive=True),
        )

    def to_table(self, params: HeartbeatCheck) -> dict[str, Any]:
        return {"path": params.path, "max_age": format_duration(params.max_age)}

    def probe(self, params: HeartbeatCheck, context: ProbeContext) -> Probe:
        return HeartbeatProbe(params, context)

    def target(self, params: HeartbeatCheck) -> str:
        return f"{params.path} (max age {_seconds(params.max_age)})"

    def describe(self, params: HeartbeatCheck) -> str:
        return f"the file {params.path} touched within the last {_seconds(params.max_age)}"


KIND = Heartbeat()
