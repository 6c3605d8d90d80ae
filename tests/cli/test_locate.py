"""Finding the daemon: the order of SPEC §4, on top of `pmtop.core.locations` (the one home of the rules)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs
import pytest

from pmtop.cli import locate as loc
from pmtop.core import config as core_config
from pmtop.core import locations
from pmtop.core.daemon.instance import ensure_token, write_daemon_files
from pmtop.core.errors import ConfigError, UsageError
from pmtop.core.locations import DaemonRecord, instance_paths


def record(home: Path, instance: str, port: int, host: str = "127.0.0.1") -> None:
    write_daemon_files(instance_paths(instance, {"PMTOP_HOME": str(home)}),
                       DaemonRecord(host=host, port=port, pid=4242, started_at=1.0, version="x", instance=instance,
                                    config="/p/pmtop.toml"))


# ------------------------------------------------------------------------------- the folders

@pytest.mark.skipif(sys.platform not in ("linux", "darwin"), reason="pmtop's folders are written out for Linux and macOS")
def test_folders_follow_platformdirs_without_importing_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`pmtop ps` skips platformdirs' import on Linux; the folders must still be the ones it names."""
    monkeypatch.delenv("PMTOP_HOME", raising=False)
    for xdg in (None, str(tmp_path / "xdg"), "  ", "relative/ignored"):
        for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
            if xdg is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, xdg)
        assert locations.state_base() == platformdirs.user_state_path("pmtop"), xdg
        assert locations.log_base() == platformdirs.user_log_path("pmtop"), xdg
        assert locations.user_config_dir() == platformdirs.user_config_path("pmtop"), xdg


def test_pmtop_home_holds_everything(tmp_path: Path) -> None:
    env = {"PMTOP_HOME": str(tmp_path)}
    paths = instance_paths("web", env)
    assert (paths.state_dir, paths.log_dir) == (tmp_path / "state" / "web", tmp_path / "log" / "web")
    assert locations.user_config_dir(env) == tmp_path / "config"


def test_the_daemon_record_reads_what_the_daemon_writes(tmp_path: Path) -> None:
    record(tmp_path, "web", 20000)
    got = locations.read_daemon_record(tmp_path / "state" / "web")
    assert got is not None
    assert (got.host, got.port, got.pid, got.instance, got.config) == ("127.0.0.1", 20000, 4242, "web", "/p/pmtop.toml")
    assert got.url == "http://127.0.0.1:20000"
    assert locations.read_daemon_record(tmp_path / "state" / "nothing") is None
    (tmp_path / "state" / "web" / "daemon.json").write_text("{broken")
    assert locations.read_daemon_record(tmp_path / "state" / "web") is None


def test_read_token_reads_what_the_daemon_writes(tmp_path: Path) -> None:
    paths = instance_paths("default", {"PMTOP_HOME": str(tmp_path)})
    assert locations.read_token(paths.state_dir) is None
    token = ensure_token(paths)
    assert locations.read_token(paths.state_dir) == token


def test_find_config_is_cores_without_its_errors(tmp_path: Path) -> None:
    (tmp_path / "pmtop.toml").write_text("")
    (tmp_path / "other.toml").write_text("")
    for explicit, env in ((None, {}), ("other.toml", {}), (None, {"PMTOP_CONFIG": "other.toml"})):
        core = core_config.find_config(explicit, env, tmp_path)
        assert core is not None
        assert loc.find_config(explicit, env, tmp_path) == Path(os.path.abspath(core))
    with pytest.raises(ConfigError):
        core_config.find_config("missing.toml", {}, tmp_path)
    assert loc.find_config("missing.toml", {}, tmp_path) is None
    assert loc.find_config(None, {}, tmp_path / "nowhere") is None


@pytest.mark.parametrize("text, table", [
    ("[daemon]\ninstance = 'dev'\nport = 20001\n", {"instance": "dev", "port": 20001}),
    ("daemon.instance = 'dev'\n", {"instance": "dev"}),
    ("[process.web]\ncommand = 'x'\n", {}),
    ("[daemon\nbroken", {}),
    ("daemon = 3\n", {}),
])
def test_peek_daemon_table_never_fails(tmp_path: Path, text: str, table: dict[str, object]) -> None:
    path = tmp_path / "pmtop.toml"
    path.write_text(text)
    assert loc.peek_daemon_table(path) == table


# ----------------------------------------------------------------------------------------- order

def test_defaults(tmp_path: Path) -> None:
    target = loc.locate(environ={"PMTOP_HOME": str(tmp_path)}, cwd=tmp_path)
    assert (target.instance, target.host, target.port, target.token, target.config) == (
        "default", "127.0.0.1", 19881, None, None)
    assert target.guessed


def test_config_then_daemon_json_then_options(tmp_path: Path) -> None:
    env = {"PMTOP_HOME": str(tmp_path / "home")}
    (tmp_path / "pmtop.toml").write_text("[daemon]\ninstance = 'dev'\nhost = 'localhost'\nport = 20001\n")
    target = loc.locate(environ=env, cwd=tmp_path)
    assert (target.instance, target.host, target.port, target.config) == (
        "dev", "localhost", 20001, tmp_path / "pmtop.toml")
    assert target.guessed

    record(tmp_path / "home", "dev", 20002, host="0.0.0.0")
    target = loc.locate(environ=env, cwd=tmp_path)
    assert (target.instance, target.host, target.port, target.guessed) == ("dev", "127.0.0.1", 20002, False)

    target = loc.locate(instance="prod", environ=env, cwd=tmp_path)
    assert (target.instance, target.port) == ("prod", 20001), "no daemon.json for prod: the config's port"
    target = loc.locate(host="::1", port="20003", environ=env, cwd=tmp_path)
    assert (target.host, target.port, target.guessed) == ("::1", 20003, False)
    assert loc.locate(port="auto", environ=env, cwd=tmp_path).port == 20002


def test_token_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = ensure_token(instance_paths("default", {"PMTOP_HOME": str(home)}))
    env = {"PMTOP_HOME": str(home)}
    assert loc.locate(environ=env, cwd=tmp_path).token == token
    assert loc.locate(environ={**env, "PMTOP_TOKEN": "from-env"}, cwd=tmp_path).token == "from-env"
    given = tmp_path / "token-file"
    given.write_text("from-file\n")
    assert loc.locate(token_file=str(given), environ={**env, "PMTOP_TOKEN": "from-env"}, cwd=tmp_path).token == "from-file"
    with pytest.raises(UsageError, match="cannot read the token file"):
        loc.locate(token_file=str(tmp_path / "nope"), environ=env, cwd=tmp_path)
    given.write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        loc.locate(token_file=str(given), environ=env, cwd=tmp_path)


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_bad_port(tmp_path: Path, port: str) -> None:
    with pytest.raises(UsageError, match="--port"):
        loc.locate(port=port, environ={"PMTOP_HOME": str(tmp_path)}, cwd=tmp_path)


def test_an_invalid_instance_in_the_config_is_ignored_but_not_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "pmtop.toml").write_text("[daemon]\ninstance = '../x'\n")
    assert loc.locate(environ={"PMTOP_HOME": str(tmp_path)}, cwd=tmp_path).instance == "default"
    with pytest.raises(UsageError, match="invalid instance name"):
        loc.locate(instance="../x", environ={"PMTOP_HOME": str(tmp_path)}, cwd=tmp_path)
