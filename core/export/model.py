"""What an export is: options in, files and a fidelity report out.

A target never drops a setting silently. Everything it cannot express exactly becomes a `Loss` in the
report, with what was written instead; `--strict` turns every loss that changes how a process behaves
(`APPROXIMATED`, `DROPPED`) into an error. `NOTE`s describe pmtop features that are not settings at all
(per-run log folders, adoption, the API's trust model, the dashboard): the target simply works its own
way there, whatever the config says, so they are always listed and never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from ..config import Config


class LossKind(StrEnum):
    APPROXIMATED = "approximated"
    """Written, but the target behaves differently (a constant delay for a growing backoff)."""
    DROPPED = "dropped"
    """Not written at all: the target has nothing like it."""
    NOTE = "note"
    """A pmtop feature, not a setting, that the target does its own way. Never fails `--strict`."""


#: The kinds that `--strict` refuses.
STRICT_KINDS: Final = frozenset({LossKind.APPROXIMATED, LossKind.DROPPED})


@dataclass(frozen=True, slots=True)
class Loss:
    """One thing the target cannot say as pmtop means it."""

    setting: str
    """The pmtop setting in TOML spelling (`backoff`, `health.startup.fail_action`) or a feature name."""
    kind: LossKind
    detail: str
    """What pmtop does, and what was written instead (one line)."""
    process: str | None = None
    """None: the whole app."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    name: str
    """The app's name: the systemd target, the Nomad job, the Kubernetes `part-of` label, the Compose project."""
    image: str | None = None
    """The container image (Kubernetes, Compose); None writes a placeholder that the report names."""
    systemd_version: int = 254
    """The systemd the units are for: `RestartSteps=` and `RestartMaxDelaySec=` need 254."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    target: str
    files: Mapping[str, str]
    """File name (relative to the output folder) -> text, in the order they are written."""
    losses: Sequence[Loss] = field(default_factory=tuple)

    @property
    def strict_losses(self) -> list[Loss]:
        return [loss for loss in self.losses if loss.kind in STRICT_KINDS]


class Target(Protocol):
    """One export target. Each lives in its own module of `pmtop.core.export` and is registered once."""

    name: str
    summary: str

    def render(self, config: Config, options: ExportOptions) -> ExportResult: ...


@dataclass(frozen=True, slots=True)
class SimpleTarget:
    """A `Target` made from a render function (all targets are: they keep no state)."""

    name: str
    summary: str
    renderer: Callable[[Config, ExportOptions], ExportResult]

    def render(self, config: Config, options: ExportOptions) -> ExportResult:
        return self.renderer(config, options)
