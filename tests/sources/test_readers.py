"""`pmtop import`: real files in the documented formats of each project, read into a pmtop.toml that loads.

The sample files are the examples from each project's own documentation (Heroku's and honcho's
Procfiles, supervisord's `[program:x]` reference example, process-compose's README and health-check
pages, PM2's ecosystem file page), written out here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pmtop.core.checks.exec import ExecCheck
from pmtop.core.config import load_config
from pmtop.core.errors import ConfigError
from pmtop.core.model import DependencyCondition, RestartPolicy
from pmtop.core.sources import read_source
from pmtop.core.sources.writer import render_toml

PROCFILE = """\
# from Heroku's and foreman's documentation
web: bundle exec thin start -p $PORT
worker: celery -A myproject worker --loglevel=info
release: python manage.py migrate
"""

SUPERVISORD = """\
; supervisord's [program:x] example (supervisord.org, "Configuration File")
[unix_http_server]
file=/tmp/supervisor.sock

[supervisord]
logfile=/tmp/supervisord.log

[program:cat]
command=/bin/cat
process_name=%(program_name)s
numprocs=1
directory=/tmp
umask=022
priority=999
autostart=true
autorestart=unexpected
startsecs=10
startretries=3
exitcodes=0
stopsignal=TERM
stopwaitsecs=10
stopasgroup=false
killasgroup=false
user=chrism
redirect_stderr=false
stdout_logfile=/a/path
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=10
stdout_capture_maxbytes=1MB
stdout_events_enabled=false
stderr_logfile=/a/path
stderr_logfile_maxbytes=1MB
stderr_logfile_backups=10
stderr_capture_maxbytes=1MB
stderr_events_enabled=false
environment=A="1",B="2"
serverurl=AUTO

[program:web]
command=/usr/bin/python3 -m http.server 80%(process_num)02d
process_name=%(program_name)s_%(process_num)02d
numprocs=2
autorestart=true
stopsignal=INT
priority=5

[group:all]
programs=cat,web
"""

PROCESS_COMPOSE = """\
# process-compose's README example, with its health-check page's probes
version: "0.5"
environment:
  - "GLOBAL_ENV_VAR=1"
log_location: /path/to/combined/output/logfile.log
log_level: debug

processes:
  Manager:
    command: "/path/to/manager"
    availability:
      restart: "always"
    depends_on:
      ClientA:
        condition: process_started
      ClientB:
        condition: process_healthy

  ClientA:
    command: "/path/to/ClientA"
    availability:
      restart: "on_failure"
      backoff_seconds: 2
      max_restarts: 5
    environment:
      - "LOCAL_ENV_VAR=1"
    watch:
      debounce: 300ms
      cascade: true
      paths:
        - path: ./src
          exclude: ["**/*_test.go"]

  ClientB:
    command: "/path/to/ClientB -some -arg"
    replicas: 2
    ready_log_line: "ready to accept connections"
    readiness_probe:
      http_get:
        host: 127.0.0.1
        scheme: http
        path: "/"
        port: 80
      initial_delay_seconds: 5
      period_seconds: 10
      timeout_seconds: 5
      success_threshold: 1
      failure_threshold: 3
    shutdown:
      signal: 2
      timeout_seconds: 5

  nginx:
    command: "docker run -d --rm -p80:80 --name nginx_test nginx"
    is_daemon: true
    shutdown:
      command: "docker stop nginx_test"
      signal: 15
      timeout_seconds: 5
    liveness_probe:
      exec:
        command: "[ $(docker inspect -f '{{.State.Running}}' nginx_test) = 'true' ]"
      initial_delay_seconds: 5
      period_seconds: 2
      timeout_seconds: 5
      success_threshold: 1
      failure_threshold: 3

  migrate:
    command: "echo migrating && sleep 1"
    disabled: true
"""

PM2_JS = """\
module.exports = {
  "apps": [{
    "name": "app1",
    "script": "./app.js"
  }]
}
"""

PM2_JSON = """\
{
  "apps": [
    {
      "name": "API",
      "script": "app.js",
      "args": "--port 3000 --verbose",
      "instances": 4,
      "exec_mode": "cluster",
      "watch": true,
      "ignore_watch": ["node_modules"],
      "max_memory_restart": "1G",
      "env": {"NODE_ENV": "development"},
      "env_production": {"NODE_ENV": "production"},
      "exp_backoff_restart_delay": 100,
      "kill_timeout": 3000
    },
    {
      "name": "worker",
      "script": "worker.py",
      "interpreter": "python3",
      "autorestart": false,
      "cron_restart": "0 0 * * *",
      "cwd": "/srv/worker"
    },
    {
      "name": "bin",
      "script": "/usr/local/bin/thing",
      "args": ["a b", "c"],
      "max_restarts": 10,
      "min_uptime": "5000",
      "restart_delay": 4000,
      "cron_restart": "0 3 * * *"
    }
  ]
}
"""


def _import(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    result = read_source(path)
    toml = render_toml(result)
    (tmp_path / "pmtop.toml").write_text(toml)
    return result, toml, load_config(tmp_path / "pmtop.toml")


def _losses(result) -> set[tuple[str | None, str]]:
    return {(loss.process, loss.setting) for loss in result.losses}


def test_procfile_with_its_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SECRET_KEY=abc\nexport DEBUG='1'\n")
    result, toml, config = _import(tmp_path, "Procfile", PROCFILE)
    assert result.source == "procfile"
    web, worker, release = config.processes
    assert web.command == ("sh", "-c", "bundle exec thin start -p $PORT")  # $PORT needs the shell
    assert web.port == 5000 and "PORT" not in web.env  # pmtop gives $PORT from `port` (and checks it is free)
    assert web.env["SECRET_KEY"] == "abc" and web.env["DEBUG"] == "1"
    assert worker.command == ("celery", "-A", "myproject", "worker", "--loglevel=info")
    assert release.command == ("python", "manage.py", "migrate")
    assert ("web", "PORT") in _losses(result)


def test_supervisord_programs_in_priority_order(tmp_path: Path) -> None:
    result, toml, config = _import(tmp_path, "supervisord.conf", SUPERVISORD)
    assert [p.name for p in config.processes] == ["web_00", "web_01", "cat"]  # priority 5 before 999
    web0, web1, cat = config.processes
    assert web0.command == ("/usr/bin/python3", "-m", "http.server", "8000")
    assert web1.command[-1] == "8001"
    assert web0.restart.policy is RestartPolicy.ALWAYS and web0.stop_signal.name == "SIGINT"
    assert cat.cwd == "/tmp" and cat.env == {"A": "1", "B": "2"}
    assert cat.restart.policy is RestartPolicy.ON_FAILURE  # autorestart=unexpected
    assert cat.restart.max_restarts == 3 and cat.restart.backoff == (1.0, 2.0, 3.0)  # supervisord's 1s, 2s, 3s
    assert cat.restart.reset_after == 10.0  # startsecs
    assert cat.stop_timeout == 10.0 and cat.logs.max_bytes == 1024 * 1024 and cat.logs.backups == 10
    losses = _losses(result)
    assert ("cat", "user") in losses and ("cat", "umask") in losses and (None, "[group:all]") in losses
    assert ("web", "numprocs") in losses


def test_process_compose_with_probes_replicas_and_log_line(tmp_path: Path) -> None:
    result, toml, config = _import(tmp_path, "process-compose.yaml", PROCESS_COMPOSE)
    by = config.by_name
    assert by["Manager"].depends_on == {"ClientA": DependencyCondition.STARTED,
                                        "ClientB": DependencyCondition.HEALTHY}
    assert by["Manager"].restart.policy is RestartPolicy.ALWAYS and by["Manager"].restart.retry_forever
    assert by["Manager"].env == {"GLOBAL_ENV_VAR": "1"}
    client_a = by["ClientA"]
    assert client_a.restart.backoff == (2.0,) and client_a.restart.max_restarts == 5
    assert client_a.env == {"GLOBAL_ENV_VAR": "1", "LOCAL_ENV_VAR": "1"}
    client_b = by["ClientB"]
    assert client_b.command == ("/path/to/ClientB", "-some", "-arg")
    assert client_b.health is not None and client_b.health.check.url == "http://127.0.0.1:80/"
    assert client_b.health.startup is not None and client_b.health.startup.initial_delay == 5.0
    assert client_b.stop_signal.name == "SIGINT" and client_b.stop_timeout == 5.0
    assert client_b.replicas == 2
    assert client_b.ready_log_line == "ready to accept connections"  # SPEC §10: a pmtop setting now
    assert client_a.watch is not None and client_a.watch.paths == ("./src",) and client_a.watch.cascade
    assert client_a.watch.ignore == ("**/*_test.go",) and client_a.watch.debounce == 0.3
    nginx = by["nginx"]
    assert nginx.health is not None and isinstance(nginx.health.check, ExecCheck)
    assert nginx.health.check.command[:2] == ("bash", "-c")  # the probe needs a shell, process-compose's
    assert by["migrate"].command == ("bash", "-c", "echo migrating && sleep 1") and not by["migrate"].enabled
    losses = _losses(result)
    assert {("ClientB", "replicas"), ("nginx", "is_daemon"),
            ("nginx", "shutdown.command"), (None, "log_location")} <= losses
    assert ("ClientB", "ready_log_line") not in {(l.process, l.setting) for l in result.losses if l.kind == "dropped"}


def test_pm2_ecosystem_json_and_js(tmp_path: Path) -> None:
    result, toml, config = _import(tmp_path, "ecosystem.config.json", PM2_JSON)
    api, worker, binary = config.processes
    assert api.command == ("node", "app.js", "--port", "3000", "--verbose")
    assert api.env == {"NODE_ENV": "development"} and api.stop_signal.name == "SIGINT" and api.stop_timeout == 3
    assert api.restart.backoff[0] == 0.1 and api.restart.backoff[-1] == 15.0  # x1.5 up to 15s
    assert worker.command == ("python3", "worker.py") and worker.restart.policy is RestartPolicy.NO
    assert worker.cwd == "/srv/worker"
    assert binary.command == ("/usr/local/bin/thing", "a b", "c")
    assert binary.restart.max_restarts == 10 and binary.restart.reset_after == 5 and binary.restart.backoff == (4.0,)
    assert api.replicas == 4 and api.watch is not None and api.watch.paths == (".",)
    assert api.watch.ignore == ("node_modules",)
    assert worker.schedule is not None and worker.schedule.rule == "0 0 * * *" and not worker.schedule.run_on_start
    assert binary.schedule is not None and binary.schedule.overlap.value == "replace" and binary.schedule.run_on_start
    assert {("API", "max_memory_restart"), ("API", "env_production"), ("API", "instances"),
            ("bin", "cron_restart")} <= _losses(result)
    js_result, _, js_config = _import(tmp_path, "ecosystem.config.js", PM2_JS)
    assert js_config.processes[0].command == ("node", "./app.js")


def test_unreadable_input_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ecosystem.config.js"
    bad.write_text("module.exports = { apps: [{ name: 'x', script: 'x.js' }] }")
    with pytest.raises(ConfigError, match="not JSON; write it as JSON first"):
        read_source(bad)
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    with pytest.raises(ConfigError, match="cannot tell what kind of file"):
        read_source(unknown)
    empty = tmp_path / "Procfile"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no processes found"):
        read_source(empty)
    with pytest.raises(ConfigError, match="no such file"):
        read_source(tmp_path / "missing")


def test_names_pmtop_cannot_take_are_renamed_and_reported(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        processes:
          "my app":
            command: "true"
          "my-app":
            command: "true"
    """)
    result, _, config = _import(tmp_path, "pc.yaml", text)
    assert [p.name for p in config.processes] == ["my-app", "my-app-2"]
    assert ("my-app", "name") in _losses(result)
