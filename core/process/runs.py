"""The runs of one process: a folder for each, the oldest pruned, and the history of the last ones.

Kept apart from the state machine, which only says when a run begins and ends. Three things here stay
off the crash-to-restart path on purpose: a restart's folder is named from the previous one (no
listing of the folder), it is made after the new program's exec (`logs.RunLogs.attach`), and pruning
happens after the new run is announced, counted (then tracked) rather than listed each time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from ..model import HISTORY_LENGTH, RunRecord
from . import logs

TAIL_DRAIN_TIMEOUT = 2.0
"""How long a run's pipes may take to drain after its exit before its stderr tail is taken as is."""


class Runs:
    """The run folders and the run history of one process."""

    __slots__ = ("process_dir", "current", "history", "_on_disk", "_folders", "_background", "draining")

    def __init__(self, process_dir: Path) -> None:
        self.process_dir = process_dir
        self.current: Path | None = None
        """The folder of the current (or last) run, if this supervisor knows one."""
        self.history: list[RunRecord] = []
        """The last `HISTORY_LENGTH` runs, oldest first (a list: a bounded deque costs 600 bytes empty)."""
        self._on_disk: int | None = None
        """Run folders on disk, once counted: pruning need not list them each run."""
        self._folders: list[Path] | None = None
        """The run folders oldest first, once there are more than a prune keeps: each later prune then
        removes the oldest without listing the folder again (a crash loop prunes on every restart)."""
        self._background: set[asyncio.Task[None]] = set()
        self.draining: set[logs.RunLogs] = set()
        """Logs of ended runs whose pipes are still being drained (the last output can follow the exit)."""

    def new_folder(self) -> Path:
        """The next run's folder (named from the previous one: no listing on a restart, and made after
        the exec, see `logs.next_run_dir`)."""
        self.current = logs.next_run_dir(self.process_dir, previous=self.current)
        return self.current

    def prune(self, keep: int) -> None:
        """After each run's start: keep the newest `keep` run folders. The folder is listed once and
        then counted; once over `keep`, listed once more, and from then on its runs are tracked."""
        folders = self._folders
        if folders is None:
            self._on_disk = len(logs.run_dirs(self.process_dir)) if self._on_disk is None else self._on_disk + 1
            if self._on_disk <= keep:
                return
            folders = self._folders = logs.run_dirs(self.process_dir)
        elif self.current is not None and folders[-1:] != [self.current] and self.current.is_dir():
            folders.append(self.current)  # (a start that failed before its exec may have made none)
        excess = len(folders) - keep
        if excess > 0:
            for old in folders[:excess]:
                logs.remove_run(old)
            del folders[:excess]

    def record(self, record: RunRecord, run_logs: logs.RunLogs | None = None) -> None:
        """Add a finished run; with its logs, its stderr tail is completed once the pipes drain (the
        exit can beat the last write), and the logs are closed then."""
        self.history.append(record)
        del self.history[:-HISTORY_LENGTH]
        if run_logs is not None:
            run_logs.close_child_ends()  # the pipes reach their end once what the run wrote is read
            self.draining.add(run_logs)
            task = asyncio.get_running_loop().create_task(self._complete_tail(run_logs, record))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _complete_tail(self, run_logs: logs.RunLogs, record: RunRecord) -> None:
        await run_logs.drained(timeout=TAIL_DRAIN_TIMEOUT)
        run_logs.close()
        self.draining.discard(run_logs)
        tail = run_logs.stderr_tail.lines()
        if tail == record.stderr_tail:
            return
        for i, kept in enumerate(self.history):
            if kept is record:
                self.history[i] = dataclasses.replace(record, stderr_tail=tail)
