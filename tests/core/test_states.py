"""The named groups of states: defined once (`core/states.py`), and true to the state machine."""

from __future__ import annotations

import subprocess
import sys

from pmtop.core import model
from pmtop.core.process.machine import TRANSITIONS
from pmtop.core.states import (
    ACTIVE_STATES,
    ALL_STATES,
    ATTENTION_ORDER,
    CHECKED_STATES,
    RESTARTABLE_STATES,
    RETRY_NOW_STATES,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    TROUBLED_STATES,
    UP_STATES,
    ProcessState,
)

S = ProcessState


def test_start_and_stop_are_offered_exactly_where_the_machine_has_the_edge() -> None:
    # crashed -> starting is the restart policy's edge, not the user's; starting -> starting a new reason
    assert STARTABLE_STATES == {s for s in ALL_STATES - {S.CRASHED, S.STARTING} if S.STARTING in TRANSITIONS[s]}
    # stopping is on its way down already; disabled -> stopped is `enable`
    assert STOPPABLE_STATES == {s for s in ALL_STATES - {S.STOPPING, S.DISABLED}
                                if TRANSITIONS[s] & {S.STOPPED, S.STOPPING}}
    assert RETRY_NOW_STATES <= STARTABLE_STATES
    assert S.DISABLED not in RESTARTABLE_STATES and S.STOPPING not in RESTARTABLE_STATES


def test_the_groups_nest() -> None:
    assert UP_STATES <= ACTIVE_STATES and CHECKED_STATES <= ACTIVE_STATES
    assert TROUBLED_STATES.isdisjoint(UP_STATES)
    assert sorted(ATTENTION_ORDER) == sorted(ALL_STATES) and len(set(ATTENTION_ORDER)) == len(ALL_STATES)


def test_the_json_strings_the_cli_reads_are_members() -> None:
    assert "running" in UP_STATES and "stopped" not in UP_STATES
    assert {"running": 1}[S.RUNNING] == 1


def test_the_model_re_exports_the_enums() -> None:
    assert model.ProcessState is ProcessState and model.ACTIVE_STATES is ACTIVE_STATES


def test_states_and_formats_are_cheap_leaves() -> None:
    """`pmtop ps` imports both; neither may pull in `typing`, `dataclasses` or the model."""
    heavy = ("typing", "dataclasses", "pmtop.core.model", "inspect", "re", "asyncio")
    code = ("import sys; before = set(sys.modules); import pmtop.core.states, pmtop.core.formats; "
            f"extra = [m for m in {heavy!r} if m in sys.modules and m not in before]; assert not extra, extra")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
