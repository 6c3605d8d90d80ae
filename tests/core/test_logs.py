"""Per-run logs: capped and rotated, pruned, tailed from the end, followed live."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from pmtop.core.daemon.logfile import start_daemon_log, stop_daemon_log
from pmtop.core.locations import InstancePaths
from pmtop.core.model import LogSpec, ProcessState, RestartPolicy
from pmtop.core.process import logs
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import poll_until, wait_state

S = ProcessState
Make = Callable[..., Supervisor]

CHATTY = "import sys\nfor i in range(20000):\n    print(f'line {i:05d} ' + 'x' * 40)\n"


async def test_chatty_process_is_capped_and_rotated(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("chatty", CHATTY, policy=RestartPolicy.NO,
                               logs=LogSpec(max_bytes=10_000, backups=2, keep_runs=3)))
    async with sup.subscribe() as events:
        await sup.start("chatty")
        await wait_state(events, "chatty", S.STOPPED)
    runner = sup._runners["chatty"]  # noqa: SLF001
    run_dir = runner.run_dir
    assert run_dir is not None
    await poll_until(lambda: not runner.runs.draining, what="the run's pipes read to their end, its files closed")
    files = sorted(p.name for p in run_dir.iterdir() if ".log" in p.name)
    assert files == ["stderr.log", "stdout.log", "stdout.log.1", "stdout.log.2"]
    assert all((run_dir / f).stat().st_size <= 10_000 for f in files)
    stamps = sorted(p.name for p in run_dir.iterdir() if ".times" in p.name)
    assert stamps == ["stdout.times", "stdout.times.1", "stdout.times.2"], "the time index rotates with its log"
    last = await sup.logs("chatty", lines=2)
    assert last == ["line 19998 " + "x" * 40, "line 19999 " + "x" * 40]


async def test_old_runs_are_pruned(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("short", "print('hi')", policy=RestartPolicy.ALWAYS, backoff=(0.0,),
                               max_restarts=4, logs=LogSpec(keep_runs=2)))
    async with sup.subscribe() as events:
        await sup.start("short")
        await wait_state(events, "short", S.FAILED)
    runs = logs.run_dirs(sup.paths.process_log_dir("short"))
    assert len(runs) == 2
    assert runs[-1] == sup._runners["short"].run_dir
    assert (runs[-1] / "stdout.log").read_text() == "hi\n"


async def test_a_crash_loop_keeps_the_newest_runs(make_supervisor: Make) -> None:
    """Past `keep_runs`, each restart removes the oldest folder (tracked, not listed again), so the
    folders left are exactly the newest runs', the current one last."""
    sup = make_supervisor(spec("loop", "print('hi')", policy=RestartPolicy.ALWAYS, backoff=(0.0,),
                               max_restarts=7, logs=LogSpec(keep_runs=3)))
    runner = sup._runners["loop"]  # noqa: SLF001
    made: list[Path] = []
    async with sup.subscribe() as events:
        await sup.start("loop")
        async with asyncio.timeout(30):
            async for event in events:
                if event.name == "loop" and event.state is S.RUNNING and runner.run_dir not in made:
                    assert runner.run_dir is not None
                    made.append(runner.run_dir)
                if event.name == "loop" and event.state is S.FAILED:
                    break
    assert len(made) == 8, "the first run and seven restarts"
    await poll_until(lambda: logs.run_dirs(sup.paths.process_log_dir("loop")) == made[-3:],
                     what="only the newest three run folders")


async def test_history_keeps_the_last_stderr_lines(make_supervisor: Make) -> None:
    code = "import sys\nfor i in range(30):\n    print('err', i, file=sys.stderr)\nsys.exit(4)\n"
    sup = make_supervisor(spec("noisy", code, policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("noisy")
        await wait_state(events, "noisy", S.FAILED)

    expected = tuple(f"err {i}" for i in range(10, 30))
    await poll_until(lambda: sup._runners["noisy"].history[-1].stderr_tail == expected,
                     what="the stderr tail once the pipe is drained")
    assert (await sup.history("noisy"))[-1].stderr_tail == expected


def test_tail_reads_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        block = b"".join(b"%08d some log text that fills the line up\n" % i for i in range(100_000))
        for _ in range(25):  # ~100 MB
            f.write(block)
    assert path.stat().st_size > 100_000_000
    lines = logs.tail_lines(path, 3)
    assert lines == [f"{i:08d} some log text that fills the line up" for i in (99_997, 99_998, 99_999)]
    assert logs.tail_lines(path, 0) == []


def test_tail_survives_odd_content(tmp_path: Path) -> None:
    path = tmp_path / "odd.log"
    path.write_bytes(b"first\nnot utf-8: \xff\xfe\r\nno newline at the end")
    assert logs.tail_lines(path, 5) == ["first", "not utf-8: \ufffd\ufffd", "no newline at the end"]
    huge = tmp_path / "huge.log"
    huge.write_bytes(b"a" * 10_000_000)
    [line] = logs.tail_lines(huge, 10)
    assert line.startswith("…") and line.endswith("…") and len(line) <= logs.MAX_LINE + 2
    assert logs.tail_lines(tmp_path / "missing.log", 5) == []
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert logs.tail_lines(empty, 5) == []


def test_a_restarts_folder_is_named_before_its_exec_and_made_after(tmp_path: Path) -> None:
    """On the restart path the next run's folder is only named (from the previous one: no look at the
    disk); `make_run_dir` makes it after the exec. A first run's folder is made at once."""
    process_dir = tmp_path / "web"
    first = logs.next_run_dir(process_dir, now=1_000_000.0)
    assert first.is_dir(), "a first run looks at the disk and makes its folder"
    same_second = logs.next_run_dir(process_dir, previous=first, now=1_000_000.5)
    later = logs.next_run_dir(process_dir, previous=same_second, now=1_000_002.0)
    assert same_second.name == f"{first.name}-2" and not same_second.exists()
    assert later.name > same_second.name
    assert "-" not in later.name.partition("_")[2] and not later.exists()
    logs.make_run_dir(same_second)
    logs.make_run_dir(same_second)  # made already: nothing happens
    assert same_second.is_dir()
    assert [p.name for p in logs.run_dirs(process_dir)] == [first.name, same_second.name]


async def test_a_chatty_process_gets_a_bigger_pipe(tmp_path: Path) -> None:
    """Output that piles up in the 64 KiB pipe (a read of over 32 KiB) grows the pipe to `BIG_PIPE`,
    once; a quiet writer's pipe stays as it is. Either way every byte reaches the file in order."""
    loop = asyncio.get_running_loop()
    sizes = {}
    for name, chunks in (("quiet", [b"one line\n"] * 3), ("chatty", [b"x" * 50_000 + b"\n", b"y" * 10 + b"\n"])):
        read_fd, write_fd = os.pipe()
        sink = logs.RotatingFile(tmp_path / f"{name}.log", 10_000_000, 0)
        drain = logs.PipeDrain(read_fd, sink, loop)
        for chunk in chunks:
            os.write(write_fd, chunk)
        path, expected = tmp_path / f"{name}.log", b"".join(chunks)

        def on_disk(path: Path = path, expected: bytes = expected) -> bool:
            return path.read_bytes() == expected

        await poll_until(on_disk, what=f"{name}'s output on disk")
        sizes[name] = fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ)
        os.close(write_fd)
        await asyncio.wait_for(drain.closed, 10)
    assert sizes["quiet"] < logs.BIG_PIPE
    assert sizes["chatty"] == logs.BIG_PIPE


def test_rotating_file_without_backups_truncates(tmp_path: Path) -> None:
    sink = logs.RotatingFile(tmp_path / "out.log", max_bytes=100, backups=0)
    for _ in range(10):
        sink.write(b"x" * 45 + b"\n")
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.log"]
    assert (tmp_path / "out.log").stat().st_size <= 100


async def test_follow_streams_across_rotation_and_restarts(make_supervisor: Make) -> None:
    code = (
        "import sys, time\n"
        "for i in range(400):\n"
        "    print(f'n={i:04d} ' + 'y' * 30, flush=True)\n"
        "    if i % 100 == 99: time.sleep(0.05)\n"
        "sys.exit(1)\n"
    )
    sup = make_supervisor(spec("ticker", code, backoff=(0.0,), max_restarts=1,
                               logs=LogSpec(max_bytes=2_000, backups=1)))
    received: list[str] = []
    async with sup.follow("ticker") as lines:
        await sup.start("ticker")
        async with asyncio.timeout(30):
            async for line in lines:
                received.append(line)
                if len(received) == 800:
                    break
    numbers = [int(line[2:6]) for line in received]
    assert numbers == list(range(400)) * 2, "every line of both runs, in order, none lost"


async def test_follow_starts_with_the_tail(make_supervisor: Make) -> None:
    sup = make_supervisor(spec("done", "print('a'); print('b'); print('c')", policy=RestartPolicy.NO))
    async with sup.subscribe() as events:
        await sup.start("done")
        await wait_state(events, "done", S.STOPPED)
    await poll_until(lambda: logs.tail_lines(sup._runners["done"].run_dir / "stdout.log", 3) == ["a", "b", "c"],
                     what="output on disk")
    async with sup.follow("done", lines=2) as lines:
        assert [await anext(lines), await anext(lines)] == ["b", "c"]


def test_slow_follower_is_told_what_it_missed() -> None:
    follower = logs.LogFollower([], max_pending=3)
    follower.push([str(i) for i in range(10)])

    async def drain() -> list[str]:
        follower.close()
        return [line async for line in follower]

    assert asyncio.run(drain()) == ["… 7 lines skipped", "7", "8", "9"]


async def test_daemon_log_records_every_change(make_supervisor: Make, paths: InstancePaths) -> None:
    path, handler = start_daemon_log(paths)
    try:
        sup = make_supervisor(spec("job", "import sys; sys.exit(3)", policy=RestartPolicy.NO))
        async with sup.subscribe() as events:
            await sup.start("job")
            await wait_state(events, "job", S.FAILED)
    finally:
        stop_daemon_log(handler)
    text = path.read_text()
    assert path.name.startswith("daemon-") and path.parent == paths.log_dir
    for needle in ("job: stopped -> starting", "job: running -> crashed (exit 3 after",
                   "job: crashed -> failed (exit 3 after", "restart = no"):
        assert needle in text
