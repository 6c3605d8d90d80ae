"""The version every face reports (`/health`, `pmtop --version`, daemon.json)."""

from __future__ import annotations

__version__ = "0.1.0"
