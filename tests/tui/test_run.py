"""`run_app`, the CLI's entry point, in a real terminal: the quit choice reaches `on_quit` exactly once,
also when the terminal goes away (SIGHUP) instead of the user pressing `q`."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.waiting import poll_until

CHILD = textwrap.dedent("""
    import asyncio, sys
    from pmtop.core.model import ProcessSpec
    from pmtop.core.locations import instance_paths
    from pmtop.core.supervisor import Supervisor
    from pmtop.tui import run_app

    async def main() -> None:
        sup = Supervisor([ProcessSpec("web", (sys.executable, "-c", "import time; time.sleep(600)"))],
                         paths=instance_paths("run"))
        await sup.boot()
        calls = []

        async def on_quit(choice) -> None:
            calls.append(str(choice))
            await sup.shutdown()

        choice = await run_app(sup, mode="local", on_quit=on_quit)
        with open(sys.argv[1], "w") as out:
            out.write(f"{choice} {calls}")

    asyncio.run(main())
""")


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [p for p in proc.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return []


def drain(fd: int, seen: bytearray) -> None:
    try:
        while chunk := os.read(fd, 65536):
            seen += chunk
    except OSError:
        pass


@pytest.mark.parametrize("terminal", ["open", "closed"])
async def test_sighup_ends_the_dashboard_and_on_quit_stops_everything(tmp_path: Path, terminal: str) -> None:
    """`closed`: the terminal really went away before the signal (as when tmux or an SSH session dies):
    every write to it fails (Textual's output thread dies of it), and the dashboard must still end, and
    stop what it supervises, without blocking on it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.set_blocking(master, False)
    result = tmp_path / "result.txt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(result)], stdin=slave, stdout=slave,
                             stderr=slave, start_new_session=True, env={**os.environ, "TERM": "xterm-256color"})
    os.close(slave)
    proc = psutil.Process(child.pid)
    workers: list[psutil.Process] = []
    screen = bytearray()
    try:
        def web_running_and_shown() -> bool:
            drain(master, screen)
            workers[:] = [p for p in descendants(proc) if "time.sleep(600)" in " ".join(p.cmdline())]
            return bool(workers) and b"running" in screen  # the dashboard is up and shows it

        await poll_until(web_running_and_shown, what="the dashboard to show the running process")
        if terminal == "closed":
            threads = proc.num_threads()
            os.close(master)  # from now on, writes to the terminal fail (EIO)
            master = -1
            await poll_until(lambda: proc.num_threads() < threads, what="the output thread to die of a failed write")
        child.send_signal(signal.SIGHUP)  # the terminal went away

        def ended() -> bool:
            if master >= 0:
                drain(master, screen)  # a full pty would block the child's last frames
            return child.poll() is not None

        await poll_until(ended, what="the dashboard to end")
        assert child.wait(timeout=20) == 0
        assert result.read_text() == "stop-all ['stop-all']"
        await poll_until(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers),
                         what="the supervised process to be stopped")
    finally:
        for leftover in [*descendants(proc), proc]:
            try:
                leftover.kill()
            except psutil.Error:
                pass
        if master >= 0:
            os.close(master)
