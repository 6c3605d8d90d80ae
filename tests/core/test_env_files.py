"""`env_file` (SPEC §10): real dotenv files, read by python-dotenv's parser when the config is loaded or
reloaded, relative to the config's folder; later files and `env` win; a missing file or a malformed line
is a config error naming it (and the line), and nothing starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pmtop.core.config import load_config, parse_process, spec_to_table
from pmtop.core.errors import ConfigError
from pmtop.core.model import ProcessState
from pmtop.core.supervisor import Supervisor
from tests.conftest import py
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]
PRINT_ENV = "import os; print(*(os.environ.get(k, '-') for k in ('A', 'B', 'C', 'D', 'E')))"


def write(folder: Path, text: str, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name.replace("_", ".")).write_text(body)
    path = folder / "pmtop.toml"
    path.write_text(text)
    return path


def config_text(env_file: str, env: str = "") -> str:
    command = json.dumps(list(py(PRINT_ENV)))
    return f'[process.p]\ncommand = {command}\nrestart = "no"\nenv_file = {env_file}\n{env}'


def test_files_are_read_relative_to_the_config_later_files_and_env_winning(tmp_path: Path) -> None:
    path = write(tmp_path / "proj", config_text('[".env", "conf/local.env"]', 'env = { C = "from env" }\n'),
                 _env="A=1\nB=from first\nexport C=from file\n# a comment\n\nE=${A}-and-more\n")
    (tmp_path / "proj" / "conf").mkdir()
    (tmp_path / "proj" / "conf" / "local.env").write_text("B='from second'\nD=\"quoted # not a comment\"\n")
    [spec] = load_config(path).processes
    assert spec.env_file == (str(tmp_path / "proj" / ".env"), str(tmp_path / "proj" / "conf" / "local.env"))
    assert dict(spec.file_env) == {"A": "1", "B": "from second", "C": "from file", "E": "1-and-more",
                                   "D": "quoted # not a comment"}
    assert spec_to_table(spec, base_dir=tmp_path / "proj")["env_file"] == [".env", "conf/local.env"]


async def test_the_process_sees_them(make_supervisor: Make, tmp_path: Path) -> None:
    path = write(tmp_path, config_text('".env"', 'env = { C = "env wins" }\n'), _env="A=1\nB=two words\nC=file\n")
    [spec] = load_config(path).processes
    sup = make_supervisor(spec)
    async with sup.subscribe() as events:
        await sup.start("p")
        await wait_state(events, "p", S.STOPPED)
    assert await sup.logs("p") == ["1 two words env wins - -"]


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, config_text('["there.env", "missing.env"]'), there_env="A=1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == (f"pmtop.toml:4: process.p.env_file: no such file: missing.env "
                                    f"({tmp_path / 'missing.env'})")


@pytest.mark.parametrize(("body", "line", "statement"), [
    ("A=1\nthis is not an assignment\n", 2, "this is not an assignment"),
    ("A=1\nB=2\nC=\"never closed\nD=4\n", 3, 'C="never closed'),
    ("=nameless\n", 1, "=nameless"),
])
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                                  line: int, statement: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, config_text('"app.env"'), app_env=body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == (f"pmtop.toml:4: process.p.env_file: app.env:{line}: cannot parse "
                                    f"{statement!r} (expected KEY=VALUE)")


def test_defaults_may_name_files_and_a_process_may_name_its_own(tmp_path: Path) -> None:
    text = ('[defaults]\nenv_file = "shared.env"\n'
            '[process.a]\ncommand = "x"\n'
            '[process.b]\ncommand = "x"\nenv_file = "own.env"\n')
    path = write(tmp_path, text, shared_env="S=1\n", own_env="O=1\n")
    a, b = load_config(path).processes
    assert dict(a.file_env) == {"S": "1"} and dict(b.file_env) == {"O": "1"}


def test_a_changed_file_is_a_changed_spec(tmp_path: Path) -> None:
    path = write(tmp_path, config_text('".env"'), _env="A=1\n")
    before = load_config(path).processes[0]
    (tmp_path / ".env").write_text("A=2\n")
    after = load_config(path).processes[0]
    assert before != after and after.file_env["A"] == "2"


async def test_reload_restarts_only_the_processes_whose_file_changed(make_supervisor: Make, tmp_path: Path) -> None:
    loop = "import os, time\nprint(os.environ['A'], flush=True)\ntime.sleep(600)"
    command = json.dumps(list(py(loop)))
    text = (f'[process.uses]\ncommand = {command}\nenv_file = ".env"\n'
            f'[process.other]\ncommand = {command}\nenv = {{ A = "fixed" }}\n')
    path = write(tmp_path, text, _env="A=before\n")
    config = load_config(path)
    sup = make_supervisor(*config.processes)
    async with sup.subscribe() as events:
        await sup.start_many(["uses", "other"])
        first = await wait_state(events, "uses", S.RUNNING)
        other = (await sup.status("other")).pid
        (tmp_path / ".env").write_text("A=after\n")
        result = await sup.apply_config(load_config(path).processes)
        assert result == {"added": [], "changed": ["uses"], "removed": []}
        await wait_for(events, lambda s: s.name == "uses" and s.state is S.RUNNING and s.pid != first.pid,
                       what="uses restarted")
    assert (await sup.status("other")).pid == other, "unchanged: kept running"
    await poll_until(lambda: sup._tail("uses", "stdout", 10) == ["after"], what="the new value in the new run")


def test_a_client_view_of_a_spec_does_not_read_files(tmp_path: Path) -> None:
    """The dashboard of another machine rebuilds a daemon's spec: the names are kept, nothing is read."""
    spec = parse_process("p", {"command": "x", "env_file": "/nowhere/.env"}, base_dir=tmp_path, env_files=False)
    assert spec.env_file == ("/nowhere/.env",) and dict(spec.file_env) == {}
    with pytest.raises(ConfigError):
        parse_process("p", {"command": "x", "env_file": "/nowhere/.env"}, base_dir=tmp_path)


@pytest.mark.parametrize(("value", "message"), [
    ([], "must not be empty (leave it out instead)"),
    (3, "must be a file name or an array of them (got 3)"),
    ([".env", 4], "must be a string (got 4)"),
])
def test_env_file_values_are_checked(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_process("p", {"command": "x", "env_file": value}, base_dir=tmp_path)
    assert caught.value.message == f"process.p.env_file: {message}"
