"""The daemon's HTTP/1.1 server (`core/api/http11.py`) on a real socket, spoken to byte by byte: what h11
leaves to it (keep-alive, pipelining, refusing before a handler runs, peers that leave, closing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from pmtop.core.api.http11 import App, HttpError, Request, Response, Server, StreamResponse, json_response
from tests.waiting import DEFAULT_TIMEOUT


class Seen:
    def __init__(self) -> None:
        self.disconnected = asyncio.Event()
        self.streaming = asyncio.Event()
        self.shutdown = asyncio.Event()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server[Seen], Seen]]:
    seen = Seen()
    app: App[Seen] = App(seen, max_body=1000,
                         error_response=lambda status, message: json_response({"error": message}, status=status))

    async def echo(request: Request[Seen]) -> Response:
        return json_response({"method": request.method, "path": request.path, "query": request.query,
                              "name": request.match_info.get("name"), "body": (await request.read()).decode()})

    async def stream(request: Request[Seen]) -> Response:
        response = StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first\n")
        request.context.streaming.set()
        while not request.disconnected:  # as the API's event streams look, once a second there
            await asyncio.sleep(0.01)
        request.context.disconnected.set()
        return response

    async def hang(request: Request[Seen]) -> Response:
        request.context.streaming.set()
        await asyncio.sleep(3600)
        raise AssertionError("never")

    async def refuse(request: Request[Seen]) -> Response:
        raise HttpError(418, "no tea here")

    async def errors(request: Request[Seen], handler: object) -> Response:
        try:
            return await handler(request)  # type: ignore[operator, no-any-return]
        except HttpError as exc:
            return json_response({"error": exc.message}, status=exc.status, headers=exc.headers)

    async def on_shutdown(app: App[Seen]) -> None:
        app.context.shutdown.set()

    app.middlewares = (errors,)
    app.router.add_route("GET", "/echo/{name}", echo)
    app.router.add_route("POST", "/echo/{name}", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/hang", hang)
    app.router.add_get("/tea", refuse)
    app.on_shutdown.append(on_shutdown)
    server = Server(app, shutdown_timeout=0.2)
    await server.start_tcp("127.0.0.1", 0)
    yield server, seen
    await server.close()


async def connect(server: Server[Seen]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response framed by its Content-Length (what this server sends for whole responses; an answer
    to HEAD has none)."""
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = b"" if head_only else await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def test_keep_alive_and_pipelining_answer_in_order(served: tuple[Server[Seen], Seen]) -> None:
    server, _ = served
    reader, writer = await connect(server)
    writer.write(b"GET /echo/a%20b?x=1&x=2&y= HTTP/1.1\r\nHost: t\r\n\r\n"
                 b"POST /echo/c HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
    first, second = await read_response(reader), await read_response(reader)
    assert first[0] == 200 and json.loads(first[2]) == {
        "method": "GET", "path": "/echo/a b", "query": {"x": "1", "y": ""}, "name": "a b", "body": ""}
    assert second[0] == 200 and json.loads(second[2])["body"] == "hello"
    writer.write(b"GET /echo/d HTTP/1.1\r\nHost: t\r\n\r\n")  # the same connection, a third time
    assert (await read_response(reader))[0] == 200
    writer.close()


async def test_http_1_0_is_answered_then_closed(served: tuple[Server[Seen], Seen]) -> None:
    server, _ = served
    reader, writer = await connect(server)
    writer.write(b"GET /echo/x HTTP/1.0\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 200
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        assert await reader.read() == b"", "the server closes after an HTTP/1.0 answer"
    writer.close()


async def test_a_client_that_closes_its_side_after_asking_is_still_answered(served: tuple[Server[Seen], Seen]) -> None:
    """`printf 'GET ...' | nc -N`: the request, then EOF; the answer still comes, then the end."""
    server, _ = served
    reader, writer = await connect(server)
    writer.write(b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
    writer.write_eof()
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["body"] == "hi"
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        assert await reader.read() == b""
    writer.close()


async def test_a_malformed_request_gets_400_and_a_closed_connection(served: tuple[Server[Seen], Seen]) -> None:
    server, _ = served
    reader, writer = await connect(server)
    writer.write(b"GET /echo/x HTTP/1.1\r\nBad Header\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 400 and "malformed request" in json.loads(body)["error"]
    assert headers["connection"] == "close"
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        assert await reader.read() == b""
    writer.close()


async def test_a_body_over_the_limit_is_refused_before_the_handler_and_still_answered(
        served: tuple[Server[Seen], Seen]) -> None:
    """413 at once, and the rest of the body is drained, so the client reads the answer, not a reset."""
    server, _ = served
    for head in (b"Content-Length: 200000\r\n", b"Transfer-Encoding: chunked\r\n"):
        reader, writer = await connect(server)
        writer.write(b"POST /echo/x HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n")
        chunk = b"x" * 20000
        for _ in range(10):
            writer.write(chunk if b"Length" in head else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        status, _, body = await read_response(reader)
        assert status == 413 and "exceeds the limit of 1000 bytes" in json.loads(body)["error"]
        writer.close()


async def test_router_and_handler_errors(served: tuple[Server[Seen], Seen]) -> None:
    server, _ = served
    reader, writer = await connect(server)
    writer.write(b"DELETE /echo/x HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                 b"GET /tea HTTP/1.1\r\nHost: t\r\n\r\nHEAD /echo/x HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert status == 405 and headers["allow"] == "GET, POST"
    assert (await read_response(reader))[0] == 404
    status, _, body = await read_response(reader)
    assert status == 418 and json.loads(body) == {"error": "no tea here"}
    status, headers, body = await read_response(reader, head_only=True)
    assert status == 405 and int(headers["content-length"]) > 0 and body == b"", "HEAD is not GET: only declared routes"
    writer.write(b"GET /echo/x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[0] == 200, "after a bodiless answer to HEAD, the next one is framed right"
    writer.close()


async def test_a_stream_sees_its_client_leave(served: tuple[Server[Seen], Seen]) -> None:
    server, seen = served
    reader, writer = await connect(server)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"first" in await reader.readuntil(b"first\n")
        await seen.streaming.wait()
        writer.close()
        await seen.disconnected.wait()


async def test_close_runs_on_shutdown_and_cancels_what_outlives_the_timeout(
        served: tuple[Server[Seen], Seen]) -> None:
    server, seen = served
    idle_reader, idle_writer = await connect(server)
    idle_writer.write(b"GET /echo/x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(idle_reader))[0] == 200  # now an idle keep-alive connection
    busy_reader, busy_writer = await connect(server)
    busy_writer.write(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        await seen.streaming.wait()
        await server.close()  # shutdown_timeout 0.2 s: the hanging handler is cancelled
        assert seen.shutdown.is_set()
        assert await idle_reader.read() == b"", "the idle connection is closed"
        assert await busy_reader.read() == b"", "the cancelled handler's connection is closed"
    assert not server.tasks and not server.connections
    idle_writer.close()
    busy_writer.close()
