"""`pmtop export systemd`: units that the real systemd accepts and reads back exactly as pmtop means them."""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from pmtop.core.config import Config
from pmtop.core.export.systemd import command_line, quote_word, systemd_delays

from .conftest import TRICKY_WORDS, render
from .systemd_tools import load_with_systemd, needs_analyze, needs_systemd, systemd_sees, verify, write_units

LOCAL_VERSION = int(re.findall(r"\d+", subprocess.run(["systemctl", "--version"], capture_output=True, text=True)
                                .stdout or "0")[0]) if shutil.which("systemctl") else 0


@needs_analyze
@pytest.mark.parametrize("version", [252, 254])
def test_the_example_and_the_tricky_config_pass_systemd_analyze_verify(example: Config, tricky: Config,
                                                                       version: int) -> None:
    for config in (example, tricky):
        result = render("systemd", config, systemd_version=version)
        folder = write_units(result.files)
        verified = verify(folder)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        warnings = verified.stderr.splitlines()
        if version > LOCAL_VERSION:  # this machine's systemd may not know the newer keys, and says so
            warnings = [w for w in warnings if not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", w)]
        assert warnings == [], verified.stderr  # not even a warning
        assert "demo.target" in result.files


@needs_systemd
def test_systemd_reads_back_every_argv_word_environment_and_folder_exactly(tricky: Config) -> None:
    result = render("systemd", tricky, systemd_version=252)
    loaded = load_with_systemd(write_units(result.files), "demo.target")
    api = loaded["demo-api.service"]
    assert api.commands["ExecStart"] == [systemd_sees(tricky.by_name["api"].command)]
    web = loaded["demo-web.service"]
    env = tricky.by_name["web"].env
    assert sorted(web.environment) == sorted(f"{k}={v}" for k, v in env.items())
    assert web.settings["WorkingDirectory"] == tricky.by_name["web"].cwd
    assert loaded["demo-worker.v2.service"].settings["WorkingDirectory"].endswith("/sub dir")
    assert web.settings["KillSignal"] == "SIGINT"
    assert web.settings["Type"] == "exec"
    assert loaded["demo-migrate.service"].settings["Type"] == "oneshot"
    assert loaded["demo-migrate.service"].settings["RemainAfterExit"] == "yes"
    assert loaded["demo-api.service"].settings["Restart"] == "always"


def test_quoting_rules() -> None:
    assert quote_word("plain-word_1.2") == "plain-word_1.2"
    assert quote_word("100%") == "100%%"
    assert quote_word("$HOME") == '"$$HOME"'
    assert quote_word(";") == "\\;"
    assert quote_word("") == '""'
    assert quote_word("-x", first=True) == '"-x"' and quote_word("-x") == "-x"
    assert quote_word("a\nb\x01") == '"a\\nb\\x01"'
    assert command_line(["echo", 'say "hi"', "back\\slash"]) == 'echo "say \\"hi\\"" "back\\\\slash"'
    assert all("\n" not in command_line([w]) for w in TRICKY_WORDS)


def test_dependencies_health_gate_and_oneshot(tricky: Config) -> None:
    files = render("systemd", tricky, systemd_version=254).files
    api = files["demo-api.service"]
    assert "Requires=demo-web.service\nAfter=demo-web.service" in api
    assert "Requires=demo-migrate.service\nAfter=demo-migrate.service" in api
    assert "ExecStartPost=" in files["demo-web.service"]  # api waits for web healthy: the readiness gate
    assert "ExecStartPost=" not in files["demo-db.service"]  # nobody waits, no startup check: no gate
    assert "Type=oneshot" in files["demo-migrate.service"]
    assert "StopWhenUnneeded" not in "".join(files.values())
    target = files["demo.target"]
    assert "demo-db.service" not in target  # disabled
    assert "Wants=demo-web.service demo-migrate.service demo-api.service" in target
    assert all("PartOf=demo.target" in text for name, text in files.items() if name.endswith(".service"))


def test_backoff_on_252_and_254(tricky: Config) -> None:
    old = render("systemd", tricky, systemd_version=252)
    new = render("systemd", tricky, systemd_version=254)
    assert "RestartSteps" not in "".join(old.files.values())
    assert "RestartSec=1s\nRestartSteps=3\nRestartMaxDelaySec=8s" in new.files["demo-web.service"]
    assert any(l.setting == "backoff" and l.process == "web" for l in old.losses)
    # [1s, 2s, 4s, 8s] is geometric: systemd 254 waits exactly that, so nothing is lost.
    assert not any(l.setting == "backoff" and l.process == "web" for l in new.losses)
    assert [round(d, 3) for d in systemd_delays(1, 8, 3, 5)] == [1, 2, 4, 8, 8]
    assert [round(d, 1) for d in systemd_delays(1, 30, 5, 6)] == [1, 2.0, 3.9, 7.7, 15.2, 30]


def test_the_losses_are_reported(tricky: Config) -> None:
    losses = {(l.process, l.setting) for l in render("systemd", tricky).losses}
    assert ("web", "health") in losses  # checked only at start
    assert ("worker.v2", "retry_forever") in losses
    assert ("api", "log_max_bytes") in losses
    assert (None, "per-run logs") in losses and (None, "trust model") in losses
    assert (None, "adoption") in losses


class _Server(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@needs_systemd
def test_the_readiness_gate_that_systemd_reads_really_probes(tricky: Config, tmp_path: Path) -> None:
    """The ExecStartPost= command, as systemd parsed it, run: passes on a live URL, fails on a dead one."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        text = (tricky.path.read_text() if tricky.path else "").replace("127.0.0.1:8765", f"127.0.0.1:{port}")
        (tmp_path / "pmtop.toml").write_text(text)
        from pmtop.core.config import load_config

        config = load_config(tmp_path / "pmtop.toml")
        loaded = load_with_systemd(write_units(render("systemd", config).files), "demo.target")
        [gate] = loaded["demo-web.service"].commands["ExecStartPost"]
        argv = [word.replace("$$", "$") for word in gate]
        assert subprocess.run(argv, timeout=60).returncode == 0
        _Server.status = 500
        dead = [*argv[:7], "0.05", "3", "0"]  # 3 attempts, 50ms apart
        assert subprocess.run(dead, timeout=60).returncode == 1
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            closed = free.getsockname()[1]
        tcp = [*argv[:3], "tcp", f"127.0.0.1:{closed}", "1", "0.05", "2", "0"]
        assert subprocess.run(tcp, timeout=60).returncode == 1
        ok_tcp = [*argv[:3], "tcp", f"127.0.0.1:{port}", "1", "0.05", "2", "0"]
        assert subprocess.run(ok_tcp, timeout=60).returncode == 0
    finally:
        _Server.status = 200
        server.shutdown()
        server.server_close()
