"""`pmtop export`: the same `pmtop.toml` for the engines that run fleets, with a fidelity report.

One registry, `TARGETS`, maps each target's name to a `Target` whose `render(config, options)` returns
the files and the losses. Target modules are imported on first use: `pmtop ps` never pays for them.
"""

from __future__ import annotations

import importlib
from typing import Final

from .model import ExportOptions, ExportResult, Loss, LossKind, Target

__all__ = ["TARGET_MODULES", "ExportOptions", "ExportResult", "Loss", "LossKind", "Target", "target"]

#: Every export target: name -> the module (of this package) whose `TARGET` renders it.
TARGET_MODULES: Final = {
    "systemd": "systemd",
    "nomad": "nomad",
    "kubernetes": "kubernetes",
    "compose": "compose",
    "procfile": "procfile",
}


def target(name: str) -> Target:
    """The registered target `name` (KeyError if there is none)."""
    module = importlib.import_module(f"{__name__}.{TARGET_MODULES[name]}")
    found: Target = module.TARGET
    return found
