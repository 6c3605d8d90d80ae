"""Who may do what through the API, and the persisted settings that decide it (SPEC §6).

The rules, in the order the server applies them:

- every request (but `GET /alive` and `/health`) needs the bearer token, from every address:
  loopback is not trust, since every local user can reach a loopback port;
- a token-holding peer whose address matches a trusted-hosts pattern may do everything;
- any other is limited by the remote-access permissions and may not change these settings;
- a remote registration must also name an executable that the whitelist allows and the blacklist
  does not (an empty whitelist refuses every remote registration).

The settings live in `<state dir>/security.json`, written atomically (a crash mid-write leaves the
old file, never half of one). A corrupt file must never keep a supervisor from starting, so it is set
aside with a warning and the defaults, which trust only this machine, are used.

Nothing here imports aiohttp: the rules are plain functions the server applies, and tests can check
them without a socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import time
from _operator import _compare_digest
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigError, format_key_path
from ..files import set_aside, write_json_atomic
from ..locations import NAME_PATTERN
from ..model import ProcessSpec
from .protocol import CONFIG_SECTIONS, Access, Permission, Route

log = logging.getLogger("pmtop.api")

FILENAME: Final = "security.json"
FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class RemoteAccess:
    """What a client from an untrusted host may do once it has shown the token."""

    register: bool = True
    deregister: bool = True
    start: bool = True
    stop: bool = True
    disable: bool = True
    autostart: bool = True
    monitor_restart: bool = False
    """Off by default: restarting the daemon restarts nothing else, but interrupts every client."""

    def allows(self, permission: Permission) -> bool:
        return bool(getattr(self, permission.value))


@dataclass(frozen=True, slots=True)
class Partner:
    """The other pmtop instance (a watcher) that this one watches and restarts (SPEC §9)."""

    host: str
    port: int
    instance: str


@dataclass(frozen=True, slots=True)
class PartnerDiscovery:
    enabled: bool = False
    partner: Partner | None = None


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    remote_access: RemoteAccess = field(default_factory=RemoteAccess)
    trusted_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    executable_whitelist: tuple[str, ...] = ()
    executable_blacklist: tuple[str, ...] = ()
    standalone_mode: bool = False
    partner_discovery: PartnerDiscovery = field(default_factory=PartnerDiscovery)


# ------------------------------------------------------------------------------- JSON <-> settings

def section_to_json(settings: SecuritySettings, section: str) -> dict[str, Any]:
    """The body `GET /config/<section>` answers (and `PUT` accepts)."""
    if section == "remote-access":
        return dataclasses.asdict(settings.remote_access)
    if section == "trusted-hosts":
        return {"hosts": list(settings.trusted_hosts)}
    if section == "executable-whitelist":
        return {"patterns": list(settings.executable_whitelist)}
    if section == "executable-blacklist":
        return {"patterns": list(settings.executable_blacklist)}
    if section == "standalone-mode":
        return {"enabled": settings.standalone_mode}
    if section == "partner-discovery":
        pd = settings.partner_discovery
        partner = dataclasses.asdict(pd.partner) if pd.partner is not None else None
        return {"enabled": pd.enabled, "partner": partner}
    raise KeyError(section)


SECTIONS: Final = CONFIG_SECTIONS


def apply_section(settings: SecuritySettings, section: str, body: object) -> SecuritySettings:
    """`settings` with one section replaced by `body`; keys left out keep their current values.

    Refuses (with a `ConfigError` naming `section.key`) anything but the exact keys and types, so a
    misspelt `"monitor_restrat": true` is an error rather than a silent no-op.
    """
    current = section_to_json(settings, section)
    if not isinstance(body, Mapping):
        raise ConfigError("must be a JSON object", key_path=section)
    for key in body:
        if key not in current:
            raise ConfigError(f"unknown key (expected: {', '.join(current)})", key_path=format_key_path((section, key)))
    merged = {**current, **body}
    if section == "remote-access":
        values = {key: _bool(merged[key], f"{section}.{key}") for key in current}
        return dataclasses.replace(settings, remote_access=RemoteAccess(**values))
    if section == "trusted-hosts":
        return dataclasses.replace(settings, trusted_hosts=_patterns(merged["hosts"], f"{section}.hosts"))
    if section == "executable-whitelist":
        patterns = _patterns(merged["patterns"], f"{section}.patterns")
        return dataclasses.replace(settings, executable_whitelist=patterns)
    if section == "executable-blacklist":
        patterns = _patterns(merged["patterns"], f"{section}.patterns")
        return dataclasses.replace(settings, executable_blacklist=patterns)
    if section == "standalone-mode":
        return dataclasses.replace(settings, standalone_mode=_bool(merged["enabled"], f"{section}.enabled"))
    enabled = _bool(merged["enabled"], f"{section}.enabled")
    partner = _partner(merged["partner"], f"{section}.partner")
    return dataclasses.replace(settings, partner_discovery=PartnerDiscovery(enabled, partner))


def _bool(value: object, key_path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false (got {json.dumps(value)})", key_path=key_path)
    return value


def _patterns(value: object, key_path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ConfigError("must be an array of non-empty strings", key_path=key_path)
    return tuple(p.strip() for p in value)


def _partner(value: object, key_path: str) -> Partner | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"host", "port", "instance"}:
        raise ConfigError('must be null or {"host", "port", "instance"}', key_path=key_path)
    host, port, instance = value["host"], value["port"], value["instance"]
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("must be a host name or address", key_path=f"{key_path}.host")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError("must be a port number from 1 to 65535", key_path=f"{key_path}.port")
    if not isinstance(instance, str) or not NAME_PATTERN.fullmatch(instance):
        raise ConfigError("must be an instance name", key_path=f"{key_path}.instance")
    return Partner(host.strip(), port, instance)


def settings_to_json(settings: SecuritySettings) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, **{s: section_to_json(settings, s) for s in SECTIONS}}


def settings_from_json(data: object) -> SecuritySettings:
    """The inverse of `settings_to_json`; sections missing from an older file take their defaults."""
    if not isinstance(data, Mapping):
        raise ConfigError("must be a JSON object")
    settings = SecuritySettings()
    for section, body in data.items():
        if section == "version":
            continue
        if section not in SECTIONS:
            raise ConfigError("unknown section", key_path=section)
        settings = apply_section(settings, section, body)
    return settings


class SecurityStore:
    """The settings of one instance, loaded once at start and saved on every change."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self.set_aside_as: Path | None = None
        """Where a corrupt file was moved at load time (the daemon may report it)."""
        self.listeners: list[Callable[[SecuritySettings], None]] = []
        """Told of every saved change (the partner watch follows `partner-discovery` and standalone
        mode); possibly called from a worker thread."""
        self._settings = self._load()

    @property
    def settings(self) -> SecuritySettings:
        return self._settings

    def _load(self) -> SecuritySettings:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return SecuritySettings()
        try:
            return settings_from_json(json.loads(raw))
        except (ValueError, ConfigError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.set_aside_as = set_aside(self.path)
            log.warning(
                "%s is corrupt (%s); set aside as %s, using the default security settings",
                self.path, exc, self.set_aside_as.name,
            )
            return SecuritySettings()

    def save(self, settings: SecuritySettings) -> None:
        """Persist, then take effect: a failed write leaves both the file and the settings unchanged."""
        write_json_atomic(self.path, settings_to_json(settings), mode=0o600)
        self._settings = settings
        for listener in list(self.listeners):
            listener(settings)


# ------------------------------------------------------------------------------ untrusted clients

def token_matches(authorization: str, token: str) -> bool:
    """Is `authorization` (the header) `Bearer <token>`? Compared in constant time; no token, no match."""
    scheme, _, given = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    # hmac.compare_digest itself, without hmac: importing hmac loads hashlib and OpenSSL's libcrypto
    # (~4 MB of the daemon's RSS); `_operator._compare_digest` is the constant-time comparison hmac
    # falls back on when OpenSSL is missing.
    return _compare_digest(given.strip().encode(), token.encode())


def _not_permitted(permission: Permission) -> str:
    return f"remote access does not permit {permission.value!r} (remote-access.{permission.value} is false)"


def route_refusal(route: Route, access: RemoteAccess) -> str | None:
    """Why a token-holding client from an untrusted host may not use `route`, or None when it may."""
    if route.access is Access.TRUSTED:
        return "allowed only from a trusted host"
    for permission in route.permissions:
        if not access.allows(permission):
            return _not_permitted(permission)
    return None


def registration_refusal(spec: ProcessSpec, settings: SecuritySettings, *, adopting: str | None = None) -> str | None:
    """Why an untrusted client may not register `spec` (beyond the `register` permission), or None.

    A process that would start by itself, now or when the daemon next boots, needs `autostart`; every
    remote registration needs an executable the lists allow. Adopting a running process (`adopting`: its
    executable's path, "" when unknown) puts it within reach of `stop`, so its executable must be
    allowed too: with the default empty whitelist, no untrusted client may adopt anything.
    """
    if adopting is not None:
        if not adopting:
            return "the adopted process's executable cannot be known, so remote adoption is refused"
        refusal = executable_refusal(dataclasses.replace(spec, command=(adopting,)),
                                     settings.executable_whitelist, settings.executable_blacklist)
        if refusal is not None or not spec.command:
            return refusal
    if spec.autostart and spec.enabled and not settings.remote_access.autostart:
        return _not_permitted(Permission.AUTOSTART)
    if spec.hooks is not None and spec.hooks.url is not None:  # the daemon would POST wherever it is told
        return "a hook url can only be set from a trusted host (or in the config file)"
    if spec.hooks is not None and spec.hooks.command is not None:  # a hook runs a program too
        refusal = executable_refusal(dataclasses.replace(spec, command=spec.hooks.command),
                                     settings.executable_whitelist, settings.executable_blacklist)
        if refusal is not None:
            return f"hook: {refusal}"
    return executable_refusal(spec, settings.executable_whitelist, settings.executable_blacklist)


# ------------------------------------------------------------------------------------ trusted hosts

_HOSTNAME_PATTERN: Final = re.compile(r"[g-zG-Z_]")
"""A pattern with a letter that no IP address contains (and no `:`) is matched against host names."""


def is_hostname_pattern(pattern: str) -> bool:
    return pattern.lower() != "localhost" and ":" not in pattern and bool(_HOSTNAME_PATTERN.search(pattern))


def normalize_address(address: str) -> str:
    """`::ffff:10.0.0.1` -> `10.0.0.1`, `fe80::1%eth0` -> `fe80::1`: one spelling for each peer."""
    text = address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


LOCALHOST_ADDRESSES: Final = frozenset({"127.0.0.1", "::1"})
"""What `localhost` in the trusted hosts means: the addresses that name has, not all of 127.0.0.0/8
(any local user can send from 127.0.0.2; it is no more ours than any other address)."""


def address_matches(address: str, patterns: Iterable[str]) -> bool:
    """Does the (normalized) peer address match an address pattern, or is it `localhost`'s?"""
    for pattern in patterns:
        if pattern.lower() == "localhost":
            if address in LOCALHOST_ADDRESSES:
                return True
        elif not is_hostname_pattern(pattern) and fnmatch.fnmatchcase(address, pattern.lower()):
            return True
    return False


Resolver = Callable[[str], Awaitable[str | None]]


async def forward_confirmed_name(address: str) -> str | None:
    """The reverse-DNS name of `address`, only if that name resolves back to `address`.

    Anyone who controls the reverse zone of their own address can make its PTR record say
    `trusted.example.com`; the forward lookup is what proves the name is really theirs.
    """
    def lookup() -> str | None:
        try:
            name = socket.gethostbyaddr(address)[0]
            infos = socket.getaddrinfo(name, None)
        except OSError:
            return None
        forward = {normalize_address(str(info[4][0])) for info in infos}
        return name.rstrip(".").lower() if address in forward else None

    return await asyncio.to_thread(lookup)


class HostMatcher:
    """Decides whether a peer is trusted; host-name patterns cost a (cached) lookup in a thread."""

    POSITIVE_TTL: Final = 300.0
    NEGATIVE_TTL: Final = 60.0
    MAX_CACHED: Final = 1024

    def __init__(self, resolve: Resolver = forward_confirmed_name) -> None:
        self._resolve = resolve
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def is_trusted(self, remote: str | None, patterns: tuple[str, ...]) -> bool:
        if not remote:  # not an IP peer (e.g. a Unix socket): trust nothing we cannot name
            return False
        address = normalize_address(remote)
        if address_matches(address, patterns):
            return True
        name_patterns = [p.lower() for p in patterns if is_hostname_pattern(p)]
        if not name_patterns:
            return False
        name = await self._name(address)
        return name is not None and any(fnmatch.fnmatchcase(name, p) for p in name_patterns)

    async def _name(self, address: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(address)
        if cached is not None and cached[0] > now:
            return cached[1]
        name = await self._resolve(address)
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()  # crude, but bounded; a busy daemon simply looks names up again
        self._cache[address] = (now + (self.POSITIVE_TTL if name else self.NEGATIVE_TTL), name)
        return name


# ------------------------------------------------------------------------------ executable policy

def executable_candidates(spec: ProcessSpec) -> list[str]:
    """The names under which `spec`'s program is known: as written, and as exec will find it.

    The lookup uses the spec's own `PATH` when it sets one (as the exec does), and a relative path
    with a slash is taken from the process's `cwd`, not the daemon's.
    """
    program = spec.command[0]
    found: str | None
    if "/" in program:
        found = os.path.normpath(os.path.join(spec.cwd or os.getcwd(), program))
    else:
        found = shutil.which(program, path=spec.env.get("PATH", os.environ.get("PATH", os.defpath)))
    names = [program]
    if found is not None:
        names.append(found)
        real = os.path.realpath(found)
        if real != found:
            names.append(real)
    return names


def executable_refusal(spec: ProcessSpec, whitelist: tuple[str, ...], blacklist: tuple[str, ...]) -> str | None:
    """Why a remote client may not register `spec`, or None when it may.

    Allowed: the program as written or as resolved matches a whitelist glob (`python3`,
    `/usr/bin/*`). Refused: any of its names (including the symlink target) matches a blacklist glob;
    a blacklist pattern without a `/` also matches the base name, so `rm` blocks `/bin/rm`.
    """
    names = executable_candidates(spec)
    for pattern in blacklist:
        for name in names:
            if fnmatch.fnmatchcase(name, pattern) or (
                "/" not in pattern and fnmatch.fnmatchcase(os.path.basename(name), pattern)
            ):
                return f"executable {spec.command[0]!r} is blacklisted ({pattern!r})"
    if not whitelist:
        return "the executable whitelist is empty, so remote registration is refused"
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in whitelist for name in names[:2]):
        return f"executable {spec.command[0]!r} matches no executable-whitelist pattern"
    return None
