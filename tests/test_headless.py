"""`pmtop --headless` in the foreground, run as a user runs it: a real subprocess and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

PMTOP = [sys.executable, "-m", "pmtop.cli.main"]


def run_pmtop(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PMTOP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    """Lines of stdout up to the first containing `needle` (the deadline is the test's timeout)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"never saw {needle!r}; got {lines}")


def test_runs_config_and_stops_everything_on_sigint(tmp_path: Path) -> None:
    (tmp_path / "pmtop.toml").write_text(textwrap.dedent(f"""
        [process.db]
        command = ["{sys.executable}", "-c", "import time; time.sleep(600)"]
        [process.web]
        command = ["{sys.executable}", "-c", "import time; time.sleep(600)"]
        depends_on = {{ db = "started" }}
    """))
    proc = subprocess.Popen([*PMTOP, "--headless", "--port", "auto"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        lines = read_until(proc, "web              running")
        assert any("db               running" in line for line in lines)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0].splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    stopped = [line.split()[1] for line in rest if " stopped " in line]
    assert stopped == ["web", "db"], "reverse dependency order"
    assert all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)


def test_invalid_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "pmtop.toml").write_text('[process.web]\ncommand = ["true"]\nrestrat = "always"\n')
    result = run_pmtop("--headless", "--port", "auto", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "Error: pmtop.toml:3: process.web.restrat: unknown key (did you mean 'restart'?)\n"
    assert result.stdout == ""


def test_no_config_says_how_to_add_a_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([*PMTOP, "--headless", "--port", "auto"], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PMTOP_CONFIG": ""})
    try:
        lines = read_until(proc, "No processes configured")
        assert "pmtop add" in lines[-1] and "pmtop init" in lines[-1]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


@pytest.mark.parametrize("module", ["pmtop.core.supervisor", "pmtop.core.config", "pmtop.cli.main"])
def test_core_and_cli_do_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; assert 'textual' not in sys.modules, 'textual was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
