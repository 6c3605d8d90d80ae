"""Slow clients (one byte a second) and 200 idle connections do not stall the daemon or its supervision.

While they hang on, the daemon still answers, and still restarts a killed process. The restart latency
(SIGKILL to the new child's PID, seen from outside) is measured with and without them and printed: a
figure for the report, never a pass/fail threshold (the machine is shared and loaded).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import threading
import time

import httpx
import psutil

from tests.faults.conftest import Home, poll

IDLE = 200
SLOW = 20
RESTARTS = 10


def restart_latencies(home: Home, daemon: psutil.Process) -> list[float]:
    """SIGKILL the worker RESTARTS times; seconds from each kill to its successor's PID appearing."""
    figures = []
    for _ in range(RESTARTS):
        [child] = [c for c in daemon.children() if c.status() != psutil.STATUS_ZOMBIE]
        killed_at = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        deadline = killed_at + 30
        while not (new := [c.pid for c in daemon.children() if c.pid != child.pid]):  # a close look: 1 ms apart
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.001)
        figures.append(time.monotonic() - killed_at)
        poll(lambda: home.processes()["worker"]["pid"] == new[0], "the daemon to report it")
    return figures


def test_slow_and_idle_clients_do_not_stall_supervision(home: Home) -> None:
    home.config('[process.worker]\ncommand = ["sleep", "600"]\nrestart = "always"\nbackoff = ["0s"]\n'
                "max_restarts = 1000000\n")
    info = home.detach()
    daemon = psutil.Process(info["pid"])
    poll(lambda: home.processes()["worker"]["state"] == "running", "running")
    quiet = restart_latencies(home, daemon)

    idle = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(IDLE)]
    slow = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(SLOW)]
    request = f"GET /processes HTTP/1.1\r\nHost: 127.0.0.1:{info['port']}\r\nAuthorization: Bearer {home.token()}\r\n\r\n"
    stop = threading.Event()
    sent = [0]

    def trickle() -> None:
        """One byte a second on each slow connection (the fault's own pace)."""
        for i in range(len(request)):
            for conn in slow:
                try:
                    conn.sendall(request[i].encode())
                except OSError:
                    return
            sent[0] = i + 1
            if stop.wait(1.0):
                return

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        poll(lambda: sent[0] >= 2, "the slow clients under way")
        assert len(daemon.net_connections()) >= IDLE + SLOW, "every connection is held open by the daemon"
        loaded = restart_latencies(home, daemon)
        with httpx.Client(trust_env=False) as client:  # and the API answers everyone else at once
            assert client.get(f"http://127.0.0.1:{info['port']}/alive", timeout=10).text == "OK"
        assert home.api("GET", "/status").status_code == 200
        assert sent[0] < len(request), "the slow clients were still sending throughout"
    finally:
        stop.set()
        trickler.join()
        for conn in idle + slow:
            conn.close()
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms"  # noqa: E731
    print(f"restart latency, quiet: {ms(quiet)}; with {IDLE} idle and {SLOW} one-byte-a-second clients: {ms(loaded)}")
    assert home.api("GET", "/processes").json()["processes"][0]["restarts"] == 2 * RESTARTS
