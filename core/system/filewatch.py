"""One file watcher for the whole supervisor: watchfiles (inotify, FSEvents...) over every watched folder.

A single `watchfiles.awatch` on the event loop covers the union of all processes' roots, so ten watched
processes cost one kernel watcher and one thread, not ten. Its Rust side waits on the kernel's
notifications; the thread it runs in looks for news every `STEP_MS` (its own design), which is the
whole idle cost of watching (measured in bench/bench_devloop.py: well under the 0.5 % budget with
10,000 files). Without any watched process nothing runs at all: watchfiles is not even imported.

Changes reach `on_changes` as absolute paths, already stripped of what no one wants: the version
control, editor and cache files that watchfiles' `DefaultFilter` knows (`.git`, `__pycache__`,
`node_modules`, `*.swp`...) and pmtop's own state and log folders, which a project-local `PMTOP_HOME`
would otherwise turn into a restart loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Final

log = logging.getLogger("pmtop.core")

STEP_MS: Final = 100
"""How often watchfiles' thread looks for news (and for the stop flag)."""
GROUP_MS: Final = 300
"""The longest watchfiles groups a burst before handing it over (pmtop debounces per process on top)."""


class FileWatcher:
    """Watches a set of folders; `set_roots` replaces the set (restarting the watcher only if it changed)."""

    def __init__(self, on_changes: Callable[[set[str]], None], *, ignore_paths: Iterable[str] = (),
                 on_error: Callable[[str], None] | None = None) -> None:
        self._on_changes = on_changes
        self._on_error = on_error
        self._ignore_paths = tuple(str(p) for p in ignore_paths)
        self.roots: tuple[str, ...] = ()
        self.missing: tuple[str, ...] = ()
        """Roots that did not exist when the watcher started (not watched)."""
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def set_roots(self, roots: Iterable[str]) -> None:
        wanted = tuple(sorted(set(roots)))
        if wanted == self.roots and (self.running or not wanted):
            return
        await self.aclose()
        self.roots = wanted
        existing = tuple(r for r in wanted if os.path.exists(r))
        self.missing = tuple(r for r in wanted if r not in existing)
        if existing:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._watch(existing, self._stop), name="pmtop:watch")

    async def _watch(self, roots: tuple[str, ...], stop: asyncio.Event) -> None:
        from watchfiles import DefaultFilter, awatch

        ignore = DefaultFilter(ignore_paths=self._ignore_paths)
        try:
            async for changes in awatch(*roots, watch_filter=ignore, debounce=GROUP_MS, step=STEP_MS,
                                        stop_event=stop, recursive=True, ignore_permission_denied=True):
                self._on_changes({path for _, path in changes})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the kernel's watch limit, a folder gone mid-scan: never a crash
            message = f"file watching stopped: {exc}"
            log.error("%s (watched: %s)", message, ", ".join(roots))
            if self._on_error is not None:
                self._on_error(message)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if self._stop is not None:
            self._stop.set()  # the watch thread notices within STEP_MS and returns
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.roots = ()
