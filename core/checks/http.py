"""`type = "http"`: GET a URL; healthy on 2xx or 3xx (redirects are not followed: a 3xx is an answer).

`httpx` costs about 100 ms to import, so it is imported on the first probe only; all http probes of an
event loop share one `AsyncClient`, closed by `close_probes()` at supervisor shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ..errors import Invalid
from ..model import CheckParams
from ..system import lazy_tls
from ..values import KeyPath, show, want_str
from .base import CheckKind, FormField, Probe, ProbeContext, ProbeResult

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class HttpCheck(CheckParams):
    KIND: ClassVar[str] = "http"
    url: str


class HttpProbe:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    async def check(self) -> ProbeResult:
        client = _http_client()
        import httpx  # already imported by _http_client; bound here for the exception class

        try:
            # Streamed and closed unread: the status line is the answer, and a large body costs nothing.
            async with client.stream("GET", self.url, timeout=self.timeout) as response:
                status = response.status_code
        except httpx.TimeoutException:  # httpx's own per-phase timeout can beat probe_once's by a hair
            return ProbeResult(False, f"timed out after {self.timeout:g}s")
        return ProbeResult(200 <= status < 400, f"HTTP {status}")


def want_url(value: object, path: KeyPath) -> str:
    url = want_str(value, path)
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok and (parts.port is None or parts.port > 0)
    except ValueError:
        ok = False
    if not ok:
        raise Invalid(path, f"must be an http:// or https:// URL (got {show(value)})")
    return url


class Http(CheckKind[HttpCheck]):
    name = "http"
    params = HttpCheck
    keys = ("url",)
    example = 'url = "http://host:port/path"'
    form = (FormField("url", "GET a URL", "http://127.0.0.1:8000/"),)
    json_schema = {"url": {"type": "string", "description": "GET it: 2xx or 3xx is healthy"}}

    def parse(self, table: Mapping[str, Any], path: KeyPath) -> HttpCheck:
        return HttpCheck(want_url(table["url"], (*path, "url")))

    def to_table(self, params: HttpCheck) -> dict[str, Any]:
        return {"url": params.url}

    def probe(self, params: HttpCheck, context: ProbeContext) -> Probe:
        return HttpProbe(params.url, context.timeout)

    def target(self, params: HttpCheck) -> str:
        return params.url

    def describe(self, params: HttpCheck) -> str:
        return f"GET {params.url} (2xx or 3xx is healthy)"


KIND = Http()


# -- the shared client --------------------------------------------------------------------------

_shared: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def _http_client() -> httpx.AsyncClient:
    """The one client of this event loop, made on first use (importing httpx only then).

    `trust_env=False`: a health check asks the process itself, never through a proxy from the
    environment. Redirects are not followed (httpx's default, made explicit).
    """
    global _shared
    loop = asyncio.get_running_loop()
    if _shared is not None and _shared[0] is loop and not _shared[1].is_closed:
        return _shared[1]
    # The daemon imported asyncio without ssl. httpx (anyio) does TLS itself over a plain connection,
    # but whatever else on this loop may speak TLS then finds asyncio ready for it.
    lazy_tls.enable()
    import httpx

    client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    _shared = (loop, client)
    return client


async def close_probes() -> None:
    """Close the shared http client, if this event loop made one. Call at supervisor shutdown.

    Safe to call any number of times; a probe that runs afterwards makes a fresh client.
    """
    global _shared
    if _shared is None:
        return
    loop, client = _shared
    _shared = None
    if loop is asyncio.get_running_loop():
        await client.aclose()
