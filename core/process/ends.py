"""How a run's end reads: what the lifecycle decides on, and what the history records.

Pure (no processes, no clock): `judge_end` turns an exit status, a verdict and what the process said
(`STOPPING=1`) into the run's outcome, its end reason and whether it completed.
"""

from __future__ import annotations

from typing import NamedTuple

from ..checks.monitor import Unhealthy
from ..model import EndReason, FailAction, describe_exit
from .policy import Outcome


class RunEnd(NamedTuple):
    """How one run ended, as `_run_once` tells the lifecycle."""

    outcome: Outcome
    ran: float | None
    """Seconds it ran; None when it never ran, or was ended by its health check."""
    detail: str
    action: FailAction = FailAction.RESTART
    """`restart`: ask the restart policy; otherwise a startup check's `fail_action`."""
    give_up: str | None = None
    """The run could not begin and retrying cannot help (its port is taken): `failed`, for this reason."""


def judge_end(
    pid: int,
    started_at: float,
    ended_at: float,
    exit_code: int | None,
    *,
    verdict: Unhealthy | None,
    stop: EndReason | None,
    said_stopping: bool,
) -> tuple[RunEnd, EndReason, bool]:
    """How a run that had a process ended: what the lifecycle is told, why the history says it ended,
    and whether it completed (exit 0, or an exit status pmtop cannot know after `STOPPING=1`)."""
    clean = exit_code == 0 or (exit_code is None and said_stopping)
    if verdict is not None:
        return RunEnd(Outcome.FAILURE, None, verdict.reason, verdict.action), EndReason.HEALTH, False
    if exit_code is None:
        detail = f"pid {pid} exited (status unknown: not pmtop's child)"
    else:
        detail = describe_exit(exit_code)
    if said_stopping:
        detail += " (it had sent STOPPING=1)"
    end_reason = stop if stop is not None else EndReason.EXIT if clean else EndReason.CRASH
    outcome = Outcome.CLEAN_EXIT if clean else Outcome.FAILURE
    return RunEnd(outcome, ended_at - started_at, detail), end_reason, clean
