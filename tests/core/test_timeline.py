"""When each line was written: the index beside the log files, reading backwards, the merged view."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtop.core.errors import NoSuchProcess, UsageError
from pmtop.core.model import LogLine, LogSpec, ProcessState, RestartPolicy
from pmtop.core.process import timeline
from pmtop.core.process.logs import RotatingFile
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import poll_until, wait_state

S = ProcessState
Make = Callable[..., Supervisor]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000).map(lambda b: b.replace(b"\r", b"")))
def test_lines_backward_gives_every_line_with_its_offset(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("lines") / "f.log"
    path.write_bytes(data)
    timeline_read = timeline.READ_CHUNK
    try:
        timeline.READ_CHUNK = 7  # small chunks: lines cross chunk boundaries all the time
        got = list(timeline.lines_backward(path, [10**9]))
    finally:
        timeline.READ_CHUNK = timeline_read
    expected_lines = data.split(b"\n")
    if expected_lines and expected_lines[-1] == b"":
        expected_lines.pop()
    offsets, position = [], 0
    for line in expected_lines:
        offsets.append(position)
        position += len(line) + 1
    assert list(reversed(got)) == list(zip(offsets, expected_lines, strict=True))


def test_the_index_stamps_writes_and_rotates_with_its_file(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    index = timeline.TimeIndex(timeline.index_path(log))
    sink = RotatingFile(log, max_bytes=30, backups=2, times=index)
    sink.write(b"first line\n")
    sink.write(b"second\nthird line here\n")  # 11 + 23 bytes: full after "second", a line's end
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.log", "stdout.log.1", "stdout.times",
                                                         "stdout.times.1"]
    lines = list(timeline.source_lines("p", "stdout", [tmp_path], since=None, accept=lambda _: True))
    assert [line.text for line in reversed(lines)] == ["first line", "second", "third line here"]
    times = [line.time for line in reversed(lines)]
    assert times == sorted(times) and all(t > 1e9 for t in times)


def test_index_paths() -> None:
    assert timeline.index_path(Path("/r/stdout.log")) == Path("/r/stdout.times")
    assert timeline.index_path(Path("/r/stderr.log.3")) == Path("/r/stderr.times.3")


def test_merging_sources_keeps_the_newest_lines_in_time_order() -> None:
    a = iter([LogLine(5.0, "a", "stdout", "a3"), LogLine(3.0, "a", "stdout", "a2"), LogLine(1.0, "a", "stdout", "a1")])
    b = iter([LogLine(4.0, "b", "stdout", "b2"), LogLine(2.0, "b", "stdout", "b1")])
    assert [line.text for line in timeline.merged([a, b], 4)] == ["b1", "a2", "b2", "a3"]


PINGPONG = """
import fcntl, os, struct, sys, termios, time
me, other = sys.argv[1], sys.argv[2]
turn = 0 if me == "ping" else 1

def unread():  # bytes in our stdout pipe that pmtop has not read yet
    return struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD, b"    "))[0]

for i in range(6):
    while not os.path.exists(f"{me}.{i}"):
        time.sleep(0.005)
    print(f"{me} {i}", flush=True)
    while unread():  # pmtop has read (and time-stamped) the line before the other one writes
        time.sleep(0.001)
    open(f"{other}.{i + turn}", "w").close()
"""


async def test_two_processes_merge_in_the_order_they_wrote(make_supervisor: Make, tmp_path: Path) -> None:
    """ping and pong take turns (each writes once pmtop has read the other's line), so the true order is
    known: on a loaded machine two lines read in one turn of the event loop would be in no known order."""
    (tmp_path / "ping.0").touch()
    argv = (sys.executable, "-c", PINGPONG)
    ping = spec("ping", cwd=str(tmp_path), policy=RestartPolicy.NO)
    pong = spec("pong", cwd=str(tmp_path), policy=RestartPolicy.NO)
    ping = ping.__class__(**{**_fields(ping), "command": (*argv, "ping", "pong")})
    pong = pong.__class__(**{**_fields(pong), "command": (*argv, "pong", "ping")})
    sup = make_supervisor(ping, pong)
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "pong", S.STOPPED)
    lines = await sup.merged_logs()
    assert [line.text for line in lines] == [f"{who} {i}" for i in range(6) for who in ("ping", "pong")], \
        [(line.text, f"{line.time:.6f}") for line in lines]
    assert [line.name for line in lines[:2]] == ["ping", "pong"]
    assert all(line.stream == "stdout" for line in lines)
    assert [line.text for line in await sup.merged_logs(lines=3)] == ["pong 4", "ping 5", "pong 5"]
    assert [line.text for line in await sup.merged_logs(["pong"], grep=r"[0-2]$")] == ["pong 0", "pong 1", "pong 2"]
    since = lines[6].time
    assert [line.text for line in await sup.merged_logs(since=since)] == [line.text for line in lines[6:]]


def _fields(obj: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


async def test_the_merged_view_spans_earlier_runs_and_both_streams(make_supervisor: Make) -> None:
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True); sys.exit(1)"
    sup = make_supervisor(spec("flaky", code, backoff=(0.05,), max_restarts=2, logs=LogSpec(keep_runs=5)))
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "flaky", S.FAILED)
    lines = await sup.merged_logs(lines=100)
    assert [(line.stream, line.text) for line in lines] == [("stdout", "out"), ("stderr", "err")] * 3 or \
        sorted((line.stream, line.text) for line in lines) == sorted([("stdout", "out"), ("stderr", "err")] * 3)
    assert len({line.time for line in lines}) >= 3, "three runs, three moments"


async def test_follow_merged_gets_new_lines_with_names(make_supervisor: Make, tmp_path: Path) -> None:
    go = tmp_path / "go"
    talker = f"import os, time\nprint('before', flush=True)\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n" \
             "print('after', flush=True)\ntime.sleep(600)"
    sup = make_supervisor(spec("talker", talker), spec("quiet"))
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "talker", S.RUNNING)
    await poll_until(lambda: sup._tail("talker", "stdout", 1) == ["before"], what="the first line on disk")
    async with sup.follow_merged(lines=5) as follower:
        first = await asyncio.wait_for(anext(follower), 10)
        assert (first.name, first.text) == ("talker", "before")
        go.touch()
        second = await asyncio.wait_for(anext(follower), 10)
    assert (second.name, second.stream, second.text) == ("talker", "stdout", "after"), (first, second)
    assert second.time >= first.time


async def test_merged_view_refusals(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("a"))
    with pytest.raises(NoSuchProcess):
        await sup.merged_logs(["nope"])
    with pytest.raises(UsageError, match="invalid --grep pattern"):
        await sup.merged_logs(grep="(")


async def test_a_follower_that_starts_in_the_middle_of_a_line_gets_it_whole(make_supervisor: Make,
                                                                           tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = ("import os, sys, time\nsys.stdout.write('first half, '); sys.stdout.flush()\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "print('second half', flush=True)\ntime.sleep(600)")
    sup = make_supervisor(spec("halves", code))
    await sup.boot()
    await poll_until(lambda: sup._tail("halves", "stdout", 1) == ["first half, "], what="half a line on disk")
    async with sup.follow_merged(lines=5) as merged, sup.follow("halves", lines=5) as single:
        go.touch()
        whole = await asyncio.wait_for(anext(merged), 10)
        alone = await asyncio.wait_for(anext(single), 10)
    assert whole.text == "first half, second half" and alone == "first half, second half"
