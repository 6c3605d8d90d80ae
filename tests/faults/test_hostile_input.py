"""Hostile input: config files and API bodies fuzzed with hypothesis, and 10,000 processes.

Wrong types, huge numbers, negative and absurd durations, unicode, NUL bytes, deep nesting: the answer
is always a clear one-line error naming the file and key (or a JSON error from the API), never a
traceback, and never a change half made: a refused request leaves everything as it was.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmtop.core.api.protocol import CONFIG_SECTIONS
from pmtop.core.config import load_config, spec_to_table
from pmtop.core.config.schema import FIELDS
from pmtop.core.errors import ConfigError
from tests.faults.conftest import Home, poll

KEYS = sorted(FIELDS)
HUGE = st.sampled_from([10**30, -10**30, 2**63, -1, 0, 1e308, -1e308, 1e-308, math.inf, -math.inf, math.nan])
DURATIONS = st.sampled_from(["-1s", "1e309s", "99999999999999999999h", "0", "1x", "", " ", "5m30", "nan", "inf",
                             "1.5.5s", "1s-", "ms", "250ms", "1d", "-0", "0x10s", "\x00s", "１s"])
TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["\x00", "a\x00b", "é", "🙂", "..", "/"])
SCALARS = st.none() | st.booleans() | st.integers() | HUGE | st.floats() | TEXT | DURATIONS
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                      max_leaves=12)
NAMES = st.sampled_from(["web", "db", "a.b", "x-1", "0", "", "..", "a/b", "é", "a" * 65, "\x00"]) | TEXT


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"x": value}
    return value


def process_table() -> st.SearchStrategy[dict[str, Any]]:
    """A process table: a valid core, then hostile values on real keys (and a stranger or two)."""
    hostile = st.dictionaries(st.sampled_from(KEYS) | TEXT, VALUES, max_size=4)
    return hostile.map(lambda extra: {"command": ["sleep", "600"], **extra})


def document() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "daemon": st.dictionaries(st.sampled_from(["instance", "host", "port", "stop_on_exit"]) | TEXT, VALUES,
                                  max_size=3),
        "defaults": st.dictionaries(st.sampled_from(KEYS) | TEXT, VALUES, max_size=3),
        "process": st.dictionaries(NAMES, process_table() | VALUES, max_size=3),
        "junk": VALUES,
    })


def toml_text(data: dict[str, Any]) -> str | None:
    """TOML for `data`, or None when TOML cannot say it (None values, non-string keys)."""
    try:
        return tomli_w.dumps(data)
    except (TypeError, ValueError):
        return None


def check_loaded_or_refused(path: Path) -> None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(path.name), message
        assert exc.file == path.name
        return
    for spec in config.processes:  # what loads is usable: finite, JSON-able, writable back
        numbers = [spec.stop_timeout, spec.restart.reset_after, *spec.restart.backoff, spec.restart.retry_forever_interval]
        assert all(math.isfinite(n) and n >= 0 for n in numbers), spec
        assert spec.logs.backups <= 1000 and spec.logs.keep_runs <= 10_000, spec.logs
        json.dumps(spec_to_table(spec), allow_nan=False)
        tomli_w.dumps(spec_to_table(spec))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=document())
def test_fuzzed_config_files(data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = toml_text(data)
    if text is None:
        return
    path = tmp_path / "pmtop.toml"
    path.write_text(text)
    check_loaded_or_refused(path)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_config_bytes(raw: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pmtop.toml"
    path.write_bytes(raw)
    check_loaded_or_refused(path)


def test_deep_nesting_and_absurd_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pmtop.toml"
    cases = [
        {"process": {"web": {"command": ["sleep", "1"], "env": deep(200)}}},
        {"process": {"web": {"command": ["sleep", "1"], "health": deep(200)}}},
        {"process": {"web": {"command": ["sleep", "1"], "log_backups": 10**9}}},
        {"process": {"web": {"command": ["sleep", "1"], "log_keep_runs": 10**12}}},
        {"process": {"web": {"command": ["sleep", "1"], "backoff": ["1s"] * 100_000}}},
        {"process": {"web": {"command": ["x" * 1_000_000]}}},
        {"process": {"web": {"command": ["sleep", "1"], "stop_timeout": 1e308}}},
    ]
    for case in cases:
        path.write_text(tomli_w.dumps(case))
        check_loaded_or_refused(path)
    path.write_text("a = " + "[" * 10_000 + "]" * 10_000)
    check_loaded_or_refused(path)


# ------------------------------------------------------------------------------------------------- API

@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.faults.conftest import Home, kill_everything_of

    root = tmp_path_factory.mktemp("hostile")
    (root / "project").mkdir()
    home = Home(root / "home", root / "project")
    home.config('[process.web]\ncommand = ["sleep", "600"]\n')
    home.detach()
    yield home
    kill_everything_of(home.root)


def snapshot(home: Home) -> tuple[Any, ...]:
    processes = sorted((p["name"], p["state"], p["pid"]) for p in home.api("GET", "/processes?facts=0").json()["processes"])
    configs = tuple(home.api("GET", f"/config/{s}").json() for s in CONFIG_SECTIONS)
    return (processes, configs, (home.project / "pmtop.toml").read_text())


def refused_cleanly(answer: httpx.Response) -> bool:
    body = answer.json()  # always JSON
    if answer.status_code < 300:
        return False
    assert answer.status_code in (400, 403, 404, 409, 413, 422), (answer.status_code, body)
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["code"]
    assert "\n" not in body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return True


REGISTRATION = st.dictionaries(st.sampled_from([*KEYS, "name", "session_pid", "project"]) | TEXT, VALUES, max_size=5)


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=REGISTRATION | VALUES, name=NAMES)
def test_fuzzed_registrations(daemon: Home, body: Any, name: str) -> None:
    if isinstance(body, dict):
        # Never run anything the fuzzer made up: nothing it registers may start.
        body = {"name": name, **body, "start": False, "autostart": False}
    before = snapshot(daemon)
    try:
        payload = json.dumps(body, allow_nan=False).encode()
    except ValueError:
        payload = json.dumps(body).encode()  # NaN and Infinity: not JSON, must be refused as such
    answer = daemon.api("POST", "/processes", content=payload)
    if refused_cleanly(answer):
        assert snapshot(daemon) == before, "a refused registration changed something"
    else:
        created = answer.json()["name"]
        assert answer.status_code == 201 and created in {p[0] for p in snapshot(daemon)[0]}
        assert daemon.api("DELETE", f"/processes/{created}").status_code == 200


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(CONFIG_SECTIONS), body=VALUES | st.dictionaries(TEXT, VALUES, max_size=3))
def test_fuzzed_settings(daemon: Home, section: str, body: Any) -> None:
    if section == "trusted-hosts" and isinstance(body, dict) and isinstance(body.get("hosts"), list):
        body = {**body, "hosts": [*body["hosts"], "127.0.0.1"]}  # keep this client trusted
    if section in ("standalone-mode", "partner-discovery"):
        before_partner = daemon.api("GET", "/status").json()["partner"]
    before = snapshot(daemon)
    answer = daemon.api("PUT", f"/config/{section}", content=json.dumps(body).encode())
    if refused_cleanly(answer):
        assert snapshot(daemon) == before, "a refused change changed something"
    elif section in ("standalone-mode", "partner-discovery"):
        partner = daemon.api("GET", "/status").json()["partner"]
        assert partner.get("restarts", 0) == 0 and partner["state"] in ("none", "standalone", "waiting"), (
            before_partner, partner)


def test_ten_thousand_processes(home: Home) -> None:
    tables = "".join(f'[process.p{i:05d}]\ncommand = ["sleep", "600"]\nautostart = false\n' for i in range(10_000))
    path = home.config(tables)
    spec_count = len(load_config(path).processes)
    assert spec_count == 10_000
    broken = path.read_text() + '[process.last]\ncommand = ["sleep", 5]\n'
    path.write_text(broken)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value).startswith(f"{path}:{broken.count(chr(10))}: process.last.command") or (
        "process.last.command" in str(refused.value) and "\n" not in str(refused.value))
    path.write_text(broken.replace('["sleep", 5]', '["sleep", "5"]'))
    home.detach()
    statuses = poll(lambda: (r := home.api("GET", "/processes?facts=0")).status_code == 200 and r.json()["processes"],
                    "the list")
    assert len(statuses) == 10_001 and sum(s["state"] == "stopped" for s in statuses) == 10_000
    assert home.api("POST", "/processes/p09999/start").json()["state"] in ("starting", "running")
    poll(lambda: home.processes()["p09999"]["state"] == "running", "one of them running")
    print(f"python {sys.version.split()[0]}: 10,001 processes listed")
