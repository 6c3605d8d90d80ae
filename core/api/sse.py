"""Server-Sent Events for `/events` and `/processes/{name}/logs?follow=1`.

Three promises, each with its mechanism:

- nothing is missed: the handler subscribes before it takes the snapshot, and sends the response
  headers only after that, so a client whose connect has returned is already registered;
- a dead daemon is noticed: a `: keepalive` comment goes out whenever `heartbeat` seconds passed
  without a write, and the heartbeat is announced in the `X-Pmtop-Heartbeat` header so the client
  knows how long silence may last;
- a gone client costs nothing for long: the server does not cancel handlers when the peer leaves, so
  the pump looks at the connection at least once a second, and any failed write ends the stream too.
  Daemon shutdown sets `closing`, which ends every stream at once instead of holding up the exit.

A stream that ends on the server's side sends `event: end` with its reason, so a client can tell an
orderly end (process removed, daemon shutting down) from a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, TypeVar

from ..controller import Controller
from ..model import ProcessRemoved, ProcessStatus
from .http11 import Request, StreamResponse
from .protocol import HEARTBEAT_HEADER, format_event

LIVENESS_CHECK: Final = 1.0
"""Seconds between two looks at whether the client is still connected."""

T = TypeVar("T")


def render_process_event(event: ProcessStatus | ProcessRemoved) -> bytes:
    if isinstance(event, ProcessRemoved):
        return format_event({"name": event.name}, "removed")
    return format_event(event.to_dict(), "status")


async def open_stream(request: Request[Any], heartbeat: float) -> StreamResponse:
    response = StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # keep reverse proxies from holding events back
            HEARTBEAT_HEADER: f"{heartbeat:g}",
        }
    )
    await response.prepare(request)
    await response.write(b": connected\n\n")
    return response


async def pump(
    request: Request[Any],
    response: StreamResponse,
    source: AsyncIterator[T],
    render: Callable[[T], bytes],
    *,
    heartbeat: float,
    closing: asyncio.Event,
) -> str:
    """Write every item of `source` until it ends, the daemon closes or the client leaves.

    Returns why it stopped: `exhausted`, `closing` or `disconnected`. The pending `anext` survives
    heartbeats (it is awaited again, not restarted), so any async iterator is safe to pump.
    """
    next_item: asyncio.Future[T] = asyncio.ensure_future(anext(source))
    closed = asyncio.ensure_future(closing.wait())
    last_write = time.monotonic()
    try:
        while True:
            idle = time.monotonic() - last_write
            wait = max(0.0, min(heartbeat - idle, LIVENESS_CHECK))
            waiting: set[asyncio.Future[Any]] = {next_item, closed}
            done, _ = await asyncio.wait(waiting, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                return "closing"
            if next_item in done:
                try:
                    item = next_item.result()
                except StopAsyncIteration:
                    return "exhausted"
                next_item = asyncio.ensure_future(anext(source))
                await response.write(render(item))
                last_write = time.monotonic()
                continue
            if request.disconnected:
                return "disconnected"
            if time.monotonic() - last_write >= heartbeat:
                await response.write(b": keepalive\n\n")
                last_write = time.monotonic()
    except ConnectionError:  # the peer is gone
        return "disconnected"
    finally:
        for future in (next_item, closed):
            future.cancel()
        await asyncio.gather(next_item, closed, return_exceptions=True)  # our own cancellation still raises


async def finish(response: StreamResponse, why: str, reason: str) -> StreamResponse:
    """Tell the client the stream ended on purpose (unless it is the one that left)."""
    if why != "disconnected":
        with contextlib.suppress(ConnectionError):
            await response.write(format_event({"reason": reason}, "end"))
            await response.write_eof()
    return response


async def stream_events(
    request: Request[Any], controller: Controller, *, facts: bool, heartbeat: float, closing: asyncio.Event
) -> StreamResponse:
    """`GET /events`: a snapshot (one `status` per process), then every change and removal.

    The snapshot carries CPU, memory and ports at most a second old; `?facts=1` keeps them live (the
    supervisor samples them once a second only while someone asks).
    """
    async with controller.subscribe(facts=facts) as events:
        snapshot = await controller.processes(facts=True)
        response = await open_stream(request, heartbeat)
        try:  # one write: a thousand processes are one burst, not a thousand
            await response.write(b"".join(render_process_event(status) for status in snapshot))
        except ConnectionError:
            return response
        why = await pump(request, response, events, render_process_event, heartbeat=heartbeat, closing=closing)
    return await finish(response, why, "shutdown")


async def stream_lines(
    request: Request[Any],
    follow: AbstractAsyncContextManager[AsyncIterator[T]],
    *,
    still_exists: Callable[[], Awaitable[bool]],
    heartbeat: float,
    closing: asyncio.Event,
    render: Callable[[T], bytes] = format_event,
) -> StreamResponse:
    """`GET /processes/{name}/logs?follow=1`: each line as `data: "<JSON string>"` (and `GET /logs?follow=1`:
    each as `data: {"time", "name", "stream", "line"}`, with its own `render`).

    `follow` is entered before the response starts, so an unknown process is still a plain 404.
    When the lines end, `still_exists()` tells a removed process from a daemon closing.
    """
    async with follow as lines:
        response = await open_stream(request, heartbeat)
        why = await pump(request, response, lines, render, heartbeat=heartbeat, closing=closing)
    reason = "shutdown"
    if why == "exhausted" and not await still_exists():
        reason = "removed"
    return await finish(response, why, reason)
