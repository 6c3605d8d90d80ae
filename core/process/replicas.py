"""`replicas = 3`: one declared process run as `web-1`, `web-2`, `web-3` (SPEC §11).

A spec with `replicas` is a template; the supervisor runs one instance of it per index, each a process
of its own (state, PID, logs, history), told apart by `PMTOP_REPLICA` (1-based) and, when the template
has a `port`, by `PORT = port + index - 1` (each instance's own `port` is shifted the same way, so the
port checks of issue 11 look at the right one). `ReplicaGroup` is the group as a dependency:
`depends_on = ["web"]` is met when every instance meets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..model import ProcessSpec, Replica, replica_name
from .dependencies import Dependency, first_of

REPLICA_ENV = "PMTOP_REPLICA"


def instance_spec(template: ProcessSpec, index: int) -> ProcessSpec:
    """The spec of instance `index` (1-based) of `template`."""
    changes: dict[str, Any] = {
        "name": replica_name(template.name, index),
        "replicas": None,
        "replica": Replica(template.name, index),
    }
    if template.port is not None:
        changes["port"] = template.port + index - 1
    return dataclasses.replace(template, **changes)


def instance_specs(template: ProcessSpec, count: int) -> list[ProcessSpec]:
    return [instance_spec(template, i) for i in range(1, count + 1)]


def replica_env(spec: ProcessSpec) -> dict[str, str]:
    """What an instance finds in its environment beside the template's `env`."""
    if spec.replica is None:
        return {}
    return {REPLICA_ENV: str(spec.replica.index)}  # ($PORT comes from the instance's shifted `port`)


class ReplicaGroup:
    """The instances of one template: what `depends_on = ["web"]` looks at."""

    def __init__(self, template: ProcessSpec, members: Callable[[], Sequence[Dependency]]) -> None:
        self.template = template
        self._members = members
        self._resized = asyncio.Event()

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def members(self) -> Sequence[Dependency]:
        return self._members()

    def resized(self) -> None:
        """Instances were added or removed: whoever waits on the group looks again."""
        self._resized.set()
        self._resized = asyncio.Event()

    def wait_changed(self) -> Awaitable[None]:
        """Until an instance publishes a change, or the group is resized (registered at the call, as
        `ProcessRunner.wait_changed`)."""
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(m.wait_changed()) for m in self.members]
        waiters.append(asyncio.ensure_future(self._resized.wait()))
        return first_of(waiters)
