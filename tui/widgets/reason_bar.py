"""The selected process's `reason`, always in view (SPEC §3: nobody should need a log to learn why)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from pmtop.core.formats import live_reason
from pmtop.core.model import HostLink, LinkState, ProcessState, ProcessStatus

from ..theming import CellStyles


class ReasonBar(Static):
    """`worker  retrying  exit 1 after 3.6s; retry 2/4 in 3.4s`, edged in the state's colour; the
    countdown is live (the screen calls `show` again as it ticks).

    With marked rows it also says what an action will apply to, so a key press never surprises. Over a
    fleet, a process whose daemon is out of reach says so: what it shows is what was last seen.
    """

    _shown: Text | None = None

    def show(self, status: ProcessStatus | None, *, marked: list[str], styles: CellStyles | None,
             now: float, link: HostLink | None = None) -> None:
        for state in ProcessState:
            self.set_class(status is not None and status.state is state, f"-state-{state.value}")
        text = Text(no_wrap=True, overflow="ellipsis")
        if status is None:
            text.append("No process selected. Press a to add one.", style="italic")
        else:
            text.append(status.name, style="bold")
            text.append("  ")
            text.append(status.state.value, style=styles.states[status.state] if styles else "")
            text.append("  ")
            text.append(live_reason(status.reason, status.state, status.next_retry_at, now,
                                    status.next_run_at) or "-")
            if status.hook_error:
                text.append(f"  ! {status.hook_error}", style=styles.error if styles else "bold")
            if link is not None and not link.up:
                how = "refused" if link.state is LinkState.REFUSED else "out of reach"
                text.append(f"  (as last seen: {link.host} is {how}: {link.detail or link.state.value})",
                            style="italic")
        if marked:
            shown = ", ".join(marked[:5]) + (f" and {len(marked) - 5} more" if len(marked) > 5 else "")
            text.append(f"\n● {len(marked)} marked: actions apply to {shown}", style="bold")
        if self._shown is None or text != self._shown or text.spans != self._shown.spans:
            # A new layout only when the number of lines changed, not as a countdown ticks.
            layout = self._shown is None or self._shown.plain.count("\n") != text.plain.count("\n")
            self._shown = text
            self.update(text, layout=layout)
