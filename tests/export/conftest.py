"""Export tests: real configs in, real tools (systemd, python-hcl2, kubernetes-validate, the Compose schema) on the output."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from pmtop.core.config import Config, load_config
from pmtop.core.export import ExportOptions, ExportResult, target

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "pmtop.toml"
PY = shutil.which("python3") or sys.executable

#: argv words that every target's quoting must carry through unchanged.
TRICKY_WORDS = ["a b", "it's", 'say "hi"', "back\\slash", "$HOME", "${HOME}", "100%", "%n", ";", "", "tab\there",
                "new\nline", "ünïcode", "-dash", "*.py", "a=b", "#hash", "`tick`", "~"]

TRICKY = f"""
[defaults]
backoff = ["1s", "2s", "4s", "8s"]
env = {{ PYTHONUNBUFFERED = "1" }}

[process.web]
command = ["{PY}", "-m", "http.server", "8765", "--bind", "127.0.0.1"]
env = {{ "GREETING" = "a b \\"c\\" $HOME 100% \\\\ end", "EMPTY" = "" }}
stop_signal = "INT"
stop_timeout = "2500ms"

[process.web.health]
type = "http"
url = "http://127.0.0.1:8765/status?full=1"
interval = "2s"
timeout = "1s"
startup = {{ initial_delay = "200ms", interval = "250ms", max_attempts = 40 }}

[process.migrate]
command = ["{PY}", "-c", "print('migrated')"]
restart = "no"

[process.api]
command = {TRICKY_WORDS and ['placeholder']}
depends_on = {{ web = "healthy", migrate = "completed" }}
restart = "always"
log_max_bytes = "1500KB"

[process."worker.v2"]
command = ["{PY}", "-c", "import time\\nwhile True:\\n    time.sleep(5)"]
backoff = ["2s", "4s", "8s"]
max_restarts = 4
retry_forever = true
cwd = "sub dir"

[process.worker.health]
type = "exec"
command = ["{PY}", "-c", "pass"]

[process.worker]
command = ["{PY}", "-c", "pass"]
depends_on = ["worker.v2"]

[process.db]
command = ["{PY}", "-c", "pass"]
enabled = false

[process.db.health]
type = "tcp"
address = "127.0.0.1:5432"
"""


def tricky_config(folder: Path) -> Config:
    """A config that uses every setting, in every shape that a target must treat specially."""
    import json

    text = TRICKY.replace("['placeholder']", json.dumps([PY, "-c", "import sys; print(sys.argv[1:])", *TRICKY_WORDS]))
    (folder / "sub dir").mkdir(exist_ok=True)
    path = folder / "pmtop.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def render(name: str, config: Config, **options: object) -> ExportResult:
    return target(name).render(config, ExportOptions(name=str(options.pop("app", "demo")), **options))  # type: ignore[arg-type]


@pytest.fixture
def example() -> Config:
    return load_config(EXAMPLE)


@pytest.fixture
def tricky(tmp_path: Path) -> Config:
    return tricky_config(tmp_path)
