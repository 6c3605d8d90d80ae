"""Another local user, a tokenless client, a remote peer and a rebinding web page, against a real daemon.

SPEC §6: every endpoint but `GET /alive` and `/health` needs the owner's token from every address;
trusted hosts only lift the remote-access limits; the `Host` header must name the daemon; the files
that hold commands, environments and output are the owner's alone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import SLEEP, DaemonProc, poll, write_config
from tests.security.conftest import PWNED, attempts

Start = Callable[..., DaemonProc]
SYSTEM_PYTHON = "/usr/bin/python3"
"""The attacker's interpreter: one every user may run (the test venv may live under root's home)."""

ATTACKER = r'''
import http.client, json, sys
port, attempts, files = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
answers = {}
for name, method, path, body in attempts:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        answers[name] = conn.getresponse().status
    except OSError as exc:
        answers[name] = repr(exc)
    finally:
        conn.close()
reads = {}
for path in files:
    try:
        with open(path, "rb") as f:
            f.read(1)
        reads[path] = "read"
    except PermissionError:
        reads[path] = "denied"
    except OSError as exc:
        reads[path] = type(exc).__name__
print(json.dumps({"answers": answers, "reads": reads}))
'''


def _config(tmp_path: Path) -> None:
    printer = '["python3", "-c", "import sys, time\\nprint(\'secret output\', flush=True)\\ntime.sleep(600)"]'
    write_config(tmp_path, f'[process.web]\ncommand = {printer}\nenv = {{ API_KEY = "hunter2" }}\n'
                           f"[process.db]\ncommand = {SLEEP}\n")


def _unchanged(daemon: DaemonProc, web_pid: int) -> None:
    """Nothing an attacker asked for happened."""
    processes = daemon.processes()
    assert set(processes) == {"web", "db"}, "nothing registered or removed"
    assert processes["web"]["state"] == "running" and processes["web"]["pid"] == web_pid, "web untouched"
    assert daemon.api("GET", "/config/trusted-hosts").json()["hosts"] == ["localhost", "127.0.0.1", "::1"]
    assert daemon.api("GET", "/config/standalone-mode").json() == {"enabled": False}
    assert daemon.proc.poll() is None, "the daemon still runs"
    assert not os.path.exists(PWNED), "the attacker's command ran"


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another local user needs root (CI runs as root)")
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"no {SYSTEM_PYTHON} for the other user")
def test_another_local_user_can_do_nothing(start_daemon: Start, tmp_path: Path) -> None:
    _config(tmp_path)
    daemon = start_daemon("--port", "auto")
    web_pid = daemon.wait_state("web", "running")["pid"]
    run_dir = poll(lambda: next((daemon.home / "log" / "default" / "web").glob("*/stdout.log"), None),
                   "web's log file")
    secrets = [daemon.state_dir / "token", daemon.state_dir / "registry.json", daemon.state_dir / "daemon.json",
               run_dir, run_dir.parent / "stderr.log"]
    tmp_path.chmod(0o755)  # the attacker's cwd and our config folder: readable, like a home usually is
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", ATTACKER, str(daemon.info["port"]),
         json.dumps([a.to_json() for a in attempts()]), json.dumps([str(p) for p in secrets])],
        user="nobody", group="nogroup", extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    refused = {name: status for name, status in found["answers"].items() if status != 401}
    assert not refused, f"answered another user without a token: {refused}"
    assert set(found["reads"].values()) == {"denied"}, found["reads"]
    _unchanged(daemon, web_pid)


def test_a_tokenless_client_from_another_address_gets_nothing(start_daemon: Start, tmp_path: Path) -> None:
    _config(tmp_path)
    daemon = start_daemon("--port", "auto")
    web_pid = daemon.wait_state("web", "running")["pid"]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=daemon.url, transport=transport, timeout=30) as peer:
        assert peer.get("/alive").text == "OK"
        for attempt in attempts():
            response = peer.request(attempt.method, attempt.path, content=attempt.body,
                                    headers={"Content-Type": "application/json"})
            assert response.status_code == 401, (attempt.route.name, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
    _unchanged(daemon, web_pid)


def test_a_peer_with_the_token_is_limited_by_remote_access(start_daemon: Start, tmp_path: Path) -> None:
    """127.0.0.2 is not `localhost`: with the token it may read and act within remote-access, but not
    change the daemon or its security settings."""
    _config(tmp_path)
    daemon = start_daemon("--port", "auto")
    web_pid = daemon.wait_state("web", "running")["pid"]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    headers = {"Authorization": f"Bearer {daemon.token}"}
    with httpx.Client(base_url=daemon.url, transport=transport, headers=headers, timeout=30) as peer:
        assert [p["name"] for p in peer.get("/processes").json()["processes"]] == ["web", "db"]
        for path, body in (("/config/trusted-hosts", {"hosts": ["*"]}), ("/config/standalone-mode", {"enabled": True})):
            refused = peer.put(path, json=body)
            assert refused.status_code == 403 and "trusted host" in refused.json()["error"]["message"], refused.text
        for path in ("/monitor/shutdown", "/monitor/reload", "/monitor/restart"):
            assert peer.post(path).status_code == 403, path
        refused = peer.post("/processes", json={"name": "evil", "command": ["/bin/sh", "-c", f"touch {PWNED}"]})
        assert refused.status_code == 403 and "whitelist is empty" in refused.text
    _unchanged(daemon, web_pid)


def _raw_request(port: int, head: str) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.decode().partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


def test_a_rebound_web_page_is_refused_by_the_host_header(start_daemon: Start, tmp_path: Path) -> None:
    """A page whose name now resolves to 127.0.0.1 sends its own name as `Host`: no answer, not even
    `/health` (which would tell it the config path), and not with the token either."""
    _config(tmp_path)
    daemon = start_daemon("--port", "auto")
    port = daemon.info["port"]
    auth = {"Authorization": f"Bearer {daemon.token}"}
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.2:{port}", f"[::1]:{port}", "localhost.evil.example"):
        for path in ("/health", "/alive", "/processes"):
            response = httpx.get(daemon.url + path, headers={**auth, "Host": host}, timeout=10)
            assert response.status_code == 403, (host, path, response.text)
            assert response.json()["error"]["code"] == "host_not_allowed"
    for host in (f"localhost:{port}", "localhost", f"127.0.0.1:{port}", "LOCALHOST"):
        assert httpx.get(daemon.url + "/processes", headers={**auth, "Host": host}, timeout=10).status_code == 200
    status, body = _raw_request(port, "GET /health HTTP/1.0\r\n\r\n")
    assert status == 403 and "no Host header" in body


def test_files_are_the_owners_alone_whatever_the_umask(start_daemon: Start, tmp_path: Path) -> None:
    """Folders 0700 and files 0600 under umask 000, and folders an earlier version left open are
    tightened at start-up."""
    _config(tmp_path)
    home = tmp_path / "home"
    state, logs = home / "state" / "default", home / "log" / "default"
    state.mkdir(parents=True, mode=0o755)
    logs.mkdir(parents=True, mode=0o755)
    (state / "token").write_text("an-old-token\n")
    os.chmod(state, 0o755)
    os.chmod(logs, 0o755)
    os.chmod(state / "token", 0o644)
    daemon = start_daemon("--port", "auto", home=home, umask=0)
    daemon.wait_state("web", "running")
    stdout = poll(lambda: next((logs / "web").glob("*/stdout.log"), None), "web's log file")
    poll(lambda: (state / "registry.json").exists(), "the registry")
    assert daemon.token == "an-old-token", "the existing token is kept"
    folders = [state, logs, logs / "web", stdout.parent, home / "state", home / "log"]
    files = [state / n for n in ("token", "registry.json", "daemon.json", f"daemon-{daemon.info['port']}.pid",
                                 "instance.lock")]
    files += [stdout, stdout.parent / "stderr.log", *logs.glob("daemon-*.log")]
    modes = {str(p): oct(p.stat().st_mode & 0o777) for p in [*folders, *files]}
    assert all(modes[str(p)] == "0o700" for p in folders), modes
    assert all(modes[str(p)] == "0o600" for p in files), modes
    daemon.api("PUT", "/config/standalone-mode", json={"enabled": False})
    assert oct((state / "security.json").stat().st_mode & 0o777) == "0o600"


def test_the_owners_token_command_and_token_file(start_daemon: Start, tmp_path: Path) -> None:
    """`pmtop token` prints what the daemon checks; `--token-file` and `$PMTOP_TOKEN` serve a client
    that cannot read the instance's file; a wrong one is a one-line refusal."""
    _config(tmp_path)
    daemon = start_daemon("--port", "auto")
    env = {**os.environ, "PMTOP_HOME": str(daemon.home)}
    env.pop("PMTOP_TOKEN", None)
    printed = subprocess.run([*_pmtop(), "token"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip() == daemon.token
    elsewhere = {**env, "PMTOP_HOME": str(tmp_path / "another-home")}  # a client without the file
    port = ["--port", str(daemon.info["port"])]
    refused = subprocess.run([*_pmtop(), "ps", *port], cwd=tmp_path, env=elsewhere, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "--token-file" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    token_file = tmp_path / "token.txt"
    token_file.write_text(daemon.token + "\n")
    with_file = subprocess.run([*_pmtop(), "ps", *port, "--token-file", str(token_file)], cwd=tmp_path,
                               env=elsewhere, capture_output=True, text=True, timeout=60)
    assert with_file.returncode == 0 and "web" in with_file.stdout, with_file.stderr
    with_env = subprocess.run([*_pmtop(), "ps", *port], cwd=tmp_path, env={**elsewhere, "PMTOP_TOKEN": daemon.token},
                              capture_output=True, text=True, timeout=60)
    assert with_env.returncode == 0 and "web" in with_env.stdout, with_env.stderr


def test_version() -> None:
    from pmtop.core.version import __version__

    result = subprocess.run([*_pmtop(), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"pmtop {__version__}"


def _pmtop() -> list[str]:
    from tests.daemon.conftest import PMTOP

    return list(PMTOP)


def test_system_python_is_what_the_attacker_runs() -> None:
    """The other-user test needs an interpreter outside root's home; say so loudly if CI lacks one."""
    if os.geteuid() == 0:
        assert shutil.which("python3", path="/usr/bin") == SYSTEM_PYTHON
