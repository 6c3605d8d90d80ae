"""How a client command finds its daemon, and a small synchronous client for the daemon's HTTP API.

Why the standard library's `http.client` and not httpx (which the dashboard's `HttpController` uses):
`pmtop ps` must finish in under 100 ms including the interpreter's start, and importing httpx alone
costs ~80 ms. For the same reason nothing here imports `pmtop.core.config` (its schema and model
modules cost ~30 ms): the few things a client needs from a config file, where it is and its
`[daemon]` table, are read leniently with `tomllib`, so a broken config never stops `pmtop ps`.

Errors come back as the `PmtopError` classes the async client raises, rebuilt from the JSON error
body (`no_such_process` -> `NoSuchProcess`, `process_exists` -> `ProcessExists`, `action_refused` ->
`ActionRefused`, `config_invalid` -> `ConfigError`); other refusals (401, 403, 400, ...) are
`ApiError` with the HTTP status. A daemon that does not answer is always `DaemonUnavailable`, with a
line that says how to start one.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlencode

from pmtop.core.errors import ActionRefused, ConfigError, DaemonUnavailable, NoSuchProcess, PmtopError, ProcessExists
from pmtop.core.instance import DaemonInfo, read_daemon_info, read_token
from pmtop.core.paths import instance_paths

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 19881
"""Same as `pmtop.core.config.DEFAULT_PORT` (a test keeps them equal)."""
DEFAULT_INSTANCE: Final = "default"
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Same as `pmtop.core.config_schema.NAME_PATTERN` (a test keeps them equal)."""
CONFIG_FILENAME: Final = "pmtop.toml"
TIMEOUT: Final = 10.0
"""Seconds to connect, and to wait for an answer to anything that is not an action."""
HEARTBEAT_HEADER: Final = "X-Pmtop-Heartbeat"
SILENT_HEARTBEATS: Final = 3
"""An event stream silent for this many heartbeats means the daemon is dead or frozen."""
MAX_LINE: Final = 1 << 20


class UsageError(PmtopError):
    """A bad command line that argparse cannot catch (exit code 2)."""

    code = "usage"


class ApiError(PmtopError):
    """An error answer with no more specific `PmtopError`; `code` is the server's, `status` HTTP's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# ------------------------------------------------------------------------------ finding the daemon

@dataclass(frozen=True, slots=True)
class Target:
    """The daemon a command talks to, and how this invocation sees its surroundings."""

    instance: str
    host: str
    port: int
    token: str | None
    config: Path | None
    """The config file this invocation finds (`--config`, `$PMTOP_CONFIG`, `./pmtop.toml`), absolute."""
    recorded: DaemonInfo | None
    """The instance's `daemon.json`, if there is one."""
    guessed: bool = False
    """The port is the config's or the default, not `--port` or `daemon.json`: whatever answers there
    may be another instance's daemon, so the client checks before it trusts it."""

    def client(self, timeout: float = TIMEOUT) -> Client:
        return Client(self.host, self.port, token=self.token, instance=self.instance, timeout=timeout,
                      verify_instance=self.guessed)


def find_config_quietly(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`pmtop.core.config.find_config` without its errors: a missing named file is simply no file."""
    named = explicit or environ.get("PMTOP_CONFIG") or None
    path = cwd / Path(named).expanduser() if named else cwd / CONFIG_FILENAME
    return Path(os.path.abspath(path)) if path.is_file() else None


def peek_daemon_table(path: Path | None) -> Mapping[str, Any]:
    """The `[daemon]` table of a config file, unchecked; empty when there is none or it does not parse."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file).get("daemon", {})
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    return table if isinstance(table, dict) else {}


def parse_port(raw: object) -> int | None:
    """A port option: None for none or "auto" (a client looks the port up), else 1-65535."""
    if raw is None or raw == "auto":
        return None
    try:
        port = int(str(raw))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f'--port must be a number from 1 to 65535 (got {raw!r})')
    return port


def connectable(host: str) -> str:
    """Where to connect for a daemon that listens on `host` (a wildcard address means this machine)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": DEFAULT_HOST}.get(host, host)


def locate(
    instance: str | None = None,
    host: str | None = None,
    port: object = None,
    token: str | None = None,
    config: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """SPEC §4: the instance is `--instance`, else the config's `[daemon] instance`, else "default".

    Host and port are each `--host`/`--port`, else the instance's `daemon.json`, else the config's
    `[daemon]` value, else 127.0.0.1:19881. The token is `--token`, else `$PMTOP_TOKEN`, else the
    instance's token file.
    """
    env = os.environ if environ is None else environ
    config_path = find_config_quietly(config, env, cwd or Path.cwd())
    daemon = peek_daemon_table(config_path)
    if instance is not None and not NAME_PATTERN.fullmatch(instance):
        raise UsageError(f"invalid instance name {instance!r} (1-64 letters, digits, '_', '.' or '-')")
    configured = daemon.get("instance")
    if instance is None and isinstance(configured, str) and NAME_PATTERN.fullmatch(configured):
        instance = configured
    paths = instance_paths(instance or DEFAULT_INSTANCE, dict(env))
    recorded = read_daemon_info(paths)
    configured_port = daemon.get("port")
    if isinstance(configured_port, bool) or not isinstance(configured_port, int) or not 1 <= configured_port <= 65535:
        configured_port = DEFAULT_PORT
    explicit_port = parse_port(port)
    chosen_port = explicit_port or (recorded.port if recorded is not None else configured_port)
    configured_host = daemon.get("host")
    chosen_host = host or (recorded.host if recorded is not None else None)
    if not chosen_host:
        chosen_host = configured_host.strip() if isinstance(configured_host, str) else DEFAULT_HOST
    return Target(
        instance=paths.instance,
        host=connectable(chosen_host),
        port=chosen_port,
        token=token or env.get("PMTOP_TOKEN") or read_token(paths),
        config=config_path,
        recorded=recorded,
        guessed=explicit_port is None and recorded is None,
    )


# ----------------------------------------------------------------------------------------- client

class Client:
    """One keep-alive connection to a daemon. Use as a context manager, or call `close()`."""

    def __init__(
        self, host: str, port: int, *, token: str | None = None, instance: str = DEFAULT_INSTANCE,
        timeout: float = TIMEOUT, verify_instance: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.instance = instance
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._verify = verify_instance

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------

    def unavailable(self, exc: BaseException | None = None) -> DaemonUnavailable:
        where = f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"
        if isinstance(exc, TimeoutError):
            return DaemonUnavailable(f"the pmtop daemon at {where} did not answer within {self.timeout:g}s")
        start = "pmtop --headless --detach" + (f" --instance {self.instance}" if self.instance != DEFAULT_INSTANCE else "")
        return DaemonUnavailable(f"no pmtop daemon for instance {self.instance!r} at {where} — start one with `{start}`")

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """The open connection and whether it was used before (then it may have been closed idle)."""
        if self._conn is not None:
            return self._conn, True
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise self.unavailable(exc) from None
        self._conn = conn
        return conn, False

    def _send(self, method: str, path: str, body: bytes | None, read_timeout: float | None) -> http.client.HTTPResponse:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                assert conn.sock is not None
                conn.sock.settimeout(read_timeout)
                conn.request(method, path, body=body, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:  # the daemon closed an idle keep-alive connection: reconnect
                    continue
                raise self.unavailable(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self.unavailable(exc) from None
        raise AssertionError("unreachable")

    def error(self, status: int, body: bytes) -> PmtopError:
        """The `PmtopError` the server raised, rebuilt from its JSON error body."""
        try:
            error = json.loads(body)["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            return ApiError(status, "http_error", f"HTTP {status} from the pmtop daemon at {self.url}")
        name = error.get("name")
        if code == NoSuchProcess.code and isinstance(name, str):
            return NoSuchProcess(name)
        if code == ProcessExists.code and isinstance(name, str):
            return ProcessExists(name)
        if code == ActionRefused.code:
            return ActionRefused(message)
        if code == ConfigError.code:
            if "detail" not in error:
                return ConfigError(message)
            return ConfigError(str(error["detail"]), file=error.get("file"), key_path=error.get("key_path"),
                               line=error.get("line"), column=error.get("column"))
        if code == DaemonUnavailable.code:
            return DaemonUnavailable(message)
        if status == 401:
            message = f"{message} (give it with --token or $PMTOP_TOKEN)"
        elif status == 403:
            message = f"refused by the pmtop daemon at {self.url}: {message}"
        return ApiError(status, code, message)

    def request(self, method: str, path: str, body: Any = None, *, wait: bool = False) -> Any:
        """The decoded JSON answer (text for anything else). `wait`: an action that may take as long
        as a process's stop timeout, so only connecting is bounded by `timeout`."""
        if self._verify:
            self._verify = False
            self._check_instance()
        data = json.dumps(body).encode() if body is not None else None
        response = self._send(method, path, data, None if wait else self.timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self.unavailable(exc) from None
        if response.will_close:
            self.close()
        if response.status >= 400:
            raise self.error(response.status, raw)
        if (response.getheader("Content-Type") or "").startswith("application/json"):
            return json.loads(raw)
        return raw.decode("utf-8", "replace")

    # -- the API --------------------------------------------------------------------------------------

    def _check_instance(self) -> None:
        """Is what answers here the daemon of our instance? (`/health` is open to every client.)"""
        try:
            health = self.health()
        except DaemonUnavailable:
            raise self.unavailable() from None
        if health.get("instance") != self.instance:
            other = health.get("instance")
            raise DaemonUnavailable(f"{self.unavailable().message} (what answers there is pmtop instance {other!r})")

    def health(self) -> dict[str, Any]:
        data = self.request("GET", "/health")
        if not isinstance(data, dict) or data.get("service") != "pmtop":
            raise DaemonUnavailable(f"what answers at {self.url} is not a pmtop daemon")
        return data

    def processes(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/processes")["processes"])

    def act(self, name: str, verb: str) -> dict[str, Any]:
        return dict(self.request("POST", f"{process_path(name)}/{verb}", wait=True))

    def alive(self) -> bool:
        """Does anything answer `/alive` now? (A fresh connection each time: used while it goes away.)"""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=min(self.timeout, 1.0))
        try:
            conn.request("GET", "/alive")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def events(self, path: str) -> Iterator[tuple[str, str]]:
        """Server-Sent Events from `path`, as `(event, data)`, until the daemon ends the stream.

        Comments (`: keepalive`) only prove the daemon lives; silence for three heartbeats, or a
        dropped connection, is `DaemonUnavailable`.
        """
        if self._verify:
            self._verify = False
            self._check_instance()
        response = self._send("GET", path, None, self.timeout)
        if response.status >= 400:
            body = response.read()
            self.close()
            raise self.error(response.status, body)
        try:
            heartbeat = float(response.getheader(HEARTBEAT_HEADER) or 15.0)
        except ValueError:
            heartbeat = 15.0
        silence = max(heartbeat * SILENT_HEARTBEATS, self.timeout)
        conn = self._conn
        self._conn = None  # this connection now belongs to the stream
        try:
            if conn is not None and conn.sock is not None:
                conn.sock.settimeout(silence)
            event, data = "message", list[str]()
            while True:
                try:
                    raw = response.readline(MAX_LINE)
                except TimeoutError:
                    raise DaemonUnavailable(f"the pmtop daemon at {self.url} went silent (nothing for {silence:g}s)") from None
                except (OSError, http.client.HTTPException):
                    raw = b""
                if not raw:
                    raise DaemonUnavailable(f"lost the connection to the pmtop daemon at {self.url}")
                line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
                if not line:
                    if data:
                        yield event, "\n".join(data)
                    event, data = "message", []
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)
        finally:
            response.close()
            if conn is not None:
                conn.close()

    def follow_logs(self, name: str, stream: str, lines: int) -> Iterator[str]:
        """The last `lines` lines of `stream`, then each new one; ends when the process is removed."""
        query = urlencode({"stream": stream, "lines": lines, "follow": 1})
        for event, data in self.events(f"{process_path(name)}/logs?{query}"):
            if event == "message":
                yield str(json.loads(data))
            elif event == "end":
                if _end_reason(data) == "removed":
                    return
                raise DaemonUnavailable(f"the pmtop daemon at {self.url} closed the log stream (shutting down)")


def _end_reason(data: str) -> str:
    try:
        return str(json.loads(data).get("reason", ""))
    except (ValueError, AttributeError):
        return ""


def process_path(name: str, *rest: str) -> str:
    return "/".join(["/processes", quote(name, safe=""), *rest])


# -------------------------------------------------------------------------------------- instances

@dataclass(frozen=True, slots=True)
class RunningDaemon:
    info: DaemonInfo
    health: dict[str, Any]


def state_base(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding one state folder per instance."""
    return instance_paths(DEFAULT_INSTANCE, dict(os.environ if environ is None else environ)).state_dir.parent


def running_daemons(environ: Mapping[str, str] | None = None, timeout: float = 0.5) -> list[RunningDaemon]:
    """Every instance whose `daemon.json` names a daemon that answers `/health` as that instance."""
    from concurrent.futures import ThreadPoolExecutor

    from pmtop.core.instance import probe_health

    env = dict(os.environ if environ is None else environ)
    try:
        folders = sorted(p for p in state_base(env).iterdir() if p.is_dir())
    except OSError:
        return []
    recorded = [info for p in folders if (info := read_daemon_info(instance_paths(p.name, env))) is not None]

    def probe(info: DaemonInfo) -> RunningDaemon | None:
        health = probe_health(connectable(info.host), info.port, timeout=timeout)
        if not health or health.get("service") != "pmtop" or health.get("instance") != info.instance:
            return None
        return RunningDaemon(info, health)

    if len(recorded) <= 1:
        found = [probe(info) for info in recorded]
    else:
        with ThreadPoolExecutor(max_workers=min(16, len(recorded))) as pool:
            found = list(pool.map(probe, recorded))
    return [d for d in found if d is not None]
