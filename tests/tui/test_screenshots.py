"""The README's screenshots come from `screenshots/generate.py`; running it here keeps it from rotting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "screenshots" / "generate.py"
EXPECTED = ("main-dark", "main-light", "main-high-contrast", "logs", "details", "add", "help")


def test_the_screenshot_script_draws_every_view(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in EXPECTED:
        svg = (tmp_path / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and "pmtop" in svg, name
    main = (tmp_path / "main-dark.svg").read_text().replace("&#160;", " ")
    for word in ("running", "retrying", "retry in", "failed", "unhealthy", "disabled"):
        assert word in main, word


FLEET_SCRIPT = SCRIPT.parent / "fleet.py"


def test_the_fleet_screenshot_script_draws_the_fleet_view(tmp_path: Path) -> None:
    """Four real daemons, one killed, one refusing our token: the script photographs the fleet view."""
    done = subprocess.run([sys.executable, str(FLEET_SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    svg = (tmp_path / "fleet.svg").read_text().replace("&#160;", " ")
    for words in ("HOST", "web1", "jobs", "lost — reconnecting", "refused: wrong token", "mailer"):
        assert words in svg, words
