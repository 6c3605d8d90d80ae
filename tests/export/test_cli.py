"""`pmtop export` on the command line: files written once, never over existing ones, --strict, the report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..cli.conftest import clean_env, one_error_line, run_pmtop
from .conftest import EXAMPLE


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLE, tmp_path / "pmtop.toml")
    shutil.copy(EXAMPLE.with_name("example.env"), tmp_path / "example.env")  # the api's env_file
    return tmp_path


def test_export_writes_the_files_and_prints_the_report(project: Path) -> None:
    env = clean_env(project / "home")
    result = run_pmtop("export", "systemd", "--out", "units", "--name", "shop", "--systemd-version", "254",
                       cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (project / "units").iterdir())
    assert names == sorted([f"shop-{n}.service" for n in ("web", "migrate", "api", "worker", "cache", "queue",
                                                          "notifier", "docs", "report", "site")]
                           + ["shop-shard@.service", "shop-report.timer", "shop.target"])
    assert all((project / "units" / n).stat().st_mode & 0o777 == 0o600 for n in names)
    assert result.stdout.startswith("Wrote units/shop-web.service")
    assert "Fidelity report for systemd:" in result.stdout and "per-run logs" in result.stdout
    assert result.stderr == ""


def test_export_never_overwrites_and_writes_all_or_nothing(project: Path) -> None:
    env = clean_env(project / "home")
    (project / "out").mkdir()
    (project / "out" / "demo.compose.yaml").write_text("mine\n")
    one_error_line(run_pmtop("export", "compose", "--out", "out", "--name", "demo", cwd=project, env=env),
                   1, "already exist", "--force")
    assert (project / "out" / "demo.compose.yaml").read_text() == "mine\n"
    result = run_pmtop("export", "compose", "--out", "out", "--name", "demo", "--force", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert "services:" in (project / "out" / "demo.compose.yaml").read_text()


def test_strict_refuses_any_loss_and_writes_nothing(project: Path) -> None:
    env = clean_env(project / "home")
    result = run_pmtop("export", "kubernetes", "--strict", "--out", "k8s", cwd=project, env=env)
    assert result.returncode == 1
    assert "Fidelity report for kubernetes:" in result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: --strict:") and "nothing written" in line
    assert not (project / "k8s").exists()
    exact = project / "exact"
    exact.mkdir()
    (exact / "pmtop.toml").write_text('[process.job]\ncommand = ["/bin/true"]\nrestart = "no"\n')
    ok = run_pmtop("export", "compose", "--strict", "--image", "busybox", "--out", "-", cwd=exact, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "entrypoint:" in ok.stdout and "Fidelity report for compose: 0 dropped, 0 approximated" in ok.stderr


def test_out_dash_prints_the_files(project: Path) -> None:
    result = run_pmtop("export", "nomad", "--out", "-", cwd=project, env=clean_env(project / "home"))
    assert result.returncode == 0
    assert result.stdout.startswith('# ---- ') and "\njob \"" in result.stdout  # several files: each headed
    assert "Fidelity report for nomad" in result.stderr


def test_bad_input_is_one_clear_line(project: Path) -> None:
    env = clean_env(project / "home")
    empty = project / "empty"
    empty.mkdir()
    one_error_line(run_pmtop("export", "swarm", cwd=project, env=env), 2, "unknown export target 'swarm'")
    one_error_line(run_pmtop("export", "compose", "--name", "Bad Name", cwd=project, env=env), 2, "--name")
    one_error_line(run_pmtop("export", "compose", cwd=empty, env=env), 2, "no pmtop.toml")
    (empty / "pmtop.toml").write_text("[process.x]\ncommand = 3\n")
    one_error_line(run_pmtop("export", "compose", cwd=empty, env=env), 2, "pmtop.toml:2", "process.x.command")


def test_export_and_import_stay_off_the_ps_path() -> None:
    code = ("import pmtop.cli.main, pmtop.cli.commands, sys; "
            "assert not {m for m in sys.modules if m.startswith(('pmtop.core.export', 'pmtop.core.sources', "
            "'yaml', 'pmtop.cli.convert'))}")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={**os.environ})
