"""The dev-loop keys in `pmtop.toml`: what they become, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmtop.core.config import load_config, parse_process, spec_to_table
from pmtop.core.errors import ConfigError
from pmtop.core.model import HookSpec, Overlap, ScheduleSpec, WatchSpec

GOOD = """
[hooks]
on = ["failed", "recovered"]
url = "http://127.0.0.1:9000/pmtop"

[process.tests]
command = "pytest -q"
schedule = "*/5 * * * *"
overlap = "queue"
catch_up = true

[process.web]
command = "python -m http.server"
replicas = 3
watch = { paths = ["src/**/*.py"], ignore = ["**/__pycache__/**"], debounce = "250ms", cascade = true }

[process.web.hooks]
command = ["notify-send", "pmtop: {name} {state}", "{reason}"]
timeout = "5s"

[process.docs]
command = "mkdocs serve"
watch = "docs"
"""


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "pmtop.toml"
    path.write_text(text)
    return load_config(path)


def test_the_keys_become_specs(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    tests, web, docs = config.processes
    assert config.hooks == HookSpec(on=("failed", "recovered"), url="http://127.0.0.1:9000/pmtop")
    assert tests.schedule == ScheduleSpec("*/5 * * * *", Overlap.QUEUE, run_on_start=False, catch_up=True)
    assert web.replicas == 3 and web.schedule is None
    assert web.watch == WatchSpec(("src/**/*.py",), ("**/__pycache__/**",), 0.25, True)
    assert web.hooks == HookSpec(command=("notify-send", "pmtop: {name} {state}", "{reason}"), timeout=5.0)
    assert docs.watch == WatchSpec(("docs",))


def test_tables_round_trip(tmp_path: Path) -> None:
    for spec in load(tmp_path, GOOD).processes:
        again = parse_process(spec.name, spec_to_table(spec), base_dir=tmp_path)
        assert again == spec


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[process.a]\ncommand = "x"\nschedule = "every now and then"\n', 3, "process.a.schedule: invalid schedule"),
    ('[process.a]\ncommand = "x"\noverlap = "skip"\n', 3, "process.a.overlap: only makes sense with a schedule"),
    ('[process.a]\ncommand = "x"\nschedule = "@daily"\noverlap = "wait"\n', 4,
     'process.a.overlap: must be one of "skip", "queue", "replace"'),
    ('[process.a]\ncommand = "x"\nschedule = "@daily"\nautostart = false\n', 4,
     "process.a.autostart: does not apply to a scheduled process"),
    ('[process.a]\ncommand = "x"\nreplicas = 1.5\n', 3, "process.a.replicas: must be an integer from 0 to 1000"),
    ('[process.a]\ncommand = "x"\nwatch = { ignore = ["x"] }\n', 3, "process.a.watch.paths: missing"),
    ('[process.a]\ncommand = "x"\nwatch = { paths = [], debounce = "1s" }\n', 3,
     "process.a.watch.paths: must name at least one path"),
    ('[process.a]\ncommand = "x"\nwatch = { paths = ["src"], debounse = "1s" }\n', 3,
     "process.a.watch.debounse: unknown key (did you mean 'debounce'?)"),
    ('[process.a]\ncommand = "x"\n[process.a.hooks]\non = ["failed"]\n', 3,
     "process.a.hooks: needs a command, a url or both"),
    ('[process.a]\ncommand = "x"\n[process.a.hooks]\nurl = "ftp://x"\n', 4,
     "process.a.hooks.url: must be an http:// or https:// URL"),
    ('[process.a]\ncommand = "x"\n[process.a.hooks]\non = ["exploded"]\nurl = "http://x"\n', 4,
     'process.a.hooks.on: unknown event "exploded"'),
    ('[process.a]\ncommand = "x"\n[process.a.hooks]\ncommand = "say {nam}"\n', 4,
     "process.a.hooks.command: unknown placeholder {nam}"),
    ('[hooks]\ncommand = "x"\ntimeout = 0\n', 3, "hooks.timeout: must be longer than 0"),
    ('[defaults]\nschedule = "@daily"\n', 2, "defaults.schedule: cannot be a default"),
])
def test_mistakes_are_one_line_with_the_place(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert str(info.value).startswith(f"pmtop.toml:{line}: {message}") or \
        f"pmtop.toml:{line}: " in str(info.value) and message in str(info.value), str(info.value)
