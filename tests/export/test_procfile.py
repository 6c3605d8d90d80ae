"""`pmtop export procfile`: each line is a shell command that gives back exactly the argv and env."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pmtop.core.config import Config, load_config

from .conftest import render

ECHO = "import json, os, sys; print(json.dumps([os.getcwd(), os.environ.get('GREETING'), sys.argv[1:]]))"


def test_a_line_run_by_sh_gets_the_argv_env_and_folder(tmp_path: Path) -> None:
    words = ["a b", "it's", "$HOME", "*", "; rm -rf /", "`x`", "\\", ""]
    (tmp_path / "sub").mkdir()
    (tmp_path / "pmtop.toml").write_text(
        "[process.echo]\n"
        f"command = {json.dumps([sys.executable, '-c', ECHO, *words])}\n"
        'env = { GREETING = "hi \'there\' $USER" }\n'
        'cwd = "sub"\n')
    text = render("procfile", load_config(tmp_path / "pmtop.toml")).files["Procfile"]
    [line] = [line for line in text.splitlines() if not line.startswith("#")]
    name, _, command = line.partition(": ")
    assert name == "echo"
    # foreman and honcho run a line with `sh -c` in the Procfile's folder.
    out = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert json.loads(out.stdout) == [str(tmp_path / "sub"), "hi 'there' $USER", words]


def test_what_a_procfile_cannot_say_is_reported(example: Config) -> None:
    result = render("procfile", example)
    text = result.files["Procfile"]
    assert text.count("\nweb: ") == 1 and "# docs: " in text  # disabled: commented out
    assert "# api: its command spans several lines" in text
    losses = {(l.process, l.setting, l.kind.value) for l in result.losses}
    assert ("api", "command", "dropped") in losses
    assert ("web", "health", "dropped") in losses
    assert ("api", "depends_on", "dropped") in losses
    assert ("migrate", "restart", "approximated") in losses
