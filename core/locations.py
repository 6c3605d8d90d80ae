"""Where things are: the config file, an instance's state and log folders, `daemon.json`, the token.

The one home of these rules for every face: the daemon writes where this module says, and the client
commands find the daemon the same way. Standard library only, and cheap to import (no `dataclasses`,
no `typing` at run time): `pmtop ps` reads these files on a 100 ms budget, interpreter start included.

The folders are platformdirs' (XDG on Linux, `~/Library` on macOS), written out here because importing
platformdirs costs `pmtop ps` about 15 ms; tests/cli/test_locate.py holds them equal to its answers.

    $PMTOP_HOME/state/<instance>/   (tests)   or  ~/.local/state/pmtop/<instance>/       (Linux)
    $PMTOP_HOME/log/<instance>/               or  ~/.local/state/pmtop/log/<instance>/
    $PMTOP_HOME/config/                       or  ~/.config/pmtop/
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Mapping
    from typing import Any, Final

APP: Final = "pmtop"
DEFAULT_INSTANCE: Final = "default"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 19881
CONFIG_FILENAME: Final = "pmtop.toml"
CONFIG_ENV_VAR: Final = "PMTOP_CONFIG"
HOME_ENV_VAR: Final = "PMTOP_HOME"
"""When set, everything lives under it (tests): `state/`, `log/`, `config/`."""
TOKEN_ENV_VAR: Final = "PMTOP_TOKEN"
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Process and instance names: they become folder names."""
NAME_RULE: Final = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
DAEMON_FILE: Final = "daemon.json"
TOKEN_FILE: Final = "token"
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


# ------------------------------------------------------------------------------------------ folders

def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _xdg(environ: Mapping[str, str], variable: str, default: str) -> Path:
    value = environ.get(variable, "").strip()
    return Path(value if value and os.path.isabs(value) else os.path.expanduser(default))


def state_base(environ: Mapping[str, str] | None = None) -> Path:
    """The folder that holds one state folder per instance."""
    env = _env(environ)
    home = env.get(HOME_ENV_VAR)
    if home:
        return Path(home).expanduser() / "state"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / APP
    return _xdg(env, "XDG_STATE_HOME", "~/.local/state") / APP


def log_base(environ: Mapping[str, str] | None = None) -> Path:
    """The folder that holds one log folder per instance."""
    env = _env(environ)
    home = env.get(HOME_ENV_VAR)
    if home:
        return Path(home).expanduser() / "log"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Logs")) / APP
    return state_base(env) / "log"


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Per-user settings: remembered theme, user themes (`themes/*.toml`), keymap, `fleet.toml`."""
    env = _env(environ)
    home = env.get(HOME_ENV_VAR)
    if home:
        return Path(home).expanduser() / "config"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / APP
    return _xdg(env, "XDG_CONFIG_HOME", "~/.config") / APP


class InstancePaths:
    """The folders of one instance."""

    __slots__ = ("instance", "state_dir", "log_dir")

    def __init__(self, instance: str, state_dir: Path, log_dir: Path) -> None:
        self.instance = instance
        self.state_dir = state_dir
        """`instance.lock`, `daemon-<port>.pid`, `daemon.json`, `registry.json`, `token`."""
        self.log_dir = log_dir
        """`daemon-<timestamp>.log` and one folder per process."""

    def process_log_dir(self, name: str) -> Path:
        return self.log_dir / name

    @property
    def token_file(self) -> Path:
        return self.state_dir / TOKEN_FILE

    @property
    def daemon_file(self) -> Path:
        return self.state_dir / DAEMON_FILE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstancePaths):
            return NotImplemented
        return (self.instance, self.state_dir, self.log_dir) == (other.instance, other.state_dir, other.log_dir)

    def __hash__(self) -> int:
        return hash((self.instance, self.state_dir, self.log_dir))

    def __repr__(self) -> str:
        return f"InstancePaths({self.instance!r}, {str(self.state_dir)!r}, {str(self.log_dir)!r})"


def instance_paths(instance: str, environ: Mapping[str, str] | None = None) -> InstancePaths:
    env = _env(environ)
    return InstancePaths(instance, state_base(env) / instance, log_base(env) / instance)


# ------------------------------------------------------------------------------------- the config

def find_config(explicit: str | None, environ: Mapping[str, str] | None, cwd: Path) -> Path | None:
    """`--config FILE`, else `$PMTOP_CONFIG`, else `./pmtop.toml` if it exists, else None (absolute).

    A file named explicitly (option or variable) must exist: `FileNotFoundError`, or
    `IsADirectoryError` for a folder (the loader turns them into its one-line error; a client that
    only wants the daemon's address may ignore them).
    """
    named = explicit or _env(environ).get(CONFIG_ENV_VAR) or None
    if named is not None:
        path = cwd / Path(named).expanduser()
        if path.is_dir():
            raise IsADirectoryError(named)
        if not path.exists():
            raise FileNotFoundError(named)
        return Path(os.path.abspath(path))  # not resolve(): a symlinked config keeps its own folder
    default = cwd / CONFIG_FILENAME
    return Path(os.path.abspath(default)) if default.is_file() else None


# --------------------------------------------------------------------- daemon.json and the token

class DaemonRecord:
    """What `daemon.json` says: how clients find the daemon of an instance."""

    __slots__ = ("host", "port", "pid", "started_at", "version", "instance", "config")

    def __init__(self, host: str, port: int, pid: int, instance: str, *, started_at: float = 0.0,
                 version: str = "", config: str | None = None) -> None:
        self.host = host
        self.port = port
        self.pid = pid
        self.instance = instance
        self.started_at = started_at
        self.version = version
        self.config = config
        """The config file the daemon runs, if any."""

    @property
    def url(self) -> str:
        return endpoint_url(self.host, self.port)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], instance: str) -> DaemonRecord:
        """Raises `KeyError`, `TypeError` or `ValueError` when `data` is not a daemon record."""
        config = data.get("config")
        return cls(str(data["host"]), int(data["port"]), int(data["pid"]), str(data.get("instance", instance)),
                   started_at=float(data.get("started_at") or 0.0), version=str(data.get("version", "")),
                   config=config if isinstance(config, str) else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DaemonRecord):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"DaemonRecord({self.instance!r}, {self.url}, pid {self.pid})"


def read_daemon_record(state_dir: Path) -> DaemonRecord | None:
    """The instance's `daemon.json`; None when there is none, or it is unreadable or malformed."""
    try:
        data = json.loads((state_dir / DAEMON_FILE).read_text())
        return DaemonRecord.from_json(data, state_dir.name)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def read_token(state_dir: Path) -> str | None:
    """The instance's token, or None when there is none (yet) or it cannot be read."""
    try:
        return (state_dir / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


# ---------------------------------------------------------------------------------- addresses

def endpoint_url(host: str, port: int) -> str:
    """`http://127.0.0.1:19881`, `http://[::1]:19881`."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def connectable(host: str) -> str:
    """Where to connect for a daemon that listens on `host` (a wildcard address means this machine)."""
    return {"0.0.0.0": DEFAULT_HOST, "::": "::1", "": DEFAULT_HOST}.get(host, host)


def is_loopback(host: str) -> bool:
    """Does `host` name this machine's loopback (as a client connects to it)?"""
    return host in LOOPBACK_NAMES or host.startswith("127.")
