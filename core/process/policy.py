"""The restart decision, as a pure function: no processes, no clock, no I/O.

`decide` is the only interpreter of a `RestartSpec`. The runner calls it once per ended run and acts on
the answer, so every rule of SPEC §2 (`restart`, `backoff`, `max_restarts`, `retry_forever`) is testable
here without starting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..model import RestartPolicy, RestartSpec


class Outcome(Enum):
    """How a run ended, as far as the policy cares."""

    CLEAN_EXIT = "clean-exit"
    """Exit status 0, not requested by anyone."""
    FAILURE = "failure"
    """Non-zero exit, death by signal, failed health or startup check, or a command that won't spawn."""


@dataclass(frozen=True, slots=True)
class Rest:
    """Do not restart; the process is `stopped` (a clean exit under on-failure or no)."""


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    """Seconds to wait before the next start."""
    attempt: int
    """The consecutive-failure count this retry answers (1-based)."""
    limit: int | None
    """`max_restarts`, or None while retrying forever."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The process is `failed`."""

    failures: int


Decision = Rest | Retry | GiveUp


def backoff_delay(spec: RestartSpec, attempt: int) -> float:
    """Delay before restart `attempt` (1-based): the n-th backoff entry, the last one repeating."""
    if not spec.backoff:
        return 0.0
    return spec.backoff[min(max(attempt, 1), len(spec.backoff)) - 1]


def decide(outcome: Outcome, failures_before: int, spec: RestartSpec) -> Decision:
    """What to do after a run ended; `failures_before` is the consecutive-failure count before it.

    Under `always` a clean exit counts like a failure (as in process-compose): a process that keeps
    exiting is flapping whatever its status, and `reset_after` forgives one that ran long enough.
    """
    if outcome is Outcome.CLEAN_EXIT and spec.policy is not RestartPolicy.ALWAYS:
        return Rest()
    if spec.policy is RestartPolicy.NO:
        return GiveUp(failures=failures_before + 1)
    attempt = failures_before + 1
    if attempt <= spec.max_restarts:
        return Retry(delay=backoff_delay(spec, attempt), attempt=attempt, limit=spec.max_restarts)
    if spec.retry_forever:
        return Retry(delay=spec.retry_forever_interval, attempt=attempt, limit=None)
    return GiveUp(failures=attempt)
