"""`pmtop init`: a commented starter pmtop.toml that loads, and never over an existing one."""

from __future__ import annotations

from pathlib import Path

from pmtop.core.config import load_config

from .conftest import clean_env, one_error_line, run_pmtop


def test_init_writes_a_commented_starter_that_loads(tmp_path: Path) -> None:
    result = run_pmtop("init", cwd=tmp_path, env=clean_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "pmtop.toml"
    assert result.stdout.startswith(f"Wrote {path}.")
    text = path.read_text()
    assert text.count("\n#") > 10, "commented"
    config = load_config(path)
    assert [spec.name for spec in config.processes] == ["web"]
    assert config.processes[0].health is not None


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "pmtop.toml"
    path.write_text("# mine\n")
    one_error_line(run_pmtop("init", cwd=tmp_path, env=clean_env(tmp_path / "home")), 1, "already exists")
    assert path.read_text() == "# mine\n"


def test_init_uncommented_examples_are_valid_too(tmp_path: Path) -> None:
    """Every commented-out `key = value` line of the starter is valid TOML for its table when enabled."""
    from pmtop.cli.starter import STARTER

    enabled = []
    for line in STARTER.splitlines():
        body = line.removeprefix("# ")
        looks_like_toml = body.startswith("[") or (" = " in body and not body.startswith(("#", " ")))
        enabled.append(body if line.startswith("# ") and looks_like_toml else line)
    text = "\n".join(enabled)
    (tmp_path / "pmtop.toml").write_text(text.replace('depends_on = ["db"]', ""))
    (tmp_path / ".env").write_text("GREETING=hello\n")  # the env_file the starter names
    config = load_config(tmp_path / "pmtop.toml")
    assert [spec.name for spec in config.processes] == ["web", "worker", "api", "backup"]
    assert config.processes[0].file_env == {"GREETING": "hello"}
    assert [spec.health.type for spec in config.processes if spec.health] == ["http", "heartbeat", "notify"]
    worker, backup = config.by_name["worker"], config.by_name["backup"]
    assert worker.replicas == 3 and worker.watch is not None and backup.schedule is not None
    assert config.hooks is not None and config.hooks.url is not None
