"""The dashboard. One entry point: `run_app(controller, mode=..., ...)`; see `run.run_app`."""

from __future__ import annotations

from .app import Mode, OnQuit, PmtopApp
from .run import run_app
from .screens.quit import QuitChoice
from .theming import ThemeError, check_theme

__all__ = ["Mode", "OnQuit", "PmtopApp", "QuitChoice", "ThemeError", "check_theme", "run_app"]
