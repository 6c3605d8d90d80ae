"""How a client command finds its daemon (SPEC §4), and every running daemon of this user.

The instance is `--instance`, else the config's `[daemon] instance`, else "default". Host and port
are each `--host`/`--port`, else the instance's `daemon.json`, else the config's `[daemon]` value,
else 127.0.0.1:19881. The token is read from `--token-file`, else `$PMTOP_TOKEN`, else the instance's
token file (never from the command line, which every local user can read with `ps`).

The rules for where files are come from `pmtop.core.locations`, the one home they have; this module
only composes them. It reads the config's `[daemon]` table leniently with `tomllib` instead of loading
the config (whose schema costs ~30 ms of `pmtop ps`'s 100 ms), so a broken config never stops `ps`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pmtop.core import locations
from pmtop.core.api.sync_client import TIMEOUT, Client
from pmtop.core.errors import PmtopError, UsageError
from pmtop.core.locations import (
    DEFAULT_HOST,
    DEFAULT_INSTANCE,
    DEFAULT_PORT,
    NAME_PATTERN,
    NAME_RULE,
    TOKEN_ENV_VAR,
    DaemonRecord,
    connectable,
    read_daemon_record,
    read_token,
    state_base,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Mapping
    from typing import Any


def read_token_file(path: str) -> str:
    """The token in `--token-file FILE`; a missing, unreadable or empty file is a usage error."""
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`locations.find_config`, without its errors: a named file that does not exist is simply no
    config here (`ps` must work whatever state the config is in)."""
    try:
        return locations.find_config(explicit, environ, cwd)
    except OSError:
        return None


def peek_daemon_table(path: Path | None) -> Mapping[str, Any]:
    """The `[daemon]` table of a config file, unchecked; empty when there is none or it does not parse."""
    if path is None:
        return {}
    try:
        data = path.read_bytes()
        if b"daemon" not in data:  # no [daemon] table: no need to parse (or even import) TOML
            return {}
        import tomllib

        table = tomllib.loads(data.decode("utf-8")).get("daemon", {})
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    return table if isinstance(table, dict) else {}


# ------------------------------------------------------------------------------------- the target

class Target:
    """The daemon a command talks to, and what this invocation sees around it."""

    __slots__ = ("instance", "host", "port", "token", "config", "recorded", "guessed")

    def __init__(self, instance: str, host: str, port: int, token: str | None, config: Path | None,
                 recorded: DaemonRecord | None, guessed: bool) -> None:
        self.instance = instance
        self.host = host
        self.port = port
        self.token = token
        self.config = config
        """The config file this invocation finds (`--config`, `$PMTOP_CONFIG`, `./pmtop.toml`), absolute."""
        self.recorded = recorded
        """The instance's `daemon.json`, if there is one."""
        self.guessed = guessed
        """The port is the config's or the default, not `--port` or `daemon.json`: whatever answers
        there may be another instance's daemon, so the client checks before it trusts it."""

    def client(self, timeout: float = TIMEOUT) -> Client:
        return Client(self.host, self.port, token=self.token, instance=self.instance, timeout=timeout,
                      verify_instance=self.guessed)


def parse_port(raw: object) -> int | None:
    """A port option: None for none or "auto" (a client looks the port up), else 1-65535."""
    if raw is None or raw == "auto":
        return None
    try:
        port = int(str(raw))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be a number from 1 to 65535 (got {raw!r})")
    return port


def locate(
    instance: str | None = None,
    host: str | None = None,
    port: object = None,
    token_file: str | None = None,
    config: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    env = os.environ if environ is None else environ
    config_path = find_config(config, env, cwd or Path.cwd())
    daemon = peek_daemon_table(config_path)
    if instance is not None and not NAME_PATTERN.fullmatch(instance):
        raise UsageError(f"invalid instance name {instance!r} ({NAME_RULE})")
    configured = daemon.get("instance")
    if instance is None and isinstance(configured, str) and NAME_PATTERN.fullmatch(configured):
        instance = configured
    chosen = instance or DEFAULT_INSTANCE
    state_dir = state_base(env) / chosen
    recorded = read_daemon_record(state_dir)
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
        instance=chosen,
        host=connectable(chosen_host),
        port=chosen_port,
        token=(read_token_file(token_file) if token_file else None) or env.get(TOKEN_ENV_VAR)
        or read_token(state_dir),
        config=config_path,
        recorded=recorded,
        guessed=explicit_port is None and recorded is None,
    )


# -------------------------------------------------------------------------------------- instances

def running_daemons(environ: Mapping[str, str] | None = None,
                    timeout: float = 0.5) -> list[tuple[DaemonRecord, dict[str, Any]]]:
    """Every instance whose `daemon.json` names a daemon that answers `/health` as that instance,
    with that answer. Several are probed at once (each may take `timeout` to give up)."""
    from concurrent.futures import ThreadPoolExecutor

    env = os.environ if environ is None else environ
    try:
        folders = sorted(p for p in state_base(env).iterdir() if p.is_dir())
    except OSError:
        return []
    recorded = [info for folder in folders if (info := read_daemon_record(folder)) is not None]

    def probe(info: DaemonRecord) -> tuple[DaemonRecord, dict[str, Any]] | None:
        try:
            with Client(connectable(info.host), info.port, instance=info.instance, timeout=timeout) as client:
                health = client.health()
        except PmtopError:  # DaemonUnavailable, or an error answer: not a daemon of ours
            return None
        return (info, health) if health.get("instance") == info.instance else None

    if len(recorded) <= 1:
        found = [probe(info) for info in recorded]
    else:
        with ThreadPoolExecutor(max_workers=min(16, len(recorded))) as pool:
            found = list(pool.map(probe, recorded))
    return [d for d in found if d is not None]
