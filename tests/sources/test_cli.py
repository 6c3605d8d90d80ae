"""`pmtop import` on the command line: a commented pmtop.toml, never over an existing one, and the report."""

from __future__ import annotations

from pathlib import Path

from pmtop.core.config import load_config

from ..cli.conftest import clean_env, one_error_line, run_pmtop
from .test_readers import PROCESS_COMPOSE, SUPERVISORD


def test_import_writes_a_pmtop_toml_that_loads_and_prints_the_report(tmp_path: Path) -> None:
    (tmp_path / "process-compose.yaml").write_text(PROCESS_COMPOSE)
    result = run_pmtop("import", "process-compose.yaml", cwd=tmp_path, env=clean_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Wrote pmtop.toml (5 processes from process-compose.yaml")
    assert "Fidelity report for import of process-compose.yaml" in result.stdout
    assert "replicas (ClientB)" in result.stdout
    text = (tmp_path / "pmtop.toml").read_text()
    assert text.startswith("# pmtop.toml, imported from process-compose.yaml")
    assert len(load_config(tmp_path / "pmtop.toml").processes) == 5


def test_import_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "supervisord.conf").write_text(SUPERVISORD)
    (tmp_path / "pmtop.toml").write_text("# mine\n")
    env = clean_env(tmp_path / "home")
    one_error_line(run_pmtop("import", "supervisord.conf", cwd=tmp_path, env=env), 1, "already exists")
    assert (tmp_path / "pmtop.toml").read_text() == "# mine\n"
    other = run_pmtop("import", "supervisord.conf", "-o", "other.toml", cwd=tmp_path, env=env)
    assert other.returncode == 0 and load_config(tmp_path / "other.toml").by_name["cat"]


def test_import_to_stdout_and_with_a_named_format(tmp_path: Path) -> None:
    (tmp_path / "apps.txt").write_text("web: python3 -m http.server\n")
    env = clean_env(tmp_path / "home")
    one_error_line(run_pmtop("import", "apps.txt", cwd=tmp_path, env=env), 2, "apps.txt", "--format")
    result = run_pmtop("import", "apps.txt", "--format", "procfile", "-o", "-", cwd=tmp_path, env=env)
    assert result.returncode == 0
    assert '[process.web]\ncommand = ["python3", "-m", "http.server"]' in result.stdout
    assert "Fidelity report" in result.stderr
    one_error_line(run_pmtop("import", "missing.yaml", cwd=tmp_path, env=env), 2, "missing.yaml", "no such file")
