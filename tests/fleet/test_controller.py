"""`FleetController` over three real daemons: one merged stream, actions routed by host, a daemon killed
and restarted while the others keep working, a wrong token refused (and healed by fixing the file)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from pmtop.core.api.fleet import FleetController
from pmtop.core.errors import ActionRefused, DaemonUnavailable, NoSuchProcess
from pmtop.core.model import HostLink, LinkState, LogLine, ProcessEvent, ProcessRemoved, ProcessSpec, ProcessState, ProcessStatus
from tests.fleet.conftest import Fleet
from tests.waiting import DEFAULT_TIMEOUT, POLL_INTERVAL

ALL = ["alpha/web", "alpha/api", "beta/web", "beta/worker", "gamma/web", "gamma/db"]


async def until_links(links: AsyncIterator[list[HostLink]], check: Callable[[dict[str, HostLink]], bool], what: str,
                      timeout: float = DEFAULT_TIMEOUT) -> dict[str, HostLink]:
    last: dict[str, HostLink] = {}
    try:
        async with asyncio.timeout(timeout):
            async for update in links:
                last = {link.host: link for link in update}
                if check(last):
                    return last
    except TimeoutError:
        pass
    raise AssertionError(f"timed out waiting for {what}; links: {[(h, l.state, l.detail) for h, l in last.items()]}")


def states(*wanted: LinkState) -> Callable[[dict[str, HostLink]], bool]:
    return lambda links: [link.state for link in links.values()] == list(wanted)


class Seen:
    """Every status the merged stream delivered, newest per name."""

    def __init__(self) -> None:
        self.latest: dict[str, ProcessStatus] = {}

    async def until(self, events: AsyncIterator[ProcessEvent], check: Callable[[dict[str, ProcessStatus]], bool],
                    what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if check(self.latest):
            return
        try:
            async with asyncio.timeout(timeout):
                async for event in events:
                    if isinstance(event, ProcessRemoved):
                        self.latest.pop(event.name, None)
                    else:
                        self.latest[event.name] = event
                    if check(self.latest):
                        return
        except TimeoutError:
            pass
        shown = {n: str(s.state) for n, s in self.latest.items()}
        raise AssertionError(f"timed out waiting for {what}; saw {shown}")


def running(*names: str) -> Callable[[dict[str, ProcessStatus]], bool]:
    return lambda seen: all(n in seen and seen[n].state is ProcessState.RUNNING for n in names)


async def test_one_stream_names_by_host_and_routes_every_action(fleet: Fleet) -> None:
    async with FleetController(fleet.daemons()) as ctl:
        seen = Seen()
        async with ctl.watch_links() as links, ctl.subscribe(facts=True) as events:
            await until_links(links, states(LinkState.UP, LinkState.UP, LinkState.UP), "all three up")
            await seen.until(events, running(*ALL), "every process of every host")
            assert sorted(seen.latest) == sorted(ALL)
            assert {s.host for s in seen.latest.values()} == {"alpha", "beta", "gamma"}
            assert seen.latest["beta/worker"].local_name == "worker"
            assert [link.info.instance for link in ctl.links() if link.info] == ["default"] * 3
            assert sorted(s.name for s in await ctl.processes()) == sorted(ALL)

            stopped = await ctl.stop("beta/web")
            assert (stopped.name, stopped.host, stopped.state) == ("beta/web", "beta", ProcessState.STOPPED)
            assert fleet["beta"].daemon.processes()["web"]["state"] == "stopped", "beta's own API says so"
            assert fleet["alpha"].daemon.processes()["web"]["state"] == "running"
            assert fleet["gamma"].daemon.processes()["web"]["state"] == "running"
            await seen.until(events, lambda s: s["beta/web"].state is ProcessState.STOPPED, "beta/web stopped")

            both = await ctl.stop_many(["alpha/api", "gamma/db"])
            assert sorted((s.name, s.state) for s in both) == [("alpha/api", ProcessState.STOPPED),
                                                               ("gamma/db", ProcessState.STOPPED)]
            assert fleet["alpha"].daemon.processes()["api"]["state"] == "stopped"
            assert fleet["gamma"].daemon.processes()["db"]["state"] == "stopped"
            assert fleet["beta"].daemon.processes()["worker"]["state"] == "running"
            await ctl.start("alpha/api")
            assert fleet["alpha"].daemon.processes()["api"]["state"] == "running"

            code = "import time; print('hello from gamma', flush=True); time.sleep(600)"
            added = await ctl.add(ProcessSpec("gamma/cron", (sys.executable, "-c", code), cwd="/"), start=True)
            assert (added.name, added.host) == ("gamma/cron", "gamma")
            assert "cron" in fleet["gamma"].daemon.processes() and "cron" not in fleet["alpha"].daemon.processes()
            await seen.until(events, running("gamma/cron"), "the added process, through the stream")
            assert (await ctl.spec("gamma/cron")).name == "cron", "a spec is its own daemon's"
            async with ctl.follow("gamma/cron", lines=10) as lines:
                async with asyncio.timeout(DEFAULT_TIMEOUT):
                    assert await anext(lines) == "hello from gamma", "its output, from gamma's daemon"
            assert await ctl.logs("gamma/cron") == ["hello from gamma"]
            assert await ctl.history("gamma/cron") == []

            # The merged log view across hosts: each daemon's lines, named by host, in time order.
            code = "import time; print('hello from alpha', flush=True); time.sleep(600)"
            await ctl.add(ProcessSpec("alpha/echo", (sys.executable, "-c", code), cwd="/"), start=True)
            merged: list[LogLine] = []

            async def both_hosts_logged() -> bool:
                merged[:] = await ctl.merged_logs()
                return {"alpha/echo", "gamma/cron"} <= {line.name for line in merged}

            async with asyncio.timeout(DEFAULT_TIMEOUT):
                while not await both_hosts_logged():
                    await asyncio.sleep(POLL_INTERVAL)
            texts = {line.name: line.text for line in merged}
            assert texts["alpha/echo"] == "hello from alpha" and texts["gamma/cron"] == "hello from gamma"
            assert [line.time for line in merged] == sorted(line.time for line in merged)
            only = await ctl.merged_logs(["alpha/echo"])
            assert [(line.name, line.text) for line in only] == [("alpha/echo", "hello from alpha")]
            async with ctl.follow_merged(["gamma/cron", "alpha/echo"], lines=10) as followed:
                async with asyncio.timeout(DEFAULT_TIMEOUT):
                    first_two = {(line.name, line.text) for line in [await anext(followed), await anext(followed)]}
            assert first_two == {("alpha/echo", "hello from alpha"), ("gamma/cron", "hello from gamma")}
            await ctl.remove("alpha/echo")
            await ctl.remove("gamma/cron")
            await seen.until(events, lambda s: "gamma/cron" not in s, "its removal, through the stream")

            with pytest.raises(NoSuchProcess) as missing:
                await ctl.start("beta/api")  # api lives on alpha only
            assert missing.value.name == "beta/api"
            for bad in ("web", "delta/web", "alpha/"):
                with pytest.raises(NoSuchProcess):
                    await ctl.stop(bad)
            with pytest.raises(ActionRefused, match="HOST/cron"):
                await ctl.add(ProcessSpec("cron", ("sleep", "600")))


async def test_a_killed_daemon_is_reconnected_while_the_others_keep_working(fleet: Fleet) -> None:
    async with FleetController(fleet.daemons()) as ctl:
        seen = Seen()
        async with ctl.watch_links() as links, ctl.subscribe(facts=True) as events:
            await until_links(links, states(LinkState.UP, LinkState.UP, LinkState.UP), "all three up")
            await seen.until(events, running(*ALL), "every process")

            fleet.kill("gamma")
            lost = await until_links(links, lambda l: l["gamma"].state is LinkState.RECONNECTING, "gamma lost")
            assert lost["alpha"].up and lost["beta"].up
            assert lost["gamma"].detail and lost["gamma"].attempt >= 1
            # gamma's processes stay as last seen (the dashboard greys them); the others act at once.
            assert {n for n, s in seen.latest.items() if s.host == "gamma"} == {"gamma/web", "gamma/db"}
            assert {s.name for s in await ctl.processes() if s.host == "gamma"} == {"gamma/web", "gamma/db"}
            await ctl.stop("alpha/web")
            await seen.until(events, lambda s: s["alpha/web"].state is ProcessState.STOPPED, "alpha/web stopped")
            with pytest.raises(DaemonUnavailable):
                await ctl.stop("gamma/db")

            # While it is away, its db is removed behind the fleet's back (by the restarted daemon).
            fleet.restart("gamma")
            fleet["gamma"].daemon.wait_state("db", "running")
            assert fleet["gamma"].daemon.api("DELETE", "/processes/db").status_code == 200
            back = await until_links(links, lambda l: l["gamma"].state is LinkState.UP, "gamma back", timeout=30)
            assert back["gamma"].attempt == 0 and back["gamma"].detail == ""
            await seen.until(events, lambda s: "gamma/db" not in s and running("gamma/web")(s),
                             "gamma's fresh snapshot: db gone, web adopted and running")
            await ctl.stop("gamma/web")
            assert fleet["gamma"].daemon.processes()["web"]["state"] == "stopped"


async def test_a_wrong_token_is_refused_and_a_fixed_token_file_heals_it(fleet: Fleet) -> None:
    wrong = fleet.config_dir / "beta.token"
    fleet.config_dir.mkdir(parents=True, exist_ok=True)
    wrong.write_text("not-the-token\n")
    async with FleetController(fleet.daemons(beta=wrong)) as ctl:
        seen = Seen()
        async with ctl.watch_links() as links, ctl.subscribe() as events:
            refused = await until_links(links, lambda l: l["beta"].state is LinkState.REFUSED
                                        and l["alpha"].up and l["gamma"].up, "beta refused, the others up")
            assert refused["beta"].detail == "wrong token"
            await seen.until(events, running("alpha/web", "gamma/web"), "the others' processes")
            assert not any(s.host == "beta" for s in seen.latest.values())
            wrong.write_text(fleet["beta"].token_file.read_text())
            await until_links(links, lambda l: l["beta"].up, "beta up once its token file is right", timeout=30)
            await seen.until(events, running("beta/worker"), "beta's processes")


async def test_an_unreadable_token_file_is_that_daemons_problem_only(fleet: Fleet) -> None:
    missing = fleet.config_dir / "nope.token"
    async with FleetController(fleet.daemons(alpha=missing)) as ctl, ctl.watch_links() as links, ctl.subscribe():
        got = await until_links(links, lambda l: l["alpha"].state is LinkState.REFUSED and l["beta"].up,
                                "alpha refused")
        assert "cannot read the token file" in got["alpha"].detail and "nope.token" in got["alpha"].detail
