"""Each half of the API loads only its own HTTP library (and never Textual), so `pmtop ps` and the
daemon stay light; checked in a fresh interpreter, as harlequin does."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("module", "absent"), [
    ("pmtop.core.api.client", ("aiohttp", "textual")),
    ("pmtop.core.api.server", ("aiohttp", "httpx", "textual")),  # the daemon's server is h11 alone (http11)
    ("pmtop.core.api.security", ("aiohttp", "httpx", "textual")),
    ("pmtop.core.api.metrics", ("aiohttp", "httpx", "textual")),
    ("pmtop.core.api", ("aiohttp", "httpx", "textual")),
])
def test_import_hygiene(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
