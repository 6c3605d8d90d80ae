"""The client commands stay light: no Textual, no httpx, no aiohttp, and what `pmtop ps` costs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PMTOP, clean_env


def test_importing_the_commands_loads_neither_textual_nor_httpx() -> None:
    code = "import pmtop.cli.commands, sys; assert 'textual' not in sys.modules and 'httpx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_ps_path_imports_only_what_it_needs() -> None:
    """What `pmtop ps` must not pay for (each costs it 4-30 ms; see cli/locate.py)."""
    code = ("import pmtop.cli.main, pmtop.cli.commands, pmtop.cli.locate, sys; "
            "heavy = {'textual', 'httpx', 'aiohttp', 'http.client', 'typing', 'dataclasses', 'platformdirs', "
            "'pmtop.core.config', 'pmtop.core.model', 'pmtop.core.daemon.instance', 'tomllib'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={**os.environ, "PMTOP_HOME": "/nonexistent"})


def test_the_headless_entry_point_does_not_import_textual() -> None:
    code = "import pmtop.cli.main, pmtop.cli.daemon_main, sys; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("args", [("ps",), ("start", "x"), ("logs", "x", "-f"), ("add", "x", "--", "true"),
                                  ("status",), ("instances",), ("shutdown",)])
def test_a_command_run_imports_nothing_heavy(args: tuple[str, ...], tmp_path: Path) -> None:
    """The whole run of the command (here with no daemon to talk to), not just the import."""
    result = subprocess.run([sys.executable, "-X", "importtime", *PMTOP[1:], *args, "--port", "9"], cwd=tmp_path,
                            env=clean_env(tmp_path / "home"), capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert imported, result.stderr
    assert not imported & {"textual", "httpx", "aiohttp", "rich"}, imported & {"textual", "httpx", "aiohttp", "rich"}
