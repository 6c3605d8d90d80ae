"""The watcher-less alternative in the README: its systemd user unit, checked by systemd itself."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from tests.export.systemd_tools import needs_analyze, verify, write_units

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_unit() -> str:
    text = README.read_text()
    match = re.search(r"<!-- systemd-unit -->\n```ini\n(.*?)```", text, re.S)
    assert match, "the README's systemd unit (after <!-- systemd-unit -->)"
    return match.group(1)


@needs_analyze
def test_the_readme_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = readme_unit()
    assert "Restart=on-failure" in unit and "KillMode=process" in unit and "--headless" in unit
    # systemd checks that the program exists: here, this checkout's pmtop (system mode: %h is root's home).
    pmtop = shutil.which("pmtop", path=str(Path(sys.executable).parent)) or sys.executable
    unit = unit.replace("%h/.local/bin/pmtop", pmtop).replace("%h/project", str(tmp_path))
    (tmp_path / "pmtop.toml").write_text("")
    folder = write_units({"pmtop.service": unit})
    try:
        result = verify(folder)
        assert result.returncode == 0, result.stdout + result.stderr
        complaints = [line for line in (result.stdout + result.stderr).splitlines() if "pmtop.service" in line]
        assert not complaints, complaints
    finally:
        shutil.rmtree(folder)
