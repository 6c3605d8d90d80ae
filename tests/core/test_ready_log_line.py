"""`ready_log_line` (SPEC §10) against real processes: a run stays `starting` until a line of its stdout
or stderr matches, a startup check must pass too, the wait is bounded by the startup budget, and a
process without the setting pays nothing for it.

The children wait on a FIFO that the test opens when it wants the line written: no test sleeps."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pmtop.core.checks.exec import ExecCheck
from pmtop.core.config.schema import parse_process
from pmtop.core.errors import ConfigError
from pmtop.core.model import FailAction, Health, HealthSpec, ProcessSpec, ProcessState, ProcessStatus, StartupCheck
from pmtop.core.process import readiness
from pmtop.core.process.watch import DEFAULT_READY_WAIT, budget
from pmtop.core.supervisor import Supervisor
from tests.conftest import py, spec
from tests.waiting import poll_until, wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]

#: Waits until the test opens the FIFO (argv[1]) for writing, then writes `argv[2]` to stdout or stderr
#: (argv[3]) in two pieces, and sleeps.
SAYER = """
import sys, time
with open(sys.argv[1]) as fifo:
    fifo.read(1)
stream = sys.stderr if sys.argv[3] == "stderr" else sys.stdout
text = sys.argv[2]
stream.write("noise before\\n" + text[:5]); stream.flush()
stream.write(text[5:] + "\\nnoise after\\n"); stream.flush()
time.sleep(600)
"""


_HELD: list[int] = []


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "go"
    os.mkfifo(path)
    yield path
    while _HELD:
        os.close(_HELD.pop())


def release(path: Path) -> None:
    """Let the child write its line. Opened read-write, the FIFO never blocks the test, and the byte waits
    in it until the child (which may still be starting) opens it and reads; the fixture closes it."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, b"x")
    _HELD.append(fd)


def sayer(name: str, fifo: Path, line: str, stream: str = "stdout", **kw: object) -> ProcessSpec:
    base = spec(name, SAYER, **kw)
    return dataclasses.replace(base, command=(*base.command, str(fifo), line, stream))


def of(name: str, pred: Callable[[ProcessStatus], bool]) -> Callable[[ProcessStatus], bool]:
    return lambda s: s.name == name and pred(s)


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_starting_until_a_line_matches(make_supervisor: Make, fifo: Path, stream: str) -> None:
    web = sayer("web", fifo, "listening on 127.0.0.1:8000", stream, ready_log_line="listening on .*:8000")
    sup = make_supervisor(web)
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.start("web")
        waiting = await wait_for(events, of("web", lambda s: s.pid is not None), what="web spawned", seen=seen)
        assert waiting.state is S.STARTING
        assert waiting.reason == "waiting for log line /listening on .*:8000/"
        assert waiting.health is Health.UNKNOWN
        release(fifo)
        running = await wait_state(events, "web", S.RUNNING, seen=seen)
    assert running.reason == "running" and running.health is Health.HEALTHY, "no check: the line is its health"
    assert running.pid == waiting.pid
    assert [s.state for s in seen[seen.index(waiting):]] == [S.STARTING, S.RUNNING], "one event per change"


async def test_with_a_startup_check_both_must_pass(make_supervisor: Make, fifo: Path, tmp_path: Path) -> None:
    """The line alone is not enough while the startup check fails, nor the check alone without the line."""
    flag = tmp_path / "healthy"
    check = HealthSpec(ExecCheck(py(f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)")),
                       interval=0.1, timeout=10.0, startup=StartupCheck(interval=0.1, max_attempts=10_000))
    sup = make_supervisor(sayer("web", fifo, "ready to serve", ready_log_line="^ready", health=check))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_for(events, of("web", lambda s: "waiting for log line /^ready/; health: exec exit 1" in s.reason),
                       what="waiting for both")
        release(fifo)
        probing = await wait_for(events, of("web", lambda s: s.reason.startswith("health: exec exit 1")),
                                 what="the line seen, the check still failing")
        assert probing.state is S.STARTING
        flag.touch()
        running = await wait_state(events, "web", S.RUNNING)
    assert running.health is Health.HEALTHY and running.reason == "running"


async def test_the_check_passing_first_still_waits_for_the_line(make_supervisor: Make, fifo: Path) -> None:
    check = HealthSpec(ExecCheck(("true",)), interval=60.0, timeout=10.0,
                       startup=StartupCheck(interval=0.1, max_attempts=10_000))
    sup = make_supervisor(sayer("web", fifo, "ready now", ready_log_line="ready", health=check))
    async with sup.subscribe() as events:
        await sup.start("web")
        passed = await wait_for(events, of("web", lambda s: s.reason.endswith("startup check passed")),
                                what="startup check passed, line awaited")
        assert passed.state is S.STARTING and passed.reason == "waiting for log line /ready/; startup check passed"
        release(fifo)
        running = await wait_state(events, "web", S.RUNNING)
    assert running.health is Health.HEALTHY


@pytest.mark.parametrize("action", [FailAction.FAIL, FailAction.DISABLE])
async def test_no_line_within_the_startup_budget_applies_fail_action(make_supervisor: Make, fifo: Path,
                                                                     action: FailAction) -> None:
    check = HealthSpec(ExecCheck(("true",)), interval=60.0, timeout=10.0,
                       startup=StartupCheck(interval=0.1, max_attempts=3, fail_action=action))
    sup = make_supervisor(sayer("web", fifo, "never", ready_log_line="ready", health=check))
    async with sup.subscribe() as events:
        await sup.start("web")
        final = S.FAILED if action is FailAction.FAIL else S.DISABLED
        ended = await wait_state(events, "web", final)
    assert ended.reason == f"no log line matching /ready/ within 0.3s; startup check failed (fail_action = {action})"
    [run] = await sup.history("web")
    assert run.end_reason == "health"


async def test_no_line_in_time_restarts_through_the_policy(make_supervisor: Make, fifo: Path) -> None:
    check = HealthSpec(ExecCheck(("true",)), interval=60.0, timeout=10.0,
                       startup=StartupCheck(interval=0.1, max_attempts=2))
    sup = make_supervisor(sayer("web", fifo, "never", ready_log_line="ready", health=check, backoff=(0.0,)))
    async with sup.subscribe() as events:
        await sup.start("web")
        crashed = await wait_state(events, "web", S.CRASHED)
        assert crashed.reason.startswith("no log line matching /ready/ within 0.2s; stopping it")
        again = await wait_for(events, of("web", lambda s: s.restarts == 1 and s.pid is not None),
                               what="the next run waits for its own line")
    assert again.state is S.STARTING
    assert again.reason == "waiting for log line /ready/; startup check every 0.1s, up to 2 attempts"


async def test_a_dependent_waits_for_the_line(make_supervisor: Make, fifo: Path) -> None:
    from pmtop.core.model import DependencyCondition

    sup = make_supervisor(sayer("db", fifo, "database system is ready", ready_log_line="system is ready"),
                          spec("app", depends_on={"db": DependencyCondition.HEALTHY}))
    async with sup.subscribe() as events:
        await sup.start("app")
        waiting = await wait_for(events, of("app", lambda s: s.reason.startswith("waiting for db")),
                                 what="app waits for db")
        assert waiting.reason == "waiting for db (healthy)"
        release(fifo)
        await wait_state(events, "app", S.RUNNING)


async def test_a_process_without_the_setting_drains_as_before(make_supervisor: Make) -> None:
    """No matcher, and the drain calls the plain output callback: the setting costs others nothing."""
    sup = make_supervisor(spec("plain"))
    async with sup.subscribe() as events:
        await sup.start("plain")
        await wait_state(events, "plain", S.RUNNING)
    runner = sup._runners["plain"]
    assert runner._matcher is None
    run = runner._run
    assert run is not None
    for drain in run.logs._drains.values():
        assert drain._on_data is not None and drain._on_data.func == runner._on_output  # type: ignore[attr-defined]


async def test_after_the_match_the_matcher_lets_go(make_supervisor: Make, fifo: Path) -> None:
    sup = make_supervisor(sayer("web", fifo, "up and running", ready_log_line="up and"))
    async with sup.subscribe() as events:
        await sup.start("web")
        await wait_for(events, of("web", lambda s: s.pid is not None), what="spawned")
        assert sup._runners["web"]._matcher is not None
        release(fifo)
        await wait_state(events, "web", S.RUNNING)
    await poll_until(lambda: sup._runners["web"]._matcher is None, what="the matcher let go")


# -- the matcher and the rules, without processes ----------------------------------------------------

async def test_matcher_joins_pieces_per_stream_and_searches_whole_lines() -> None:
    matcher = readiness.LogLineMatcher("^listening on port \\d+$")
    assert not matcher.feed("stdout", b"starting\nlisten")
    assert not matcher.feed("stderr", b"ing on port 80")  # another stream: its own partial line
    assert not matcher.feed("stdout", b"ing on port 80")
    assert matcher.feed("stdout", b"00\r\nmore\n")  # a CRLF line matches too
    assert matcher.matched.result() == "listening on port 8000"


async def test_matcher_reads_invalid_utf8_without_failing() -> None:
    matcher = readiness.LogLineMatcher("ready")
    assert matcher.feed("stdout", b"\xff\xfe ready \xff\n")


def test_budget_is_the_startup_checks_or_sixty_seconds() -> None:
    plain = spec("p", ready_log_line="x")
    assert budget(plain) == (DEFAULT_READY_WAIT, FailAction.RESTART) and DEFAULT_READY_WAIT == 60.0
    check = HealthSpec(ExecCheck(("true",)), startup=StartupCheck(initial_delay=1.0, interval=0.5, max_attempts=30,
                                                                 fail_action=FailAction.DISABLE))
    assert budget(spec("p", ready_log_line="x", health=check)) == (16.0, FailAction.DISABLE)


def test_an_invalid_regex_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_process("web", {"command": "x", "ready_log_line": "listening on (port"}, base_dir=tmp_path)
    assert caught.value.message == ("process.web.ready_log_line: invalid regular expression \"listening on (port\": "
                                    "missing ), unterminated subpattern at position 13")


async def test_matcher_never_matches_across_lines() -> None:
    """`\\s` matches a newline, but the setting is per line: a hit spanning two lines does not count."""
    matcher = readiness.LogLineMatcher(r"ready\s+now$")
    assert not matcher.feed("stdout", b"ready\nnow\n")
    assert not matcher.feed("stdout", b"not ready\nnow either\r\n")
    assert matcher.feed("stdout", b"ready   now\r\n")
    assert matcher.matched.result() == "ready   now"
