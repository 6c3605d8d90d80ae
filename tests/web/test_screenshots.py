"""The README's browser screenshots come from `screenshots/web.py`; running it here keeps it from rotting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .browser import CHROMIUM, MISSING

SCRIPT = Path(__file__).resolve().parents[2] / "screenshots" / "web.py"
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)]


def test_the_screenshot_script_photographs_the_browser_view(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("web.png", "web-login.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name
