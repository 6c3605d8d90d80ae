"""Two supervisors that restart each other (SPEC §9): the check loop one runs on the other.

`pmtop watcher` runs the `watcher` instance, whose `PartnerWatch` watches the default instance; the
watcher then announces itself (`PUT /config/partner-discovery`) and the default instance watches the
watcher with the same class (`partner.PartnerLink` turns its settings into a watch).

Each check, every `interval` (3 s; at once when the partner's PID exits, through a pidfd), reads the
partner's `daemon.json` and asks the kernel and the partner:

- `daemon.json` gone: the partner removed it on its way out (a deliberate stop, `pmtop shutdown`,
  SIGTERM): it is not restarted. (A watcher that finds its instance not running at start starts it.)
- its PID gone, `daemon.json` left behind: it died (SIGKILL, OOM, a crash): restarted at once.
- its PID alive but `/alive` silent for `failures` (2) checks in a row:
  - stopped (SIGSTOP, a debugger, Ctrl-Z): **waited for**. It still holds the instance lock, so a
    second supervisor could not start anyway; and a kill could lose output it has read from its
    children's pipes and not yet written (SIGSTOP lands when a syscall returns, typically the read).
    Someone paused it on purpose; SIGCONT resumes it, and its children, which block on their full
    pipes meanwhile (they keep a read end, see `logs.RunLogs`), lose nothing.
  - running but not answering (hung): killed with SIGKILL, but only once the kernel confirms that
    this very PID holds the instance's lock (`/proc/locks`, through a pidfd so the PID cannot be
    reused in between), then restarted. A hung supervisor supervises nothing; its successor adopts.
- anything holding the lock that `daemon.json` does not name is a supervisor starting: left alone.

A restart runs pmtop's own executable with fixed arguments (`pmtop --headless --detach ...` or
`pmtop watcher --detach ...`), which return once the new supervisor verifiably serves. The instance
lock makes a duplicate impossible and the registry makes every managed process adopted, not started
again. Safety against a partner named by anyone with the token (the API is fuzzed with random ones):
a partner is restarted only on a loopback address, only if this watch has itself seen it answer
`/health` as pmtop of that instance with the PID its `daemon.json` (in this user's own state folder)
records, and never in standalone mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from ..config import NAME_PATTERN
from ..errors import ConfigError
from ..locations import DaemonRecord, instance_paths
from . import peer
from .instance import read_daemon_info
from .peer import Command

log = logging.getLogger("pmtop.core")

WATCHER_INSTANCE: Final = "watcher"
WATCHER_PORT: Final = 19882
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
"""The only partner addresses a supervisor ever restarts anything for: this machine, as pmtop binds it."""
TIMING_ENV: Final = "PMTOP_WATCH_TIMING"
"""`interval,failures[,timeout]` in seconds: lets tests run the watch fast (not a user setting)."""
MAX_RESTART_DELAY: Final = 60.0
KILL_WAIT: Final = 10.0
DEFAULT_TIMEOUT: Final = 2.0


class PartnerState(StrEnum):
    NONE = "none"
    """No partner: no watcher has announced itself (or it withdrew)."""
    STANDALONE = "standalone"
    """Standalone mode: nothing is watched, nothing restarted."""
    WAITING = "waiting"
    """Not (yet) seen answering: not running, or starting."""
    UP = "up"
    RESTARTING = "restarting"
    PAUSED = "paused"
    """Its PID is stopped (SIGSTOP, a debugger) and holds the instance lock: waited for, never killed."""
    STOPPED = "stopped"
    """Stopped on purpose (it removed its daemon.json on the way out): not restarted."""
    LOST = "lost"
    """Gone, and not restarted: the restart failed (retried with a growing delay), or is not allowed."""


@dataclass(frozen=True, slots=True)
class Timing:
    interval: float = 3.0
    failures: int = 2
    """Consecutive failed checks of a live PID before it counts as paused or hung."""
    timeout: float = DEFAULT_TIMEOUT
    """For one `/alive` or `/health` answer."""
    start_timeout: float = 30.0
    """For a restart command (it returns once the new supervisor serves, or 10 s after it gave up)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Timing:
        raw = environ.get(TIMING_ENV, "").strip()
        if not raw:
            return cls()
        try:
            parts = [float(p) for p in raw.split(",")]
            interval, failures = parts[0], int(parts[1])
            timeout = parts[2] if len(parts) > 2 else DEFAULT_TIMEOUT
        except (ValueError, IndexError):
            raise ConfigError(f"must be interval,failures[,timeout] (got {raw!r})", key_path=TIMING_ENV) from None
        if not (interval > 0 and failures >= 1 and timeout > 0):
            raise ConfigError(f"must be positive (got {raw!r})", key_path=TIMING_ENV)
        return cls(interval, failures, timeout)


def watcher_instance(instance: str) -> str:
    """The instance that watches `instance`: `watcher` for `default`, else `<instance>-watcher`."""
    name = WATCHER_INSTANCE if instance == "default" else f"{instance}-watcher"
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"the instance name {instance!r} is too long for a watcher ({name!r})")
    return name


def pmtop_command(*args: str) -> list[str]:
    """pmtop's own executable (never one named by a request), with fixed arguments."""
    return [sys.executable, "-m", "pmtop.cli.main", *args]


@dataclass(frozen=True, slots=True)
class Target:
    """The supervisor watched, and how to bring it back."""

    instance: str
    host: str
    port: int | None
    """Where it answers; None: wherever its `daemon.json` says (the watcher's view of the default)."""
    command: Callable[[DaemonRecord | None], Command] = field(compare=False)
    """The restart command, given its last `daemon.json` (if any)."""
    trusted: bool = False
    """Named on this user's own command line (`pmtop watcher`'s instance): started when found not
    running, and restarted wherever it listens. A partner named through the API (False) is restarted
    only on a loopback address and only after this watch has seen it answer as pmtop of `instance`."""

    @property
    def state_dir(self) -> Path:
        return instance_paths(self.instance).state_dir


@dataclass(frozen=True, slots=True)
class Announcement:
    """The watcher tells the instance it watches where it is (and withdraws when it stops)."""

    host: str
    port: int
    instance: str

    def body(self) -> dict[str, Any]:
        return {"enabled": True, "partner": {"host": self.host, "port": self.port, "instance": self.instance}}


class PartnerWatch:
    """The check loop on one partner; its state, reason and counters are what `/status` shows."""

    def __init__(self, target: Target, *, own_instance: str, timing: Timing,
                 announce: Announcement | None = None, on_change: Callable[[], None] | None = None) -> None:
        if target.instance == own_instance:
            raise ValueError("a supervisor cannot be its own partner")
        self.target = target
        self.own_instance = own_instance
        self.timing = timing
        self.announce = announce
        self.on_change = on_change
        self.state = PartnerState.WAITING
        self.reason = "not checked yet"
        self.pid: int | None = None
        self.restarts = 0
        self.last_restart_at: float | None = None
        self.checks = 0
        self._seen_pid: int | None = None
        """The PID last verified to answer as the partner (None: never seen, or stopped since)."""
        self._ever_seen = False
        self._failures = 0
        self._unseen_starts = 0
        self._next_start = 0.0
        self._learned: dict[str, Any] = {}
        """What the partner said of itself while up (`read_only`, standalone): kept for a restart."""
        self._wake = asyncio.Event()
        self._pidfd: int | None = None
        self._task: asyncio.Task[None] | None = None

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"pmtop:partner:{self.target.instance}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._unwatch_pid()
        if self.announce is not None and self.state is PartnerState.UP:
            await self._withdraw()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # a bug here must not end the watch (or the daemon)
                log.exception("partner %s: check failed", self.target.instance)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timing.interval):
                    await self._wake.wait()

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "instance": self.target.instance,
            "host": self._learned.get("host", self.target.host),
            "port": self._learned.get("port", self.target.port),
            "pid": self.pid,
            "restarts": self.restarts,
            "last_restart_at": self.last_restart_at,
            "checks": self.checks,
            "reason": self.reason,
        }

    def _set(self, state: PartnerState, reason: str) -> None:
        """Say it once: only a change is logged (and announced)."""
        if (state, reason) == (self.state, self.reason):
            return
        level = logging.INFO if state in (PartnerState.UP, PartnerState.WAITING) else logging.WARNING
        log.log(level, "partner %s: %s (%s)", self.target.instance, state, reason)
        self.state, self.reason = state, reason
        if self.on_change is not None:
            self.on_change()

    # -- the check --------------------------------------------------------------------------------

    async def check(self) -> None:
        self.checks += 1
        target = self.target
        record = read_daemon_info(instance_paths(target.instance))
        if record is not None and target.port is not None and (record.host, record.port) != (target.host, target.port):
            record = None  # not where the partner was announced: not ours to judge
        lock = target.state_dir / "instance.lock"
        if record is None:
            await self._without_record(lock)
            return
        self.pid = record.pid
        self._learned.update(host=record.host, port=record.port)
        state = peer.process_state(record.pid)
        if state is None:  # gone, and its daemon.json left behind: it did not stop on its own
            holder = peer.lock_holder(lock)
            if holder is not None:
                self._set(PartnerState.WAITING, f"a new supervisor (pid {holder}) is starting")
                return
            await self._restart(record, f"pid {record.pid} died without cleaning up")
            return
        answer = await peer.request(record.host, record.port, "GET", "/alive", timeout=self.timing.timeout)
        if answer is not None and answer.status == 200 and answer.body.strip() == b"OK":
            self._failures = 0
            if record.pid != self._seen_pid:
                await self._seen(record)
            elif self.state is not PartnerState.UP:
                self._set(PartnerState.UP, f"answering (pid {record.pid})")
            return
        self._failures += 1
        if self._failures < self.timing.failures:
            self._set(self.state, f"pid {record.pid} did not answer /alive ({self._failures}/{self.timing.failures})")
            return
        if state in peer.STOPPED_STATES:
            self._set(PartnerState.PAUSED,
                      f"pid {record.pid} is stopped (SIGSTOP or a debugger) and holds the instance lock: "
                      "waiting for SIGCONT, not starting a second supervisor")
            return
        holder = peer.lock_holder(lock)
        if holder is not None and holder != record.pid:
            self._set(PartnerState.WAITING, f"a new supervisor (pid {holder}) is starting")
            return
        why = f"pid {record.pid} did not answer /alive {self._failures} times in a row"
        if holder is not None:  # it is the supervisor, running, and silent: hung
            if self._refusal() is not None:
                self._set(PartnerState.LOST, f"{why}; {self._refusal()}")
                return
            if not await self._kill_hung(record.pid, lock):
                return
            why += "; killed it (it held the instance lock but served nothing)"
        await self._restart(record, why)

    async def _without_record(self, lock: Path) -> None:
        holder = peer.lock_holder(lock)
        seen = self._seen_pid
        if seen is not None and peer.process_state(seen) is not None:
            self._set(PartnerState.STOPPED, f"pid {seen} is shutting down (it removed its daemon.json)")
            return
        if holder is not None:
            self._set(PartnerState.WAITING, f"a supervisor (pid {holder}) is starting")
            return
        self._unwatch_pid()
        self.pid = None
        if self._ever_seen:
            self._seen_pid = None
            self._set(PartnerState.STOPPED, "stopped on purpose (it removed its daemon.json): not restarted")
        elif self.target.trusted:
            await self._restart(None, "not running")
        else:
            self._set(PartnerState.WAITING, "not running")

    async def _seen(self, record: DaemonRecord) -> None:
        """A PID answers /alive for the first time: is it the partner? Only then is it ever restarted."""
        health = await peer.request(record.host, record.port, "GET", "/health", timeout=self.timing.timeout)
        try:
            data = health.json() if health is not None and health.status == 200 else {}
        except ValueError:
            data = {}
        if not (isinstance(data, dict) and data.get("service") == "pmtop"
                and data.get("instance") == self.target.instance and data.get("pid") == record.pid):
            self._set(PartnerState.WAITING, f"{record.host}:{record.port} does not answer as pmtop instance "
                                            f"{self.target.instance!r} (pid {record.pid})")
            return
        self._seen_pid, self._ever_seen = record.pid, True
        self._unseen_starts, self._next_start = 0, 0.0
        self._watch_pid(record.pid)
        if self.announce is not None and not await self._announce(record):
            return
        self._set(PartnerState.UP, f"answering (pid {record.pid})")

    # -- restarting -------------------------------------------------------------------------------

    def _refusal(self) -> str | None:
        """Why this partner may not be restarted (or killed), or None."""
        if not self.target.trusted and self.target.host not in LOOPBACK_HOSTS:
            return f"{self.target.host} is not this machine: never restarted from here"
        if not self.target.trusted and not self._ever_seen:
            return "never seen answering as pmtop: not restarted"
        if self._learned.get("standalone") or peer.standalone_on_disk(self.target.state_dir):
            return "it runs in standalone mode: not restarted"
        return None

    async def _restart(self, record: DaemonRecord | None, why: str) -> None:
        self._unwatch_pid()
        self._seen_pid = None
        self._failures = 0
        refusal = self._refusal()
        if refusal is not None:
            self._set(PartnerState.LOST, f"{why}; {refusal}")
            return
        now = time.monotonic()
        if now < self._next_start:
            return  # the last attempt stays the reason until the next one
        # Attempts that did not bring it back (failed, or "started" and then not seen) space out.
        self._unseen_starts += 1
        delay = min(MAX_RESTART_DELAY, self.timing.interval * 2 ** (self._unseen_starts - 1))
        self.restarts += 1
        self.last_restart_at = time.time()
        self._set(PartnerState.RESTARTING, f"{why}; restarting it (restart {self.restarts})")
        command = self.target.command(record)
        if self._learned.get("read_only") and "--read-only" not in command.argv:
            command = Command([*command.argv, "--read-only"], command.cwd, command.unset)
        code, said = await peer.run_command(command, self.timing.start_timeout)
        self._next_start = time.monotonic() + delay
        if code == 0:
            self._set(PartnerState.RESTARTING, f"{why}; restarted ({said})")
            self._wake.set()  # look again at once: it answers by now
            return
        self._set(PartnerState.LOST, f"{why}; restart {self.restarts} failed: {said}")

    async def _kill_hung(self, pid: int, lock: Path) -> bool:
        """SIGKILL `pid` if the kernel confirms it holds `lock` (through a pidfd: no PID reuse in
        between); True once it is gone."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return True  # already gone
        try:
            if peer.lock_holder(lock) != pid or peer.process_state(pid) in (None, *peer.STOPPED_STATES):
                return False  # not (or no longer) the hung holder: look again next time
            log.warning("partner %s: pid %s holds the instance lock but has not answered /alive for %d checks: "
                        "killing it", self.target.instance, pid, self._failures)
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            loop = asyncio.get_running_loop()
            gone: asyncio.Future[None] = loop.create_future()

            def exited() -> None:
                if not gone.done():
                    gone.set_result(None)

            loop.add_reader(pidfd, exited)
            try:
                await asyncio.wait_for(gone, KILL_WAIT)
            except TimeoutError:
                return False
            finally:
                loop.remove_reader(pidfd)
            return True
        finally:
            os.close(pidfd)

    # -- the watcher's handshake ------------------------------------------------------------------

    async def _announce(self, record: DaemonRecord) -> bool:
        """Tell the watched instance where its watcher is, unless it is standalone; False if it is."""
        assert self.announce is not None
        token = peer.read_token(self.target.state_dir)
        timeout = self.timing.timeout
        status = await peer.request(record.host, record.port, "GET", "/status", token=token, timeout=timeout)
        data = peer.json_object(status)
        self._learned["read_only"] = bool(data.get("read_only"))
        partner = data.get("partner")
        self._learned["standalone"] = isinstance(partner, dict) and partner.get("state") == PartnerState.STANDALONE
        if self._learned["standalone"]:
            self._set(PartnerState.STANDALONE, f"pid {record.pid} runs in standalone mode: watched, not restarted")
            return False
        want = self.announce.body()
        current = await peer.request(record.host, record.port, "GET", "/config/partner-discovery", token=token,
                                     timeout=timeout)
        if peer.json_object(current) != want:
            put = await peer.request(record.host, record.port, "PUT", "/config/partner-discovery", token=token,
                                     body=want, timeout=timeout)
            if put is None or put.status != 200:
                said = f"HTTP {put.status}" if put is not None else "no answer"
                log.warning("partner %s: could not announce this watcher (%s)", self.target.instance, said)
        return True

    async def _withdraw(self) -> None:
        """The watcher stops: partner discovery goes back to off (if it still names this watcher)."""
        assert self.announce is not None
        record = read_daemon_info(instance_paths(self.target.instance))
        if record is None:
            return
        token = peer.read_token(self.target.state_dir)
        current = await peer.request(record.host, record.port, "GET", "/config/partner-discovery", token=token,
                                     timeout=self.timing.timeout)
        if peer.json_object(current) == self.announce.body():
            await peer.request(record.host, record.port, "PUT", "/config/partner-discovery", token=token,
                               body={"enabled": False, "partner": None}, timeout=self.timing.timeout)

    # -- the partner's PID ------------------------------------------------------------------------

    def _watch_pid(self, pid: int) -> None:
        """A pidfd on the partner: its death wakes the loop at once instead of at the next check."""
        self._unwatch_pid()
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return
        self._pidfd = fd
        asyncio.get_running_loop().add_reader(fd, self._pid_exited)

    def _pid_exited(self) -> None:
        self._unwatch_pid()
        self._wake.set()

    def _unwatch_pid(self) -> None:
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
