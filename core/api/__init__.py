"""pmtop's HTTP API: the aiohttp server (`server.make_app`) and its client (`client.HttpController`).

Only the constants both halves share live here; nothing is imported. The server pulls in aiohttp and
the client httpx, and each face of pmtop loads only the half it needs: the daemon imports
`pmtop.core.api.server` lazily, the dashboard `pmtop.core.api.client` when it attaches to a daemon.
"""

from __future__ import annotations

from typing import Final

HEARTBEAT_HEADER: Final = "X-Pmtop-Heartbeat"
"""Response header of every event stream: seconds between keepalives, so clients know how long
silence may last before the daemon counts as dead."""
DEFAULT_HEARTBEAT: Final = 15.0
