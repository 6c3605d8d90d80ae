"""The `Host` header check that keeps web pages from reaching the API through DNS rebinding.

A page the owner opens in a browser can make its own name (`evil.example`) resolve to 127.0.0.1 and then
talk to the daemon as "same origin". The browser still sends `Host: evil.example`, so the daemon answers
only requests whose `Host` names the address the connection arrived on (an IP literal cannot be
rebound), `localhost`, or, on a connection that came in over the network, this machine's own name.
The token already stops such a page from acting; this check also keeps it from reading `/health`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

LOCALHOST: Final = "localhost"


def split_host(header: str) -> str:
    """The host part of a `Host` header, lower-case, without port or IPv6 brackets."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return text


def _ip(text: str) -> str | None:
    """`text` as a normalized IP address (IPv4-mapped IPv6 as IPv4), or None when it is a name."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def host_problem(header: str | None, local_address: str | None, machine_names: frozenset[str]) -> str | None:
    """Why a request with this `Host` header, received on `local_address`, is refused; None if it is not."""
    if not header:
        return "the request has no Host header"
    host = split_host(header)
    if host == LOCALHOST:
        return None
    address = _ip(host)
    local = _ip(local_address) if local_address else None
    if address is not None:
        if address == local:
            return None
    elif host.rstrip(".") in machine_names and local is not None and not ipaddress.ip_address(local).is_loopback:
        return None
    return (f"Host {header.strip()!r} names neither this daemon's address nor localhost "
            "(refused, against DNS rebinding)")


class HostHeaderCheck:
    """`host_problem` for a live request; this machine's names are looked up once, and only if a
    request that came in over the network names a host (a loopback daemon never pays for it)."""

    def __init__(self) -> None:
        self._names: frozenset[str] | None = None

    async def problem(self, header: str | None, local: str | None) -> str | None:
        """For a request with this `Host` header that arrived on the local address `local`."""
        names: frozenset[str] = frozenset()
        if header and _ip(split_host(header)) is None and split_host(header) != LOCALHOST and local:
            local_ip = _ip(local)
            if local_ip is not None and not ipaddress.ip_address(local_ip).is_loopback:
                names = await self._machine_names()
        return host_problem(header, local, names)

    async def _machine_names(self) -> frozenset[str]:
        if self._names is None:
            def lookup() -> frozenset[str]:
                names = {socket.gethostname().lower()}
                try:
                    names.add(socket.getfqdn().lower())
                except OSError:  # pragma: no cover - getfqdn swallows its own errors
                    pass
                return frozenset(n.rstrip(".") for n in names if n)

            self._names = await asyncio.to_thread(lookup)
        return self._names
