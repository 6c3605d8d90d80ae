"""Loading `pmtop.toml`: what it means when valid, and the exact one-line error when it is not.

Every test writes a real file into `tmp_path`. The error tests load it by its relative name from
inside that folder, so messages can be compared whole: `pmtop.toml:3: process.web.restart: ...`.
"""

from __future__ import annotations

import os
import signal
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtop.core.checks.exec import ExecCheck
from pmtop.core.checks.http import HttpCheck
from pmtop.core.checks.tcp import TcpCheck
from pmtop.core.config import (
    DEFAULT_PORT,
    NAME_PATTERN,
    Config,
    DaemonSettings,
    find_config,
    load_config,
    parse_process,
    spec_to_table,
    validate_name,
)
from pmtop.core.config.loader import find_line
from pmtop.core.errors import ConfigError
from pmtop.core.model import (
    DependencyCondition,
    FailAction,
    HealthSpec,
    LogSpec,
    ProcessSpec,
    RestartPolicy,
    RestartSpec,
    Scope,
    StartupCheck,
)

SPEC_EXAMPLE = """\
[daemon]                       # all optional
instance = "default"           # isolates state, logs, lock, PID file and default port
host = "127.0.0.1"
port = 19881                   # API + /alive + /health; "auto" = first free port from 19881 upwards
stop_on_exit = true            # stop managed processes when the supervisor exits

[defaults]                     # inherited by every [process.*] table
restart = "on-failure"         # "always" | "on-failure" | "no"
backoff = ["1s", "2s", "4s", "8s", "16s", "30s"]   # delay before restart n; the last one repeats
max_restarts = 5               # consecutive failed starts before state "failed"
reset_after = "5m"             # running this long resets the restart counter
retry_forever = false          # after max_restarts keep retrying every retry_forever_interval
retry_forever_interval = "6h"
stop_signal = "TERM"
stop_timeout = "10s"           # then SIGKILL to the whole process group
log_max_bytes = "10MB"         # per stream file, then rotate ("KB", "MB", "GB" or a number of bytes)
log_backups = 3                # rotated files kept per stream
log_keep_runs = 10             # run folders kept per process

[process.web]
command = ["python", "-m", "http.server", "8000"]  # list, or a string split with shlex; never a shell
cwd = "."                      # relative to the config file's folder
env = { PYTHONUNBUFFERED = "1" }
autostart = true
enabled = true
depends_on = ["db"]            # or { db = "healthy" } : "started" | "healthy" | "completed"
scope = "project"              # "global" | "project" | "session"

[process.web.health]           # optional; without it, alive PID = healthy
type = "http"                  # "http" | "tcp" | "exec"
url = "http://127.0.0.1:8000/" # tcp: address = "127.0.0.1:8000"; exec: command = [...] (exit 0 = healthy)
interval = "3s"
timeout = "2s"
failures = 2                   # consecutive failures before unhealthy -> restart
startup = { initial_delay = "500ms", interval = "500ms", max_attempts = 30, fail_action = "restart" }
                               # fail_action: "restart" | "disable" | "fail"

[process.db]
command = "postgres -D ./data"
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write(folder: Path, text: str, name: str = "pmtop.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(folder: Path, text: str) -> Config:
    return load_config(write(folder, text))


def error(in_tmp: Path, text: str) -> str:
    """The one-line error for `text`, loaded as `pmtop.toml` relative to the current folder."""
    write(in_tmp, text)
    with pytest.raises(ConfigError) as info:
        load_config(Path("pmtop.toml"))
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------ valid configs

def test_spec_example_parses_to_the_expected_specs(tmp_path: Path) -> None:
    config = load(tmp_path, SPEC_EXAMPLE)
    folder = str(tmp_path)
    assert config.path == tmp_path / "pmtop.toml"
    assert config.base_dir == tmp_path
    assert config.daemon == DaemonSettings(instance="default", host="127.0.0.1", port=19881, stop_on_exit=True)
    assert [spec.name for spec in config.processes] == ["web", "db"]
    assert config.by_name["web"] == ProcessSpec(
        name="web",
        command=("python", "-m", "http.server", "8000"),
        cwd=folder,
        env={"PYTHONUNBUFFERED": "1"},
        autostart=True,
        enabled=True,
        depends_on={"db": DependencyCondition.STARTED},
        scope=Scope.PROJECT,
        project=folder,
        restart=RestartSpec(
            policy=RestartPolicy.ON_FAILURE,
            backoff=(1.0, 2.0, 4.0, 8.0, 16.0, 30.0),
            max_restarts=5,
            reset_after=300.0,
            retry_forever=False,
            retry_forever_interval=21600.0,
        ),
        stop_signal=signal.SIGTERM,
        stop_timeout=10.0,
        logs=LogSpec(max_bytes=10 * 1024 * 1024, backups=3, keep_runs=10),
        health=HealthSpec(
            check=HttpCheck("http://127.0.0.1:8000/"),
            interval=3.0,
            timeout=2.0,
            failures=2,
            startup=StartupCheck(initial_delay=0.5, interval=0.5, max_attempts=30, fail_action=FailAction.RESTART),
        ),
    )
    assert config.by_name["db"] == ProcessSpec(
        name="db", command=("postgres", "-D", "./data"), cwd=folder, project=folder
    )


def test_empty_file_means_no_processes_and_default_daemon(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.processes == ()
    assert config.daemon == DaemonSettings()
    assert config.daemon.port is None
    assert DEFAULT_PORT == 19881
    assert Config().processes == () and Config().path is None


def test_daemon_port_auto(tmp_path: Path) -> None:
    config = load(tmp_path, '[daemon]\nport = "auto"\ninstance = "work.2"\nstop_on_exit = false\n')
    assert config.daemon == DaemonSettings(instance="work.2", port="auto", stop_on_exit=False)


def test_process_inherits_defaults_and_overrides_them(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [defaults]
        restart = "always"
        backoff = "3s"
        max_restarts = 2
        stop_signal = "INT"
        stop_timeout = 4
        log_max_bytes = 1024
        log_keep_runs = 2
        env = { A = "1", B = "2" }
        cwd = "sub"
        autostart = false
        scope = "global"

        [process.one]
        command = ["one"]

        [process.two]
        command = ["two"]
        restart = "no"
        env = { B = "3", C = "4" }
        cwd = "/opt"
        autostart = true
        scope = "session"
        stop_signal = 9
    """)
    one, two = config.processes
    assert one.restart == RestartSpec(policy=RestartPolicy.ALWAYS, backoff=(3.0,), max_restarts=2)
    assert one.stop_signal is signal.SIGINT and one.stop_timeout == 4.0
    assert one.logs == LogSpec(max_bytes=1024, keep_runs=2)
    assert one.env == {"A": "1", "B": "2"}
    assert one.cwd == str(tmp_path / "sub")
    assert one.autostart is False
    assert one.scope is Scope.GLOBAL and one.project is None

    assert two.restart.policy is RestartPolicy.NO
    assert two.restart.backoff == (3.0,) and two.restart.max_restarts == 2
    assert two.env == {"A": "1", "B": "3", "C": "4"}
    assert two.cwd == "/opt"
    assert two.autostart is True
    assert two.scope is Scope.SESSION and two.project is None
    assert two.stop_signal is signal.SIGKILL


@pytest.mark.parametrize(
    ("cwd", "expected"),
    [(None, "."), ('"."', "."), ('"sub"', "sub"), ('"./a/../b"', "b"), ('"../other"', "../other")],
)
def test_cwd_is_relative_to_the_config_folder(tmp_path: Path, cwd: str | None, expected: str) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    line = f"cwd = {cwd}\n" if cwd else ""
    config = load(folder, f'[process.p]\ncommand = "x"\n{line}')
    assert config.processes[0].cwd == os.path.normpath(folder / expected)
    assert config.processes[0].project == str(folder)


def test_relative_config_path_gives_absolute_cwd(in_tmp: Path) -> None:
    write(in_tmp, '[process.p]\ncommand = "x"\ncwd = "sub"\n')
    config = load_config(Path("pmtop.toml"))
    assert config.processes[0].cwd == str(in_tmp / "sub")
    assert config.path == in_tmp / "pmtop.toml"


def test_command_as_string_is_split_like_a_shell_but_not_run_by_one(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [process.p]
        command = "python -c 'print(\\"a b\\")' && echo $HOME"
    """)
    assert config.processes[0].command == ("python", "-c", 'print("a b")', "&&", "echo", "$HOME")


def test_depends_on_both_forms(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [process.db]
        command = "db"
        [process.cache]
        command = "cache"
        [process.migrate]
        command = "migrate"
        depends_on = ["db"]
        [process.web]
        command = "web"
        depends_on = { db = "healthy", migrate = "completed", cache = "started" }
    """)
    specs = config.by_name
    assert specs["migrate"].depends_on == {"db": DependencyCondition.STARTED}
    assert specs["web"].depends_on == {
        "db": DependencyCondition.HEALTHY,
        "migrate": DependencyCondition.COMPLETED,
        "cache": DependencyCondition.STARTED,
    }


def test_health_check_kinds(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [process.a]
        command = "a"
        health = { type = "tcp", address = "[::1]:5432", interval = 1, failures = 5 }
        [process.b]
        command = "b"
        [process.b.health]
        type = "exec"
        command = "pg_isready -q"
        startup = {}
    """)
    assert config.by_name["a"].health == HealthSpec(
        check=TcpCheck("[::1]:5432"), interval=1.0, failures=5
    )
    assert config.by_name["b"].health == HealthSpec(
        check=ExecCheck(("pg_isready", "-q")), startup=StartupCheck()
    )


def test_dotted_process_names_are_quoted_in_toml(tmp_path: Path) -> None:
    config = load(tmp_path, '[process."web.v2"]\ncommand = "x"\n')
    assert config.processes[0].name == "web.v2"


# ---------------------------------------------------------------------------------------- errors

def test_syntax_error_names_line_and_column(in_tmp: Path) -> None:
    message = error(in_tmp, '[process.web]\ncommand = \n')
    assert message == "pmtop.toml:2:11: invalid TOML: invalid value"
    with pytest.raises(ConfigError) as info:
        load_config(Path("pmtop.toml"))
    assert (info.value.file, info.value.line, info.value.column) == ("pmtop.toml", 2, 11)


def test_syntax_error_at_end_of_document(in_tmp: Path) -> None:
    message = error(in_tmp, '[process.web]\ncommand = "x"\ncommand = "y"')
    assert message.startswith("pmtop.toml:3:14: invalid TOML: ")


def test_not_utf8(in_tmp: Path) -> None:
    (in_tmp / "pmtop.toml").write_bytes(b'[process.web]\ncommand = "\xff"\n')
    with pytest.raises(ConfigError, match=r"^pmtop\.toml:2: not valid UTF-8 text$"):
        load_config(Path("pmtop.toml"))


def test_missing_file(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.toml: no such file$"):
        load_config(Path("nope.toml"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[process.web]\ncommand = "x"\nrestrat = "always"\n',
            "pmtop.toml:3: process.web.restrat: unknown key (did you mean 'restart'?)",
            id="process-key",
        ),
        pytest.param(
            '[proces.web]\ncommand = "x"\n',
            "pmtop.toml:1: proces: unknown key (did you mean 'process'?)",
            id="top-level-table",
        ),
        pytest.param(
            '# comment\n\ninstance = "x"\n',
            "pmtop.toml:3: instance: unknown key (did you mean to put it under [daemon]?)",
            id="daemon-key-at-top",
        ),
        pytest.param(
            'restart = "always"\n',
            "pmtop.toml:1: restart: unknown key (did you mean to put it under [defaults] or [process.NAME]?)",
            id="process-key-at-top",
        ),
        pytest.param(
            '[daemon]\nhots = "::1"\n',
            "pmtop.toml:2: daemon.hots: unknown key (did you mean 'host'?)",
            id="daemon",
        ),
        pytest.param(
            '[defaults]\nrestart = "no"\nstop_timout = 3\n',
            "pmtop.toml:3: defaults.stop_timout: unknown key (did you mean 'stop_timeout'?)",
            id="defaults",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\n\n[process.web.health]\ntype = "http"\nurl = "http://x/"\nintervall = 3\n',
            "pmtop.toml:7: process.web.health.intervall: unknown key (did you mean 'interval'?)",
            id="health",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nhealth = { type = "tcp", address = "h:1", startup = { tries = 3 } }\n',
            "pmtop.toml:3: process.web.health.startup.tries: unknown key "
            "(expected one of: initial_delay, interval, max_attempts, fail_action)",
            id="startup-inline",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nfrobnicate = 1\n',
            "pmtop.toml:3: process.web.frobnicate: unknown key",
            id="no-hint",
        ),
    ],
)
def test_unknown_keys_are_errors_with_hint_and_line(in_tmp: Path, text: str, expected: str) -> None:
    assert error(in_tmp, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[process.web]\ncommand = "x"\nrestart = "sometimes"\n',
            'pmtop.toml:3: process.web.restart: must be one of "always", "on-failure", "no" (got "sometimes")',
            id="enum",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nscope = "user"\n',
            'pmtop.toml:3: process.web.scope: must be one of "global", "project", "session" (got "user")',
            id="scope",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nautostart = "yes"\n',
            'pmtop.toml:3: process.web.autostart: must be true or false (got "yes")',
            id="bool",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nmax_restarts = true\n',
            "pmtop.toml:3: process.web.max_restarts: must be an integer >= 0 (got true)",
            id="int-not-bool",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nmax_restarts = -1\n',
            "pmtop.toml:3: process.web.max_restarts: must be an integer >= 0 (got -1)",
            id="int-range",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nlog_keep_runs = 0\n',
            "pmtop.toml:3: process.web.log_keep_runs: must be an integer from 1 to 10000 (got 0)",
            id="keep-runs",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nenv = { PORT = 8000 }\n',
            "pmtop.toml:3: process.web.env.PORT: must be a string (got 8000)",
            id="env-value",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nenv = ["A=1"]\n',
            "pmtop.toml:3: process.web.env: must be a table (got an array)",
            id="env-type",
        ),
        pytest.param(
            '[process.web]\ncommand = 5\n',
            "pmtop.toml:2: process.web.command: must be an array of strings or a string (got 5)",
            id="command-type",
        ),
        pytest.param(
            '[process.web]\ncommand = ["python", 3]\n',
            "pmtop.toml:2: process.web.command: must be an array of strings (found 3)",
            id="command-item",
        ),
        pytest.param(
            '[process.web]\ncommand = []\n',
            "pmtop.toml:2: process.web.command: must not be empty (it needs at least the program to run)",
            id="command-empty",
        ),
        pytest.param(
            "[process.web]\ncommand = \"echo 'unclosed\"\n",
            "pmtop.toml:2: process.web.command: cannot split \"echo 'unclosed\" (no closing quotation)",
            id="command-shlex",
        ),
        pytest.param(
            '\n[process.web]\ncwd = "."\n',
            "pmtop.toml:2: process.web.command: missing (every process needs a command)",
            id="command-missing",
        ),
        pytest.param(
            '[process]\nweb = "python app.py"\n',
            'pmtop.toml:2: process.web: must be a table (got "python app.py")',
            id="process-not-table",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\ndepends_on = "db"\n',
            "pmtop.toml:3: process.web.depends_on: must be an array of process names "
            'or a table of name = condition (got "db")',
            id="depends-type",
        ),
        pytest.param(
            '[process.db]\ncommand = "x"\n[process.web]\ncommand = "x"\ndepends_on = { db = "ready" }\n',
            'pmtop.toml:5: process.web.depends_on.db: must be one of "started", "healthy", "completed" (got "ready")',
            id="depends-condition",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nstop_timeout = "5 parsecs"\n',
            "pmtop.toml:3: process.web.stop_timeout: invalid duration '5 parsecs' "
            "(use seconds or a number with ms, s, m, h, d)",
            id="duration",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nbackoff = ["1s", "2x"]\n',
            "pmtop.toml:3: process.web.backoff: invalid duration '2x' (use seconds or a number with ms, s, m, h, d)",
            id="backoff-item",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nbackoff = []\n',
            "pmtop.toml:3: process.web.backoff: must not be empty",
            id="backoff-empty",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nretry_forever_interval = 0\n',
            "pmtop.toml:3: process.web.retry_forever_interval: must be longer than 0 (got 0)",
            id="positive-duration",
        ),
        pytest.param(
            '[defaults]\nlog_max_bytes = "10 parsecs"\n',
            "pmtop.toml:2: defaults.log_max_bytes: invalid size '10 parsecs' "
            "(use a number of bytes or a number with KB, MB, GB)",
            id="size",
        ),
        pytest.param(
            '[process.web]\ncommand = "x"\nstop_signal = "TREM"\n',
            "pmtop.toml:3: process.web.stop_signal: invalid signal 'TREM' (use a name like TERM, INT, HUP, KILL or a number)",
            id="signal",
        ),
        pytest.param(
            '[defaults]\ncommand = "x"\n',
            "pmtop.toml:2: defaults.command: cannot be a default (set it in each [process.NAME] table)",
            id="defaults-process-only",
        ),
        pytest.param(
            '[defaults]\nrestart = "never"\n[process.web]\ncommand = "x"\n',
            'pmtop.toml:2: defaults.restart: must be one of "always", "on-failure", "no" (got "never")',
            id="defaults-value",
        ),
        pytest.param(
            '[daemon]\nport = 70000\n',
            'pmtop.toml:2: daemon.port: must be a port number from 1 to 65535 or "auto" (got 70000)',
            id="daemon-port",
        ),
        pytest.param(
            '[daemon]\nport = "19881"\n',
            'pmtop.toml:2: daemon.port: must be a port number from 1 to 65535 or "auto" (got "19881")',
            id="daemon-port-string",
        ),
        pytest.param(
            '[daemon]\ninstance = "my instance"\n',
            "pmtop.toml:2: daemon.instance: invalid instance name \"my instance\" "
            "(1-64 letters, digits, '_', '.' or '-', starting with a letter or digit)",
            id="daemon-instance",
        ),
        pytest.param(
            '[daemon]\nstop_on_exit = 1\n',
            "pmtop.toml:2: daemon.stop_on_exit: must be true or false (got 1)",
            id="daemon-bool",
        ),
        pytest.param(
            'daemon = 1\n',
            "pmtop.toml:1: daemon: must be a table (got 1)",
            id="daemon-table",
        ),
    ],
)
def test_bad_values_and_types_name_the_key_path_and_line(in_tmp: Path, text: str, expected: str) -> None:
    assert error(in_tmp, text) == expected


@pytest.mark.parametrize("header", ['"my app"', "-web", "_web", "x" * 65, '"wéb"', '""', '"a/b"'])
def test_bad_process_names(in_tmp: Path, header: str) -> None:
    """`header` is the TOML spelling of the name, which is also how the key path shows it."""
    message = error(in_tmp, f'[process.{header}]\ncommand = "x"\n')
    assert message == (
        f"pmtop.toml:1: process.{header}: invalid process name "
        "(1-64 letters, digits, '_', '.' or '-', starting with a letter or digit)"
    )


def test_unknown_dependency(in_tmp: Path) -> None:
    text = '[process.db]\ncommand = "x"\n\n[process.web]\ncommand = "x"\ndepends_on = ["dbb"]\n'
    assert error(in_tmp, text) == "pmtop.toml:6: process.web.depends_on: unknown process 'dbb' (did you mean 'db'?)"


def test_dependency_cycle(in_tmp: Path) -> None:
    text = """\
        [process.web]
        command = "x"
        depends_on = ["db"]

        [process.db]
        command = "x"
        depends_on = { web = "healthy" }
    """
    assert error(in_tmp, text) == "pmtop.toml:3: process.web.depends_on: cycle web -> db -> web"


def test_longer_cycle_behind_an_innocent_process(in_tmp: Path) -> None:
    text = """\
        [process.front]
        command = "x"
        depends_on = ["a"]
        [process.a]
        command = "x"
        depends_on = ["b"]
        [process.b]
        command = "x"
        depends_on = ["c"]
        [process.c]
        command = "x"
        depends_on = ["a"]
    """
    assert error(in_tmp, text) == "pmtop.toml:6: process.a.depends_on: cycle a -> b -> c -> a"


def test_self_dependency(in_tmp: Path) -> None:
    text = '[process.web]\ncommand = "x"\ndepends_on = ["web"]\n'
    assert error(in_tmp, text) == "pmtop.toml:3: process.web.depends_on: web cannot depend on itself"


def test_diamond_dependencies_are_not_a_cycle(tmp_path: Path) -> None:
    config = load(tmp_path, """
        [process.top]
        command = "x"
        depends_on = ["left", "right"]
        [process.left]
        command = "x"
        depends_on = ["base"]
        [process.right]
        command = "x"
        depends_on = ["base"]
        [process.base]
        command = "x"
    """)
    assert len(config.processes) == 4


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        pytest.param(
            'type = "tcp"\nurl = "http://x/"',
            'pmtop.toml:5: process.web.health.url: not used by a "tcp" check (it takes address = "host:port")',
            id="url-with-tcp",
        ),
        pytest.param(
            'type = "http"\nurl = "http://x/"\ncommand = ["true"]',
            'pmtop.toml:6: process.web.health.command: not used by a "http" check '
            '(it takes url = "http://host:port/path")',
            id="command-with-http",
        ),
        pytest.param(
            'type = "exec"\naddress = "h:1"',
            'pmtop.toml:5: process.web.health.address: not used by a "exec" check (it takes command = [...])',
            id="address-with-exec",
        ),
        pytest.param(
            'url = "http://x/"',
            'pmtop.toml:3: process.web.health.type: missing (one of "http", "tcp", "exec", "heartbeat", "notify")',
            id="no-type",
        ),
        pytest.param(
            'type = "grpc"',
            'pmtop.toml:4: process.web.health.type: must be one of "http", "tcp", "exec", "heartbeat", "notify" (got "grpc")',
            id="bad-type",
        ),
        pytest.param(
            'type = "http"',
            'pmtop.toml:3: process.web.health.url: missing (a "http" check needs url = "http://host:port/path")',
            id="http-needs-url",
        ),
        pytest.param(
            'type = "http"\nurl = "ftp://x/"',
            'pmtop.toml:5: process.web.health.url: must be an http:// or https:// URL (got "ftp://x/")',
            id="bad-url",
        ),
        pytest.param(
            'type = "tcp"\naddress = "localhost"',
            'pmtop.toml:5: process.web.health.address: must be "host:port" (or "[ipv6]:port") (got "localhost")',
            id="address-no-port",
        ),
        pytest.param(
            'type = "tcp"\naddress = "localhost:0"',
            'pmtop.toml:5: process.web.health.address: port must be from 1 to 65535 (got "localhost:0")',
            id="address-port-range",
        ),
        pytest.param(
            'type = "exec"\ncommand = []',
            "pmtop.toml:5: process.web.health.command: must not be empty (it needs at least the program to run)",
            id="exec-empty",
        ),
        pytest.param(
            'type = "tcp"\naddress = "h:1"\nfailures = 0',
            "pmtop.toml:6: process.web.health.failures: must be an integer >= 1 (got 0)",
            id="failures",
        ),
        pytest.param(
            'type = "tcp"\naddress = "h:1"\ninterval = "0s"',
            "pmtop.toml:6: process.web.health.interval: must be longer than 0 (got \"0s\")",
            id="interval",
        ),
        pytest.param(
            'type = "tcp"\naddress = "h:1"\n[process.web.health.startup]\nmax_attempts = 0',
            "pmtop.toml:7: process.web.health.startup.max_attempts: must be an integer >= 1 (got 0)",
            id="startup-attempts",
        ),
        pytest.param(
            'type = "tcp"\naddress = "h:1"\nstartup = { fail_action = "explode" }',
            'pmtop.toml:6: process.web.health.startup.fail_action: must be one of "restart", "disable", "fail" '
            '(got "explode")',
            id="startup-action",
        ),
    ],
)
def test_health_errors(in_tmp: Path, health: str, expected: str) -> None:
    text = f'[process.web]\ncommand = "x"\n[process.web.health]\n{health}\n'
    assert error(in_tmp, text) == expected


def test_error_attributes(in_tmp: Path) -> None:
    write(in_tmp, '[process.web]\ncommand = "x"\nrestart = "sometimes"\n')
    with pytest.raises(ConfigError) as info:
        load_config(in_tmp / "pmtop.toml")
    err = info.value
    assert err.file == "pmtop.toml", "named relative to the current folder, which holds it"
    assert err.key_path == "process.web.restart"
    assert err.line == 3 and err.column is None
    assert err.code == "config_invalid"


def test_first_error_wins_and_nothing_is_returned(in_tmp: Path) -> None:
    text = '[process.good]\ncommand = "x"\n[process.bad]\ncommand = "x"\nrestart = 1\nautostart = 2\n'
    assert error(in_tmp, text).startswith("pmtop.toml:5: process.bad.restart: ")


# ----------------------------------------------------------------------------------- line finding

FIND_LINE_TEXT = "\n".join([
    "[daemon]",                          # 1
    "port = 1",                          # 2
    "",                                  # 3
    "[process.'web.v2']  # quoted",      # 4
    'command = """',                     # 5
    'url = "not a key"',                 # 6 (inside a multi-line string)
    '"""',                               # 7
    '[ process . "web.v2" . health ]',   # 8
    "interval = 3",                      # 9
    "[process.db]",                      # 10
    'process."web.v2".health.url = 1',   # 11 (a dotted key of process.db: not the url below)
    "",                                  # 12
    "env.A = 1",                         # 13
    "restart = 1",                       # 14
])


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("process", "web.v2"), 4),
        (("process", "web.v2", "command"), 5),
        (("process", "web.v2", "cwd"), 4),
        (("process", "web.v2", "health", "url"), 8),
        (("process", "web.v2", "health", "interval"), 9),
        (("process", "db", "env", "A"), 13),
        (("process", "db", "restart"), 14),
        (("daemon", "port"), 2),
        (("nothing",), None),
    ],
)
def test_find_line(path: tuple[str, ...], line: int | None) -> None:
    assert find_line(FIND_LINE_TEXT, path) == line


# ------------------------------------------------------------------------------------- find_config

def test_find_config_precedence(tmp_path: Path) -> None:
    explicit = write(tmp_path, "", "explicit.toml")
    from_env = write(tmp_path, "", "env.toml")
    local = write(tmp_path, "", "pmtop.toml")
    env = {"PMTOP_CONFIG": str(from_env)}
    assert find_config(str(explicit), env, tmp_path) == explicit
    assert find_config(None, env, tmp_path) == from_env
    assert find_config(None, {}, tmp_path) == local
    assert find_config(None, {"PMTOP_CONFIG": ""}, tmp_path) == local
    local.unlink()
    assert find_config(None, {}, tmp_path) is None


def test_find_config_relative_names_are_taken_from_cwd(tmp_path: Path) -> None:
    write(tmp_path, "", "other.toml")
    assert find_config("other.toml", {}, tmp_path) == tmp_path / "other.toml"
    assert find_config(None, {"PMTOP_CONFIG": "other.toml"}, tmp_path) == tmp_path / "other.toml"


def test_find_config_named_file_must_exist(tmp_path: Path) -> None:
    write(tmp_path, "", "pmtop.toml")
    with pytest.raises(ConfigError) as info:
        find_config("missing.toml", {}, tmp_path)
    assert str(info.value) == "missing.toml: no such file"
    assert info.value.file == "missing.toml"
    with pytest.raises(ConfigError, match="^gone.toml: no such file$"):
        find_config(None, {"PMTOP_CONFIG": "gone.toml"}, tmp_path)
    with pytest.raises(ConfigError, match="is a folder"):
        find_config(str(tmp_path), {}, tmp_path)


# ------------------------------------------------------------------------------- names, single specs

@pytest.mark.parametrize("name", ["web", "a", "Web_2", "api.v2", "x-y", "0", "a" * 64])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name
    assert NAME_PATTERN.fullmatch(name)


@pytest.mark.parametrize("name", ["", "_web", ".hidden", "-x", "a b", "a/b", "a" * 65, "wéb", "web\n"])
def test_validate_name_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="invalid name"):
        validate_name(name)


def test_parse_process_for_the_api(tmp_path: Path) -> None:
    spec = parse_process(
        "api", {"command": "uvicorn app:app", "env": {"B": "2"}},
        defaults={"restart": "always", "env": {"A": "1"}}, base_dir=tmp_path,
    )
    assert spec.command == ("uvicorn", "app:app")
    assert spec.restart.policy is RestartPolicy.ALWAYS
    assert spec.env == {"A": "1", "B": "2"}
    assert spec.cwd == str(tmp_path) and spec.project == str(tmp_path)


def test_parse_process_errors_name_the_key_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_process("web", {"command": "x", "restrat": "no"}, base_dir=tmp_path)
    assert str(info.value) == "process.web.restrat: unknown key (did you mean 'restart'?)"
    with pytest.raises(ConfigError) as info:
        parse_process("web", {"command": "x"}, defaults={"restart": 3}, base_dir=tmp_path, file="pmtop.toml")
    assert str(info.value) == 'pmtop.toml: defaults.restart: must be one of "always", "on-failure", "no" (got 3)'
    with pytest.raises(ConfigError, match=r"^process\.\"a b\": invalid process name"):
        parse_process("a b", {"command": "x"}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^process\.web\.depends_on: web cannot depend on itself$"):
        parse_process("web", {"command": "x", "depends_on": ["web"]}, base_dir=tmp_path)


# -------------------------------------------------------------------------------------- round trip

def test_spec_to_table_of_the_spec_example(tmp_path: Path) -> None:
    config = load(tmp_path, SPEC_EXAMPLE)
    web = config.by_name["web"]
    table = spec_to_table(web, base_dir=tmp_path)
    assert table == {
        "command": ["python", "-m", "http.server", "8000"],
        "env": {"PYTHONUNBUFFERED": "1"},
        "depends_on": ["db"],
        "health": {
            "type": "http",
            "url": "http://127.0.0.1:8000/",
            "startup": {"initial_delay": "500ms"},
        },
    }
    for spec in config.processes:
        again = parse_process(spec.name, spec_to_table(spec, base_dir=tmp_path), base_dir=tmp_path)
        assert again == spec


def test_spec_to_table_writes_cwd_relative_inside_base_dir() -> None:
    base = Path("/srv/project")
    spec = parse_process("p", {"command": "x", "cwd": "sub/dir"}, base_dir=base)
    assert spec_to_table(spec, base_dir=base)["cwd"] == "sub/dir"
    assert spec_to_table(spec)["cwd"] == "/srv/project/sub/dir"
    outside = parse_process("p", {"command": "x", "cwd": "../elsewhere"}, base_dir=base)
    assert spec_to_table(outside, base_dir=base)["cwd"] == "/srv/elsewhere"
    tilde = parse_process("p", {"command": "x", "cwd": "./~odd"}, base_dir=base)
    assert parse_process("p", spec_to_table(tilde, base_dir=base), base_dir=base) == tilde


BASE = Path("/srv/project")
names = st.from_regex(NAME_PATTERN, fullmatch=True)
text = st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=12)
durations = st.floats(min_value=0, max_value=1e8, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-9, max_value=1e8, allow_nan=False, allow_infinity=False)
commands = st.tuples(text.filter(bool), st.lists(text, max_size=4)).map(lambda t: (t[0], *t[1]))
healths = st.one_of(
    st.none(),
    st.builds(
        HealthSpec,
        check=st.sampled_from(["http://127.0.0.1:8000/", "https://example.com/health?x=1", "http://[::1]:80"]).map(HttpCheck),
        interval=positive, timeout=positive, failures=st.integers(1, 10),
        startup=st.none() | st.builds(
            StartupCheck, initial_delay=durations, interval=positive,
            max_attempts=st.integers(1, 100), fail_action=st.sampled_from(FailAction),
        ),
    ),
    st.builds(
        HealthSpec,
        check=st.sampled_from(["127.0.0.1:5432", "[::1]:80", "db.local:65535"]).map(TcpCheck),
    ),
    st.builds(HealthSpec, check=commands.map(ExecCheck), failures=st.integers(1, 5)),
)


@st.composite
def specs(draw: st.DrawFn) -> ProcessSpec:
    name = draw(names)
    scope = draw(st.sampled_from(Scope))
    return ProcessSpec(
        name=name,
        command=draw(commands),
        cwd=os.path.normpath(os.path.join(BASE, draw(st.sampled_from([".", "sub", "a/b", "..", "/opt/x", "~x"])))),
        env=draw(st.dictionaries(text.filter(lambda k: bool(k) and "=" not in k), text, max_size=3)),
        autostart=draw(st.booleans()),
        enabled=draw(st.booleans()),
        depends_on=draw(st.dictionaries(names.filter(lambda n: n != name), st.sampled_from(DependencyCondition),
                                        max_size=3)),
        scope=scope,
        project=str(BASE) if scope is Scope.PROJECT else None,
        restart=RestartSpec(
            policy=draw(st.sampled_from(RestartPolicy)),
            backoff=tuple(draw(st.lists(durations, min_size=1, max_size=6))),
            max_restarts=draw(st.integers(0, 1000)),
            reset_after=draw(durations),
            retry_forever=draw(st.booleans()),
            retry_forever_interval=draw(positive),
        ),
        stop_signal=draw(st.sampled_from(list(signal.Signals))),
        stop_timeout=draw(durations),
        logs=LogSpec(
            max_bytes=draw(st.integers(0, 2**42)),
            backups=draw(st.integers(0, 50)),
            keep_runs=draw(st.integers(1, 50)),
        ),
        health=draw(healths),
    )


@settings(derandomize=True, max_examples=150, deadline=None)
@given(specs(), st.booleans())
def test_spec_to_table_round_trips_through_toml(spec: ProcessSpec, relative: bool) -> None:
    base_dir = BASE if relative else None
    table = spec_to_table(spec, base_dir=base_dir)
    written = tomli_w.dumps({"process": {spec.name: table}})
    read = tomllib.loads(written)["process"][spec.name]
    assert parse_process(spec.name, read, base_dir=BASE) == spec


def test_spec_to_table_omits_defaults() -> None:
    spec = parse_process("p", {"command": ["x"]}, base_dir=BASE)
    assert spec_to_table(spec, base_dir=BASE) == {"command": ["x"]}
