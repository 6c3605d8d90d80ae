"""How a client command finds its daemon (SPEC §4), and every running daemon of this user.

The instance is `--instance`, else the config's `[daemon] instance`, else "default". Host and port
are each `--host`/`--port`, else the instance's `daemon.json`, else the config's `[daemon]` value,
else 127.0.0.1:19881. The token is read from `--token-file`, else `$PMTOP_TOKEN`, else the instance's
token file (never from the command line, which every local user can read with `ps`).

Everything here is on `pmtop ps`'s path, which must finish in 100 ms, interpreter start included, so
it reads the few files it needs itself instead of importing the modules that own them:
`pmtop.core.config` (its schema and model cost ~30 ms; here the config is only located and its
`[daemon]` table read leniently with `tomllib`, so a broken config never stops `pmtop ps`),
`pmtop.core.daemon.instance` (~30 ms: `secrets`, `dataclasses`, `typing`, `tempfile`), `pmtop.core.locations`
(`dataclasses`, ~10 ms) and platformdirs (~15 ms). tests/cli/test_locate.py keeps each copy equal to
its original.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from pmtop.core.errors import PmtopError

from .client import DEFAULT_INSTANCE, TIMEOUT, Client, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Mapping
    from typing import Any, Final

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 19881
"""`pmtop.core.config.DEFAULT_PORT`."""
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""`pmtop.core.config.schema.NAME_PATTERN`."""
CONFIG_FILENAME: Final = "pmtop.toml"
CONFIG_ENV_VAR: Final = "PMTOP_CONFIG"


# ----------------------------------------------------------------------------------- instance files

def state_base(environ: Mapping[str, str]) -> Path:
    """The folder with one state folder per instance (`pmtop.core.locations.instance_paths`'s parent)."""
    home = environ.get("PMTOP_HOME")
    if home:
        return Path(home).expanduser() / "state"
    if sys.platform == "linux":  # platformdirs' rule for Linux, without importing platformdirs
        xdg = environ.get("XDG_STATE_HOME", "").strip()
        return Path(xdg or os.path.expanduser("~/.local/state")) / "pmtop"
    import platformdirs

    return platformdirs.user_state_path("pmtop")


class Recorded:
    """What an instance's `daemon.json` says: the fields of `core.instance.DaemonInfo` a client uses."""

    __slots__ = ("host", "port", "pid", "instance", "config")

    def __init__(self, host: str, port: int, pid: int, instance: str, config: str | None = None) -> None:
        self.host = host
        self.port = port
        self.pid = pid
        self.instance = instance
        self.config = config

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def read_recorded(state_dir: Path) -> Recorded | None:
    """`core.instance.read_daemon_info`: None when there is no readable `daemon.json`."""
    try:
        data = json.loads((state_dir / "daemon.json").read_text())
        config = data.get("config")
        return Recorded(host=str(data["host"]), port=int(data["port"]), pid=int(data["pid"]),
                        instance=str(data.get("instance", state_dir.name)),
                        config=config if isinstance(config, str) else None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def read_token(state_dir: Path) -> str | None:
    """`core.instance.read_token`."""
    try:
        return (state_dir / "token").read_text().strip() or None
    except OSError:
        return None


def read_token_file(path: str) -> str:
    """The token in `--token-file FILE`; a missing, unreadable or empty file is a usage error."""
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


# ------------------------------------------------------------------------------------ config file

def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`pmtop.core.config.find_config`, absolute, and without its errors: a named file that does
    not exist is simply no config here (`ps` must work whatever state the config is in)."""
    named = explicit or environ.get(CONFIG_ENV_VAR) or None
    path = cwd / Path(named).expanduser() if named else cwd / CONFIG_FILENAME
    return Path(os.path.abspath(path)) if path.is_file() else None


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
                 recorded: Recorded | None, guessed: bool) -> None:
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


def connectable(host: str) -> str:
    """Where to connect for a daemon that listens on `host` (a wildcard address means this machine)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": DEFAULT_HOST}.get(host, host)


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
        raise UsageError(f"invalid instance name {instance!r} (1-64 letters, digits, '_', '.' or '-')")
    configured = daemon.get("instance")
    if instance is None and isinstance(configured, str) and NAME_PATTERN.fullmatch(configured):
        instance = configured
    chosen = instance or DEFAULT_INSTANCE
    state_dir = state_base(env) / chosen
    recorded = read_recorded(state_dir)
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
        token=(read_token_file(token_file) if token_file else None) or env.get("PMTOP_TOKEN")
        or read_token(state_dir),
        config=config_path,
        recorded=recorded,
        guessed=explicit_port is None and recorded is None,
    )


# -------------------------------------------------------------------------------------- instances

def running_daemons(environ: Mapping[str, str] | None = None, timeout: float = 0.5) -> list[tuple[Recorded, dict[str, Any]]]:
    """Every instance whose `daemon.json` names a daemon that answers `/health` as that instance,
    with that answer. Several are probed at once (each may take `timeout` to give up)."""
    from concurrent.futures import ThreadPoolExecutor

    env = os.environ if environ is None else environ
    try:
        folders = sorted(p for p in state_base(env).iterdir() if p.is_dir())
    except OSError:
        return []
    recorded = [info for folder in folders if (info := read_recorded(folder)) is not None]

    def probe(info: Recorded) -> tuple[Recorded, dict[str, Any]] | None:
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
