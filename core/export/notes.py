"""The pmtop features that are not settings, and so exist in no export: said once per report, as notes."""

from __future__ import annotations


def app_notes(*, logs: str, control: str) -> list[tuple[str, str]]:
    """(feature, what the target does instead) for every export; `logs` and `control` name the target's way."""
    return [
        ("per-run logs", f"pmtop keeps each run's output in its own folder, with run history and reasons; "
                         f"here: {logs}"),
        ("adoption", "pmtop adopts processes that a previous pmtop left running; stop pmtop's processes "
                     "before starting these, or both will run"),
        ("trust model", f"no pmtop API, token, trusted hosts or executable whitelist; control is {control}"),
    ]
