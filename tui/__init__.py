"""The dashboard. One entry point: `run_app(controller, mode=..., ...)`; see `app.run_app`."""

from __future__ import annotations

from .app import Mode, OnQuit, PmtopApp, run_app
from .screens.quit import QuitChoice
from .theming import ThemeError

__all__ = ["Mode", "OnQuit", "PmtopApp", "QuitChoice", "ThemeError", "run_app"]
