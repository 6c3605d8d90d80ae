"""`pmtop web` costs nothing elsewhere: not on the client commands' path, not in the daemon; and its
server never loads Textual (each session's dashboard does)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("code", "absent"), [
    ("import pmtop.cli.main, pmtop.cli.commands", ("pmtop.cli.web", "pmtop.cli.web_main", "textual_serve")),
    ("import pmtop.cli.main, pmtop.cli.daemon_main", ("pmtop.cli.web", "textual_serve", "textual")),
    ("import pmtop.cli.web_main, pmtop.cli.web.server, pmtop.cli.web.sessions", ("textual", "rich", "jinja2")),
    ("import pmtop.cli.web.lifeline", ("aiohttp", "textual_serve")),
])
def test_import_hygiene(code: str, absent: tuple[str, ...]) -> None:
    check = f"{code}; import sys; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"{code} imported {result.stdout.strip()}"
