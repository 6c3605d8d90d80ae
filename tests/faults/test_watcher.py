"""SPEC §9: the watcher and the default instance restart each other; nothing managed is lost or doubled.

Every daemon here is real (`pmtop --headless --detach`, `pmtop watcher`), on free loopback ports, in
the test's own PMTOP_HOME; the watch runs fast (`PMTOP_WATCH_TIMING`), the rules are the product's.
"""

from __future__ import annotations

import os
import signal
import time

from pmtop.core.daemon.peer import lock_holder
from tests.faults.conftest import Home, hard_kill, kill_everything_of, pid_alive, poll, processes_of

TICKER = '["python3", "-c", "import time\\nwhile True:\\n    print(\'tick\', flush=True)\\n    time.sleep(0.05)"]'
CONFIG = f"""
[process.sleeper]
command = ["sleep", "600"]
[process.ticker]
command = {TICKER}
"""


def paired(home: Home) -> tuple[int, int]:
    """Default and watcher up, each seeing the other up; their PIDs."""
    poll(lambda: home.partner("watcher").get("state") == "up", "the watcher to see the default up")
    poll(lambda: home.partner().get("state") == "up", "the default to see the watcher up")
    default, watcher = home.info(), home.info("watcher")
    assert default is not None and watcher is not None
    return default["pid"], watcher["pid"]


def managed(home: Home) -> dict[str, int]:
    statuses = home.processes()
    assert all(s["state"] == "running" for s in statuses.values()), statuses
    return {name: s["pid"] for name, s in statuses.items()}


def copies_of(home: Home, cmdline_word: str) -> list[int]:
    return [p.pid for p in processes_of(home.root) if cmdline_word in " ".join(p.cmdline())]


def test_each_restarts_the_other_after_sigkill_keeping_every_pid(home: Home) -> None:
    home.config(CONFIG)
    home.detach()
    home.watcher()
    default_pid, watcher_pid = paired(home)
    poll(lambda: all(s["state"] == "running" for s in home.processes().values()), "both processes running")
    pids = managed(home)

    killed_at = time.monotonic()
    hard_kill(default_pid)
    back = poll(lambda: (i := home.serving()) and i["pid"] != default_pid and i, "a new default daemon")
    took = time.monotonic() - killed_at
    partner = poll(lambda: (p := home.partner("watcher")) and p["state"] == "up" and p, "the watcher to see it up")
    assert partner["restarts"] == 1 and partner["pid"] == back["pid"]
    assert "died without cleaning up" in home.daemon_logs("watcher")
    statuses = home.processes()
    assert {n: s["pid"] for n, s in statuses.items()} == pids, "adopted, not started again"
    assert all("adopted" in s["reason"] for s in statuses.values())
    assert len(copies_of(home, "sleep 600")) == 1
    print(f"default restarted by the watcher {took:.2f}s after SIGKILL")

    killed_at = time.monotonic()
    hard_kill(watcher_pid)
    new_watcher = poll(lambda: (i := home.serving("watcher")) and i["pid"] != watcher_pid and i, "a new watcher")
    took = time.monotonic() - killed_at
    partner = poll(lambda: (p := home.partner()) and p["state"] == "up" and p["pid"] == new_watcher["pid"] and p,
                   "the default to see the new watcher up")
    assert partner["restarts"] == 1
    assert new_watcher["port"] == home.watcher_port, "same address, so the pair finds it again"
    poll(lambda: home.partner("watcher").get("state") == "up", "the new watcher to watch the default")
    assert managed(home) == pids
    assert len([p for p in processes_of(home.root) if "watcher" in p.cmdline() and "--detach" not in p.cmdline()]) == 1
    print(f"watcher restarted by the default {took:.2f}s after SIGKILL")


def test_a_watcher_started_first_starts_the_default(home: Home) -> None:
    home.config(CONFIG)
    home.watcher()
    default = poll(lambda: home.serving(), "the watcher to start the default instance")
    assert default["port"] == home.port and default["config"] == str(home.project / "pmtop.toml")
    paired(home)
    assert home.partner("watcher")["restarts"] == 1
    assert set(home.processes()) == {"sleeper", "ticker"}


def test_a_deliberate_stop_is_not_undone(home: Home) -> None:
    """`pmtop shutdown` of either one is respected: the other says `stopped` and starts nothing."""
    home.config(CONFIG)
    home.detach()
    home.watcher()
    default_pid, watcher_pid = paired(home)
    checks = home.partner("watcher")["checks"]
    home.run("shutdown", check=True)
    poll(lambda: home.partner("watcher").get("state") == "stopped", "the watcher to say stopped")
    poll(lambda: home.partner("watcher")["checks"] > checks + 4, "the watcher to look a few more times")
    assert home.info() is None and not [p for p in processes_of(home.root) if "--headless" in p.cmdline()]

    home.detach()  # started again by hand: watched again
    poll(lambda: home.partner("watcher").get("state") == "up", "the watcher to see it again")
    poll(lambda: home.partner().get("state") == "up", "the default to see the watcher again")
    home.run("shutdown", "--instance", "watcher", "--port", str(home.watcher_port), check=True)
    partner = poll(lambda: (p := home.partner()) and p["state"] == "none" and p, "the watcher to withdraw")
    assert "no watcher" in partner["reason"]
    assert not pid_alive(watcher_pid) and home.info("watcher") is None


def test_standalone_mode_stops_all_of_it(home: Home) -> None:
    home.config(CONFIG)
    home.detach()
    home.watcher()
    default_pid, watcher_pid = paired(home)
    assert home.api("PUT", "/config/standalone-mode", json={"enabled": True}).status_code == 200
    poll(lambda: home.partner().get("state") == "standalone", "the default to go standalone")
    before = {p.pid for p in processes_of(home.root)} - {watcher_pid}
    hard_kill(watcher_pid)
    status = home.api("GET", "/status").json()
    assert status["partner"]["state"] == "standalone"
    hard_kill(default_pid)  # and a watcher (started again by hand) does not restart a standalone instance
    watcher = home.watcher()
    poll(lambda: "standalone" in home.partner("watcher").get("reason", ""), "the watcher to see standalone mode")
    checks = home.partner("watcher")["checks"]
    poll(lambda: home.partner("watcher")["checks"] > checks + 4, "the watcher to look a few more times")
    assert home.serving() is None, "a standalone instance is not restarted"
    assert home.partner("watcher")["restarts"] == 0
    assert {p.pid for p in processes_of(home.root)} - before == {watcher.pid}, "nobody started anything"


def test_a_partner_named_through_the_api_never_starts_anything(home: Home) -> None:
    """Anyone with the token can name a partner: only this instance's own watcher, seen alive on a
    loopback address, is ever restarted, and only with pmtop's own command."""
    home.config(CONFIG)
    home.detach()
    stranger_project = home.root.parent / "stranger-project"
    stranger_project.mkdir()
    stranger_home = Home(home.root.parent / "stranger", stranger_project)
    stranger_home.config("")
    # A real pmtop watcher (of another home, so not this instance's) where ours would be.
    stranger = stranger_home.spawn("watcher", "--port", str(home.watcher_port))
    try:
        poll(lambda: stranger_home.info("watcher"), "a real pmtop watcher of another home")
        cases = [
            {"host": "127.0.0.1", "port": 1, "instance": "default"},  # itself
            {"host": "10.1.2.3", "port": 19882, "instance": "watcher"},  # not this machine
            {"host": "127.0.0.1", "port": home.watcher_port, "instance": "nobody-watcher"},  # not its watcher
            {"host": "127.0.0.1", "port": home.watcher_port, "instance": "watcher"},  # alive, but not ours
        ]
        for partner in cases:
            body = {"enabled": True, "partner": partner}
            assert home.api("PUT", "/config/partner-discovery", json=body).status_code == 200
            if home.partner().get("state") == "waiting":  # watched: let it look a few times
                more = home.partner().get("checks", 0) + 2
                poll(lambda: home.partner().get("checks", 0) > more, "a few checks")  # noqa: B023 (used at once)
            assert home.partner()["state"] in ("waiting", "none"), home.partner()
        hard_kill(stranger.pid)
        checks = home.partner()["checks"]
        poll(lambda: home.partner()["checks"] > checks + 6, "a few checks after the stranger died")
        assert home.partner()["restarts"] == 0
        mine = [p for p in processes_of(home.root) if "--headless" not in p.cmdline()
                and p.pid not in managed(home).values()]
        assert not mine, f"something was started: {[p.cmdline() for p in mine]}"
    finally:
        stranger.kill()
        stranger.wait()
        kill_everything_of(stranger_home.root)


def test_sigstop_is_waited_for_and_the_output_drained_not_lost(home: Home) -> None:
    """SIGSTOP of the default while a child writes 1 MB: the watcher waits (the frozen supervisor still
    holds the instance lock); after SIGCONT every line is in the log, once, in order; nothing doubled."""
    go = home.project / "go"
    flood = (f'["python3", "-c", "import os, time\\nwhile not os.path.exists(\'{go}\'): time.sleep(0.01)\\n'
             f'for i in range(16384): print(f\'{{i:08d}}\' + \'x\' * 55, flush=False)\\nprint(\'done\', flush=True)\\n'
             f'time.sleep(600)"]')
    home.config(f"[process.flood]\ncommand = {flood}\n")
    home.extra_env["PMTOP_WATCH_TIMING"] = "0.25,2,1.5"  # paused sooner (each silent check costs its timeout)
    home.detach()
    home.watcher()
    default_pid, _ = paired(home)
    flood_pid = home.processes()["flood"]["pid"]
    lock = home.state_dir() / "instance.lock"
    assert lock_holder(lock) == default_pid
    os.kill(default_pid, signal.SIGSTOP)
    try:
        go.touch()
        poll(lambda: home.partner("watcher").get("state") == "paused", "the watcher to see it paused")
        checks = home.partner("watcher")["checks"]
        poll(lambda: home.partner("watcher")["checks"] > checks + 2, "the watcher to keep looking (and waiting)")
        watcher_said = home.partner("watcher")
        assert watcher_said["state"] == "paused" and watcher_said["restarts"] == 0
        assert f"pid {default_pid} is stopped" in watcher_said["reason"]
        assert lock_holder(lock) == default_pid and (home.info() or {}).get("pid") == default_pid
        assert [p.pid for p in processes_of(home.root) if "--headless" in p.cmdline()] == [default_pid]
    finally:
        os.kill(default_pid, signal.SIGCONT)
    poll(lambda: home.partner("watcher").get("state") == "up", "the watcher to see it answer again")
    log = next((home.log_dir() / "flood").iterdir()) / "stdout.log"
    poll(lambda: log.exists() and log.read_bytes().endswith(b"done\n"), "the whole megabyte in the log")
    lines = log.read_text().splitlines()
    assert lines[-1] == "done" and lines[:-1] == [f"{i:08d}" + "x" * 55 for i in range(16384)], "drained, not lost"
    assert home.processes()["flood"]["pid"] == flood_pid and len(copies_of(home, "range(16384)")) == 1
    assert home.daemon_logs("watcher").count("is stopped (SIGSTOP") == 1, "said once"


HANGABLE = """
import os, sys, time
from pmtop.core.api import server

alive = server.HANDLERS["alive"]
trigger = os.environ["HANG_TRIGGER"]


async def hanging_alive(request):
    if os.path.exists(trigger):
        time.sleep(3600)  # the whole event loop stops here: a hung supervisor
    return await alive(request)


server.HANDLERS["alive"] = hanging_alive
from pmtop.cli.main import main
sys.exit(main())
"""


def test_a_hung_supervisor_holding_the_lock_is_killed_and_replaced(home: Home) -> None:
    """Running but not answering (not stopped): the watcher kills it, verified as the lock holder,
    and starts another, which adopts every process."""
    trigger = home.project / "hang"
    home.config(CONFIG)
    home.extra_env["HANG_TRIGGER"] = str(trigger)
    home.extra_env["PMTOP_WATCH_TIMING"] = "0.25,2,1.5"
    hung = home.spawn_python(HANGABLE, "--headless")
    poll(lambda: home.serving(), "the hangable daemon")
    home.watcher()
    default_pid, _ = paired(home)
    assert default_pid == hung.pid
    pids = managed(home)
    trigger.touch()
    back = poll(lambda: (i := home.serving()) and i["pid"] != default_pid and i, "a new default daemon", timeout=60)
    assert hung.wait(timeout=10) == -signal.SIGKILL
    partner = poll(lambda: (p := home.partner("watcher")) and p["state"] == "up" and p, "the watcher to see it up")
    assert partner["restarts"] == 1 and partner["pid"] == back["pid"]
    assert "held the instance lock but served nothing" in home.daemon_logs("watcher") or \
        "killing it" in home.daemon_logs("watcher")
    assert managed(home) == pids, "adopted, not started again"
