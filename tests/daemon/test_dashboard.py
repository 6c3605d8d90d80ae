"""The dashboard against a real daemon subprocess: attached mode, and the hand-over from local mode."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pmtop.core.api.client import HttpController
from pmtop.tui import PmtopApp
from pmtop.tui.widgets.header import StatusHeader
from tests.daemon.conftest import PMTOP, SLEEP, DaemonProc, free_port, poll, write_config
from tests.tui.conftest import cell, table, until, until_cell
from tests.waiting import POLL_INTERVAL

Start = Callable[..., DaemonProc]
SIZE = (160, 45)


async def test_attached_dashboard_drives_a_real_daemon(start_daemon: Start, tmp_path: Path) -> None:
    write_config(tmp_path, f"[process.web]\ncommand = {SLEEP}\n[process.api]\ncommand = {SLEEP}\n")
    daemon = start_daemon("--port", "auto")
    daemon.wait_state("api", "running")
    async with HttpController(daemon.url, token=daemon.token) as controller:
        app = PmtopApp(controller, mode="attached")
        async with app.run_test(size=SIZE) as pilot:
            await until_cell(pilot, "api", "state", "running")
            header = app.main.query_one(StatusHeader)
            assert header.mode == "attached"
            assert f"127.0.0.1:{daemon.info['port']}" in header._left().plain
            await pilot.press("down")
            assert table(app).selected == "api"
            await pilot.press("x")
            await until_cell(pilot, "api", "state", "stopped")
            assert daemon.processes()["api"]["state"] == "stopped", "the daemon did it, not the screen"
            assert cell(app, "web", "state") == "running"
            await until(pilot, lambda: cell(app, "web", "mem") not in ("", "-"),
                        what="live facts from the daemon")


def test_quit_hands_the_processes_to_a_daemon(tmp_path: Path) -> None:
    """`pmtop` in a terminal, `q`, `h`: a headless daemon adopts the processes; none is restarted."""
    write_config(tmp_path, f"[process.web]\ncommand = {SLEEP}\n")
    home = tmp_path / "home"
    state = home / "state" / "default"
    env = {**os.environ, "PMTOP_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    leader, follower = pty.openpty()
    # A port of its own: in the 19881+ range that `--port auto` walks, another suite's daemon could take
    # the port in the moment between the dashboard letting it go and its successor binding it.
    proc = subprocess.Popen([*PMTOP, "--port", str(free_port())], cwd=tmp_path, env=env, stdin=follower,
                            stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    screen = bytearray()

    def read_screen() -> bytes:
        try:
            screen.extend(os.read(leader, 65536))
        except OSError:
            pass
        return bytes(screen)

    os.set_blocking(leader, False)
    handed_over = False
    try:
        info = poll(lambda: read_screen() is not None and _daemon_info(state, proc.pid), "the dashboard to serve")
        web = poll(lambda: read_screen() is not None and _live_pid(state, "web"), "web in the registry")
        poll(lambda: read_screen() and b"running" in screen, "the dashboard to draw")
        os.write(leader, b"q")
        poll(lambda: b"hand them to" in read_screen(), "the quit dialog")
        os.write(leader, b"h")
        handed_over = True
        # Keep reading its screen while it works: a terminal nobody reads would block its writes.
        poll(lambda: read_screen() is not None and proc.poll() is not None, "the dashboard to exit")
        successor = poll(lambda: (i := _any_daemon_info(state)) and i["pid"] != proc.pid and i,
                         "a headless daemon to take over")
        assert successor["port"] == info["port"]
        statuses = json.loads(subprocess.run([*PMTOP, "ps", "--json", "--port", str(successor["port"])],
                                             env=env, capture_output=True, text=True, check=True).stdout)
        [status] = statuses["processes"]
        assert status["pid"] == web and status["state"] == "running", "adopted, not restarted"
        assert "adopted" in status["reason"]
        stopped = subprocess.run([*PMTOP, "shutdown", "--port", str(successor["port"])], env=env,
                                 capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr
        poll(lambda: not psutil.pid_exists(web) or psutil.Process(web).status() == psutil.STATUS_ZOMBIE,
             "the adopted process to be stopped with the daemon")
        handed_over = False  # and shut down again: nothing is left to clean up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: nothing else is in that group
                proc.wait()
        os.close(leader)
        # A failed run must not leave the successor behind: it may still be coming up (10 s at most).
        deadline = time.monotonic() + (12 if handed_over else 0)
        while True:
            leftover = _any_daemon_info(state)
            if leftover is not None and leftover["pid"] != proc.pid and psutil.pid_exists(leftover["pid"]):
                os.kill(leftover["pid"], signal.SIGTERM)
                break
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_INTERVAL)


def _any_daemon_info(state: Path) -> dict | None:
    try:
        return json.loads((state / "daemon.json").read_text())
    except (OSError, ValueError):
        return None


def _daemon_info(state: Path, pid: int) -> dict | None:
    info = _any_daemon_info(state)
    return info if info is not None and info["pid"] == pid else None


def _live_pid(state: Path, name: str) -> int | None:
    try:
        return int(json.loads((state / "registry.json").read_text())["live"][name]["pid"])
    except (OSError, ValueError, KeyError):
        return None


