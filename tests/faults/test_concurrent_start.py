"""Ten `pmtop --headless --detach` at once for one instance: one daemon, nine that say which one runs."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from tests.faults.conftest import Home, poll, processes_of


def test_ten_concurrent_detached_starts_make_one_daemon(home: Home) -> None:
    home.config('[process.sleeper]\ncommand = ["sleep", "600"]\n')
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: home.run("--headless", "--detach", timeout=120), range(10)))
    assert all(r.returncode == 0 for r in results), [r.stdout + r.stderr for r in results if r.returncode]
    info = poll(lambda: home.serving(), "the daemon")
    daemons = [p for p in processes_of(home.root) if "--headless" in p.cmdline()]
    assert [p.pid for p in daemons] == [info["pid"]], "exactly one daemon"
    started = [r.stdout for r in results if "daemon started" in r.stdout]
    assert len(started) == 1 and f"(pid {info['pid']})" in started[0]
    others = [r.stdout for r in results if "daemon started" not in r.stdout]
    assert len(others) == 9 and all(f"already running for instance 'default' at http://127.0.0.1:{home.port} "
                                    f"(pid {info['pid']})" in out for out in others), others
    # No loser removed the winner's files, nor pruned the log it writes.
    assert (home.state_dir() / f"daemon-{home.port}.pid").read_text().strip() == str(info["pid"])
    assert home.info() == info
    logs = [os.readlink(f"/proc/{info['pid']}/fd/{fd}") for fd in os.listdir(f"/proc/{info['pid']}/fd")]
    current = [link for link in logs if "/daemon-" in link and link.endswith(".log")]
    assert current and all(os.path.exists(link) for link in current), current
    [sleeper] = [p for p in processes_of(home.root) if p.cmdline() == ["sleep", "600"]]
    assert home.processes()["sleeper"]["pid"] == sleeper.pid
