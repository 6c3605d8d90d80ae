"""The words for a process's state and health, and every named group of states, in one place.

A leaf module: the standard library's `enum` and nothing else at run time (no dataclasses, no
`typing`), because `pmtop ps` imports it and has 100 ms for everything. `core.model` re-exports the
enums. The CLI compares these groups with the strings it reads from JSON: a `StrEnum` member equals
(and hashes as) its string, so `"running" in UP_STATES` holds.

When a rule needs "the states in which ...", it names a group here rather than listing states inline,
so the dashboard, the CLI and the core agree on what each group means.
"""

from __future__ import annotations

from enum import StrEnum

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from typing import Final


class ProcessState(StrEnum):
    """The eight states of SPEC §3, exactly."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"
    RETRYING = "retrying"
    FAILED = "failed"
    DISABLED = "disabled"


class Health(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


_S = ProcessState

ALL_STATES: Final = frozenset(ProcessState)

#: Alive, or about to be: the process (or the task that will spawn it) exists. Quitting the
#: dashboard in local mode asks what to do with these; a reload does not replace their spec.
ACTIVE_STATES: Final = frozenset({_S.STARTING, _S.RUNNING, _S.STOPPING, _S.CRASHED, _S.RETRYING})

#: A run is in progress: the PID is live and `started_at` is the start of this run, so an uptime
#: means something.
UP_STATES: Final = frozenset({_S.STARTING, _S.RUNNING, _S.STOPPING})

#: A health check has a say: `health` is news here; elsewhere the core reports `unknown` (left blank).
CHECKED_STATES: Final = frozenset({_S.STARTING, _S.RUNNING, _S.STOPPING, _S.CRASHED})

#: Down because something went wrong: a non-zero exit code is shown as an error.
TROUBLED_STATES: Final = frozenset({_S.CRASHED, _S.RETRYING, _S.FAILED})

#: `start` launches it; on failed or retrying it retries at once, with a fresh failure count.
STARTABLE_STATES: Final = frozenset({_S.STOPPED, _S.FAILED, _S.RETRYING})

#: `start` means "retry now" (the subset of STARTABLE_STATES the restart policy gave up on or waits in).
RETRY_NOW_STATES: Final = frozenset({_S.FAILED, _S.RETRYING})

#: `stop` changes something: it stops the run or cancels the retry, and on `failed` acknowledges the
#: failure (failed -> stopped). Not `stopping`: it is on its way already.
STOPPABLE_STATES: Final = frozenset({_S.STARTING, _S.RUNNING, _S.CRASHED, _S.RETRYING, _S.FAILED})

#: `restart` is accepted: everywhere but `disabled` (enable it first) and `stopping` (wait for it).
RESTARTABLE_STATES: Final = ALL_STATES - {_S.DISABLED, _S.STOPPING}

#: The order that puts what needs attention first (the dashboard's sort by state).
ATTENTION_ORDER: Final = (_S.FAILED, _S.CRASHED, _S.RETRYING, _S.STARTING, _S.STOPPING, _S.RUNNING, _S.STOPPED,
                          _S.DISABLED)

#: Every state change the state machine allows (`process.machine` checks each against it), with why.
TRANSITIONS: Final[dict[ProcessState, frozenset[ProcessState]]] = {
    # stopped -> starting: start requested (or autostart); -> disabled: disable
    _S.STOPPED: frozenset({_S.STARTING, _S.DISABLED}),
    # starting -> starting: the reason changed (waiting for another dependency, spawning)
    # starting -> running: spawned (and past its startup check)
    # starting -> stopping: stop while the child is up; -> stopped: stop while waiting for dependencies
    # starting -> crashed: exited, or could not be spawned, before it was running
    # starting -> failed: its declared port is held by another program (retrying cannot free it)
    _S.STARTING: frozenset({_S.STARTING, _S.RUNNING, _S.STOPPING, _S.STOPPED, _S.CRASHED, _S.FAILED}),
    # running -> running: a field other than the state changed (counter reset, health)
    # running -> crashed: unexpected exit, or failed health (the group is then stopped, and the
    # restart decision follows); -> stopped: clean exit under on-failure / no
    _S.RUNNING: frozenset({_S.RUNNING, _S.STOPPING, _S.CRASHED, _S.STOPPED}),
    # stopping -> stopped: the group is gone
    _S.STOPPING: frozenset({_S.STOPPED}),
    # crashed -> retrying: backoff; -> starting: backoff of 0; -> failed: gave up, or startup
    # fail_action = "fail"; -> disabled: startup fail_action = "disable"; -> stopped: clean exit under
    # always turned out to be the last word of a stop request; -> stopping: a stop arrived while an
    # unhealthy process was being stopped for its restart (the user's stop wins)
    _S.CRASHED: frozenset({_S.RETRYING, _S.STARTING, _S.FAILED, _S.STOPPED, _S.DISABLED, _S.STOPPING}),
    # retrying -> starting: backoff elapsed or retried now; -> stopped: stop cancels the retry
    _S.RETRYING: frozenset({_S.STARTING, _S.STOPPED}),
    # failed -> starting: manual retry; -> stopped: stop acknowledges it; -> disabled
    _S.FAILED: frozenset({_S.STARTING, _S.STOPPED, _S.DISABLED}),
    # disabled -> stopped: enable
    _S.DISABLED: frozenset({_S.STOPPED}),
}
