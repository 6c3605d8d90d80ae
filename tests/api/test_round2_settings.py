"""The API side of SPEC §10: `POST /processes` with `"pid"` adopts (the `register` permission, and for
an untrusted peer the executable whitelist, as any remote registration), the new keys are accepted and
described, and every status carries the declared `port`."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from pmtop.core.api.openapi import document
from tests.api.conftest import TOKEN, Serve
from tests.waiting import poll_until


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return str(body["message"])


@pytest.fixture
def foreign() -> Iterator[int]:
    """A `sleep 600` someone else started (its starter has exited: it is not this test's child)."""
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen(['sleep', '600'], start_new_session=True, stdin=subprocess.DEVNULL,\n"
            "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)\n")
    pid = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             timeout=30).stdout)
    yield pid
    try:
        psutil.Process(pid).kill()
    except psutil.NoSuchProcess:
        pass


async def test_adopt_through_the_api(serve: Serve, foreign: int) -> None:
    api = await serve()
    created = await api.http().post("/processes", json={"name": "napper", "pid": foreign})
    assert created.status_code == 201, created.text
    assert created.json()["reason"] == f"adopting pid {foreign}"
    await poll_until(lambda: api.sup._runners["napper"].state.value == "running", what="napper running")
    detail = (await api.http().get("/processes/napper")).json()
    assert detail["pid"] == foreign and detail["command"] == ["sleep", "600"]
    assert detail["scope"] == "global" and detail["config"] == {"scope": "global", "cwd": detail["config"]["cwd"]}
    spec = await api.controller().spec("napper")  # the client rebuilds a spec without a command
    assert spec.command == ()
    refused = await api.http().post("/processes/napper/restart")
    assert "without a command" in error(refused, 409, "action_refused")
    stopped = await api.http().post("/processes/napper/stop")
    assert stopped.json()["state"] == "stopped"
    await poll_until(lambda: not psutil.pid_exists(foreign) or psutil.Process(foreign).status() == "zombie",
                     what="the adopted process stopped")


async def test_adopting_is_refused_with_a_clear_answer(serve: Serve) -> None:
    api = await serve()
    assert "pid 1 is the system's init process" in error(
        await api.http().post("/processes", json={"name": "init", "pid": 1}), 409, "action_refused")
    for bad in (0, -3, "12", True, 1.5):
        message = error(await api.http().post("/processes", json={"name": "x", "pid": bad}), 422, "config_invalid")
        assert message == "pid: must be a process ID (a positive integer)"
    assert api.sup.names == []


async def test_an_untrusted_peer_needs_the_whitelist_to_adopt(serve: Serve, foreign: int) -> None:
    """Adopting puts a process within reach of `stop`: its executable must be allowed, as for a registration."""
    api = await serve()
    api.distrust_loopback()
    remote = api.http(TOKEN)
    body = {"name": "napper", "pid": foreign}
    assert "whitelist is empty" in error(await remote.post("/processes", json=body), 403, "forbidden")
    sleep = shutil.which("sleep")
    assert sleep is not None
    real = str(Path(sleep).resolve())
    api.store.save(dataclasses.replace(api.store.settings, executable_whitelist=(real,)))
    assert (await remote.post("/processes", json=body)).status_code == 201
    access = dataclasses.replace(api.store.settings.remote_access, register=False)
    api.store.save(dataclasses.replace(api.store.settings, remote_access=access))
    assert "'register'" in error(await remote.post("/processes", json={**body, "name": "again"}), 403, "forbidden")


async def test_new_keys_register_and_the_port_is_in_every_status(serve: Serve, tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("GREETING=hello\n")
    api = await serve()
    body = {"name": "web", "command": [sys.executable, "-c", "import time; time.sleep(600)"], "start": False,
            "port": 8123, "ready_log_line": "^ready", "env_file": str(tmp_path / "app.env"),
            "health": {"type": "heartbeat", "path": "beat", "max_age": "30s"}}
    created = await api.http().post("/processes", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["port"] == 8123
    listed = (await api.http().get("/processes")).json()["processes"]
    assert listed[0]["port"] == 8123
    config = (await api.http().get("/processes/web")).json()["config"]
    assert config["port"] == 8123 and config["ready_log_line"] == "^ready"
    assert config["env_file"] == str(tmp_path / "app.env") and "GREETING" not in str(config), "names, not values"
    assert config["health"] == {"type": "heartbeat", "path": "beat", "max_age": "30s"}
    assert dict((await api.sup.spec("web")).file_env) == {"GREETING": "hello"}
    missing = await api.http().post("/processes", json={**body, "name": "web2", "env_file": "/nowhere/x.env"})
    assert "no such file: /nowhere/x.env" in error(missing, 422, "config_invalid")
    bad = await api.http().post("/processes", json={**body, "name": "web3", "ready_log_line": "("})
    assert error(bad, 422, "config_invalid").startswith("process.web3.ready_log_line: invalid regular expression")


def test_the_openapi_document_describes_them() -> None:
    schemas = document()["components"]["schemas"]
    registration = schemas["Registration"]
    assert registration["required"] == ["name"] and "pid" in registration["properties"]
    for key in ("port", "env_file", "ready_log_line"):
        assert key in registration["properties"]
    assert "port" in schemas["ProcessStatus"]["properties"]
    kinds = registration["properties"]["health"]["properties"]["type"]["enum"]
    assert kinds == ["http", "tcp", "exec", "heartbeat", "notify"]
