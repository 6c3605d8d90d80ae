"""Each half of the API loads only its own HTTP library (and never Textual), so `pmtop ps` and the
daemon stay light; checked in a fresh interpreter, as harlequin does."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("module", "absent"), [
    ("pmtop.core.api.client", ("aiohttp", "textual")),
    ("pmtop.core.api.server", ("httpx", "textual")),
    ("pmtop.core.api.security", ("aiohttp", "httpx", "textual")),
    ("pmtop.core.api.metrics", ("aiohttp", "httpx", "textual")),
    ("pmtop.core.api", ("aiohttp", "httpx", "textual")),
])
def test_import_hygiene(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_the_daemon_loads_the_server_half_of_aiohttp_only() -> None:
    """`lean_aiohttp.install()` (what the daemon does before importing the server) keeps aiohttp's
    client modules out, and the first use of a client name still gets the complete package."""
    code = (
        "import sys\n"
        "from pmtop.core.api import lean_aiohttp\n"
        "lean_aiohttp.install()\n"
        "import pmtop.core.api.server\n"
        "print(sorted(m for m in sys.modules if m in ('aiohttp.client', 'aiohttp.connector', 'aiohttp.cookiejar')))\n"
        "import aiohttp\n"
        "from aiohttp import ClientTimeout\n"
        "print(aiohttp.ClientSession.__module__, ClientTimeout.__module__, aiohttp.web.Application.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after = result.stdout.splitlines()
    assert before == "[]", f"the server import loaded client modules: {before}"
    assert after == "aiohttp.client aiohttp.client aiohttp.web_app"
