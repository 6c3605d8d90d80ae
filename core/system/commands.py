"""Running a short command to completion: a hook's command, bounded in time and in what it says.

Never through a shell; in its own session (process group), so a timeout kills it whole; reaped through
the spawner's pidfd, never left a zombie; its combined output kept only up to `OUTPUT_LIMIT` bytes (for
the line that says why it failed).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import SpawnError
from . import spawner

OUTPUT_LIMIT: Final = 4096
REAP_GRACE: Final = 5.0


@dataclass(frozen=True, slots=True)
class Finished:
    exit_code: int | None
    """None: killed after the timeout."""
    output: str
    """The start of its stdout and stderr (at most `OUTPUT_LIMIT` bytes)."""


async def run(argv: Sequence[str], *, timeout: float, cwd: str | None = None,
              env: Mapping[str, str] | None = None) -> Finished:
    """Run `argv` to its end, or kill its group after `timeout` seconds. Raises `SpawnError`."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    try:
        child = spawner.spawn(argv, cwd=cwd, env=env, stdout=write_fd, stderr=write_fd)
    except SpawnError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    output = bytearray()
    eof = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(read_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            output.extend(data[: max(0, OUTPUT_LIMIT - len(output))])
        elif not eof.done():
            eof.set_result(None)

    os.set_blocking(read_fd, False)
    loop.add_reader(read_fd, readable)
    code: int | None = None
    try:
        try:
            async with asyncio.timeout(timeout):
                code = await asyncio.shield(child.exited)
        except TimeoutError:
            spawner.signal_group(child.group or child.pid, signal.SIGKILL)
            await asyncio.wait((child.exited,), timeout=REAP_GRACE)
        spawner.kill_leftovers(child)
        await asyncio.wait((eof,), timeout=0.5)  # what it wrote last; a grandchild holding the pipe is gone
    finally:
        loop.remove_reader(read_fd)
        os.close(read_fd)
        if not child.exited.done():  # cancelled: never leave it running
            spawner.signal_group(child.group or child.pid, signal.SIGKILL)
    return Finished(code, output.decode("utf-8", "replace").strip())

