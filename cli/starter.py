"""The commented starter `pmtop.toml` that `pmtop init` writes (a string, so no package data is needed).

The health check kinds are listed from the checks' own registry, so a new kind shows up here by itself.
"""

from __future__ import annotations

from typing import Final

from pmtop.core.checks import KINDS

_TEMPLATE: Final = '''\
# pmtop.toml: the processes pmtop supervises for this project.
#
#   pmtop                      dashboard (starts these processes, or attaches to a running daemon)
#   pmtop --headless --detach  the same as a background daemon; then `pmtop ps`, `pmtop logs web -f`, ...
#   pmtop add NAME -- CMD ARGS adds a process here; `pmtop rm NAME` removes it
#
# Durations are seconds or strings with a unit ("250ms", "2s", "5m", "6h").

# [daemon]                     # all optional
# instance = "default"         # isolates state, logs and the API port; one supervisor per instance
# host = "127.0.0.1"
# port = 19881                 # or "auto": the first free port from 19881 upwards
# stop_on_exit = true          # stop the processes when the supervisor exits

[defaults]                     # inherited by every [process.*] table
restart = "on-failure"         # "always" | "on-failure" | "no"
# backoff = ["1s", "2s", "4s", "8s", "16s", "30s"]   # delay before restart n; the last one repeats
# max_restarts = 5             # consecutive failed starts before the state "failed"
# reset_after = "5m"           # running this long resets the restart counter
# stop_signal = "TERM"
# stop_timeout = "10s"         # then SIGKILL to the whole process group
# log_max_bytes = "10MB"       # per stream file, then rotate
# log_backups = 3

# A static file server for this folder on http://127.0.0.1:8000/, checked over HTTP.
[process.web]
command = ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"]  # never run through a shell
cwd = "."                      # relative to this file's folder
env = { PYTHONUNBUFFERED = "1" }
# env_file = [".env"]          # dotenv files (relative to this file), read at start-up and `pmtop reload`;
                               # later files win, `env` wins over them
port = 8000                    # the port it listens on: shown before it binds, checked free before each
                               # start (held by another program: `failed`, naming it), given as $PORT
ready_log_line = "Serving HTTP on"  # `starting` until a line of its output matches (a regex); with a
                               # startup check below, both must pass
# autostart = true
# depends_on = ["db"]          # or { db = "healthy" }: "started" | "healthy" | "completed"

[process.web.health]           # optional; without it, a live PID counts as healthy
type = "http"                  # KIND_NAMES (each kind's keys are listed below)
url = "http://127.0.0.1:8000/"
interval = "5s"
timeout = "2s"
failures = 2                   # consecutive failures before it counts as unhealthy and is restarted
startup = { initial_delay = "200ms", interval = "500ms", max_attempts = 20, fail_action = "restart" }
KIND_KEYS
# [process.worker]
# command = "python3 worker.py --verbose"   # a string is split like a shell would, but never run by one
# restart = "always"
# depends_on = { web = "healthy" }
# replicas = 3                 # worker-1..worker-3, each with PMTOP_REPLICA=1..3; `pmtop scale worker 5`
# watch = { paths = ["src/**/*.py"], debounce = "500ms" }   # restart once per burst of changes

# [process.worker.health]      # a worker with no port to ask: it touches a file now and then
# type = "heartbeat"
# path = "worker.beat"         # relative to the worker's cwd
# max_age = "30s"              # not touched for longer: a failure (`failures` in a row: restarted)

# [process.api]                # a service that speaks systemd's sd_notify (READY=1, STATUS=, WATCHDOG=1)
# command = "python3 api.py"
# [process.api.health]
# type = "notify"              # pmtop gives it $NOTIFY_SOCKET; `starting` until it sends READY=1
# watchdog = "10s"             # WATCHDOG=1 must come at least this often (optional)

# [process.backup]             # a scheduled job: not run at start-up, each run in its history
# command = ["python3", "backup.py"]
# schedule = "30 2 * * *"      # 5-field cron in local time, "@daily", or "every 30s"
# overlap = "skip"             # a run still going at the next time: "skip" | "queue" | "replace"
# catch_up = true              # a time missed while pmtop was down runs once at start-up

# [hooks]                      # for every process (also per process: [process.NAME.hooks])
# on = ["failed", "unhealthy", "recovered"]
# command = ["notify-send", "pmtop: {name} {state}", "{reason}"]   # placeholders; never a shell
# url = "http://127.0.0.1:9000/pmtop"                               # POST of the status JSON

# Someone else's process can be watched too: `pmtop adopt NAME --pid PID [-- CMD ARGS...]`.
'''

STARTER: Final = _TEMPLATE.replace("KIND_NAMES", " | ".join(f'"{name}"' for name in KINDS)).replace(
    "KIND_KEYS", "".join(f'#   "{name}": {kind.example}\n' for name, kind in KINDS.items()))
