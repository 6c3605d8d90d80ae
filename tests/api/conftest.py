"""A real API server (the app factory, on 127.0.0.1, port 0) around a real Supervisor."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pmtop.core.api.client import HttpController
from pmtop.core.api.http11 import Server
from pmtop.core.api.security import HostMatcher, Resolver, SecurityStore
from pmtop.core.api.server import ApiContext, make_app
from pmtop.core.locations import InstancePaths
from pmtop.core.model import ProcessSpec
from pmtop.core.supervisor import Supervisor
from tests.waiting import DEFAULT_TIMEOUT

TOKEN = "test-token-0123456789"
UNTRUSTED = ("10.9.9.*",)
"""Trusted hosts that leave 127.0.0.1 out, so loopback tests take the remote (token) path."""


@dataclass
class FakeDaemon:
    """`DaemonHooks` that records what the API asked of the daemon."""

    port: int = 0
    reload_result: dict[str, Any] = field(default_factory=lambda: {"added": ["new"], "changed": [], "removed": []})
    reload_error: BaseException | None = None
    shutdowns: int = 0
    restarts: int = 0

    def info(self) -> dict[str, Any]:
        return {"version": "0.1.0", "instance": "test", "host": "127.0.0.1", "port": self.port,
                "pid": os.getpid(), "uptime": 12.5, "config": "/tmp/pmtop.toml"}

    def status(self) -> dict[str, Any]:
        return {"partner": {"state": "none"}}

    async def reload(self) -> dict[str, Any]:
        if self.reload_error is not None:
            raise self.reload_error
        return self.reload_result

    def request_shutdown(self) -> None:
        self.shutdowns += 1

    def request_restart(self) -> None:
        self.restarts += 1


@dataclass
class Api:
    url: str
    sup: Supervisor
    daemon: FakeDaemon
    store: SecurityStore
    server: Server[ApiContext]
    clients: list[httpx.AsyncClient | HttpController] = field(default_factory=list)

    def http(self, token: str | None = TOKEN) -> httpx.AsyncClient:
        """A client that shows `token` (the owner's, unless told otherwise; None: no token at all)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0, trust_env=False)
        self.clients.append(client)
        return client

    def controller(self, token: str | None = TOKEN) -> HttpController:
        ctl = HttpController(self.url, token=token)
        self.clients.append(ctl)
        return ctl

    def distrust_loopback(self) -> None:
        self.store.save(dataclasses.replace(self.store.settings, trusted_hosts=UNTRUSTED))

    async def stop(self) -> None:
        await self.server.close()


Serve = Callable[..., Awaitable[Api]]


async def read_until(lines: AsyncIterator[str], needle: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Lines from a log follower up to the first one containing `needle`, within a deadline."""
    seen: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for line in lines:
                seen.append(line)
                if needle in line:
                    return seen
    except TimeoutError:
        pass
    raise AssertionError(f"never saw {needle!r} within {timeout}s; got {seen[-6:]}")


@pytest.fixture
async def serve(make_supervisor: Callable[..., Supervisor], paths: InstancePaths) -> AsyncIterator[Serve]:
    """`await serve(*specs, read_only=..., heartbeat=..., resolver=...)` -> a running `Api`."""
    made: list[Api] = []

    async def start(
        *specs: ProcessSpec, read_only: bool = False, heartbeat: float = 15.0, resolver: Resolver | None = None
    ) -> Api:
        sup = make_supervisor(*specs)
        daemon = FakeDaemon()
        store = SecurityStore(paths.state_dir)
        app = make_app(sup, daemon, security=store, token=TOKEN, read_only=read_only, heartbeat=heartbeat)
        if resolver is not None:
            app.context.hosts = HostMatcher(resolver)
        server = Server(app, shutdown_timeout=5.0)
        await server.start_tcp("127.0.0.1", 0)
        port = server.port
        daemon.port = port
        api = Api(f"http://127.0.0.1:{port}", sup, daemon, store, server)
        made.append(api)
        return api

    yield start
    for api in made:
        for client in api.clients:
            await client.aclose()
        await api.stop()
