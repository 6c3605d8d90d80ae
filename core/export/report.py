"""The fidelity report as people read it: one line per loss, same losses of several processes merged."""

from __future__ import annotations

from collections.abc import Sequence

from .model import Loss, LossKind

_ORDER = {LossKind.DROPPED: 0, LossKind.APPROXIMATED: 1, LossKind.NOTE: 2}


def merged(losses: Sequence[Loss]) -> list[tuple[Loss, list[str]]]:
    """Losses that differ only in their process become one, with the processes listed (in order found)."""
    groups: dict[tuple[str, LossKind, str], tuple[Loss, list[str]]] = {}
    for loss in losses:
        key = (loss.setting, loss.kind, loss.detail)
        if key not in groups:
            groups[key] = (loss, [])
        if loss.process is not None and loss.process not in groups[key][1]:
            groups[key][1].append(loss.process)
    ordered = sorted(groups.values(), key=lambda item: _ORDER[item[0].kind])  # stable: found order kept
    return ordered


def counts(losses: Sequence[Loss]) -> str:
    parts = []
    for kind, word in ((LossKind.DROPPED, "dropped"), (LossKind.APPROXIMATED, "approximated"),
                       (LossKind.NOTE, "notes")):
        n = sum(1 for loss in losses if loss.kind is kind)
        parts.append(f"{n} {word if n != 1 or kind is not LossKind.NOTE else 'note'}")
    return ", ".join(parts)


def format_report(target: str, losses: Sequence[Loss]) -> str:
    """`Fidelity report for systemd: ...` and one line per (merged) loss, dropped first, notes last."""
    lines = [f"Fidelity report for {target}: {counts(losses)}."]
    if not losses:
        lines.append("  Every setting is expressed exactly.")
    for loss, processes in merged(losses):
        who = f" ({', '.join(processes)})" if processes else ""
        lines.append(f"  {loss.kind.value:<12}  {loss.setting}{who}: {loss.detail}")
    return "\n".join(lines)
