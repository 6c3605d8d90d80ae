"""One browser session = one `pmtop` dashboard process attached to the instance's daemon.

textual-serve's `AppService` speaks the protocol (Textual's web driver on the child's stdin and
stdout, the browser's websocket on the other side); this subclass changes how the child is run and
ended, to pmtop's rules: started without a shell, in its own process group, and stopped whole: the
app is asked to quit, then the group gets SIGTERM, then SIGKILL, and the child is always reaped.
If the web server itself dies, the kernel ends the children (`--web-session` sets the parent-death
signal), so no dashboard outlives the server that showed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from .lifeline import PARENT_ENV

log = logging.getLogger("pmtop.web")

QUIT_GRACE = 5.0
"""Seconds the dashboard has to quit when asked, before its group gets SIGTERM."""
TERM_GRACE = 3.0
"""Seconds after SIGTERM before SIGKILL."""


class DashboardSession(AppService):
    """The dashboard process behind one websocket."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path | None,
                 write_bytes: Callable[[bytes], Awaitable[None]], write_str: Callable[[str], Awaitable[None]],
                 close: Callable[[], Awaitable[None]]) -> None:
        super().__init__(" ".join(argv), write_bytes=write_bytes, write_str=write_str, close=close,
                         download_manager=DownloadManager())
        self.argv = list(argv)
        self._extra_env = env
        self._cwd = cwd
        self._stopping: asyncio.Task[None] | None = None
        self._opening: asyncio.Future[asyncio.subprocess.Process] | None = None
        """The spawn in progress: a stop that comes meanwhile (SIGTERM under load) waits for it, so the
        child it makes is ended too, never orphaned."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """Runs while the dashboard talks; ends when it exits (or closes its output)."""
        return self._task

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        env: dict[str, str] = self._build_environment(width=width, height=height)
        env.update(self._extra_env)
        env[PARENT_ENV] = str(os.getpid())
        self._opening = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=self._cwd, start_new_session=True))
        self._process = process = await asyncio.shield(self._opening)  # (a cancelled handler still gets it stopped)
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """End the dashboard (idempotent; concurrent callers wait for the same stop)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._process is None and self._opening is not None:
            with contextlib.suppress(Exception):
                self._process = await self._opening
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):  # its stdin may be gone already
                await self.send_meta({"type": "quit"})
            if not await _exited(process, QUIT_GRACE):
                _signal_group(process.pid, signal.SIGTERM)
                if not await _exited(process, TERM_GRACE):
                    _signal_group(process.pid, signal.SIGKILL)
                    await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # whatever it started goes with it
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _exited(process: asyncio.subprocess.Process, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await process.wait()
    except TimeoutError:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, sig)

