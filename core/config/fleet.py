"""`fleet.toml`: the daemons that one dashboard (`pmtop --fleet`) and `pmtop ps --fleet` show (SPEC §12).

    # ~/.config/pmtop/fleet.toml  ($PMTOP_HOME/config/fleet.toml in tests)
    [fleet]
    daemons = [
        { url = "http://10.0.0.5:19881", token_file = "~/.config/pmtop/web1.token", name = "web1" },
        { url = "http://127.0.0.1:19881" },
    ]

Strict like `pmtop.toml`: an unknown key, a URL that is not `http://HOST:PORT`, a name that is not a
name, a daemon listed twice: each is one line naming the file, the line and the key, and nothing
starts. A missing file is an empty fleet (`--attach URL` works without one).

The token of each daemon is read when it is needed (at each connection, so a fixed token file heals
a refused daemon): its `token_file`, else `$PMTOP_TOKEN`, else, for a loopback URL, the token of this
user's own instance whose `daemon.json` names that port (as the owner's other commands need no token
flag). A token file that cannot be read is that daemon's problem, not the fleet's: it shows as refused.

Each daemon has a label, the word in the dashboard's HOST column and `pmtop ps --fleet`'s: its `name`,
else the URL's host, else (when several daemons share a host) `host:port`. Labels never contain `/`,
so `label/process` names a process of the fleet unambiguously.

Cheap (the standard library; the rules' helpers only when a file is read): `pmtop ps --fleet` loads it
on `pmtop ps`'s 100 ms budget. For the same reason the client commands keep what they last read in
`<state>/fleet.json` and use it while fleet.toml is unchanged (same inode, size, mtime and ctime), so
that they parse TOML only after an edit; the dashboard always reads the file itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError, Invalid, UsageError
from ..locations import (
    NAME_PATTERN,
    NAME_RULE,
    TOKEN_ENV_VAR,
    connectable,
    endpoint_url,
    is_loopback,
    read_daemon_record,
    state_base,
    user_config_dir,
)
from ..locations import (
    read_token as read_instance_token,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, Final

FLEET_FILENAME: Final = "fleet.toml"
CACHE_FILENAME: Final = "fleet.json"
"""In the state folder: fleet.toml as last read, for the client commands."""
DAEMON_KEYS: Final = ("url", "token_file", "name")
URL_RULE: Final = "http://HOST:PORT, e.g. http://10.0.0.5:19881"


class FleetDaemon:
    """One daemon of the fleet: where it answers, how its token is found, and what it is called."""

    __slots__ = ("url", "host", "port", "token_file", "name", "label")

    def __init__(self, url: str, host: str, port: int, *, token_file: Path | None = None,
                 name: str | None = None, label: str | None = None) -> None:
        self.url = url
        """Normalized: `http://host:port` (`http://[::1]:19881`)."""
        self.host = host
        """The address to connect to (no brackets)."""
        self.port = port
        self.token_file = token_file
        """Absolute (`~` expanded, relative to fleet.toml's folder); None: `$PMTOP_TOKEN` or the local token."""
        self.name = name
        """As given in fleet.toml, if at all."""
        self.label = label or name or host
        """The HOST column's word for it (set for the whole fleet by `labelled`)."""

    def with_label(self, label: str) -> FleetDaemon:
        return FleetDaemon(self.url, self.host, self.port, token_file=self.token_file, name=self.name, label=label)

    def with_token_file(self, token_file: Path) -> FleetDaemon:
        return FleetDaemon(self.url, self.host, self.port, token_file=token_file, name=self.name, label=self.label)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FleetDaemon):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"FleetDaemon({self.label!r}, {self.url!r})"


class Fleet:
    """A loaded `fleet.toml` (empty when there is no such file)."""

    __slots__ = ("path", "daemons", "exists")

    def __init__(self, path: Path, daemons: Sequence[FleetDaemon] = (), *, exists: bool = True) -> None:
        self.path = path
        self.daemons = tuple(daemons)
        self.exists = exists

    def by_url(self) -> dict[str, FleetDaemon]:
        return {d.url: d for d in self.daemons}


def fleet_path(environ: Mapping[str, str] | None = None) -> Path:
    """`fleet.toml` in the user config folder (`$PMTOP_HOME/config/` in tests)."""
    return user_config_dir(environ) / FLEET_FILENAME


# ------------------------------------------------------------------------------------------- URLs

def _quoted(text: str) -> str:
    """A URL as the user wrote it, quoted (as `values.show` quotes a string; this path cannot import it)."""
    return json.dumps(text, ensure_ascii=False)


def parse_url(text: str) -> FleetDaemon:
    """A daemon at `http://HOST:PORT` (a trailing `/` allowed); `ValueError` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"must be a URL like {URL_RULE}")
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {_quoted(raw)} ({exc}); use {URL_RULE}") from None
    if parts.scheme.lower() != "http":
        why = ("pmtop's API speaks plain HTTP: reach a remote daemon through a TLS proxy that forwards to it, "
               "or an SSH tunnel") if parts.scheme.lower() == "https" else f"use {URL_RULE}"
        raise ValueError(f"{_quoted(raw)} is not an http:// URL ({why})")
    host = parts.hostname
    if not host:
        raise ValueError(f"{_quoted(raw)} names no host; use {URL_RULE}")
    if port is None:
        raise ValueError(f"{_quoted(raw)} names no port (pmtop's default is 19881: http://{parts.netloc}:19881)")
    if not 1 <= port <= 65535:
        raise ValueError(f"{_quoted(raw)}: the port must be from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{_quoted(raw)}: no user or password in the URL (the token comes from token_file)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{_quoted(raw)}: a daemon's URL has no path or query; use {URL_RULE}")
    return FleetDaemon(endpoint_url(host, port), host, port)


# ---------------------------------------------------------------------------------------- loading

def load_fleet(path: Path | None = None, environ: Mapping[str, str] | None = None, *, cached: bool = False) -> Fleet:
    """Read and check `fleet.toml` (default: the user config folder's); `ConfigError` on the first problem.

    With `cached` (the client commands), what was read last is used while the file is unchanged."""
    path = fleet_path(environ) if path is None else path
    try:
        info = path.stat()
    except FileNotFoundError:
        return Fleet(path, exists=False)
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", file=str(path)) from None
    key = [str(path), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    cache = state_base(environ) / CACHE_FILENAME
    if cached:
        fleet = _from_cache(cache, key, path)
        if fleet is not None:
            return fleet
    fleet = _read(path)
    if cached:
        _to_cache(cache, key, fleet)
    return fleet


def _read(path: Path) -> Fleet:
    import tomllib

    from .lines import find_line, item_line, syntax_error_position

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("not valid UTF-8 text", file=str(path), line=data[: exc.start].count(b"\n") + 1) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = syntax_error_position(str(exc), text)
        raise ConfigError(f"invalid TOML: {message}", file=str(path), line=line, column=column) from None
    try:
        daemons = _daemons(document, path.parent)
    except _AtItem as problem:
        raise ConfigError(problem.message, file=str(path), key_path=problem.key_path,
                          line=item_line(text, ("fleet", "daemons"), problem.index, problem.key)) from None
    except Invalid as problem:
        raise problem.to_error(str(path), find_line(text, problem.path)) from None
    try:
        return Fleet(path, labelled(daemons))
    except ValueError as exc:
        raise ConfigError(str(exc), file=str(path), key_path="fleet.daemons") from None


def _from_cache(cache: Path, key: list[Any], path: Path) -> Fleet | None:
    """The fleet as last read, if `key` says fleet.toml has not changed since; None otherwise."""
    try:
        data = json.loads(cache.read_bytes())
        if data.get("key") != key:
            return None
        return Fleet(path, [FleetDaemon(d["url"], d["host"], int(d["port"]), name=d["name"], label=d["label"],
                                        token_file=Path(d["token_file"]) if d["token_file"] else None)
                            for d in data["daemons"]])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _to_cache(cache: Path, key: list[Any], fleet: Fleet) -> None:
    """Best effort: without a cache the next command reads fleet.toml again, nothing worse."""
    from ..errors import PmtopError
    from ..files import write_atomic

    daemons = [{"url": d.url, "host": d.host, "port": d.port, "name": d.name, "label": d.label,
                "token_file": str(d.token_file) if d.token_file else None} for d in fleet.daemons]
    try:
        write_atomic(cache, json.dumps({"key": key, "daemons": daemons}).encode())
    except (OSError, PmtopError):
        pass


class _AtItem(Exception):
    """A problem in one element of `daemons`: placed by its index (TOML has no key path for it)."""

    def __init__(self, index: int, key: str | None, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.key = key
        self.message = message
        self.key_path = f"fleet.daemons[{index}]" + (f".{key}" if key else "")


def _daemons(document: Mapping[str, Any], folder: Path) -> list[FleetDaemon]:
    from ..values import check_keys, show, want_table

    check_keys(document, (), ("fleet",))
    fleet = want_table(document.get("fleet", {}), ("fleet",))
    check_keys(fleet, ("fleet",), ("daemons",))
    items = fleet.get("daemons", [])
    if not isinstance(items, list):
        raise Invalid(("fleet", "daemons"), f"must be an array of tables like {{ url = \"{URL_RULE.split(',')[0]}\", "
                      f"token_file = \"...\" }} (got {show(items)})")
    daemons: list[FleetDaemon] = []
    seen_urls: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for index, item in enumerate(items):
        daemon = _daemon(index, item, folder)
        if daemon.url in seen_urls:
            raise _AtItem(index, "url", f"{daemon.url} is listed twice (also fleet.daemons[{seen_urls[daemon.url]}])")
        seen_urls[daemon.url] = index
        if daemon.name is not None:
            if daemon.name in seen_names:
                raise _AtItem(index, "name", f"the name {daemon.name!r} is taken by fleet.daemons[{seen_names[daemon.name]}]")
            seen_names[daemon.name] = index
        daemons.append(daemon)
    return daemons


def _daemon(index: int, item: object, folder: Path) -> FleetDaemon:
    from ..values import check_keys, show, want_str, want_table

    where = ("fleet", "daemons", str(index))
    try:
        table = want_table(item, where)
        check_keys(table, where, DAEMON_KEYS)
    except Invalid as problem:
        key = problem.path[3] if len(problem.path) > 3 else None
        raise _AtItem(index, key, problem.detail) from None
    if "url" not in table:
        raise _AtItem(index, None, f"needs a url ({URL_RULE})")
    values: dict[str, str] = {}
    for key in DAEMON_KEYS:
        if key in table:
            try:
                values[key] = want_str(table[key], (*where, key)).strip()
            except Invalid as problem:
                raise _AtItem(index, key, problem.detail) from None
    try:
        daemon = parse_url(values["url"])
    except ValueError as exc:
        raise _AtItem(index, "url", str(exc)) from None
    name = values.get("name")
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise _AtItem(index, "name", f"invalid name {show(name)} ({NAME_RULE})")
    token_file = values.get("token_file")
    token_path = None
    if token_file is not None:
        token_path = Path(os.path.abspath(folder / Path(token_file).expanduser()))
    return FleetDaemon(daemon.url, daemon.host, daemon.port, token_file=token_path, name=name)


def labelled(daemons: Iterable[FleetDaemon]) -> tuple[FleetDaemon, ...]:
    """The daemons with their labels: the name, else the host, else `host:port` when several share it.
    `ValueError` when two would look the same."""
    listed = list(daemons)
    per_host: dict[str, int] = {}
    for daemon in listed:
        per_host[daemon.host] = per_host.get(daemon.host, 0) + 1
    result: list[FleetDaemon] = []
    taken: dict[str, str] = {}
    for daemon in listed:
        host = daemon.host if ":" not in daemon.host else f"[{daemon.host}]"
        label = daemon.name or (daemon.host if per_host[daemon.host] == 1 else f"{host}:{daemon.port}")
        if label in taken:
            raise ValueError(f"{daemon.url} and {taken[label]} would both show as {label!r}; "
                             "give them different names in fleet.toml")
        taken[label] = daemon.url
        result.append(daemon.with_label(label))
    return tuple(result)


def choose(fleet: Fleet, urls: Sequence[str] | None = None) -> tuple[FleetDaemon, ...]:
    """The daemons one dashboard shows: `urls` (`--attach`; those in fleet.toml keep its token file and
    name, the others take `$PMTOP_TOKEN`), or, with None, every daemon of fleet.toml (`--fleet`)."""
    if urls is None:
        if not fleet.daemons:
            what = "lists no daemons" if fleet.exists else "does not exist"
            raise UsageError(f"{fleet.path} {what}: add [fleet] daemons = [{{ url = \"http://HOST:19881\", "
                             "token_file = \"/path/to/token\" }}], or name the daemons with --attach URL...")
        return fleet.daemons
    known = fleet.by_url()
    chosen: dict[str, FleetDaemon] = {}
    for url in urls:
        try:
            daemon = parse_url(url)
        except ValueError as exc:
            raise UsageError(f"--attach: {exc}") from None
        chosen.setdefault(daemon.url, known.get(daemon.url, daemon))
    try:
        return labelled(chosen.values())
    except ValueError as exc:
        raise UsageError(f"--attach: {exc}") from None


# ----------------------------------------------------------------------------------------- tokens

def read_token(daemon: FleetDaemon, environ: Mapping[str, str] | None = None) -> str | None:
    """The token to show `daemon` (see the module's docstring); `UsageError` for a token file that
    cannot be read or is empty, None when there is no token to give."""
    env = os.environ if environ is None else environ
    if daemon.token_file is not None:
        try:
            token = daemon.token_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the token file {daemon.token_file}: {exc.strerror or exc}") from None
        if not token:
            raise UsageError(f"the token file {daemon.token_file} is empty")
        return token
    if env.get(TOKEN_ENV_VAR):
        return env[TOKEN_ENV_VAR].strip() or None
    if is_loopback(daemon.host):
        return _local_token(daemon.port, env)
    return None


def _local_token(port: int, environ: Mapping[str, str]) -> str | None:
    """The token of this user's instance whose daemon listens on loopback port `port`, if any."""
    try:
        folders = [p for p in state_base(environ).iterdir() if p.is_dir()]
    except OSError:
        return None
    for folder in folders:
        record = read_daemon_record(folder)
        if record is not None and record.port == port and is_loopback(connectable(record.host)):
            return read_instance_token(folder)
    return None
