"""`type = "tcp"`: connect to `host:port` (or `[v6]:port`); healthy once the connection is accepted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import Invalid
from ..model import CheckParams
from ..values import KeyPath, show, want_str
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult


@dataclass(frozen=True, slots=True)
class TcpCheck(CheckParams):
    KIND: ClassVar[str] = "tcp"
    address: str
    """`host:port`, or `[v6]:port`."""


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f'address must be "host:port" or "[ipv6]:port" (got {address!r})')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class TcpProbe:
    def __init__(self, address: str) -> None:
        self.host, self.port = parse_address(address)

    async def check(self) -> ProbeResult:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:  # a reset while closing says nothing about whether it accepted connections
            pass
        return ProbeResult(True, "connected")


def want_address(value: object, path: KeyPath) -> str:
    address = want_str(value, path)
    match = re.fullmatch(r"\[([^\[\]]+)\]:(\d+)|([^:\[\]\s]+):(\d+)", address)
    if match is None:
        raise Invalid(path, f'must be "host:port" (or "[ipv6]:port") (got {show(value)})')
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise Invalid(path, f"port must be from 1 to 65535 (got {show(value)})")
    return address


class Tcp(CheckKind[TcpCheck]):
    name = "tcp"
    params = TcpCheck
    keys = ("address",)
    example = 'address = "host:port"'
    form = (FormField("address", "connect to host:port", "127.0.0.1:8000"),)
    json_schema = {"address": {"type": "string", "description": '"host:port" or "[ipv6]:port"'}}

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> TcpCheck:
        return TcpCheck(want_address(table["address"], (*path, "address")))

    def to_table(self, params: TcpCheck) -> dict[str, Any]:
        return {"address": params.address}

    def probe(self, params: TcpCheck, context: ProbeContext) -> Probe:
        return TcpProbe(params.address)

    def target(self, params: TcpCheck) -> str:
        return params.address

    def describe(self, params: TcpCheck) -> str:
        return f"connect to {params.address}"


KIND = Tcp()
