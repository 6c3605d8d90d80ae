"""A full log folder and a read-only state folder, then healed: supervision goes on, the problem is
said once (in the reason, `/status` and the daemon log), logs and the registry resume by themselves,
and no child ever blocks on a full pipe.

Real file systems: a small tmpfs for the logs, a read-only bind mount for the state (both need root,
which the CI container has; elsewhere these two tests are skipped with the reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Home, kill_everything_of, poll

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                                reason="needs root (mount) for a real full or read-only file system")

CHATTY_CODE = """
import os, sys, time
i = 0
while True:
    i += 1
    print(f'line {i:09d}', flush=True)
    time.sleep(0.0005)
    if i % 200 == 0:
        open(sys.argv[1] + '.tmp', 'w').write(str(i))
        os.replace(sys.argv[1] + '.tmp', sys.argv[1])
"""
CHATTY = json.dumps(["python3", "-c", CHATTY_CODE, "COUNT"])
CRASHY = '["python3", "-c", "import time; time.sleep(0.2); raise SystemExit(1)"]'


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    mount(*args, str(target))
    try:
        yield
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the file system is full."""
    ballast = folder / "ballast"
    chunk = b"\0" * 65536
    with open(ballast, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
    return ballast


def count(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def restarts(home: Home, name: str) -> int:
    return int(home.processes()[name]["restarts"])


def test_a_full_log_folder_then_healed(home: Home) -> None:
    counter = home.project / "chatty.count"
    home.config(f"[process.chatty]\ncommand = {CHATTY.replace('COUNT', str(counter))}\n"
                f'[process.crashy]\ncommand = {CRASHY}\nrestart = "always"\nbackoff = ["0.2s"]\nmax_restarts = 100000\n')
    log_dir = home.log_dir()
    with mounted(log_dir, "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"):
        try:
            home.detach()
            poll(lambda: home.processes()["chatty"]["state"] == "running" and count(counter) > 200, "chatty running")
            ballast = fill(log_dir)
            poll(lambda: "stdout not saved: No space left on device" in home.processes()["chatty"]["reason"],
                 "the full disk said in the reason")
            at_full, crashes = count(counter), restarts(home, "crashy")
            poll(lambda: count(counter) > at_full + 2000, "chatty writing on: never blocked on its pipe")
            poll(lambda: restarts(home, "crashy") >= crashes + 3, "supervision going on")
            status = home.processes()["chatty"]
            assert status["state"] == "running"
            assert status["reason"].count("not saved") == 1

            ballast.unlink()
            poll(lambda: "not saved" not in home.processes()["chatty"]["reason"], "logs resumed")
            lines = home.api("GET", "/processes/chatty/logs?lines=100000").json()["lines"]
            lost = [line for line in lines if line.startswith("[pmtop]")]
            assert len(lost) == 1 and "bytes of output lost: No space left on device" in lost[0], lost
            after = lines[lines.index(lost[0]) + 1:]
            poll(lambda: len(home.api("GET", "/processes/chatty/logs?lines=100000").json()["lines"])
                 > lines.index(lost[0]) + 200, "new lines after the gap")
            assert not after or after[0].startswith("line ")
            log = poll(lambda: (t := home.daemon_logs()) and "saved again" in t and t, "the daemon log")
            assert log.count("chatty: stdout not saved") == 1, "said once, not once a second"
            assert log.count("chatty: stdout saved again") == 1
            assert "Traceback" not in log
        finally:
            kill_everything_of(home.root)


def test_a_read_only_state_folder_then_healed(home: Home) -> None:
    home.config(f'[process.sleeper]\ncommand = ["sleep", "600"]\n'
                f'[process.crashy]\ncommand = {CRASHY}\nrestart = "always"\nbackoff = ["0.2s"]\nmax_restarts = 100000\n')
    state = home.state_dir()
    try:
        home.detach()
        poll(lambda: home.processes()["sleeper"]["state"] == "running", "running")
        # A read-only mount over the folder (files the daemon holds open stay writable underneath, as
        # the instance lock must; everything it opens from now on is refused).
        with mounted(state, "--bind", "-o", "ro", str(state)):
            crashes = restarts(home, "crashy")
            poll(lambda: restarts(home, "crashy") >= crashes + 4, "supervision going on, registry unwritable")
            status = home.api("GET", "/status").json()
            assert status["problems"] == ["registry not saved: Read-only file system"]
            refused = home.api("PUT", "/config/standalone-mode", json={"enabled": True})
            assert refused.status_code == 503 and "nothing was changed" in refused.json()["error"]["message"]
            assert home.api("GET", "/config/standalone-mode").json() == {"enabled": False}
        crashes = restarts(home, "crashy")
        poll(lambda: restarts(home, "crashy") >= crashes + 2 and not home.api("GET", "/status").json()["problems"],
             "the registry saved again")
        log = home.daemon_logs()
        assert log.count("cannot save the registry") == 1, "said once, not at every change"
        assert log.count("the registry is saved again") == 1
        assert "Traceback" not in log and "unexpected error" not in log
        with mounted(state, "--bind", "-o", "ro", str(state)):  # a shutdown while it is read-only is clean
            result = home.run("shutdown")
            assert result.returncode == 0, result.stderr
    finally:
        kill_everything_of(home.root)
