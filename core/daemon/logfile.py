"""The supervisor's own log: `<log dir>/<instance>/daemon-<timestamp>.log`.

Every state change is logged by the runner (`pmtop.core` logger) with its reason, which carries each
restart decision (`exit 1 after 0.4s; retry 3/5`, then `waiting 4.0s for retry 3/5` as the wait
begins), so this file alone tells the story of a night. Old daemon logs are pruned to the newest `keep`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Final

from ..files import PRIVATE_FILE, private_dir
from ..locations import InstancePaths

LOGGER_NAME = "pmtop.core"
FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(message)s"


KEEP: Final = 10
"""Daemon logs kept per instance."""


def start_daemon_log(paths: InstancePaths) -> tuple[Path, logging.Handler]:
    """Open a new daemon log and attach it to the core's logger; returns its path and handler.

    Old logs are pruned by the supervisor once it holds the instance lock (`prune_daemon_logs`), not
    here: of ten supervisors started at once, nine lose the lock, and none of them may prune the
    winner's log."""
    private_dir(paths.log_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    n = 1
    while True:  # created here, 0600: logging's own open would follow the umask
        path = paths.log_dir / (f"daemon-{stamp}.log" if n == 1 else f"daemon-{stamp}-{n}.log")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            break
        except FileExistsError:
            n += 1
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return path, handler


def stop_daemon_log(handler: logging.Handler) -> None:
    logging.getLogger(LOGGER_NAME).removeHandler(handler)
    handler.close()


def daemon_logs(log_dir: Path) -> list[Path]:
    """Daemon logs of an instance, oldest first (one removed meanwhile is left out)."""
    dated = []
    for path in log_dir.glob("daemon-*.log"):
        try:
            dated.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    return [path for _, path in sorted(dated)]


def prune_daemon_logs(log_dir: Path, keep: int = KEEP) -> None:
    """Keep the newest `keep`, and every log this process writes (whatever its age)."""
    mine = {Path(h.baseFilename) for h in logging.getLogger(LOGGER_NAME).handlers
            if isinstance(h, logging.FileHandler)}
    for old in daemon_logs(log_dir)[:-keep] if keep > 0 else []:
        if old not in mine:
            old.unlink(missing_ok=True)
