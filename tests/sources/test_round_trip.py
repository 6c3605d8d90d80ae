"""Export, then import: the same processes come back (for the targets pmtop can also read)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pmtop.core.config import Config, load_config
from pmtop.core.sources import read_source
from pmtop.core.sources.writer import render_toml

from ..export.conftest import EXAMPLE, render, tricky_config


def _round_trip(target: str, config: Config, folder: Path, file: str) -> Config:
    result = render(target, config)
    [(name, text)] = result.files.items()
    path = folder / (file or name)
    path.write_text(text)
    # Imported beside the file, as `pmtop import FILE` is used: a Procfile's lines run in its folder.
    (folder / "imported.toml").write_text(render_toml(read_source(path)))
    return load_config(folder / "imported.toml")


def test_procfile_round_trip(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "pmtop.toml").write_text(
        "[process.web]\n"
        f"command = {json.dumps([sys.executable, '-m', 'http.server', '8000'])}\n"
        'env = { GREETING = "hello world", QUOTE = "it\'s" }\n'
        "[process.worker]\n"
        f"command = {json.dumps([sys.executable, '-c', 'print(1)', 'a b', '$HOME', '*'])}\n"
        'cwd = "sub"\n')
    config = load_config(tmp_path / "pmtop.toml")
    back = _round_trip("procfile", config, tmp_path, "Procfile")
    assert [p.name for p in back.processes] == ["web", "worker"]
    for before, after in zip(config.processes, back.processes, strict=True):
        assert after.command == before.command
        assert dict(after.env) == dict(before.env)
        assert after.cwd == before.cwd


def _same(before: Config, after: Config) -> None:
    assert [p.name for p in after.processes] == [p.name for p in before.processes]
    for old, new in zip(before.processes, after.processes, strict=True):
        assert new.command == old.command, old.name
        assert dict(new.env) == dict(old.env), old.name
        assert new.cwd == old.cwd
        expected = {dep: cond for dep, cond in old.depends_on.items()}
        for dep, cond in expected.items():  # healthy on a process without a check is started (pmtop: the same)
            if cond == "healthy" and before.by_name[dep].health is None:
                expected[dep] = type(cond)("started")
        assert dict(new.depends_on) == expected, old.name
        assert new.restart.policy is old.restart.policy, old.name
        assert new.stop_signal == old.stop_signal and new.stop_timeout == old.stop_timeout
        assert new.enabled == old.enabled and new.autostart == old.autostart
        assert new.port == old.port and new.env_file == old.env_file and dict(new.file_env) == dict(old.file_env)
        if old.health is not None and old.health.type == "notify":  # Compose has no sd_notify: reported, dropped
            assert new.health is None
            continue
        assert (new.health is None) == (old.health is None), old.name
        if old.health is not None and new.health is not None:
            assert new.health.check == old.health.check, old.name
            assert (new.health.interval, new.health.timeout, new.health.failures) == (
                old.health.interval, old.health.timeout, old.health.failures)


def test_compose_round_trip_of_the_example(tmp_path: Path) -> None:
    example = load_config(EXAMPLE)
    _same(example, _round_trip("compose", example, tmp_path, ""))


def test_compose_round_trip_of_every_setting_shape(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    config = tricky_config(tmp_path / "in")
    _same(config, _round_trip("compose", config, tmp_path, ""))
