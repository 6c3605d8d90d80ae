#!/usr/bin/env python3
"""Side-by-side benchmark of process supervisors (supervisord, circus, pm2, pmtop).

This is pmtop's copy of shared/bench-peers/run.py with one metric added: `logs`, log capture
under a flood (a program printing --log-mb MiB as fast as it can; MB/s until all of it is in the
supervisor's log file, and the supervisor's CPU time for it), a `pmtop-b` adapter ($PMTOP_EXE_B: a
second build in the same run), and the API token on the pmtop adapter's requests (read from the
instance's token file, as every pmtop client does). Everything else is unchanged.

Run it with the venv interpreter (the harness needs psutil, nothing else
outside the stdlib):

    /tmp/anchors-venv/bin/python bench/run.py --quick          # ~3 min smoke pass
    /tmp/anchors-venv/bin/python bench/run.py                  # full pass (~14 min)
    /tmp/anchors-venv/bin/python bench/run.py --only supervisord,pm2 --n 50

Every measurement starts its own daemon in its own temp dir under /tmp,
measures, and stops everything it started (by PID) in a finally block.
Adapters run interleaved: round r runs A B C, round r+1 runs B C A, ...
The pmtop adapter follows shared/SPEC.md; it runs when $PMTOP_EXE (or a
`pmtop` on PATH) exists.  See bench/README.md for the metric definitions,
the pmtop adapter and the bars/2-perf-*, 3-perf-hung, 4-perf-ps scripts.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xmlrpc.client
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover
    sys.exit("bench/run.py needs psutil: /tmp/anchors-venv/bin/pip install psutil, "
             "then run it with /tmp/anchors-venv/bin/python")

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BENCH_VENV", "/tmp/anchors-venv"))
NPM_PREFIX = Path(os.environ.get("BENCH_NPM_PREFIX", "/tmp/anchors-npm"))
SLEEP_BIN = shutil.which("sleep") or "/bin/sleep"
perf = time.perf_counter
T_START = perf()


def log(msg: str) -> None:
    print(f"[{perf() - T_START:7.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------

def list_pids() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def proc_state(pid: int) -> str | None:
    """Single-letter state from /proc/PID/stat, or None when the PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    i = data.rfind(b")")
    return data[i + 2:i + 3].decode() if i >= 0 else None


def is_gone(pid: int) -> bool:
    s = proc_state(pid)
    return s is None or s in ("Z", "X")


def read_cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def read_environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def schedstat_ns(pid: int) -> int:
    """On-CPU time in ns summed over all threads (ns resolution, unlike
    the 10 ms clock ticks behind cpu_times)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_stat() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


@dataclasses.dataclass
class Program:
    name: str
    marker: str  # unique last argv element, e.g. "3600.1234560007"

    @property
    def argv(self) -> list[str]:
        return [SLEEP_BIN, self.marker]


def make_programs(n: int) -> tuple[str, list[Program]]:
    """N `sleep 3600.<tag><i>` programs.  GNU sleep takes the fraction, so
    each child still sleeps ~1 h, but its argv identifies it uniquely in
    /proc, which is how the harness finds children without asking the
    supervisor."""
    tag = random.randrange(10 ** 6)
    prefix = f"3600.{tag:06d}"
    return prefix, [Program(f"p{i:03d}", f"{prefix}{i:04d}") for i in range(n)]


class ProcTracker:
    """Finds this trial's managed children by their argv in /proc.

    One poll = listdir(/proc) + one cmdline read per PID that appeared since
    the tracker was created and has not yet been matched (a freshly forked
    child still shows its parent's argv until it execs, so such PIDs are
    re-read on each poll)."""

    def __init__(self, prefix: str):
        self.prefix = prefix.encode()
        self.sleep_name = os.path.basename(SLEEP_BIN).encode()
        self.known = list_pids()
        self.pending: set[int] = set()
        self.alive: dict[int, str] = {}   # pid -> marker
        self.ever: set[int] = set()

    def _match(self, pid: int) -> str | None:
        data = read_cmdline(pid)
        if not data or self.prefix not in data:
            return None
        parts = data.split(b"\0")
        if parts and parts[-1] == b"":
            parts.pop()
        if len(parts) >= 2 and os.path.basename(parts[0]) == self.sleep_name \
                and parts[-1].startswith(self.prefix):
            return parts[-1].decode()
        return None

    def poll(self) -> dict[int, str]:
        now = list_pids()
        new = now - self.known
        self.known = now
        if new:
            self.pending |= new
        if self.pending:
            for pid in list(self.pending):
                if pid not in now:
                    self.pending.discard(pid)
                    continue
                mk = self._match(pid)
                if mk is not None:
                    self.pending.discard(pid)
                    self.alive[pid] = mk
                    self.ever.add(pid)
        for pid in [p for p in self.alive if p not in now]:
            del self.alive[pid]
        return self.alive

    def pid_of(self, marker: str) -> int | None:
        for pid, mk in self.alive.items():
            if mk == marker and not is_gone(pid):
                return pid
        return None

    def distinct_alive(self) -> int:
        return len(set(self.alive.values()))


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over a unix socket (what supervisorctl does), stdlib only."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def make_connection(self, host):
        return _UnixHTTPConnection(self._path)


def free_loopback_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1") or ip.startswith("::ffff:127.")


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def run_quiet(argv, env=None, cwd=None, timeout=30.0) -> tuple[float, int, str]:
    t0 = perf()
    cp = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return perf() - t0, cp.returncode, (cp.stdout + cp.stderr).decode(errors="replace")


# --------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------

class Adapter:
    """One supervisor.  Subclasses implement write_config/start/view/
    status_argv/shutdown; the harness does the timing and the cleanup."""

    name = "base"
    label = None             # row label in tables (defaults to name)
    restart_config = ""      # what we configured for restart/backoff (RESULTS.md)
    hung_detection = ""      # metric 5 capability note (RESULTS.md)
    status_label = ""        # control-plane command as shown in RESULTS.md
    api_label = None         # in-process API call timed next to the CLI, if any
    supports_idle = True
    supports_ctl = True
    supports_hung_check = True     # SIGSTOP probe inside the first restart trial
    supports_health_probe = False  # dedicated hung trials with a health check (hung_trial)
    hung_probe = None              # set by Trial(hung=True) before write_config()
    supports_logs = False          # captures a program's stdout to a file we can watch (log_trial)
    logs_config = ""               # how the flood program's capture was configured (report)
    log_probe = None               # set by Trial(logs=True) before write_config()
    running_states: tuple[str, ...] = ("RUNNING",)
    view_poll_s = 0.05
    # Period of the supervisor's own polling loop, if it has one.  The gap
    # between kills is drawn from U(0.3, 0.3 + max(period, 0.5)) so that kills
    # land at a uniformly random phase of that loop (restarts happen on a
    # tick, so a fixed gap would phase-lock kill times to the loop).
    loop_period_s = 0.0

    def __init__(self, workdir: Path, programs: list[Program]):
        self.workdir = workdir
        self.programs = programs
        self.n = len(programs)
        self.popen: list[subprocess.Popen] = []
        self.out_path = workdir / "daemon.out"
        self._out = None

    # ---- static info
    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    @classmethod
    def version(cls) -> str:
        return "?"

    # ---- lifecycle
    def write_config(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def daemon_pids(self) -> list[int]:
        raise NotImplementedError

    def view(self) -> dict[str, tuple[str, int | None]] | None:
        """Supervisor's own view: program name -> (state, pid or None)."""
        return None

    def view_one(self, name: str) -> tuple[str, int | None] | None:
        v = self.view()
        return v.get(name) if v else None

    def wait_running(self, timeout: float) -> None:
        """Block until the supervisor itself reports all N programs running."""
        deadline = perf() + timeout
        last = None
        while True:
            v = self.view()
            if v is not None:
                up = sum(1 for p in self.programs
                         if p.name in v and v[p.name][0] in self.running_states)
                last = f"{up}/{self.n} in {self.running_states}"
                if up >= self.n:
                    return
            if perf() > deadline:
                raise TimeoutError(f"{self.name}: supervisor did not report all {self.n} "
                                   f"running within {timeout}s ({last})")
            self.check_alive()
            time.sleep(self.view_poll_s)

    def child_pids(self, tracker: ProcTracker) -> dict[str, int | None]:
        """PIDs of the managed children: from the supervisor's view when it
        has PIDs, else from /proc."""
        v = self.view() or {}
        out = {}
        for p in self.programs:
            pid = v.get(p.name, (None, None))[1]
            out[p.name] = pid if pid else tracker.pid_of(p.marker)
        return out

    def status_argv(self) -> list[str] | None:
        return None

    def ctl_env(self) -> dict | None:
        return None

    def api_call(self) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def notes(self) -> dict:
        """Extra facts for the trial's result (e.g. the daemon's own version)."""
        return {}

    def log_file(self) -> Path | None:
        """Where the flood program's stdout lands (None: not there yet)."""
        raise NotImplementedError

    def env_marker(self) -> bytes | None:
        """`VAR=value` that only processes descended from this trial's daemon
        carry in their environment (cleanup finds escaped helpers by it)."""
        return None

    # ---- helpers
    def _spawn(self, argv, env=None) -> subprocess.Popen:
        if self._out is None:
            self._out = open(self.out_path, "ab")
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                             stdout=self._out, stderr=subprocess.STDOUT,
                             cwd=self.workdir, env=env, start_new_session=True)
        self.popen.append(p)
        return p

    def check_alive(self) -> None:
        for p in self.popen:
            rc = p.poll()
            if rc is not None and rc != 0:
                raise RuntimeError(f"{self.name}: {p.args[0]} exited rc={rc}\n{self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.out_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def reap(self, final: bool = False) -> None:
        for p in self.popen:
            if p.poll() is None and final:
                try:
                    p.kill()  # our own child, by PID
                    p.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        if final and self._out is not None:
            self._out.close()
            self._out = None


def _sigterm_popen(p: subprocess.Popen | None) -> None:
    if p is not None and p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)


class SupervisordAdapter(Adapter):
    name = "supervisord"
    BIN = VENV / "bin" / "supervisord"
    CTL = VENV / "bin" / "supervisorctl"
    restart_config = ("`autorestart=true`, `startsecs=0` (a process is RUNNING as soon as it is "
                      "spawned, so a crash never counts as a failed start and never enters "
                      "BACKOFF; with startsecs=1 a crash within 1 s of a start would back off "
                      "1 s, 2 s, ...), `startretries=3` (unused), daemon run with `-n`, "
                      "stdout/stderr captured to AUTO log files in the temp dir")
    hung_detection = ("No. Only process exit is observed; a stopped/hung process stays RUNNING "
                      "forever. Add-on: superlance `httpok` event listener (separate package) "
                      "polls a URL on TICK_5/TICK_60 events and restarts the program.")
    status_label = "`supervisorctl -c CONF status`"
    loop_period_s = 1.0  # main loop: poll(timeout=1)
    api_label = "XML-RPC `getAllProcessInfo` over the unix socket, in-process"

    @classmethod
    def available(cls):
        ok = cls.BIN.exists() and cls.CTL.exists()
        return ok, "" if ok else f"{cls.BIN} not found (pip install supervisor into {VENV})"

    @classmethod
    def version(cls):
        return run_quiet([cls.BIN, "--version"])[2].strip()

    def write_config(self):
        w = self.workdir
        (w / "childlogs").mkdir()
        self.sock = w / "supervisor.sock"
        lines = [
            "[unix_http_server]", f"file={self.sock}", "",
            "[supervisord]", f"logfile={w}/supervisord.log", f"pidfile={w}/supervisord.pid",
            f"childlogdir={w}/childlogs", "nodaemon=true", "loglevel=info", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.sock}", "",
        ]
        for p in self.programs:
            lines += [f"[program:{p.name}]", f"command={shlex.join(p.argv)}",
                      "autostart=true", "autorestart=true", "startsecs=0", "startretries=3",
                      "stopwaitsecs=5", ""]
        if self.log_probe is not None:
            self.log_probe.write()
            lines += [f"[program:{self.log_probe.name}]", f"command={shlex.join(self.log_probe.argv)}",
                      "autostart=true", "autorestart=false", "startsecs=0",
                      f"stdout_logfile={self.log_probe.out_file}", "stdout_logfile_maxbytes=0",
                      f"stderr_logfile={self.log_probe.out_file}.err", "stderr_logfile_maxbytes=0", ""]
        self.conf = w / "supervisord.conf"
        self.conf.write_text("\n".join(lines))

    def start(self):
        self.proc = self._spawn([self.BIN, "-n", "-c", self.conf])

    def daemon_pids(self):
        return [self.proc.pid]

    def _rpc(self):
        return xmlrpc.client.ServerProxy("http://localhost",
                                         transport=_UnixTransport(str(self.sock)))

    def view(self):
        try:
            infos = self._rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return None
        return {i["name"]: (i["statename"], i["pid"] or None) for i in infos}

    def status_argv(self):
        return [str(self.CTL), "-c", str(self.conf), "status"]

    def api_call(self):
        self._rpc().supervisor.getAllProcessInfo()

    def shutdown(self):
        _sigterm_popen(self.proc)  # supervisord stops its children, then exits

    supports_logs = True
    logs_config = ("`stdout_logfile=FILE`, `stdout_logfile_maxbytes=0` (no rotation), stderr to "
                   "its own file")

    def log_file(self):
        return self.log_probe.out_file


class CircusAdapter(Adapter):
    name = "circus"
    CHECK_DELAY = 5.0   # the value circusd uses when the INI file does not set it
    BIN = VENV / "bin" / "circusd"
    CTL = VENV / "bin" / "circusctl"
    hung_detection = ("Not in core (a watcher only notices exits). Plugins: `WatchDog` kills a "
                      "process that stops sending UDP heartbeats (app must send them; "
                      "loop_rate*max_count); `HttpObserver` restarts a watcher when a URL fails "
                      "(its source passes `io_loop=` to tornado's AsyncHTTPClient, which "
                      "tornado>=5 rejects, so likely broken with the tornado 6 that pip installs; "
                      "not run here); `ResourceWatcher` acts on CPU/memory thresholds.")
    status_label = "`circusctl --endpoint ipc://... status`"
    running_states = ("active",)
    view_poll_s = 0.2

    @classmethod
    def _restart_config(cls):
        return (f"`respawn=true`, `warmup_delay=0`, `numprocesses=1` per watcher, "
                f"`check_delay={cls.CHECK_DELAY:g}` s (circusd reaps dead children only in its "
                f"periodic `manage_watchers`, every check_delay; there is no SIGCHLD handler), "
                f"check_flapping default (each program is killed at most once per trial, so it "
                f"never triggers), ipc:// endpoints in the temp dir, "
                f"`multicast_endpoint =` (disabled; by default circusd binds 0.0.0.0:12027 and "
                f"joins a multicast group), no statsd, child stdout not captured (circus default)")

    @classmethod
    def available(cls):
        ok = cls.BIN.exists() and cls.CTL.exists()
        return ok, "" if ok else f"{cls.BIN} not found (pip install circus into {VENV})"

    @classmethod
    def version(cls):
        return run_quiet([cls.BIN, "--version"])[2].strip()

    def write_config(self):
        w = self.workdir
        self.endpoint = f"ipc://{w}/endpoint.sock"
        lines = ["[circus]", f"endpoint = {self.endpoint}", f"pubsub_endpoint = ipc://{w}/pubsub.sock",
                 "multicast_endpoint =", "statsd = false", f"check_delay = {self.CHECK_DELAY:g}",
                 f"logoutput = {w}/circus.log", "loglevel = info", ""]
        for p in self.programs:
            lines += [f"[watcher:{p.name}]", f"cmd = {SLEEP_BIN}", f"args = {p.marker}",
                      "numprocesses = 1", "respawn = true", "warmup_delay = 0", ""]
        self.conf = w / "circus.ini"
        self.conf.write_text("\n".join(lines))

    def start(self):
        self.proc = self._spawn([self.BIN, self.conf])

    def daemon_pids(self):
        return [self.proc.pid]

    def _ctl(self, *args) -> dict | None:
        try:
            _, rc, out = run_quiet([self.CTL, "--endpoint", self.endpoint, "--json", *args], timeout=15)
            return json.loads(out[out.index("{"):out.rindex("}") + 1])
        except (ValueError, subprocess.TimeoutExpired, OSError):
            return None

    def view(self):
        d = self._ctl("status")
        if not d or d.get("status") != "ok":
            return None
        return {k: (v, None) for k, v in d.get("statuses", {}).items()}

    def view_one(self, name):
        st = self._ctl("status", name)
        pids = self._ctl("list", name)
        if not st or not pids:
            return None
        # `status NAME` answers {"status": "active", ...} (the watcher's state)
        state = st["statuses"].get(name) if "statuses" in st else st.get("status")
        return state, (pids.get("pids") or [None])[0]

    def status_argv(self):
        return [str(self.CTL), "--endpoint", self.endpoint, "status"]

    def shutdown(self):
        _sigterm_popen(self.proc)  # circusd: SIGTERM -> quit -> stop watchers


CircusAdapter.restart_config = CircusAdapter._restart_config()
CircusAdapter.loop_period_s = CircusAdapter.CHECK_DELAY


class CircusFastAdapter(CircusAdapter):
    """Same as circus, but polls every 0.1 s: shows the latency/idle-CPU trade-off."""
    name = "circus-fast"
    label = "circus (check_delay=0.1)"
    CHECK_DELAY = 0.1
    supports_ctl = False  # same CLI as circus; not worth the time


CircusFastAdapter.restart_config = CircusFastAdapter._restart_config()
CircusFastAdapter.loop_period_s = CircusFastAdapter.CHECK_DELAY


class PM2Adapter(Adapter):
    name = "pm2"
    BIN = NPM_PREFIX / "node_modules" / ".bin" / "pm2"
    restart_config = ("ecosystem JSON, fork mode, `interpreter: none`, `autorestart: true`, "
                      "`restart_delay: 0`, no `exp_backoff_restart_delay`, default `min_uptime` "
                      "(1000 ms) and `max_restarts` (16; each program is killed at most once per "
                      "trial). `PM2_HOME` and `HOME` point into the temp dir, "
                      "`PM2_NO_INTERACTION=true` (no pm2.io agent), logs in PM2_HOME/logs (default)")
    hung_detection = ("No liveness/health check in open-source PM2: a hung process stays "
                      "`online`. Related options only: `max_memory_restart`, `cron_restart`, "
                      "`wait_ready`/`listen_timeout` (start-up only).")
    status_label = "`pm2 jlist`"
    running_states = ("online",)
    view_poll_s = 0.3

    @classmethod
    def available(cls):
        ok = cls.BIN.exists() and shutil.which("node") is not None
        return ok, "" if ok else f"{cls.BIN} not found (npm install --prefix {NPM_PREFIX} pm2)"

    @classmethod
    def version(cls):
        # NB: never run `pm2 --version`: it spawns a daemon in ~/.pm2.
        pkg = NPM_PREFIX / "node_modules" / "pm2" / "package.json"
        v = json.loads(pkg.read_text())["version"]
        node = run_quiet(["node", "--version"])[2].strip()
        return f"{v} (node {node})"

    def env(self) -> dict:
        e = dict(os.environ)
        e.update(PM2_HOME=str(self.workdir / "pm2home"), HOME=str(self.workdir / "home"),
                 PM2_NO_INTERACTION="true")
        return e

    def write_config(self):
        (self.workdir / "home").mkdir()
        apps = [{"name": p.name, "script": SLEEP_BIN, "args": [p.marker], "interpreter": "none",
                 "exec_mode": "fork", "autorestart": True, "restart_delay": 0,
                 "cwd": str(self.workdir)} for p in self.programs]
        if self.log_probe is not None:
            self.log_probe.write()
            argv = self.log_probe.argv
            apps.append({"name": self.log_probe.name, "script": argv[0], "args": argv[1:],
                         "interpreter": "none", "exec_mode": "fork", "autorestart": False,
                         "cwd": str(self.workdir), "out_file": str(self.log_probe.out_file),
                         "error_file": f"{self.log_probe.out_file}.err", "merge_logs": True})
        self.conf = self.workdir / "ecosystem.json"
        self.conf.write_text(json.dumps({"apps": apps}, indent=1))
        self._god = None

    def start(self):
        self.cli = self._spawn([self.BIN, "start", self.conf], env=self.env())

    def daemon_pids(self):
        if self._god is None:
            f = self.workdir / "pm2home" / "pm2.pid"
            deadline = perf() + 15
            while self._god is None:
                try:
                    self._god = int(f.read_text().strip())
                except (OSError, ValueError):
                    if perf() > deadline:
                        raise RuntimeError(f"pm2: no {f}\n{self.log_tail()}")
                    time.sleep(0.02)
        return [self._god]

    def view(self):
        try:
            _, rc, out = run_quiet([self.BIN, "jlist"], env=self.env(), timeout=20)
            lst = json.loads(out[out.index("["):out.rindex("]") + 1])
        except (ValueError, subprocess.TimeoutExpired, OSError):
            return None
        return {a["name"]: (a.get("pm2_env", {}).get("status"), a.get("pid") or None) for a in lst}

    def status_argv(self):
        return [str(self.BIN), "jlist"]

    def ctl_env(self):
        return self.env()

    def shutdown(self):
        try:
            god = self.daemon_pids()[0]
        except RuntimeError:
            return
        if not is_gone(god):  # `pm2 kill` with no daemon would start one first
            subprocess.run([str(self.BIN), "kill"], env=self.env(), stdin=subprocess.DEVNULL,
                           stdout=self._out, stderr=subprocess.STDOUT, timeout=30)

    supports_logs = True
    logs_config = ("`out_file`/`error_file` set in the ecosystem file, `merge_logs: true`, no "
                   "timestamps (PM2's default), no pm2-logrotate")

    def log_file(self):
        return self.log_probe.out_file


# --------------------------------------------------------------------------
# pmtop, built from shared/SPEC.md: TOML config with a [daemon] table and
# one [process.NAME] table per program (§2), state and logs under
# $PMTOP_HOME (§4), `pmtop --headless --config FILE --port P` whose SIGTERM
# stops the managed processes (§5), GET /processes and /health (§6),
# `pmtop ps` finding the daemon through --port (§7).  The few things SPEC
# leaves open are marked ASSUMPTION; see bench/README.md.
# --------------------------------------------------------------------------

# Restart at once and forever, the counterpart of supervisord `startsecs=0`,
# circus `respawn`, PM2 `restart_delay: 0`: backoff "0s"; `retry_forever` so
# that repeated kills can never end in `failed`, and a `max_restarts` that no
# trial reaches (retry_forever would otherwise wait retry_forever_interval).
PMTOP_RESTART = {"restart": "always", "backoff": ["0s"], "max_restarts": 1_000_000,
                 "retry_forever": True}


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def pmtop_process_table(name: str, argv: list[str], health: dict | None = None) -> list[str]:
    """One `[process.NAME]` table (SPEC §2): command as a list (no shell,
    no shlex round trip), the restart policy above, an optional health table."""
    lines = [f"[process.{name}]", f"command = {toml_value(argv)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in PMTOP_RESTART.items()]
    if health:
        lines += ["", f"[process.{name}.health]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in health.items()]
    return lines + [""]


def pmtop_status(obj) -> dict | None:
    """The status object in an answer: the object itself when it has a
    `state`, else a nested status/process object merged over it."""
    if not isinstance(obj, dict):
        return None
    if "state" in obj:
        return obj
    for key in ("status", "process", "data", "result"):
        inner = obj.get(key)
        if isinstance(inner, dict) and "state" in inner:
            return {**obj, **inner}
    return None


def pmtop_entries(data) -> list[dict]:
    """Statuses from GET /processes (SPEC §6: "list of process statuses").
    Tolerated, since SPEC does not fix the envelope: a plain list, an object
    holding one list, or an object keyed by process name.
    ASSUMPTION: each status names its process under `name` (SPEC §3 lists
    the other fields; `name` is the key POST /processes takes) unless the
    answer is keyed by name."""
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if lists:
            data = next((v for v in lists if v and all(isinstance(x, dict) for x in v)), lists[0])
        elif data and all(isinstance(v, dict) for v in data.values()):
            data = [dict(v, name=v.get("name", k)) for k, v in data.items()]
        else:
            data = []
    if not isinstance(data, list):
        return []
    return [s for s in (pmtop_status(e) for e in data) if s is not None]


def pmtop_env(home: Path) -> dict:
    """Environment for every pmtop process the harness starts: all state under
    this PMTOP_HOME (SPEC §4), platformdirs' XDG dirs and HOME beside it, no
    PMTOP_CONFIG from the caller, loopback never proxied.  Creates PMTOP_HOME
    and HOME."""
    (home.parent / "userhome").mkdir(parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.pop("PMTOP_CONFIG", None)
    env["PMTOP_HOME"] = str(home)
    env["HOME"] = str(home.parent / "userhome")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        env[var] = str(home.parent / "xdg" / sub)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def run_probe(argv: list[str], env: dict, timeout: float) -> tuple[int | None, str]:
    """Run a short command in its own session; on timeout SIGKILL that
    session's process group (all of it started here).  rc None = timed out."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(10)
            rc = None
        out.seek(0)
        return rc, out.read().decode(errors="replace")


# Hung-service probe (metric 5): a program that proves progress by touching a
# heartbeat file every 0.1 s, and an exec health check that fails when the
# file is older than MAX_AGE.  A SIGSTOPped (alive, unresponsive) heartbeat
# program fails it.  NB: a stopped process keeps SIGTERM pending until it is
# continued, so the supervisor has to SIGCONT it (as systemd does after the
# stop signal) or SIGKILL it; stop_timeout stays at pmtop's default.
HEARTBEAT = r'''
import os, sys, time
path = sys.argv[1]
while True:
    with open(path, "a"):
        pass
    os.utime(path)
    time.sleep(0.1)
'''
BEAT_CHECK = r'''
import os, sys, time
try:
    age = time.time() - os.stat(sys.argv[1]).st_mtime
except OSError:
    sys.exit(1)
sys.exit(0 if age < float(sys.argv[2]) else 1)
'''


class HungProbe:
    """The heartbeat program and its health check, written into a trial's
    temp dir; the adapter adds it to its config as one more process."""
    name = "hung"
    MAX_AGE_S = 0.5
    HEALTH = {"type": "exec", "interval": "1s", "timeout": "500ms", "failures": 2}

    def __init__(self, workdir: Path, marker: str):
        self.marker = marker  # last argv element of the heartbeat program
        self.beat = workdir / "heartbeat.stamp"
        self.prog = workdir / "heartbeat.py"
        self.check = workdir / "beatcheck.py"

    def write(self) -> None:
        self.prog.write_text(HEARTBEAT)
        self.check.write_text(BEAT_CHECK)

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-I", "-S", str(self.prog), str(self.beat), self.marker]

    @property
    def health(self) -> dict:
        return {**self.HEALTH, "command": [sys.executable, "-I", "-S", str(self.check),
                                           str(self.beat), f"{self.MAX_AGE_S:g}"]}

    @classmethod
    def describe(cls) -> str:
        h = cls.HEALTH
        return (f"`{h['type']}` health check (heartbeat file touched every 0.1 s must be "
                f"< {cls.MAX_AGE_S:g} s old), interval {h['interval']}, timeout {h['timeout']}, "
                f"failures {h['failures']}")


# Log-capture probe (metric 6): waits for a go file, stamps its start (CLOCK_MONOTONIC, the
# harness's perf_counter clock too), writes MiB of 100-byte lines as fast as the pipe takes them,
# then an end marker, stamps its end and sleeps (the supervisors are told not to restart it).
FLOOD = r'''
import os, sys, time
total, go, stamp, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.01)
chunk = (b"x" * 99 + b"\n") * 655
with open(stamp, "w") as f:
    f.write(f"{time.monotonic()}\n")
written = 0
while written < total:
    written += os.write(1, chunk[: total - written])
os.write(1, f"END {marker}\n".encode())
with open(stamp, "a") as f:
    f.write(f"{time.monotonic()}\n")
time.sleep(3600)
'''
COPIER = r'''
import fcntl, os, sys
fcntl.fcntl(0, fcntl.F_SETPIPE_SZ, 262144)  # the pipe size pmtop gives a chatty process
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
while data := os.read(0, 262144):
    os.write(out, data)
'''


class LogProbe:
    """The flood program, written into a trial's temp dir; the adapter adds it to its config with
    its stdout going to a file (`out_file` where the supervisor lets us choose)."""
    name = "flood"

    def __init__(self, workdir: Path, marker: str, mib: int):
        self.marker = marker
        self.total = mib * 2 ** 20
        self.prog = workdir / "flood.py"
        self.go = workdir / "flood.go"
        self.stamp = workdir / "flood.stamp"
        self.out_file = workdir / "flood.out.log"

    def write(self) -> None:
        self.prog.write_text(FLOOD)

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-I", "-S", str(self.prog), str(self.total), str(self.go),
                str(self.stamp), self.marker]

    @property
    def end(self) -> bytes:
        return f"END {self.marker}\n".encode()


def file_ends_with(path: Path | None, tail: bytes) -> bool:
    if path is None:
        return False
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < len(tail):
                return False
            f.seek(size - len(tail))
            return f.read() == tail
    except OSError:
        return False


def read_stamps(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


class MarkerWatch:
    """PIDs, born after this object, whose argv ends with one exact marker
    (any executable).  Like ProcTracker, a PID that does not match yet is
    re-read until it exits, since a fork shows its parent's argv until exec."""

    def __init__(self, marker: str):
        self.marker = marker.encode()
        self.known = list_pids()
        self.pending: set[int] = set()
        self.found: set[int] = set()

    def poll(self) -> set[int]:
        now = list_pids()
        self.pending |= now - self.known
        self.known = now
        for pid in list(self.pending):
            data = read_cmdline(pid) if pid in now else None
            if data is None:
                self.pending.discard(pid)
            elif data.rstrip(b"\0").split(b"\0")[-1] == self.marker:
                self.pending.discard(pid)
                self.found.add(pid)
        return {p for p in self.found if p in now and not is_gone(p)}


class PmtopAdapter(Adapter):
    name = "pmtop"
    running_states = ("running",)  # SPEC §3
    restart_config = ("`restart = \"always\"`, `backoff = [\"0s\"]`, `retry_forever = true`, "
                      "`max_restarts = 1000000` in every `[process.NAME]` table (SPEC §2: no "
                      "delay, and no kill can lead to `failed`), command as a TOML list, "
                      "`[daemon] host = \"127.0.0.1\"`, `--port` = a free port, `PMTOP_HOME` (and "
                      "HOME/XDG dirs) in the temp dir, `--standalone` when `pmtop --help` lists it "
                      "(no watcher partner), child output to pmtop's per-run log files (its default)")
    hung_detection = ("Yes: `[process.NAME.health]` http / tcp / exec checks with `interval`, "
                      "`timeout`, `failures`; after `failures` consecutive failures the process "
                      "is restarted (SPEC §2, §3). Measured in dedicated trials: "
                      + HungProbe.describe() + ".")
    status_label = "`pmtop ps --port P`"
    api_label = "HTTP `GET /processes` on 127.0.0.1, in-process"
    view_poll_s = 0.05
    loop_period_s = 0.0           # SPEC §3: exit is noticed at once, no polling interval
    supports_hung_check = False   # the in-trial SIGSTOP probe has no health check to find it
    supports_health_probe = True  # dedicated hung trials instead (hung_trial)
    _help: dict[str, str] = {}

    # ---- static info
    @classmethod
    def exe(cls) -> tuple[str | None, str]:
        """$PMTOP_EXE, else `pmtop` on PATH."""
        env_exe = os.environ.get("PMTOP_EXE")
        if env_exe:
            if os.path.isfile(env_exe) and os.access(env_exe, os.X_OK):
                return os.path.abspath(env_exe), ""
            return None, f"PMTOP_EXE={env_exe} is not an executable file"
        path = shutil.which("pmtop")
        if path:
            return path, ""
        return None, ("no pmtop executable: PMTOP_EXE is not set and there is no `pmtop` on PATH "
                      "(install a checkout with acceptance/setup.sh, then "
                      "PMTOP_EXE=/tmp/acc-venv/bin/pmtop)")

    @classmethod
    def available(cls):
        exe, why = cls.exe()
        return exe is not None, why

    @classmethod
    def _probe(cls, *args: str, timeout: float = 15.0) -> tuple[int | None, str]:
        with tempfile.TemporaryDirectory(prefix="bench-pmtop-probe-", dir="/tmp") as d:
            return run_probe([cls.exe()[0], *args], pmtop_env(Path(d) / "home"), timeout)

    @classmethod
    def daemon_extra_args(cls) -> list[str]:
        """`--standalone` (SPEC §9: no watcher partner) only if `pmtop --help` lists it."""
        exe = cls.exe()[0]
        if exe not in cls._help:
            cls._help[exe] = cls._probe("--help")[1]
        return ["--standalone"] if "--standalone" in cls._help[exe] else []

    @classmethod
    def version(cls):
        # ASSUMPTION: SPEC does not define `pmtop --version`; if it fails, the
        # version from GET /health is still recorded per trial (daemon_version).
        rc, out = cls._probe("--version")
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        v = lines[0][:80] if rc == 0 and lines else f"? (`pmtop --version` rc={rc})"
        extra = " ".join(cls.daemon_extra_args())
        return f"{v} ({cls.exe()[0]}{', ' + extra if extra else ''})"

    # ---- lifecycle
    def env(self) -> dict:
        if self._env is None:
            self._env = pmtop_env(self.home)
        return self._env

    def env_marker(self) -> bytes | None:
        return f"PMTOP_HOME={self.home}".encode()

    def write_config(self):
        self.home = self.workdir / "home"
        self._env = None
        self.env()  # creates PMTOP_HOME and HOME
        self.extra_args = self.daemon_extra_args()  # probed now, not inside a timed start
        self._ps_argv = None
        self.port = None
        self._api_token = ""
        lines = ["[daemon]", f"host = {toml_str('127.0.0.1')}", "stop_on_exit = true", ""]
        for p in self.programs:
            lines += pmtop_process_table(p.name, p.argv)
        if self.hung_probe is not None:
            self.hung_probe.write()
            lines += pmtop_process_table(self.hung_probe.name, self.hung_probe.argv,
                                         self.hung_probe.health)
        if self.log_probe is not None:
            self.log_probe.write()
            lines += [f"[process.{self.log_probe.name}]",
                      f"command = {toml_value(self.log_probe.argv)}", 'restart = "no"',
                      f'log_max_bytes = "{self.log_probe.total * 2}B"', ""]
        self.conf = self.workdir / "pmtop.toml"
        self.conf.write_text("\n".join(lines))

    def start(self):
        self.port = free_loopback_port()
        self.proc = self._spawn([self.exe()[0], "--headless", "--config", self.conf,
                                 "--port", self.port, *self.extra_args], env=self.env())

    def daemon_pids(self):
        return [self.proc.pid]

    def check_alive(self):
        # the daemon runs in the foreground: any exit before shutdown is a failure
        rc = self.proc.poll() if getattr(self, "proc", None) else None
        if rc is not None:
            raise RuntimeError(f"pmtop: daemon exited rc={rc} before being stopped\n"
                               f"{self.log_tail()}")

    def _token(self) -> str:
        """The API token, read from the instance's token file as every pmtop client does (every
        request but /alive and /health needs it); empty until the daemon has written it."""
        if not getattr(self, "_api_token", ""):
            try:
                self._api_token = (self.home / "state" / "default" / "token").read_text().strip()
            except OSError:
                return ""
        return self._api_token

    def _get(self, path: str, timeout: float = 5.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Accept": "application/json"}
        if token := self._token():
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise http.client.HTTPException(f"GET {path} -> {resp.status}: {body[:200]!r}")
        return json.loads(body)

    @staticmethod
    def _pid(st: dict) -> int | None:
        pid = st.get("pid")
        return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None

    def view(self):
        if self.port is None:
            return None
        try:
            entries = pmtop_entries(self._get("/processes"))
        except (OSError, ValueError, http.client.HTTPException):
            return None
        return {str(e.get("name")): (e.get("state"), self._pid(e)) for e in entries}

    def status_of(self, name: str) -> dict | None:
        """GET /processes/NAME as a status dict, or None."""
        try:
            return pmtop_status(self._get(f"/processes/{name}"))
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def view_one(self, name):
        st = self.status_of(name)
        return (st.get("state"), self._pid(st)) if st else None

    def notes(self) -> dict:
        """What the daemon says about itself (GET /health, SPEC §6)."""
        try:
            h = self._get("/health")
        except (OSError, ValueError, http.client.HTTPException) as e:
            return {"daemon_health": f"GET /health failed: {e}"}
        if not isinstance(h, dict):
            return {"daemon_health": f"unexpected /health answer {h!r:.100}"}
        out = {"daemon_version": h.get("version"), "daemon_argv": [str(a) for a in self.proc.args]}
        if h.get("service") != "pmtop" or h.get("pid") not in (None, self.proc.pid):
            out["daemon_health"] = (f"/health says service={h.get('service')!r} "
                                    f"pid={h.get('pid')!r}, expected 'pmtop' pid={self.proc.pid}")
        return out

    def status_argv(self):
        """`pmtop ps --port P` (SPEC §7).  SPEC does not fix where --port goes:
        if the parser rejects it after the subcommand, use it before."""
        if self._ps_argv is None:
            exe, env = self.exe()[0], self.env()
            first = [exe, "ps", "--port", str(self.port)]
            self._ps_argv = first
            try:
                _, rc, out = run_quiet(first, env=env, cwd=self.workdir)
                if rc != 0 and re.search(r"unrecognized arguments|no such option|usage:", out, re.I):
                    alt = [exe, "--port", str(self.port), "ps"]
                    if run_quiet(alt, env=env, cwd=self.workdir)[1] == 0:
                        self._ps_argv = alt
            except subprocess.TimeoutExpired:
                pass
        return self._ps_argv

    def ctl_env(self):
        return self.env()

    def api_call(self):
        self._get("/processes")

    supports_logs = True
    logs_config = ("its per-run `stdout.log` (SPEC §3), `log_max_bytes` = twice the flood (no "
                   "rotation during it)")

    def log_file(self):
        found = sorted(self.home.glob(f"log/*/{self.log_probe.name}/*/stdout.log"))
        return found[-1] if found else None

    def shutdown(self):
        # SPEC §5: SIGTERM stops the managed processes (stop_on_exit = true),
        # closes the server and removes the PID file.  The harness SIGKILLs
        # any survivor by PID afterwards either way.
        _sigterm_popen(self.proc)


class PmtopBAdapter(PmtopAdapter):
    """A second pmtop build ($PMTOP_EXE_B), to compare two builds with the same instrument in the
    same run (pmtop's copy only): `--only pmtop,pmtop-b,floor`."""
    name = "pmtop-b"
    label = "pmtop (B: $PMTOP_EXE_B)"

    @classmethod
    def exe(cls) -> tuple[str | None, str]:
        env_exe = os.environ.get("PMTOP_EXE_B")
        if env_exe and os.path.isfile(env_exe) and os.access(env_exe, os.X_OK):
            return os.path.abspath(env_exe), ""
        return None, "PMTOP_EXE_B is not set to an executable (a second pmtop build to compare)"


# --------------------------------------------------------------------------
# floor: not a supervisor, the smallest thing that respawns children
# --------------------------------------------------------------------------

RESPAWNER = r'''
import json, os, signal, subprocess, sys
cmds = json.load(open(sys.argv[1]))
children = {}
def spawn(i):
    p = subprocess.Popen(cmds[i])
    children[p.pid] = (i, p)
def stop(*_):
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
for i in range(len(cmds)):
    spawn(i)
while True:
    pid, status = os.wait()
    entry = children.pop(pid, None)
    if entry is not None:
        entry[1].returncode = status
        spawn(entry[0])
'''


class FloorAdapter(Adapter):
    name = "floor"
    label = "floor: 20-line Python respawner (os.wait + Popen)"
    restart_config = "blocking `os.wait()`, respawn with `subprocess.Popen` immediately"
    supports_idle = False
    supports_ctl = False
    supports_hung_check = False

    @classmethod
    def version(cls):
        return f"Python {platform.python_version()}"

    def write_config(self):
        self.conf = self.workdir / "cmds.json"
        self.conf.write_text(json.dumps([p.argv for p in self.programs]))
        self.script = self.workdir / "respawner.py"
        self.script.write_text(RESPAWNER)

    def start(self):
        self.proc = self._spawn([sys.executable, self.script, self.conf])

    def daemon_pids(self):
        return [self.proc.pid]

    def wait_running(self, timeout):
        return None  # no view of its own; the /proc check already passed

    def shutdown(self):
        _sigterm_popen(self.proc)


ADAPTERS = {c.name: c for c in (SupervisordAdapter, CircusAdapter, CircusFastAdapter,
                                PM2Adapter, PmtopAdapter, PmtopBAdapter, FloorAdapter)}
DEFAULT_ORDER = ["supervisord", "circus", "circus-fast", "pm2", "pmtop"]


def label_of(name: str) -> str:
    c = ADAPTERS[name]
    return c.label or c.name


# --------------------------------------------------------------------------
# trial = one daemon lifetime in its own temp dir, always cleaned up
# --------------------------------------------------------------------------

class Trial:
    def __init__(self, cls, n: int, args, hung: bool = False, logs: bool = False):
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{cls.name}-", dir="/tmp"))
        self.prefix, self.programs = make_programs(n)
        self.n = n
        self.adapter: Adapter = cls(self.workdir, self.programs)
        if hung:
            self.adapter.hung_probe = HungProbe(self.workdir, f"{self.prefix}hung")
        if logs:
            self.adapter.log_probe = LogProbe(self.workdir, f"{self.prefix}flood", args.log_mb)
        self.tracker: ProcTracker | None = None
        self.seen: dict[int, psutil.Process] = {}
        self.shutdown_s: float | None = None

    def __enter__(self):
        try:
            self.adapter.write_config()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()
        return False

    def start(self) -> float:
        self.tracker = ProcTracker(self.prefix)
        t0 = perf()
        self.adapter.start()
        return t0

    def wait_all_alive(self, timeout: float, interval: float = 0.002) -> float:
        deadline = perf() + timeout
        while True:
            self.tracker.poll()
            if self.tracker.distinct_alive() >= self.n:
                return perf()
            if perf() > deadline:
                raise TimeoutError(f"{self.adapter.name}: only {self.tracker.distinct_alive()}/"
                                   f"{self.n} children alive after {timeout}s\n{self.adapter.log_tail()}")
            self.adapter.check_alive()
            time.sleep(interval)

    def daemon_procs(self) -> dict[int, psutil.Process]:
        """The supervisor's own processes: daemon root(s) and any helper
        descendants, excluding the managed children."""
        out = {}
        for pid in self.adapter.daemon_pids():
            try:
                root = psutil.Process(pid)
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            for p in procs:
                if p.pid in (self.tracker.alive if self.tracker else {}):
                    continue
                try:
                    cmd = p.cmdline()
                except psutil.Error:
                    continue
                if cmd and self.prefix in cmd[-1]:
                    continue
                out[p.pid] = p
        self.seen.update(out)
        return out

    def check_view_pids(self) -> str:
        try:
            v = self.adapter.view()
        except Exception as e:  # noqa: BLE001
            return f"view failed: {e}"
        if not v or not any(pid for _, pid in v.values()):
            return "n/a (supervisor view has no PIDs; /proc used)"
        self.tracker.poll()
        bad = [p.name for p in self.programs
               if (v.get(p.name) or (None, None))[1] != self.tracker.pid_of(p.marker)]
        return "ok" if not bad else f"MISMATCH for {len(bad)}: {bad[:5]}"

    def _everything_gone(self) -> bool:
        for pid in self.seen:
            if not is_gone(pid):
                return False
        for p in self.adapter.popen:
            if p.poll() is None:
                return False
        self.tracker.poll()
        return all(is_gone(pid) for pid in self.tracker.alive)

    def teardown(self) -> None:
        try:
            if self.tracker is not None:
                try:
                    self.daemon_procs()  # remember helpers so they can be killed by PID
                except Exception:  # noqa: BLE001
                    pass
                t0 = perf()
                try:
                    self.adapter.shutdown()
                except Exception as e:  # noqa: BLE001
                    log(f"  {self.adapter.name}: shutdown error: {e!r}")
                deadline = t0 + self.args.stop_timeout
                while perf() < deadline:
                    if self._everything_gone():
                        self.shutdown_s = perf() - t0
                        break
                    time.sleep(0.01)
                else:
                    log(f"  {self.adapter.name}: not stopped after {self.args.stop_timeout}s; "
                        f"killing by PID")
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        victims: dict[int, psutil.Process] = dict(self.seen)
        pfx, wd = self.prefix.encode(), str(self.workdir).encode()
        try:
            env_mark = self.adapter.env_marker()
        except Exception:  # noqa: BLE001 - e.g. write_config never ran
            env_mark = None
        # anything still carrying this trial's argv marker or temp dir path (or
        # the adapter's private environment marker) is ours
        for pid in list_pids():
            if pid == os.getpid():
                continue
            cmd = read_cmdline(pid)
            if (cmd and (pfx in cmd or wd in cmd)) or \
                    (env_mark and b"\0" + env_mark + b"\0" in b"\0" + read_environ(pid)):
                try:
                    victims[pid] = psutil.Process(pid)
                except psutil.Error:
                    pass
        killed = []
        for pid, p in victims.items():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    p.kill()  # psutil refuses if the PID was reused
                    killed.append(pid)
            except psutil.Error:
                pass
        self.adapter.reap(final=True)
        if killed:
            log(f"  {self.adapter.name}: force-killed leftover PIDs {killed}")
            psutil.wait_procs([victims[k] for k in killed], timeout=5)
        if not self.args.keep_tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------

def popen_floor(samples: int) -> list[float]:
    """Bare fork+exec: wall time of subprocess.Popen(['sleep', ...]) in the
    harness itself (Popen returns once exec has succeeded)."""
    prefix, progs = make_programs(samples)
    out = []
    for p in progs:
        t0 = perf()
        child = subprocess.Popen(p.argv)
        out.append((perf() - t0) * 1000)
        child.kill()
        child.wait()
    return out


def kill_and_wait_restart(tracker: ProcTracker, marker: str, old_pid: int,
                          timeout: float, interval: float) -> float | None:
    """SIGKILL old_pid; return seconds until a new PID running this program's
    argv is visible in /proc (exec done), or None on timeout."""
    tracker.poll()
    t0 = perf()
    os.kill(old_pid, signal.SIGKILL)
    deadline = t0 + timeout
    while True:
        tracker.poll()
        for pid, mk in tracker.alive.items():
            if mk == marker and pid != old_pid:
                return perf() - t0
        if perf() > deadline:
            return None
        time.sleep(interval)


def hung_check(t: Trial, wait_s: float) -> dict:
    """SIGSTOP one child (alive but unresponsive), wait, and ask the
    supervisor what it thinks.  Without a health check it cannot notice."""
    prog = t.programs[-1]
    t.tracker.poll()
    pid = t.tracker.pid_of(prog.marker)
    if pid is None:
        return {"error": "child not found"}
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(wait_s)
        t.tracker.poll()
        same = t.tracker.pid_of(prog.marker) == pid and proc_state(pid) == "T"
        view = t.adapter.view_one(prog.name)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    return {"wait_s": wait_s, "same_pid_still_stopped": same,
            "supervisor_state": view[0] if view else None,
            "supervisor_pid": view[1] if view else None, "detected": not same}


def restart_trial(cls, args, rep: int, r: dict, kills: int | None = None) -> None:
    """`kills` overrides args.kills (0: only the hung probe of rep 0)."""
    kills = args.kills if kills is None else kills
    with Trial(cls, args.restart_n, args) as t:
        t.start()
        t.wait_all_alive(args.start_timeout)
        t.adapter.wait_running(args.start_timeout)
        r["view_pids"] = t.check_view_pids()
        r.update(t.adapter.notes())
        # random extra settle: the first kill must not sit at a fixed phase
        # relative to the daemon's start (and hence to its polling ticks)
        time.sleep(args.restart_settle + random.uniform(0, max(cls.loop_period_s, 0.5)))
        for k in range(kills):
            prog = t.programs[k % t.n]
            t.tracker.poll()
            pid = t.tracker.pid_of(prog.marker)
            if pid is None:
                r["errors"].append(f"{prog.name}: no live PID before kill")
                continue
            lat = kill_and_wait_restart(t.tracker, prog.marker, pid, args.restart_timeout,
                                        args.poll_interval)
            if lat is None:
                r["timeouts"] += 1
            else:
                r["samples_ms"].append(lat * 1000)
            # settle, then kill at a random phase of the supervisor's loop
            time.sleep(0.3 + random.uniform(0, max(cls.loop_period_s, 0.5)))
        if args.do_hung and cls.supports_hung_check and rep == 0:
            r["hung"] = hung_check(t, args.hung_wait)
    r["shutdown_s"] = t.shutdown_s


def lifecycle_trial(cls, n: int, args, r: dict) -> None:
    """Bulk start, then idle CPU/RSS, then control-plane latency, then shutdown."""
    with Trial(cls, n, args) as t:
        t0 = t.start()
        t1 = t.wait_all_alive(args.start_timeout)
        r["bulk_start_s"] = t1 - t0
        t.adapter.wait_running(args.start_timeout)
        r["supervisor_ready_s"] = perf() - t0
        r["view_pids"] = t.check_view_pids()
        r.update(t.adapter.notes())
        if args.do_idle and cls.supports_idle:
            time.sleep(args.settle)
            procs = t.daemon_procs()
            r["daemon_procs"] = sorted(f"{p.pid}:{p.name()}" for p in procs.values())
            socks, nonlocal_socks = [], []
            for p in procs.values():
                try:
                    for c in p.net_connections(kind="inet"):
                        desc = (f"{p.name()} {c.laddr.ip}:{c.laddr.port} -> "
                                f"{f'{c.raddr.ip}:{c.raddr.port}' if c.raddr else '-'} {c.status}")
                        socks.append(desc)
                        if not all(_is_loopback(a.ip) for a in (c.laddr, c.raddr) if a):
                            nonlocal_socks.append(desc)
                except psutil.Error:
                    pass
            r["inet_sockets"] = socks
            r["non_loopback_sockets"] = nonlocal_socks
            before = {}
            for pid, p in procs.items():
                try:
                    ct = p.cpu_times()
                    before[pid] = (ct.user + ct.system, schedstat_ns(pid))
                except psutil.Error:
                    pass
            time.sleep(args.idle_window)
            cpu = sched = rss = pss = 0.0
            for pid, p in procs.items():
                try:
                    ct = p.cpu_times()
                    s1 = schedstat_ns(pid)
                    mi = p.memory_full_info()
                except psutil.Error:
                    continue
                if pid in before:
                    cpu += ct.user + ct.system - before[pid][0]
                    sched += (s1 - before[pid][1]) / 1e9
                rss += mi.rss
                pss += mi.pss
            r.update(idle_window_s=args.idle_window, idle_cpu_s=cpu, idle_sched_s=sched,
                     rss_mib=rss / 2 ** 20, pss_mib=pss / 2 ** 20)
            new = set(t.daemon_procs()) - set(procs)
            if new:
                r["daemon_procs_new_during_window"] = sorted(new)
            t.tracker.poll()
            r["children_alive_after_idle"] = t.tracker.distinct_alive()
        if args.do_ctl and cls.supports_ctl:
            argv = t.adapter.status_argv()
            if argv:
                env = t.adapter.ctl_env()
                _, _, out = run_quiet(argv, env=env, cwd=t.workdir)  # warm-up, not counted
                r["ctl_argv"] = [str(a) for a in argv]
                r["ctl_lists_all"] = all(p.name in out for p in t.programs)
                times, rcs = [], set()
                for _ in range(args.ctl_runs):
                    dt, rc, _ = run_quiet(argv, env=env, cwd=t.workdir)
                    times.append(dt * 1000)
                    rcs.add(rc)
                r["ctl_ms"] = times
                r["ctl_rc"] = sorted(rcs)
            if cls.api_label:
                t.adapter.api_call()
                api = []
                for _ in range(args.api_runs):
                    a0 = perf()
                    t.adapter.api_call()
                    api.append((perf() - a0) * 1000)
                r["api_ms"] = api
    r["shutdown_s"] = t.shutdown_s


def hung_trial(cls, args, rep: int, r: dict) -> None:
    """Adapters with health checks (pmtop): N sleeps plus one heartbeat
    program with a health check (HungProbe).  SIGSTOP the heartbeat program
    (alive, unresponsive) and time until the supervisor has ended it and a
    new PID with its argv has exec'd.  /proc is polled every 5 ms, the
    supervisor's view every 0.1 s (states seen are recorded)."""
    with Trial(cls, args.hung_n, args, hung=True) as t:
        probe = t.adapter.hung_probe
        r["check"] = probe.describe()
        t.start()
        t.wait_all_alive(args.start_timeout)
        t.adapter.wait_running(args.start_timeout)
        r.update(t.adapter.notes())

        def up():
            st = t.adapter.status_of(probe.name) or {}
            pid = t.adapter._pid(st)
            cmd = read_cmdline(pid) if pid else None
            ok = (st.get("state") in t.adapter.running_states and st.get("health") in (None, "healthy")
                  and cmd is not None and cmd.rstrip(b"\0").split(b"\0")[-1] == probe.marker.encode())
            return pid if ok else None
        deadline = perf() + args.start_timeout
        while (pid := up()) is None:
            if perf() > deadline:
                raise TimeoutError(f"{cls.name}: {probe.name} not running and healthy within "
                                   f"{args.start_timeout}s: {t.adapter.status_of(probe.name)}")
            t.adapter.check_alive()
            time.sleep(0.05)
        # stop it at a random phase of the check interval
        time.sleep(args.restart_settle + random.uniform(0, 1.0))
        watch = MarkerWatch(probe.marker)
        states, last = [], None
        r.update(stopped_pid=pid, noticed_s=None, gone_s=None, restart_s=None, timeout=False)
        t0 = perf()
        os.kill(pid, signal.SIGSTOP)
        try:
            next_view = t0
            while True:
                now = perf()
                if r["gone_s"] is None and is_gone(pid):
                    r["gone_s"] = now - t0
                if r["restart_s"] is None and watch.poll() - {pid}:
                    r["restart_s"] = now - t0
                    r["new_pid"] = min(watch.poll() - {pid})
                if now >= next_view:
                    st = t.adapter.status_of(probe.name) or {}
                    cur = (st.get("state"), st.get("health"), t.adapter._pid(st))
                    if cur != last:
                        states.append([round(perf() - t0, 2), *cur])
                        last = cur
                    fine = cur[0] in t.adapter.running_states and cur[1] in (None, "healthy") \
                        and cur[2] == pid
                    if r["noticed_s"] is None and st and not fine:
                        r["noticed_s"] = perf() - t0  # the supervisor's view changed
                    next_view = now + 0.1
                if r["gone_s"] is not None and r["restart_s"] is not None:
                    break
                if now - t0 > args.hung_timeout:
                    r["timeout"] = True
                    break
                time.sleep(0.005)
        finally:
            if r["gone_s"] is None and not is_gone(pid):  # never seen gone: still our child
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        # does the supervisor's own view catch up with the new PID?
        end = perf() + 2.0
        while r.get("new_pid") and perf() < end:
            st = t.adapter.status_of(probe.name) or {}
            cur = (st.get("state"), st.get("health"), t.adapter._pid(st))
            if cur != last:
                states.append([round(perf() - t0, 2), *cur])
                last = cur
            if cur[2] == r["new_pid"] and cur[0] in t.adapter.running_states:
                break
            time.sleep(0.05)
        r["view_shows_new_pid"] = bool(last and r.get("new_pid") and last[2] == r["new_pid"])
        r["states_seen"] = states
        r["detected"] = r["gone_s"] is not None


def log_trial(cls, args, rep: int, r: dict) -> None:
    """N sleeps plus the flood program, which waits for its go file. Once the supervisor says all
    are running (and a settle), the harness creates the go file; the program stamps its start and
    floods. The harness polls the end of the supervisor's log file every 2 ms for the end marker:
    MB/s = MiB / (marker on disk - start stamp). Daemon CPU (schedstat) over the same span."""
    with Trial(cls, args.logs_n, args, logs=True) as t:
        probe = t.adapter.log_probe
        t.start()
        t.wait_all_alive(args.start_timeout)
        t.adapter.wait_running(args.start_timeout)
        r.update(t.adapter.notes())
        time.sleep(args.restart_settle)
        procs = t.daemon_procs()
        cpu0 = sum(schedstat_ns(pid) for pid in procs)
        probe.go.write_text("go")
        deadline = perf() + args.logs_timeout
        while not read_stamps(probe.stamp):
            if perf() > deadline:
                raise TimeoutError(f"{cls.name}: the flood program never started")
            t.adapter.check_alive()
            time.sleep(0.002)
        start = read_stamps(probe.stamp)[0]
        while not file_ends_with(t.adapter.log_file(), probe.end):
            if perf() > deadline:
                raise TimeoutError(f"{cls.name}: the end marker never reached the log file "
                                   f"{t.adapter.log_file()}")
            time.sleep(0.002)
        done = time.monotonic()
        cpu1 = sum(schedstat_ns(pid) for pid in procs)
        stamps = read_stamps(probe.stamp)
        mib = probe.total / 2 ** 20
        r.update(mb_s=mib / (done - start), seconds=done - start, daemon_cpu_s=(cpu1 - cpu0) / 1e9,
                 writer_s=(stamps[1] - start) if len(stamps) > 1 else None,
                 log_file=str(t.adapter.log_file()))
    r["shutdown_s"] = t.shutdown_s


def log_floor(args) -> dict:
    """The same flood into a 10-line Python pipe-to-file copier (256 KiB pipe): what the machine allows."""
    work = Path(tempfile.mkdtemp(prefix="bench-logfloor-", dir="/tmp"))
    probe = LogProbe(work, "floor", args.log_mb)
    probe.write()
    probe.go.write_text("go")
    copier = subprocess.Popen([sys.executable, "-c", COPIER, str(probe.out_file)], stdin=subprocess.PIPE,
                              start_new_session=True)
    writer = subprocess.Popen(probe.argv, stdout=copier.stdin, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    copier.stdin.close()
    try:
        deadline = perf() + args.logs_timeout
        while not read_stamps(probe.stamp) or not file_ends_with(probe.out_file, probe.end):
            if perf() > deadline:
                raise TimeoutError("floor: the flood did not arrive")
            time.sleep(0.002)
        done = time.monotonic()
        start = read_stamps(probe.stamp)[0]
        return {"mb_s": probe.total / 2 ** 20 / (done - start), "seconds": done - start}
    finally:
        writer.kill()  # our own children, by PID
        writer.wait()
        copier.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def rounds(names: list[str], reps: int):
    """Interleave: round 0 = A B C, round 1 = B C A, ... (rotation also
    balances any 'runs first / runs after X' effect)."""
    for rep in range(reps):
        k = rep % len(names) if names else 0
        yield rep, names[k:] + names[:k]


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

def st(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def fmt(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def fmt_st(s, nd=1, unit=""):
    if not s:
        return "–", "–"
    return f"{s['median']:.{nd}f}{unit}", f"{s['min']:.{nd}f} – {s['max']:.{nd}f}"


def machine_info() -> dict:
    cpu_model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "mem_gib": round(psutil.virtual_memory().total / 2 ** 30, 1),
        "os": (platform.freedesktop_os_release().get("PRETTY_NAME", "?")
               if hasattr(platform, "freedesktop_os_release") else "?"),
        "python": f"{platform.python_version()} ({sys.executable})",
        "sleep": SLEEP_BIN,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def render_md(res: dict) -> str:
    m = res["meta"]
    L = []
    a = L.append
    a("# Supervisor benchmark results\n")
    cmd = m["command"].strip()
    a(f"Generated by `{cmd}`{' (full-pass defaults)' if cmd == 'python bench/run.py' else ''} on "
      f"{m['date']} (total {m['runtime_s'] / 60:.1f} min).  ")
    a("Raw per-trial data: `" + m["json"] + "`. How to run / what each metric means: `README.md`.\n")
    a("## Machine\n")
    a("| | |\n|---|---|")
    mi = m["machine"]
    a(f"| nproc | {mi['nproc']} ({mi['cpu_model']}), {mi['mem_gib']} GiB RAM |")
    a(f"| OS / kernel | {mi['os']} / {mi['kernel']} |")
    a(f"| Python (harness, supervisord, circus, floor) | {mi['python']} |")
    a(f"| load average (1/5/15 min) at start → end | {' '.join(mi['loadavg_start'])} → "
      f"{' '.join(m['loadavg_end'])} |")
    a(f"| whole-machine CPU during the run | busy {m['cpu_busy_pct']:.0f}% of 2 cores, "
      f"steal {m['cpu_steal_pct']:.1f}% |")
    a("")
    a("## Supervisors measured\n")
    a("| name | version | restart/backoff configuration |\n|---|---|---|")
    for name in m["adapters"]:
        a(f"| {label_of(name)} | {m['versions'].get(name, '?')} | {ADAPTERS[name].restart_config} |")
    for name, why in m["skipped"].items():
        a(f"| {name} | – | **skipped**: {why} |")
    a("")
    a("Settings of this run: " + ", ".join(f"{k}={v}" for k, v in m["settings"].items()) + ".\n")

    # 1. restart
    if m.get("restart_adapters") or res["popen_floor_ms"]:
        s = m["settings"]
        a("## 1. Crash-to-restart latency\n")
        a(f"N={s['restart_n']} `sleep` programs per daemon; in each trial {s['kills']} different "
          f"children are SIGKILLed one after another (gap 0.3 s + U(0, max(P, 0.5 s)) where P is the "
          f"supervisor's polling period, so kills land at a random phase of its loop), "
          f"{s['restart_reps']} "
          f"trials per supervisor, interleaved. Latency = SIGKILL sent → a new PID with that "
          f"program's argv visible in `/proc` (i.e. after its exec), polled every "
          f"{s['poll_interval'] * 1000:g} ms (≈ +1 ms quantisation).\n")
        a("| supervisor | samples | median ms | min – max ms | timeouts |\n|---|---:|---:|---:|---:|")
        for name in m["adapters"] + (["floor"] if "floor" in m["restart_adapters"] else []):
            if name not in m["restart_adapters"]:
                continue
            rows = [r for r in res["restart"] if r["adapter"] == name]
            samples = [x for r in rows for x in r["samples_ms"]]
            to = sum(r["timeouts"] for r in rows)
            med, rng = fmt_st(st(samples), 1)
            err = sum(1 for r in rows if r.get("error"))
            a(f"| {label_of(name)} | {len(samples)} | {med} | {rng} | {to}"
              f"{f' ({err} trial errors)' if err else ''} |")
        if res["popen_floor_ms"]:
            med, rng = fmt_st(st(res["popen_floor_ms"]), 2)
            a(f"| floor: bare `subprocess.Popen([sleep, …])` in the harness (fork+exec, no "
              f"detection) | {len(res['popen_floor_ms'])} | {med} | {rng} | – |")
        a("")

    lc = res["lifecycle"]
    ns = sorted({r["n"] for r in lc})
    # 2. idle
    idle_rows = [r for r in lc if r.get("idle_cpu_s") is not None]
    if idle_rows:
        w = idle_rows[0]["idle_window_s"]
        a("## 2. Idle overhead\n")
        a(f"Daemon process(es) only (children excluded), {w:g} s idle window starting "
          f"{m['settings']['settle']:g} s after all N children were up. CPU = user+sys from "
          f"psutil `cpu_times()` (10 ms tick resolution); `on-CPU` = `/proc/PID/task/*/schedstat` "
          f"(ns resolution, cross-check). Memory at the end of the window, summed over the daemon "
          f"processes. Median over trials (min – max).\n")
        a("| supervisor | N | CPU ms / window | min – max | % of one core | on-CPU ms (schedstat) "
          "| RSS MiB | min – max | PSS MiB | daemon processes |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in ns:
            for name in m["adapters"]:
                rows = [r for r in idle_rows if r["adapter"] == name and r["n"] == n]
                if not rows:
                    continue
                c = st([r["idle_cpu_s"] * 1000 for r in rows])
                sch = st([r["idle_sched_s"] * 1000 for r in rows])
                rs = st([r["rss_mib"] for r in rows])
                ps = st([r["pss_mib"] for r in rows])
                names = sorted({p.split(":", 1)[1] for r in rows for p in r["daemon_procs"]})
                nproc = st([len(r["daemon_procs"]) for r in rows])
                a(f"| {label_of(name)} | {n} | {fmt(c['median'], 0)} | {fmt(c['min'], 0)} – "
                  f"{fmt(c['max'], 0)} | {c['median'] / (w * 10):.2f}% | {fmt(sch['median'], 1)} | "
                  f"{fmt(rs['median'], 1)} | {fmt(rs['min'], 1)} – {fmt(rs['max'], 1)} | "
                  f"{fmt(ps['median'], 1)} | {int(nproc['median'])} ({', '.join(names)}) |")
        a("")
    # 3. bulk start
    bulk_rows = [r for r in lc if r.get("bulk_start_s") is not None]
    if bulk_rows:
        a("## 3. Bulk start\n")
        a("Cold start: clock starts just before the harness launches the daemon (`supervisord -n "
          "-c`, `circusd conf`, `pm2 start ecosystem.json` with no PM2 daemon running, "
          "`pmtop --headless ...`), stops when all N children have exec'd (`/proc` polled every "
          "2 ms). `supervisor says all running` = additionally until the supervisor's own "
          "status reports all N running (polled via its API/CLI, so it has a coarser resolution).\n")
        a("| supervisor | N | all N alive: median s | min – max s | supervisor says all running: "
          "median s | trials |\n|---|---:|---:|---:|---:|---:|")
        for n in ns:
            for name in m["adapters"] + ["floor"]:
                rows = [r for r in bulk_rows if r["adapter"] == name and r["n"] == n]
                if not rows:
                    continue
                b = st([r["bulk_start_s"] for r in rows])
                rd = st([r.get("supervisor_ready_s") for r in rows])
                med, rng = fmt_st(b, 3)
                a(f"| {label_of(name)} | {n} | {med} | {rng} | "
                  f"{fmt(rd['median'], 3) if rd and name != 'floor' else '–'} | {b['n']} |")
        a("")
    # 4. control plane
    ctl_rows = [r for r in lc if r.get("ctl_ms")]
    if ctl_rows:
        a("## 4. Control-plane latency\n")
        a(f"Wall time of the status command as a whole process (fork/exec + interpreter start-up + "
          f"round trip + output), {m['settings']['ctl_runs']} runs per trial after one uncounted "
          f"warm-up, pooled over trials. The in-process API rows time one request/response "
          f"without process start-up.\n")
        a("| supervisor | command | N | median ms | min – max ms | exit codes |\n"
          "|---|---|---:|---:|---:|---|")
        for n in ns:
            for name in m["adapters"]:
                rows = [r for r in ctl_rows if r["adapter"] == name and r["n"] == n]
                if not rows:
                    continue
                med, rng = fmt_st(st([x for r in rows for x in r["ctl_ms"]]), 0)
                rcs = sorted({c for r in rows for c in r["ctl_rc"]})
                a(f"| {label_of(name)} | {ADAPTERS[name].status_label} | {n} | {med} | {rng} | "
                  f"{rcs} |")
                api = [x for r in rows for x in r.get("api_ms", [])]
                if api:
                    med, rng = fmt_st(st(api), 2)
                    a(f"| {label_of(name)} | {ADAPTERS[name].api_label} | {n} | {med} | {rng} | – |")
        a("")
    # 5. hung
    a("## 5. Detecting a hung (alive but unresponsive) service\n")
    a("Supervisors without a health check: in the first restart trial one child was SIGSTOPped "
      "(alive, unresponsive) and the supervisor was asked about it after the wait shown; "
      "`detected` means its PID changed or it was no longer stopped. Supervisors with a health "
      "check (pmtop): dedicated trials with one heartbeat program under the check named in the "
      "middle column, beside a few `sleep`s; the program is SIGSTOPped at a random phase of the "
      "check interval, then the harness times (polling `/proc` every 5 ms) until the supervisor "
      "has ended it (old PID gone) and until a new PID with its argv has exec'd. `stop_timeout` "
      "stays at its default: a stopped process keeps SIGTERM pending until it is continued, so a "
      "quick replacement needs the supervisor to send SIGCONT after the stop signal (as systemd "
      "does) or to wait for its SIGKILL escalation.\n")
    a("| supervisor | built-in detection? | observed |\n|---|---|---|")
    hung_rows = res.get("hung", [])
    for name in m["adapters"]:
        if name == "circus-fast":
            continue
        h = next((r["hung"] for r in res["restart"] if r["adapter"] == name and r.get("hung")), None)
        rows = [r for r in hung_rows if r["adapter"] == name]
        if rows:
            gone, new = st([r.get("gone_s") for r in rows]), st([r.get("restart_s") for r in rows])
            obs = f"restarted in {new['n'] if new else 0} of {len(rows)} trials"
            if new:
                seen = st([r.get("noticed_s") for r in rows])
                obs += (f": old PID gone after {gone['median']:.2f} s (median; max "
                        f"{gone['max']:.2f} s), new PID after **{new['median']:.2f} s** (median; "
                        f"max {new['max']:.2f} s)"
                        + (f"; its status first changed after {seen['median']:.2f} s (median)"
                           if seen else ""))
            to = sum(1 for r in rows if r.get("timeout"))
            if to:
                obs += f"; {to} not restarted within {m['settings'].get('hung_timeout', '?')} s"
            err = sum(1 for r in rows if r.get("error"))
            if err:
                obs += f"; {err} trial errors"
        elif h and "error" not in h:
            obs = (f"after {h['wait_s']:g} s: state `{h['supervisor_state']}`, "
                   f"{'**detected**' if h['detected'] else 'not detected (same PID, still stopped)'}")
        elif h:
            obs = h["error"]
        else:
            obs = "not run"
        a(f"| {label_of(name)} | {ADAPTERS[name].hung_detection} | {obs} |")
    a("")
    # 6. logs
    log_rows = res.get("logs", [])
    if log_rows or res.get("log_floor"):
        s = m["settings"]
        a("## 6. Log capture under a flood\n")
        a(f"One program prints {s.get('log_mb', '?')} MiB of 100-byte lines to its stdout as fast as "
          f"the pipe takes them, then an end marker, beside {s.get('logs_n', '?')} `sleep`s; it "
          f"starts when the harness creates its go file (after the supervisor reports all running) "
          f"and stamps its start. MB/s = MiB / (end marker in the supervisor's log file, polled "
          f"every 2 ms - start stamp). Daemon CPU = schedstat of the daemon process(es) over the "
          f"same span. Interleaved trials; circus is not measured: it does not capture output "
          f"unless a stream class is configured.\n")
        a("| supervisor | MB/s median | min – max | s per flood | daemon CPU s per flood | trials | "
          "capture configured as |\n|---|---:|---:|---:|---:|---:|---|")
        for name in m["adapters"]:
            rows = [r for r in log_rows if r["adapter"] == name and r.get("mb_s") is not None]
            if not rows:
                continue
            mb, rng = fmt_st(st([r["mb_s"] for r in rows]), 0)
            a(f"| {label_of(name)} | {mb} | {rng} | {fmt(st([r['seconds'] for r in rows])['median'], 2)} | "
              f"{fmt(st([r['daemon_cpu_s'] for r in rows])['median'], 2)} | {len(rows)} | "
              f"{ADAPTERS[name].logs_config} |")
        fl = res.get("log_floor") or []
        if fl:
            mb, rng = fmt_st(st([r["mb_s"] for r in fl]), 0)
            a(f"| floor: 10-line Python pipe-to-file copier (256 KiB pipe) | {mb} | {rng} | "
              f"{fmt(st([r['seconds'] for r in fl])['median'], 2)} | – | {len(fl)} | – |")
        a("")
    # extra: shutdown
    sd = [r for r in lc if r.get("shutdown_s") is not None]
    if sd:
        a("## Extra: shutdown time\n")
        a("From the graceful stop request (SIGTERM to supervisord/circusd/pmtop/floor by PID, "
          "`pm2 kill`) "
          "until the daemon and all N children are gone.\n")
        a("| supervisor | N | median s | min – max s |\n|---|---:|---:|---:|")
        for n in ns:
            for name in m["adapters"] + ["floor"]:
                rows = [r for r in sd if r["adapter"] == name and r["n"] == n]
                if rows:
                    med, rng = fmt_st(st([r["shutdown_s"] for r in rows]), 3)
                    a(f"| {label_of(name)} | {n} | {med} | {rng} |")
        a("")
    # failures
    a("## Failures, warnings, skipped\n")
    issues = []
    for name, why in m["skipped"].items():
        issues.append(f"- `{name}` skipped: {why}")
    for r in res["restart"] + lc + res.get("hung", []) + res.get("logs", []):
        if r.get("error"):
            issues.append(f"- {r['kind']} trial {r['adapter']} N={r.get('n')} rep={r['rep']}: "
                          f"{r['error'].splitlines()[0]}")
        for e in r.get("errors", []):
            issues.append(f"- {r['kind']} trial {r['adapter']} rep={r['rep']}: {e}")
        if r.get("view_pids") not in (None, "ok") and not str(r.get("view_pids")).startswith("n/a"):
            issues.append(f"- {r['kind']} {r['adapter']} rep={r['rep']}: supervisor PIDs vs /proc: "
                          f"{r['view_pids']}")
        if r.get("daemon_health"):
            issues.append(f"- {r['kind']} {r['adapter']} rep={r['rep']}: {r['daemon_health']}")
        if r.get("ctl_lists_all") is False:
            issues.append(f"- {r['adapter']} N={r['n']} rep={r['rep']}: the status command's output "
                          f"does not name every program")
        if r.get("children_alive_after_idle") not in (None, r.get("n")):
            issues.append(f"- {r['adapter']} N={r['n']}: only {r['children_alive_after_idle']} "
                          f"children alive after the idle window")
        if r.get("non_loopback_sockets"):
            issues.append(f"- **{r['adapter']} N={r['n']}: daemon holds non-loopback inet sockets: "
                          f"{r['non_loopback_sockets']}**")
        elif r.get("inet_sockets"):
            issues.append(f"- info: {r['adapter']} N={r['n']} daemon inet sockets (loopback only): "
                          f"{r['inet_sockets']}")
    seen = set()
    issues = [i for i in issues if not (i in seen or seen.add(i))]
    a("\n".join(issues) if issues else "None.")
    if idle_rows and not any(r.get("non_loopback_sockets") for r in idle_rows):
        a("\nNo daemon held a non-loopback inet socket (checked once per idle trial with psutil).")
    a("")
    a(CAVEATS)
    return "\n".join(L) + "\n"


CAVEATS = """## Caveats

- **Noisy, small machine.** 2 vCPUs on a shared VM; load from neighbours shows up as outliers
  (see min – max and the steal figure above). Adapters are interleaved round-robin with a rotating
  start, so slow drift hits all of them alike, but single trials can still be unlucky. Compare
  medians, and re-run before trusting differences of a few percent.
- **The instrument costs CPU.** Restart detection polls `/proc` every ~1 ms from the harness
  (listdir + a few cmdline reads), i.e. a sizeable fraction of one of the two cores while a
  restart is pending; bulk start polls every 2 ms. The idle window has no polling.
- **Restart latency depends on configuration, not just on the implementation.** circusd reaps
  dead children only every `check_delay` (INI default 5 s; the `circus-fast` row uses 0.1 s).
  supervisord wakes up on the dead child's stdout pipe EOF, but only respawns on the next pass of
  its main loop, which blocks in poll() with a 1 s timeout (SIGCHLD does not interrupt it under
  Python ≥3.5, PEP 475), so it restarts after ≈1.0 s; rarely something else wakes the loop
  right after the reap (the ~5 ms minimum) or it takes two passes (~2 s). pm2 reacts to the
  child's `exit` event. For circus the latency is uniform over [0, check_delay], so with 20
  samples its median is itself uncertain by roughly ±0.5 s.
- **Logging is each supervisor's default, into the temp dir:** supervisord and pm2 capture child
  stdout/stderr into files; circus does not capture unless configured. `sleep` prints nothing, so
  this mostly changes fd counts, not CPU.
- **Idle CPU over a short window is coarse.** psutil `cpu_times()` counts in 10 ms ticks; the
  schedstat column is exact. Periodic work with a period longer than the window (e.g. PM2's 30 s
  worker) may or may not fall inside a given window.
- **Bulk start is a cold start** including interpreter start-up (Python for supervisord/circus,
  two Node processes for pm2: CLI + daemon). It is not "start all" on an already running daemon.
- **Control-plane numbers are dominated by CLI start-up** (Python or Node import time); the
  in-process API rows show the daemon's own response time.
- **Hung detection**: supervisord, circus and PM2 have no built-in liveness check, so for them it
  was only checked (the SIGSTOP probe shows what the default configuration does). pmtop's health
  checks are measured (dedicated hung trials); its figure is bounded below by interval × failures
  and depends on where in the check interval the process stops.
- The `floor` rows are not supervisors: they show what fork+exec and a trivial Python
  `os.wait()`/`Popen` loop cost with the same instrument, i.e. how much of a supervisor's latency
  is its own.
"""


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

QUICK = dict(logs_reps=2, restart_reps=2, kills=3, n="50", reps="1", idle_window=5.0, settle=1.0, ctl_runs=3,
             api_runs=10, hung_wait=2.0, popen_samples=5, hung_reps=1)
FULL = dict(logs_reps=3, restart_reps=4, kills=5, n="50,200", reps="3,2", idle_window=20.0, settle=3.0, ctl_runs=5,
            api_runs=20, hung_wait=5.0, popen_samples=10, hung_reps=3)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke pass (~3 min)")
    ap.add_argument("--only", help=f"comma list of adapters ({', '.join(ADAPTERS)}); "
                                   f"default: {','.join(DEFAULT_ORDER)} (+floor)")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor rows")
    ap.add_argument("--metrics", default="restart,idle,bulk,ctl,hung,logs",
                    help="comma list of restart,idle,bulk,ctl,hung,logs")
    ap.add_argument("--log-mb", type=int, default=100, help="logs: MiB the flood program prints")
    ap.add_argument("--logs-n", type=int, default=5, help="logs: sleep programs beside the flood")
    ap.add_argument("--logs-reps", type=int, help="logs: trials per adapter (full 3, quick 2)")
    ap.add_argument("--logs-timeout", type=float, default=120.0, help="logs: give up after, s")
    ap.add_argument("--n", help="N for idle/bulk/ctl, comma list (full: 50,200; quick: 50)")
    ap.add_argument("--restart-n", type=int, default=10, help="programs per daemon in the restart metric")
    ap.add_argument("--reps", help="trials per adapter for idle/bulk/ctl; one number, or one "
                                   "per --n value (full: 3,2; quick: 1)")
    ap.add_argument("--restart-reps", type=int, help="restart trials per adapter")
    ap.add_argument("--kills", type=int, help="kills per restart trial")
    ap.add_argument("--idle-window", type=float, help="seconds")
    ap.add_argument("--settle", type=float, help="seconds between start and idle window")
    ap.add_argument("--ctl-runs", type=int)
    ap.add_argument("--api-runs", type=int)
    ap.add_argument("--hung-wait", type=float, help="SIGSTOP probe in restart trials: seconds "
                                                    "before asking the supervisor (full 5, quick 2)")
    ap.add_argument("--hung-reps", type=int, help="dedicated hung trials per adapter with health "
                                                  "checks (pmtop) (full 3, quick 1)")
    ap.add_argument("--hung-n", type=int, default=5, help="sleep programs beside the heartbeat "
                                                          "program in a hung trial")
    ap.add_argument("--hung-timeout", type=float, default=15.0,
                    help="hung trial: give up this long after the SIGSTOP, s")
    ap.add_argument("--popen-samples", type=int)
    ap.add_argument("--poll-interval", type=float, default=0.001, help="restart detection poll, s")
    ap.add_argument("--restart-settle", type=float, default=1.0)
    ap.add_argument("--restart-timeout", type=float, default=15.0)
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=30.0)
    ap.add_argument("--out", help="markdown report (default bench/RESULTS.md, quick: RESULTS-quick.md)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the per-trial temp dirs")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--render", metavar="JSON", help="only re-render a report from a results JSON "
                                                      "(written next to it as .md, or to --out)")
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.ns = [int(x) for x in str(args.n).split(",") if x]
    reps = [int(x) for x in str(args.reps).split(",") if x]
    if len(reps) == 1:
        reps = reps * len(args.ns)
    elif len(reps) < len(args.ns):
        reps = reps + [reps[-1]] * (len(args.ns) - len(reps))
    args.reps_by_n = dict(zip(args.ns, reps))
    mets = set(args.metrics.split(","))
    bad = mets - {"restart", "idle", "bulk", "ctl", "hung", "logs"}
    if bad:
        ap.error(f"unknown metrics {bad}")
    args.do_restart = "restart" in mets
    args.do_hung = "hung" in mets
    args.do_logs = "logs" in mets
    args.do_idle = "idle" in mets
    args.do_ctl = "ctl" in mets
    args.do_lifecycle = bool(mets & {"idle", "bulk", "ctl"})
    if args.out is None:
        args.out = str(HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        src = Path(args.render)
        res = json.loads(src.read_text())
        out = Path(args.out) if "--out" in (sys.argv if argv is None else argv) else src.with_suffix(".md")
        out.write_text(render_md(res))
        log(f"rendered {out} from {src}")
        return 0
    if args.seed is not None:
        random.seed(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run finally blocks on SIGTERM

    names = [x.strip() for x in args.only.split(",")] if args.only else list(DEFAULT_ORDER)
    unknown = [x for x in names if x not in ADAPTERS]
    if unknown:
        sys.exit(f"unknown adapter(s) {unknown}; known: {', '.join(ADAPTERS)}")
    floor = "floor" in names or not args.no_floor
    names = [x for x in names if x != "floor"]
    skipped, active, versions = {}, [], {}
    for name in names:
        ok, why = ADAPTERS[name].available()
        if not ok:
            skipped[name] = why
            log(f"SKIP {name}: {why}")
            continue
        try:
            versions[name] = ADAPTERS[name].version()
        except Exception as e:  # noqa: BLE001
            versions[name] = f"? ({e})"
        active.append(name)
        log(f"adapter {name}: {versions[name]}")
    if floor:
        versions["floor"] = FloorAdapter.version()

    res = {"restart": [], "popen_floor_ms": [], "lifecycle": [], "hung": [], "logs": [], "log_floor": []}
    machine = machine_info()
    cpu0 = cpu_stat()
    try:
        # with `hung` but not `restart`: one restart trial without kills per
        # adapter, only to run the SIGSTOP probe
        probe_only = args.do_hung and not args.do_restart
        if args.do_restart or probe_only:
            if args.do_restart:
                r_names = active + (["floor"] if floor else [])
                r_reps, kills = args.restart_reps, args.kills
                log(f"== restart latency: {r_reps} rounds x {r_names}, N={args.restart_n}, "
                    f"{kills} kills each")
            else:
                r_names = [x for x in active if ADAPTERS[x].supports_hung_check]
                r_reps, kills = 1, 0
                if r_names:
                    log(f"== SIGSTOP probe ({args.hung_wait:g} s), one trial each: {r_names}")
            for rep, order in rounds(r_names, r_reps):
                if floor and args.do_restart:
                    res["popen_floor_ms"] += popen_floor(args.popen_samples)
                for name in order:
                    r = {"kind": "restart", "adapter": name, "rep": rep, "n": args.restart_n,
                         "samples_ms": [], "timeouts": 0, "errors": []}
                    res["restart"].append(r)
                    t0 = perf()
                    try:
                        restart_trial(ADAPTERS[name], args, rep, r, kills=kills)
                    except Exception as e:  # noqa: BLE001
                        r["error"] = f"{type(e).__name__}: {e}"
                        log(f"  ERROR {name}: {r['error']}")
                        traceback.print_exc()
                    s = st(r["samples_ms"])
                    log(f"  round {rep} {name:12s} restart ms: "
                        f"{[round(x, 1) for x in r['samples_ms']]} median "
                        f"{fmt(s and s['median'])}  ({perf() - t0:.1f}s)"
                        + (f" hung={r['hung']}" if r.get("hung") else ""))
        if args.do_hung:
            h_names = [x for x in active if ADAPTERS[x].supports_health_probe]
            if h_names:
                log(f"== hung service (SIGSTOP, health check restarts it): {args.hung_reps} "
                    f"rounds x {h_names}")
            for rep, order in rounds(h_names, args.hung_reps):
                for name in order:
                    r = {"kind": "hung", "adapter": name, "rep": rep, "n": args.hung_n}
                    res["hung"].append(r)
                    t0 = perf()
                    try:
                        hung_trial(ADAPTERS[name], args, rep, r)
                    except Exception as e:  # noqa: BLE001
                        r["error"] = f"{type(e).__name__}: {e}"
                        log(f"  ERROR {name}: {r['error']}")
                        traceback.print_exc()
                    log(f"  round {rep} {name:12s} hung: old PID gone after "
                        f"{fmt(r.get('gone_s'), 2)}s, new PID after {fmt(r.get('restart_s'), 2)}s"
                        f"{' TIMEOUT' if r.get('timeout') else ''}; states {r.get('states_seen')}"
                        f" ({perf() - t0:.1f}s)")
        if args.do_logs:
            l_names = [x for x in active if ADAPTERS[x].supports_logs]
            log(f"== log capture ({args.log_mb} MiB flood): {args.logs_reps} rounds x {l_names}"
                f"{' + floor' if floor else ''}")
            for rep, order in rounds(l_names, args.logs_reps):
                if floor:
                    try:
                        res["log_floor"].append(log_floor(args))
                    except Exception as e:  # noqa: BLE001
                        log(f"  ERROR floor (logs): {e}")
                for name in order:
                    r = {"kind": "logs", "adapter": name, "rep": rep, "n": args.logs_n}
                    res["logs"].append(r)
                    t0 = perf()
                    try:
                        log_trial(ADAPTERS[name], args, rep, r)
                    except Exception as e:  # noqa: BLE001
                        r["error"] = f"{type(e).__name__}: {e}"
                        log(f"  ERROR {name}: {r['error']}")
                        traceback.print_exc()
                    log(f"  round {rep} {name:12s} logs: {fmt(r.get('mb_s'), 0)} MB/s "
                        f"({fmt(r.get('seconds'), 2)} s, daemon CPU {fmt(r.get('daemon_cpu_s'), 2)} s)"
                        f" ({perf() - t0:.1f}s)")
        if args.do_lifecycle:
            lc_names = active + (["floor"] if floor and "bulk" in args.metrics else [])
            for n in args.ns:
                nreps = args.reps_by_n[n]
                log(f"== lifecycle (bulk start / idle / ctl): N={n}, {nreps} rounds x {lc_names}")
                for rep, order in rounds(lc_names, nreps):
                    for name in order:
                        r = {"kind": "lifecycle", "adapter": name, "rep": rep, "n": n}
                        res["lifecycle"].append(r)
                        t0 = perf()
                        try:
                            lifecycle_trial(ADAPTERS[name], n, args, r)
                        except Exception as e:  # noqa: BLE001
                            r["error"] = f"{type(e).__name__}: {e}"
                            log(f"  ERROR {name}: {r['error']}")
                            traceback.print_exc()
                        log(f"  round {rep} {name:12s} N={n} start {fmt(r.get('bulk_start_s'), 3)}s"
                            f" idle cpu {fmt(r.get('idle_cpu_s') and r['idle_cpu_s'] * 1000, 0)}ms"
                            f" rss {fmt(r.get('rss_mib'))}MiB"
                            f" ctl {fmt(st(r.get('ctl_ms', [])) and st(r['ctl_ms'])['median'], 0)}ms"
                            f" stop {fmt(r.get('shutdown_s'), 2)}s ({perf() - t0:.1f}s)")
    finally:
        cpu1 = cpu_stat()
        d = [b - a for a, b in zip(cpu0, cpu1)]
        total = sum(d) or 1
        idle = d[3] + (d[4] if len(d) > 4 else 0)
        steal = d[7] if len(d) > 7 else 0
        res["meta"] = {
            "command": " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "runtime_s": perf() - T_START,
            "machine": machine,
            "loadavg_end": open("/proc/loadavg").read().split()[:3],
            "cpu_busy_pct": 100.0 * (total - idle) / total,
            "cpu_steal_pct": 100.0 * steal / total,
            "adapters": active,
            "restart_adapters": (active + (["floor"] if floor else [])) if args.do_restart else [],
            "versions": versions,
            "skipped": skipped,
            "settings": {k: getattr(args, k) for k in (
                "restart_n", "kills", "restart_reps", "ns", "reps_by_n", "idle_window", "settle",
                "ctl_runs", "api_runs", "hung_wait", "hung_reps", "hung_n", "hung_timeout",
                "poll_interval", "log_mb", "logs_n", "logs_reps")},
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        js = out.with_suffix(".json")
        res["meta"]["json"] = js.name
        js.write_text(json.dumps(res, indent=1, default=str))
        out.write_text(render_md(res))
        log(f"wrote {out} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
