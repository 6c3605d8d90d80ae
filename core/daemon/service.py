"""The supervisor as a service: instance lock, port, API server, state files, registry, adoption.

`Daemon` wraps a `Supervisor` for both faces that serve the API: `pmtop --headless` and the local
dashboard. Start-up order (SPEC §4-§5): lock the instance, bind the port (a busy port is an error,
never a silent move), load the registry and adopt what a previous supervisor left running, start the
processes, then import and start the HTTP server on the already-bound socket (the server's import is
the slowest step of a cold start, so the processes do not wait for it), and last write the PID file and
`daemon.json`, so a client that finds them can talk to the daemon at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_PORT, Config, load_config, parse_process, spec_to_table
from ..errors import ConfigError, PortInUse
from ..files import remove_stale_temp_files
from ..locations import DaemonRecord, InstancePaths, instance_paths
from ..model import ProcessSpec, ProcessStatus, Scope
from ..supervisor import Supervisor
from ..version import __version__
from .heap import STARTUP_TRIM_DELAY, return_free_memory
from .instance import (
    InstanceLock,
    ensure_token,
    probe_health,
    read_daemon_info,
    remove_daemon_files,
    write_daemon_files,
)
from .logfile import prune_daemon_logs
from .partner import PartnerLink
from .registry import Registry, RegistryData, recorded_facts

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ..api.http11 import Server
    from ..api.security import SecurityStore
    from ..api.server import ApiContext

log = logging.getLogger("pmtop.core")

AUTO_PORT_RANGE = 100
REGISTRY_SAVE_DELAY = 0.05
"""Seconds over which registry writes are coalesced (a boot of 200 processes writes it once or twice)."""
REGISTRY_RETRY_AFTER = 1.0
"""Seconds between two tries of a registry save that failed (full or read-only disk), while nothing
that it records changes meanwhile."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int | str
    """A port number, or "auto"."""
    auto_from: int = DEFAULT_PORT
    """With "auto": the first port tried (the configured one), then upwards."""


def resolve_endpoint(config: Config, host: str | None, port: str | int | None) -> Endpoint:
    """`--host`/`--port`, else the config's `[daemon]`, else 127.0.0.1:19881."""
    chosen_host = host or config.daemon.host
    raw = port if port is not None else config.daemon.port
    if raw is None:
        return Endpoint(chosen_host, DEFAULT_PORT)
    if raw == "auto":
        configured = config.daemon.port
        return Endpoint(chosen_host, "auto", configured if isinstance(configured, int) else DEFAULT_PORT)
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f'--port must be a number from 1 to 65535 or "auto" (got {raw!r})') from None
    if not 1 <= number <= 65535:
        raise ConfigError(f'--port must be a number from 1 to 65535 or "auto" (got {raw!r})')
    return Endpoint(chosen_host, number)


@dataclass(frozen=True, slots=True)
class Existing:
    """A pmtop daemon of this instance that already answers: reuse it instead of starting another."""

    info: DaemonRecord
    config_differs: bool


def find_existing(paths: InstancePaths, endpoint: Endpoint, config_path: Path | None) -> Existing | None:
    """SPEC §5 step 1: does a pmtop daemon of this instance answer where we would serve?

    Raises `PortInUse` when the port answers as something else (another program, or a pmtop of
    another instance).
    """
    candidates: list[tuple[str, int]] = []
    if isinstance(endpoint.port, int):
        candidates.append((endpoint.host, endpoint.port))
    else:
        recorded = read_daemon_info(paths)
        if recorded is not None:
            candidates.append((recorded.host, recorded.port))
    for host, port in candidates:
        health = probe_health(host, port)
        if health is None:
            continue
        if health.get("service") != "pmtop":
            if isinstance(endpoint.port, int):
                raise port_in_use(port)
            continue
        if health.get("instance") == paths.instance and not _ours(paths, health):
            # Same instance name, another state folder (another user, another PMTOP_HOME): not ours.
            if isinstance(endpoint.port, int):
                raise PortInUse(
                    f"port {port} is already used by a pmtop daemon (pid {health.get('pid')}) of another user "
                    "or state folder. Choose another port with --port (or --port auto)."
                )
            continue
        if health.get("instance") != paths.instance:
            if isinstance(endpoint.port, int):
                raise PortInUse(
                    f"port {port} is already used by pmtop instance {health.get('instance')!r}. "
                    "Choose another port with --port (or --port auto), or use --instance "
                    f"{health.get('instance')} to talk to that one."
                )
            continue
        info = DaemonRecord(host=host, port=port, pid=int(health.get("pid", 0)),
                          started_at=time.time() - float(health.get("uptime", 0)),
                          version=str(health.get("version", "")), instance=paths.instance,
                          config=health.get("config"))
        ours = str(config_path.resolve()) if config_path is not None else None
        theirs = str(Path(info.config).resolve()) if info.config else None
        return Existing(info, config_differs=ours != theirs)
    return None


def _ours(paths: InstancePaths, health: dict[str, Any]) -> bool:
    """Is the daemon that answered the one holding this instance's lock? (Where the kernel cannot
    tell, as without /proc/locks, the answer is trusted.)"""
    from .peer import lock_holder

    if not os.path.exists("/proc/locks"):
        return True
    return lock_holder(paths.state_dir / "instance.lock") == health.get("pid")


def port_in_use(port: int) -> PortInUse:
    return PortInUse(
        f"port {port} is already in use by another program. Stop it, or choose another port with "
        "--port (or --port auto)."
    )


def bind(endpoint: Endpoint) -> socket.socket:
    """Bind and listen; a busy port raises `PortInUse`; "auto" walks up from the default port."""
    start = endpoint.auto_from if endpoint.port == "auto" else int(endpoint.port)
    ports = range(start, start + AUTO_PORT_RANGE) if endpoint.port == "auto" else [start]
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((endpoint.host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            if exc.errno == errno.EADDRNOTAVAIL:
                raise PortInUse(f"cannot listen on {endpoint.host}: no such local address") from None
            raise PortInUse(f"cannot listen on {endpoint.host}:{port}: {exc.strerror}") from None
        sock.setblocking(False)
        return sock
    if endpoint.port == "auto":
        raise PortInUse(f"no free port between {start} and {start + AUTO_PORT_RANGE - 1}")
    raise port_in_use(start)


class Daemon:
    """A supervisor that serves the API and keeps the instance's files; implements DaemonHooks."""

    def __init__(
        self,
        config: Config,
        *,
        instance: str | None = None,
        endpoint: Endpoint,
        read_only: bool = False,
        stop_on_exit: bool | None = None,
        standalone: bool = False,
        partner: PartnerLink | None = None,
    ) -> None:
        self.config = config
        self.paths = instance_paths(instance or config.daemon.instance)
        self.partner = partner if partner is not None else PartnerLink(self.paths, standalone=standalone)
        """SPEC §9: the supervisor this one watches and restarts (none until a watcher announces itself)."""
        self.endpoint = endpoint
        self.read_only = read_only
        self.stop_on_exit = config.daemon.stop_on_exit if stop_on_exit is None else stop_on_exit
        self.registry = Registry(self.paths.state_dir / "registry.json")
        self.supervisor: Supervisor | None = None
        self.info_record: DaemonRecord | None = None
        self.shutdown_requested = asyncio.Event()
        self.restart_requested = False
        self.adopted: list[str] = []
        self.stopped = False
        """True once `stop` began: the supervisor is no longer this daemon's to run."""
        self._lock = InstanceLock(self.paths)
        self._server: Server[ApiContext] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._writer: ThreadPoolExecutor | None = None
        """Writes the registry off the event loop; made on the first save after start-up."""
        self._watch_task: asyncio.Task[None] | None = None
        self._started_at = time.time()
        self._sock: socket.socket | None = None
        self._token = ""
        self._saved = RegistryData()
        self.security: SecurityStore | None = None
        self._unclean = False
        self._registry_trouble: str | None = None
        self._trim: asyncio.TimerHandle | None = None

    # -- life -------------------------------------------------------------------------------------

    async def start(self) -> DaemonRecord:
        self.prepare()
        return await self.launch()

    def prepare(self) -> Supervisor:
        """Lock the instance, bind the port, build the supervisor: nothing runs yet, so a caller
        can subscribe to it before the first event."""
        self._lock.acquire()
        prune_daemon_logs(self.paths.log_dir)  # the lock is ours: no other supervisor's log is current
        # If the last supervisor died (not stopped), what it was writing is half-written temp files,
        # and what it spawned and had not recorded yet runs on unwatched.
        self._unclean = self._lock.unclean
        remove_stale_temp_files(self.paths.state_dir)
        try:
            token = ensure_token(self.paths)  # never empty: every request but /alive and /health needs it
            self._sock = bind(self.endpoint)
            self._token = token
            self._saved = self.registry.load()
            supervisor = Supervisor(self.config.processes, paths=self.paths, config_path=self.config.path,
                                    runtime=self._runtime_specs(self._saved), hooks=self.config.hooks,
                                    schedules=self._saved.schedules, scaled=self._saved.scaled)
        except BaseException:
            self._lock.release()
            raise
        supervisor.address = (self.endpoint.host, self._sock.getsockname()[1])
        supervisor.read_only = self.read_only
        supervisor.partner = self.partner.summary
        self.supervisor = supervisor
        return supervisor

    async def launch(self) -> DaemonRecord:
        """Adopt what was left running, start the rest, serve the API, then write the state files."""
        supervisor, sock = self.supervisor, self._sock
        assert supervisor is not None and sock is not None, "prepare() first"
        try:
            self.adopted = await supervisor.adopt(self._saved.live)
            if self._unclean:  # before anything starts: what runs unrecorded must not run twice
                await supervisor.hunt_strays()
            self._watch_task = asyncio.create_task(self._save_registry_on_changes(), name="pmtop:registry")
            await supervisor.boot()
            self._server = await self._serve(sock, self._token)
        except BaseException:
            await self.stop()
            raise
        port = sock.getsockname()[1]
        info = DaemonRecord(host=self.endpoint.host, port=port, pid=os.getpid(), started_at=self._started_at,
                          version=__version__, instance=self.paths.instance,
                          config=str(self.config.path) if self.config.path else None)
        write_daemon_files(self.paths, info)
        self.info_record = info
        assert self.security is not None
        self.partner.attach(self.security, config=self.config.path, address=(self.endpoint.host, port))
        log.info("daemon %s serving on %s:%s (pid %s)", self.paths.instance, self.endpoint.host, port,
                 os.getpid())
        # Once the start-up's bookkeeping (first registry save, run folder pruning) is done too.
        self._trim = asyncio.get_running_loop().call_later(STARTUP_TRIM_DELAY, return_free_memory)
        return info

    async def _serve(self, sock: socket.socket, token: str) -> Server[ApiContext]:
        from ..api.http11 import Server
        from ..api.security import SecurityStore
        from ..api.server import make_app

        assert self.supervisor is not None
        self.security = SecurityStore(self.paths.state_dir)
        app = make_app(self.supervisor, self, security=self.security, token=token, read_only=self.read_only)
        server = Server(app)
        await server.start(sock)
        return server

    def _runtime_specs(self, saved: RegistryData) -> list[ProcessSpec]:
        specs = []
        for name, table in saved.added.items():
            table = dict(table)
            scope = table.pop("scope", "global")
            project = table.pop("project", None)
            session_pid = table.pop("session_pid", None)
            base = Path(project) if project else Path.cwd()
            try:
                spec = parse_process(name, table, base_dir=base, adopted="command" not in table)
            except ConfigError as exc:
                log.warning("registry: dropping %s: %s", name, exc.message)
                continue
            specs.append(replace(spec, scope=Scope(scope), project=project, session_pid=session_pid))
        return specs

    async def stop(self, *, stop_processes: bool | None = None) -> None:
        """Close the server, stop the processes (unless told to leave them), remove the files."""
        if self.stopped:
            return
        self.stopped = True
        if self._trim is not None:
            self._trim.cancel()
        stop = self.stop_on_exit if stop_processes is None else stop_processes
        if self.info_record is not None:
            # First: a partner that finds daemon.json gone knows this is a deliberate stop, however
            # long stopping the processes takes, and does not restart what is going away on purpose.
            remove_daemon_files(self.paths, self.info_record)
        await self.partner.close()
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self.supervisor is not None:
            if self._watch_task is not None:
                self._watch_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watch_task
            if self._save_handle is not None:
                # A save still pending from the last event would run after the hand-over below and
                # record the processes as gone (the runners let go of them): the successor would
                # start every one of them again (the flaky dashboard hand-over test).
                self._save_handle.cancel()
                self._save_handle = None
            if stop:
                await self.supervisor.shutdown()
                self._save_registry()
            else:
                self._save_registry()  # while the runners still know their children
                await self.supervisor.detach()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._lock.release()

    # -- registry ---------------------------------------------------------------------------------

    async def _save_registry_on_changes(self) -> None:
        """Save the registry (coalesced) when what it records may have changed (`recorded_facts`): a
        PID, the restart counters, a schedule's next time, which processes there are. Live facts and
        health updates change none of it and save nothing: a dashboard watching with live facts has
        every process published every second."""
        assert self.supervisor is not None
        self._save_registry()
        recorded: dict[str, tuple[object, ...]] = {}
        async with self.supervisor.subscribe() as events:
            async for event in events:
                if isinstance(event, ProcessStatus):
                    facts = recorded_facts(event)
                    if recorded.get(event.name) == facts:
                        continue
                    recorded[event.name] = facts
                else:  # removed
                    recorded.pop(event.name, None)
                self._save_later(REGISTRY_SAVE_DELAY)

    def _save_later(self, delay: float) -> None:
        if self._save_handle is None and not self.stopped:
            self._save_handle = asyncio.get_running_loop().call_later(delay, self._save_registry_soon)

    def _save_registry_soon(self) -> None:
        """The coalesced save: the content is taken now, in the loop (a consistent snapshot); the write
        and its two fsyncs (milliseconds on a real disk) happen in the writer thread, so that no crash
        waits for them to restart. One thread: the writes land in the order they were taken."""
        self._save_handle = None
        blob = self._registry_blob()
        if blob is None:
            return
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pmtop-registry")
        written = asyncio.get_running_loop().run_in_executor(self._writer, self._write_registry, blob)
        written.add_done_callback(self._registry_written)

    def _save_registry(self) -> None:
        """Now, in this thread (start-up, stop): after any write still under way in the writer."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        blob = self._registry_blob()
        if blob is not None:
            self._saved_or_not(self._write_registry(blob))

    def _registry_blob(self) -> bytes | None:
        if self.supervisor is None:
            return None
        added = {}
        for spec in self.supervisor.runtime_specs:
            table = spec_to_table(spec)
            table["scope"] = spec.scope.value
            if spec.project:
                table["project"] = spec.project
            if spec.session_pid is not None:
                table["session_pid"] = spec.session_pid
            added[spec.name] = table
        return self.registry.encode(RegistryData(live=self.supervisor.live_children(), added=added,
                                                 schedules=self.supervisor.schedule_memos(),
                                                 scaled=self.supervisor.scaled_counts()))

    def _write_registry(self, blob: bytes) -> OSError | None:
        """Any thread; what went wrong is judged in the loop (`_saved_or_not`)."""
        try:
            self.registry.write(blob)
        except OSError as exc:  # a full or read-only disk must not take the supervisor down
            return exc
        return None

    def _registry_written(self, written: asyncio.Future[OSError | None]) -> None:
        if not written.cancelled():
            self._saved_or_not(written.result())

    def _saved_or_not(self, error: OSError | None) -> None:
        """A failed save is said once (not at every change) and tried again until one works; then
        that is said once too."""
        if error is not None:
            if self._registry_trouble is None:
                log.error("cannot save the registry (%s): %s; a successor could not adopt what runs now",
                          self.registry.path, error.strerror or error)
            self._registry_trouble = error.strerror or str(error)
            self._save_later(REGISTRY_RETRY_AFTER)
            return
        if self._registry_trouble is not None:
            log.warning("the registry is saved again (%s)", self.registry.path)
            self._registry_trouble = None

    # -- DaemonHooks (the API server's view of the daemon) ----------------------------------------

    def info(self) -> dict[str, Any]:
        record = self.info_record
        return {
            "version": __version__,
            "instance": self.paths.instance,
            "host": record.host if record else self.endpoint.host,
            "port": record.port if record else self.endpoint.port,
            "pid": os.getpid(),
            "uptime": round(time.time() - self._started_at, 3),
            "started_at": self._started_at,
            "config": str(self.config.path) if self.config.path else None,
        }

    def status(self) -> dict[str, Any]:
        problems = [f"registry not saved: {self._registry_trouble}"] if self._registry_trouble else []
        return {"adopted": list(self.adopted), "stop_on_exit": self.stop_on_exit, "partner": self.partner.status(),
                "problems": problems}

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file: add, change and remove its processes; others keep running."""
        if self.config.path is None:
            raise ConfigError("this supervisor runs no config file; nothing to reload")
        new = load_config(self.config.path)
        assert self.supervisor is not None
        result = await self.supervisor.apply_config(new.processes, new.hooks)
        self.config = new
        log.info("reloaded %s: %s", new.path, result)
        return result

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    def request_restart(self) -> None:
        self.restart_requested = True
        self.shutdown_requested.set()
