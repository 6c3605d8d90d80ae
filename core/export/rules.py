"""The generic part of every exporter: one small rule per setting, and a net under them.

Each target module declares `RULES = Rules[Out]("systemd")` and one function per pmtop setting:

    @RULES.maps("stop_signal", "stop_timeout")
    def _stop(spec: ProcessSpec, unit: Unit, ctx: Context) -> None:
        unit.service["KillSignal"] = f"SIG{spec.stop_signal.name[3:]}"

`Rules.apply` runs them all, then compares the settings the process actually sets (its `[process.NAME]`
table as `spec_to_table` writes it, so in TOML spelling and without defaults) with the keys the rules
claim. Whatever no rule claims is reported as dropped. So a setting added to pmtop later (by a branch
that knows nothing of exports) shows up in every export's report until someone writes its rule: it
can never be lost silently. A rule for a setting that a later pmtop adds can be written today against
`ctx.settings` (the TOML form), which is how `env_file`, `port` and friends are accepted by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..config.schema import spec_to_table
from ..model import ProcessSpec
from .model import Loss, LossKind

Out = TypeVar("Out")


@dataclass(slots=True)
class Report:
    """Collects the losses of one export, in the order they are found, without duplicates."""

    losses: list[Loss] = field(default_factory=list)

    def add(self, kind: LossKind, setting: str, detail: str, process: str | None = None) -> None:
        loss = Loss(setting=setting, kind=kind, detail=detail, process=process)
        if loss not in self.losses:
            self.losses.append(loss)

    def approximated(self, setting: str, detail: str, process: str | None = None) -> None:
        self.add(LossKind.APPROXIMATED, setting, detail, process)

    def dropped(self, setting: str, detail: str, process: str | None = None) -> None:
        self.add(LossKind.DROPPED, setting, detail, process)

    def note(self, setting: str, detail: str, process: str | None = None) -> None:
        self.add(LossKind.NOTE, setting, detail, process)


@dataclass(frozen=True, slots=True)
class Context:
    """What a rule may look at besides the spec, and where it reports."""

    report: Report
    settings: Mapping[str, Any]
    """The process's own settings in TOML form (`spec_to_table`): only what differs from the defaults."""
    target: str

    def approximated(self, spec: ProcessSpec, setting: str, detail: str) -> None:
        self.report.approximated(setting, detail, spec.name)

    def dropped(self, spec: ProcessSpec, setting: str, detail: str) -> None:
        self.report.dropped(setting, detail, spec.name)

    def note(self, spec: ProcessSpec, setting: str, detail: str) -> None:
        self.report.note(setting, detail, spec.name)


Rule = Callable[[ProcessSpec, Out, Context], None]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[Out]):
    keys: tuple[str, ...]
    rule: Rule[Out]


class Rules(Generic[Out]):
    """The rules of one target, in the order they run."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._entries: list[_Entry[Out]] = []

    def maps(self, *keys: str) -> Callable[[Rule[Out]], Rule[Out]]:
        """Register a rule for the settings `keys` (TOML names of `[process.NAME]` keys)."""
        def register(rule: Rule[Out]) -> Rule[Out]:
            self._entries.append(_Entry(keys, rule))
            return rule
        return register

    @property
    def claimed(self) -> frozenset[str]:
        return frozenset(key for entry in self._entries for key in entry.keys)

    def apply(self, spec: ProcessSpec, out: Out, report: Report) -> None:
        settings = spec_to_table(spec)
        ctx = Context(report=report, settings=settings, target=self.target)
        for entry in self._entries:
            entry.rule(spec, out, ctx)
        for key in unclaimed(settings, self.claimed):
            report.dropped(key, f"the {self.target} export has no rule for this setting yet; not written", spec.name)


def unclaimed(settings: Iterable[str], claimed: frozenset[str]) -> list[str]:
    return [key for key in settings if key not in claimed]
