"""`type = "exec"`: run a command (never through a shell) in its own process group; healthy on exit 0.

Started with `system.spawner.spawn`, so its exit is noticed through a pidfd rather than a thread per
child; output goes to /dev/null. If the probe is cancelled (its timeout, or the monitor stopping), the
whole group gets SIGKILL and is reaped before the cancellation completes: no probe outlives its check.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import SpawnError
from ..model import CheckParams, describe_exit
from ..system import spawner
from ..values import KeyPath, want_command
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult

REAP_GRACE = 5.0
"""How long a SIGKILLed probe may take to die before we stop waiting (it is then in the kernel's
uninterruptible sleep; the pidfd still reaps it whenever it goes)."""


@dataclass(frozen=True, slots=True)
class ExecCheck(CheckParams):
    KIND: ClassVar[str] = "exec"
    command: tuple[str, ...]


class ExecProbe:
    def __init__(self, command: Sequence[str], *, cwd: str | None, env: Mapping[str, str] | None) -> None:
        self.command = tuple(command)
        self.cwd = cwd
        self.env = env

    async def check(self) -> ProbeResult:
        try:
            child = spawner.spawn(self.command, cwd=self.cwd, env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except SpawnError as exc:
            return ProbeResult(False, exc.message)
        try:
            code = await asyncio.shield(child.exited)
        finally:
            if not child.exited.done():
                spawner.signal_child(child, signal.SIGKILL)
                await _reaped(child)
            spawner.kill_leftovers(child)
        return ProbeResult(code == 0, f"exec {describe_exit(code)}")


async def _reaped(child: spawner.Child) -> None:
    """Wait for a SIGKILLed probe to be reaped, through any further cancellation (re-raised after).

    The kernel takes a moment to tear a killed process down. Whoever cancelled the probe (its timeout,
    a stop) goes on only once it is gone, so no probe outlives the check that started it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REAP_GRACE
    cancelled = False
    while not child.exited.done() and loop.time() < deadline:
        try:
            await asyncio.wait((child.exited,), timeout=deadline - loop.time())
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


class Exec(CheckKind[ExecCheck]):
    name = "exec"
    params = ExecCheck
    keys = ("command",)
    example = "command = [...]"
    form = (FormField("command", "run a command (exit 0)", "curl -fsS http://127.0.0.1:8000/health"),)
    json_schema = {"command": {"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                                         {"type": "string", "minLength": 1}],
                               "description": "exit 0 within the timeout is healthy"}}

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> ExecCheck:
        return ExecCheck(want_command(table["command"], (*path, "command")))

    def to_table(self, params: ExecCheck) -> dict[str, Any]:
        return {"command": list(params.command)}

    def probe(self, params: ExecCheck, context: ProbeContext) -> Probe:
        return ExecProbe(params.command, cwd=context.cwd, env=context.env)

    def target(self, params: ExecCheck) -> str:
        return " ".join(params.command)

    def describe(self, params: ExecCheck) -> str:
        return f"run {shlex.join(params.command)} (exit 0 is healthy)"


KIND = Exec()
