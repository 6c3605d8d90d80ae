"""`pmtop ps --fleet` and `pmtop instances --fleet` against three real daemons, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.conftest import PMTOP, clean_env, run_pmtop
from tests.fleet.conftest import Fleet


def pmtop(fleet: Fleet, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A `pmtop` whose user config folder holds the fleet's fleet.toml (and no daemon of its own)."""
    return run_pmtop(*args, cwd=cwd, env=clean_env(fleet.config_dir.parent))


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


def test_ps_fleet_lists_every_process_of_every_daemon_with_its_host(fleet: Fleet, tmp_path: Path) -> None:
    fleet.write_fleet_toml()
    done = pmtop(fleet, "ps", "--fleet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    table = rows(done.stdout)
    assert table[0][:3] == ["HOST", "NAME", "STATE"]
    assert sorted((r[0], r[1], r[2]) for r in table[1:]) == [
        ("alpha", "api", "running"), ("alpha", "web", "running"), ("beta", "web", "running"),
        ("beta", "worker", "running"), ("gamma", "db", "running"), ("gamma", "web", "running")]
    assert [r[0] for r in table[1:]] == ["alpha", "alpha", "beta", "beta", "gamma", "gamma"], "in the fleet's order"

    as_json = pmtop(fleet, "ps", "--fleet", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["unreachable"] == []
    assert {(p["host"], p["name"]) for p in data["processes"]} == {
        ("alpha", "api"), ("alpha", "web"), ("beta", "web"), ("beta", "worker"), ("gamma", "db"), ("gamma", "web")}
    pids = {(p["host"], p["name"]): p["pid"] for p in data["processes"]}
    assert pids[("beta", "web")] == fleet["beta"].daemon.processes()["web"]["pid"], "each row is its own daemon's"


def test_ps_fleet_names_each_unreachable_daemon_and_exits_1(fleet: Fleet, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    fleet.write_fleet_toml(token_files={"beta": wrong})
    fleet.kill("gamma")
    done = pmtop(fleet, "ps", "--fleet", cwd=tmp_path)
    assert done.returncode == 1
    assert sorted((r[0], r[1]) for r in rows(done.stdout)[1:]) == [("alpha", "api"), ("alpha", "web")]
    assert done.stderr.splitlines() == [
        f"Error: beta ({fleet['beta'].url}): refused: wrong token (check its token_file in fleet.toml)",
        f"Error: gamma ({fleet['gamma'].url}): no pmtop daemon answers at {fleet['gamma'].url}",
    ]
    as_json = pmtop(fleet, "ps", "--fleet", "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert [(u["host"], u["url"]) for u in data["unreachable"]] == [("beta", fleet["beta"].url),
                                                                    ("gamma", fleet["gamma"].url)]
    assert {p["host"] for p in data["processes"]} == {"alpha"}

    fleet.restart("gamma")
    fleet.write_fleet_toml()
    assert pmtop(fleet, "ps", "--fleet", cwd=tmp_path).returncode == 0


def test_instances_fleet_says_how_each_daemon_answers(fleet: Fleet, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("nope\n")
    fleet.write_fleet_toml(token_files={"alpha": wrong})
    fleet.kill("beta")
    done = pmtop(fleet, "instances", "--fleet", cwd=tmp_path)
    assert done.returncode == 1
    table = rows(done.stdout)
    assert table[0] == ["HOST", "URL", "STATE", "INSTANCE", "PID", "UPTIME", "PROCESSES"]
    assert [(r[0], r[1], r[2]) for r in table[1:]] == [("alpha", fleet["alpha"].url, "refused"),
                                                      ("beta", fleet["beta"].url, "unreachable"),
                                                      ("gamma", fleet["gamma"].url, "up")]
    assert table[3][3:5] == ["default", str(fleet["gamma"].daemon.proc.pid)]
    assert len(done.stderr.splitlines()) == 2
    data = json.loads(pmtop(fleet, "instances", "--fleet", "--json", cwd=tmp_path).stdout)
    assert [d["state"] for d in data["fleet"]] == ["refused", "unreachable", "up"]
    assert data["fleet"][2]["processes"] == 2


def test_a_missing_or_broken_fleet_toml_is_one_line_and_exit_2(fleet: Fleet, tmp_path: Path) -> None:
    done = pmtop(fleet, "ps", "--fleet", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ") and "fleet.toml does not exist" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    path = fleet.write_fleet_toml()
    path.write_text('[fleet]\ndaemons = [\n  { url = "http://127.0.0.1" },\n]\n')
    done = pmtop(fleet, "ps", "--fleet", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"Error: {path}:3: fleet.daemons[0].url: \"http://127.0.0.1\" names no port "
                           "(pmtop's default is 19881: http://127.0.0.1:19881)\n")
    for args in (["--attach", "http://127.0.0.1"], ["--fleet"]):  # the dashboard refuses it before drawing
        done = pmtop(fleet, *args, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.startswith(f"Error: {path}:3:"), done.stderr


def test_ps_fleet_stays_light(fleet: Fleet, tmp_path: Path) -> None:
    """No Textual, httpx, aiohttp or Rich on `ps --fleet`'s path; and once fleet.toml has been read, no TOML
    parser and no config rules either (the state folder keeps a copy while the file is unchanged)."""
    fleet.write_fleet_toml()
    env = clean_env(fleet.config_dir.parent)

    def imported() -> set[str]:
        done = subprocess.run([*PMTOP[:1], "-X", "importtime", *PMTOP[1:], "ps", "--fleet"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}

    first = imported()
    assert not {m.split(".")[0] for m in first} & {"textual", "httpx", "aiohttp", "rich"}
    again = imported()
    assert not again & {"tomllib", "pmtop.core.values", "pmtop.core.config.loader", "typing"}, \
        again & {"tomllib", "pmtop.core.values", "pmtop.core.config.loader", "typing"}
