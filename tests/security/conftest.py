"""Attacks on a real daemon: what another local user, a tokenless or remote peer, or a web page can do.

Every attempt is built from the server's own route table (`protocol.ROUTES`), so a new endpoint is
attacked the day it is added. The attempts carry the worst payload each route takes: a registration
of a command of the attacker's choosing, trusted hosts set to `*`, shutdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pmtop.core.api.protocol import ROUTES, Route
from tests.daemon.conftest import start_daemon  # noqa: F401  (the fixture, for this folder)

OPEN: frozenset[str] = frozenset({"alive", "health"})
"""The only routes anyone may call without the token (SPEC §6), written out here rather than read from
the table, so that a route marked open by mistake is attacked like every other and caught."""
PWNED = "/tmp/pmtop-pwned-by-an-attacker"
"""What the attacker's registered command would create if it ever ran."""

WORST_BODIES: dict[str, object] = {
    "process-register": {"name": "evil", "command": ["/bin/sh", "-c", f"touch {PWNED}"]},
    "process-stop-many": {"names": ["web"]},
    "config-put-trusted-hosts": {"hosts": ["*"]},
    "config-put-remote-access": {"register": True, "autostart": True, "monitor_restart": True},
    "config-put-executable-whitelist": {"patterns": ["*"]},
    "config-put-executable-blacklist": {"patterns": []},
    "config-put-standalone-mode": {"enabled": True},
    "config-put-partner-discovery": {"enabled": True, "partner": {"host": "127.0.0.2", "port": 1, "instance": "x"}},
}


@dataclass(frozen=True)
class Attempt:
    route: Route
    method: str
    path: str
    body: bytes | None

    def to_json(self) -> list[object]:
        return [self.route.name, self.method, self.path, self.body.decode() if self.body is not None else None]


def attempts(name: str = "web") -> list[Attempt]:
    """One request per route (path parameters filled in, the worst body), but `/alive` and `/health`."""
    found = []
    for route in ROUTES:
        if route.name in OPEN:
            continue
        body = WORST_BODIES.get(route.name)
        data = json.dumps(body).encode() if body is not None else (b"" if route.method in ("POST", "PUT") else None)
        path = route.path.replace("{name}", name)
        if route.name in ("events", "process-logs"):
            path += "?follow=1" if route.name == "process-logs" else "?facts=1"
        found.append(Attempt(route, route.method, path, data))
    return found
