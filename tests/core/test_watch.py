"""`watch` against real files and processes: globs, one restart per burst, ignore, cascade."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pmtop.core.model import DependencyCondition, ProcessState, ProcessStatus, WatchSpec
from pmtop.core.process.watchset import compile_rule, glob_to_regex, minimal_roots
from pmtop.core.supervisor import Supervisor
from tests.conftest import spec
from tests.waiting import wait_for, wait_state

S = ProcessState
Make = Callable[..., Supervisor]


@pytest.mark.parametrize(("glob", "path", "matches"), [
    ("/p/src/**/*.py", "/p/src/a.py", True),
    ("/p/src/**/*.py", "/p/src/deep/er/a.py", True),
    ("/p/src/**/*.py", "/p/src/a.pyc", False),
    ("/p/src/**/*.py", "/p/srcx/a.py", False),
    ("/p/src/*.py", "/p/src/deep/a.py", False),
    ("/p/src", "/p/src/anything/at/all", True),
    ("/p/src", "/p/srcs/a", False),
    ("/p/?.txt", "/p/a.txt", True),
    ("/p/[ab].txt", "/p/b.txt", True),
    ("/p/[!ab].txt", "/p/b.txt", False),
    ("/p/**", "/p/x/y", True),
])
def test_globs(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(glob).match(path)) is matches


def test_a_rule_watches_from_the_fixed_part_of_each_glob(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "conf.toml").write_text("")
    rule = compile_rule(WatchSpec(paths=("src/**/*.py", "conf.toml"), ignore=("*.tmp", "src/gen/**")), str(tmp_path))
    assert rule.roots == (f"{tmp_path}/src", str(tmp_path))
    assert rule.matches(f"{tmp_path}/src/x/a.py") and rule.matches(f"{tmp_path}/conf.toml")
    assert not rule.matches(f"{tmp_path}/src/a.tmp") and not rule.matches(f"{tmp_path}/src/gen/a.py")
    assert not rule.matches(f"{tmp_path}/other.toml")
    assert rule.relative(f"{tmp_path}/src/x/a.py") == "src/x/a.py"
    assert minimal_roots(["/a/b", "/a", "/c", "/a/bc"]) == ["/a", "/c"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "src" / "skip").mkdir(parents=True)
    return folder


def watched(name: str, project: Path, **watch: object) -> object:
    settings = {"paths": ("src/**/*.py",), "debounce": 0.3, **watch}
    return spec(name, cwd=str(project), watch=WatchSpec(**settings))  # type: ignore[arg-type]


def restarted(s: ProcessStatus, name: str) -> bool:
    return s.name == name and s.state is S.RUNNING and "restarted" in s.reason


async def test_a_burst_of_changes_restarts_it_once_and_says_which_file(make_supervisor: Make, project: Path) -> None:
    sup = make_supervisor(watched("web", project))
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.boot()
        first = await wait_state(events, "web", S.RUNNING)
        assert first.watching or (await sup.status("web")).watching
        for i in range(10):  # one burst: an editor saving, a git checkout
            (project / "src" / f"m{i}.py").write_text("x = 1\n")
        burst = await wait_for(events, lambda s: restarted(s, "web"), what="the restart", seen=seen)
        (project / "src" / "zzz_later.py").write_text("y = 2\n")  # a second burst, well after the first
        later = await wait_for(events, lambda s: restarted(s, "web"), what="the second restart", seen=seen)
    assert re.search(r"restarted: src/m\d\.py changed \(and 9 more\)", burst.reason), burst.reason
    assert "zzz_later.py changed" in later.reason
    assert burst.pid != first.pid and later.pid != burst.pid
    restarts = [s for s in seen if restarted(s, "web")]
    assert len(restarts) == 2, "the first burst restarted it exactly once"
    stopping = [s.reason for s in seen if s.state is S.STOPPING]
    assert stopping[0].startswith("src/m") and ": restarting: sent SIGTERM" in stopping[0]


async def test_ignored_and_unwatched_files_change_nothing(make_supervisor: Make, project: Path) -> None:
    sup = make_supervisor(watched("web", project, ignore=("src/skip/**", "*.tmp")))
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "web", S.RUNNING)
        (project / "src" / "skip" / "a.py").write_text("ignored")
        (project / "src" / "b.tmp").write_text("ignored")
        (project / "README").write_text("not watched")
        (project / "src" / "__pycache__").mkdir()
        (project / "src" / "__pycache__" / "c.py").write_text("ignored by default")
        (project / "src" / "real.py").write_text("watched")
        again = await wait_for(events, lambda s: restarted(s, "web"), what="the restart")
    assert again.reason == "running (restarted: src/real.py changed)"


async def test_cascade_restarts_dependents_in_order(make_supervisor: Make, project: Path) -> None:
    web = watched("web", project, cascade=True)
    api = spec("api", depends_on={"web": DependencyCondition.STARTED})
    lone = spec("lone")
    sup = make_supervisor(web, api, lone)
    seen: list[ProcessStatus] = []
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "api", S.RUNNING)
        lone_pid = (await sup.status("lone")).pid
        (project / "src" / "app.py").write_text("changed")
        await wait_for(events, lambda s: s.name == "api" and s.state is S.RUNNING, what="api back", seen=seen)
    order = [(s.name, s.state) for s in seen if s.state in (S.STOPPED, S.RUNNING)]
    assert order.index(("api", S.STOPPED)) < order.index(("web", S.STOPPED)), "dependents stop first"
    assert order.index(("web", S.RUNNING)) < order.index(("api", S.RUNNING)), "and start after"
    api_back = [s for s in seen if s.name == "api" and s.state is S.RUNNING][-1]
    assert api_back.reason == "running (restarted with web: src/app.py changed)"
    assert (await sup.status("lone")).pid == lone_pid, "what does not depend on it is left alone"


async def test_a_process_stopped_by_the_user_stays_stopped(make_supervisor: Make, project: Path) -> None:
    sup = make_supervisor(watched("stopped", project), watched("sentinel", project))
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "sentinel", S.RUNNING)
        await sup.stop("stopped")
        (project / "src" / "x.py").write_text("changed")
        await wait_for(events, lambda s: restarted(s, "sentinel"), what="the sentinel's restart")
    assert (await sup.status("stopped")).state is S.STOPPED


async def test_a_crashed_and_failed_process_is_restarted_by_a_fix(make_supervisor: Make, project: Path) -> None:
    """The dev loop: a server that failed on a syntax error comes back when the file is saved again."""
    (project / "src" / "app.py").write_text("raise SystemExit(1)\n")
    failing = spec("app", "exec(open('src/app.py').read()); import time; time.sleep(600)", cwd=str(project),
                   watch=WatchSpec(paths=("src",), debounce=0.2), max_restarts=0)
    sup = make_supervisor(failing)
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "app", S.FAILED)
        (project / "src" / "app.py").write_text("print('fixed')\n")
        back = await wait_for(events, lambda s: restarted(s, "app"), what="the fixed app running")
    assert back.reason == "running (restarted: src/app.py changed)"


async def test_a_missing_folder_is_not_watched_and_nothing_breaks(make_supervisor: Make, project: Path) -> None:
    sup = make_supervisor(watched("web", project, paths=("nowhere/**",)))
    async with sup.subscribe() as events:
        await sup.boot()
        running = await wait_state(events, "web", S.RUNNING)
    assert running.watching is False


async def test_a_restart_for_a_change_never_outlives_shutdown(make_supervisor: Callable[..., Supervisor],
                                                              tmp_path: Path) -> None:
    """A changed file's restart still under way when the supervisor shuts down is cancelled: it cannot
    start its process again behind the shutdown's stop (the fixture checks that nothing is left)."""
    sup = make_supervisor(spec("site", cwd=str(tmp_path), watch=WatchSpec(paths=(".",))))
    async with sup.subscribe() as events:
        await sup.boot()
        await wait_state(events, "site", ProcessState.RUNNING)
    for _ in range(3):  # (a few at once, as a burst on several watched processes would make)
        sup.in_background(sup._services.restart_for_change("site", ["app.py"]))  # noqa: SLF001
    await sup.shutdown()
    assert (await sup.status("site")).state is ProcessState.STOPPED
