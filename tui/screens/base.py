"""What a screen may use of the app: the `Dashboard` protocol, and the screens' base classes.

Screens are typed against this small protocol, not against `PmtopApp`, so no screen imports `app.py`
and the dashboard has no import loop: the app imports the screens, never the other way round.
`PmtopApp` implements the protocol (mypy checks it where the app is defined).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from textual.screen import ModalScreen, Screen, ScreenResultType

from pmtop.core.controller import Controller

from ..state import Mode, StatusStore
from ..theming import CellStyles


class Dashboard(Protocol):
    """The app as the screens see it."""

    @property
    def controller(self) -> Controller: ...

    @property
    def store(self) -> StatusStore:
        """Every process's newest status, and who supervises (`store.info`)."""
        ...

    @property
    def mode(self) -> Mode: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def read_only(self) -> bool:
        """`--read-only`, or a daemon that refuses actions: every changing action is shown disabled."""
        ...

    def cell_styles(self) -> CellStyles:
        """The current theme's colours for states and health."""
        ...

    def key_for(self, action: str) -> str:
        """The keys of an action as the footer shows them (after the user's keymap)."""
        ...

    def action_help(self) -> None: ...

    def action_next_theme(self) -> None: ...


def dashboard(app: object) -> Dashboard:
    """`app` as a `Dashboard` (the one place the protocol is assumed rather than checked)."""
    return cast(Dashboard, app)


class DashboardScreen(Screen[ScreenResultType]):
    @property
    def pmtop(self) -> Dashboard:
        return dashboard(self.app)


class DashboardModal(ModalScreen[ScreenResultType]):
    @property
    def pmtop(self) -> Dashboard:
        return dashboard(self.app)
