"""The client's HTTP/1.1 subset against canned answers from a socket server (the real daemon is in
the other test modules): framing, keep-alive, and what is not HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from pmtop.core.api.sync_client import Client
from pmtop.core.api.wire import Connection
from pmtop.core.errors import DaemonUnavailable, NoSuchProcess, ProtocolError


class CannedServer:
    """Answers each connection's requests with the next canned answers, in order, then closes it."""

    def __init__(self, *connections: list[bytes]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._connections = list(connections)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for answers in self._connections:
            conn, _ = self.sock.accept()
            with conn, conn.makefile("rb") as file:  # both: the socket stays open while its file does
                for answer in answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = file.readline()
                        if not line:
                            break
                        head += line
                    length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                                   if l.lower().startswith(b"content-length:")), 0)
                    self.requests.append(head + file.read(length))
                    conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[type[CannedServer]]:
    servers: list[CannedServer] = []

    class Tracked(CannedServer):
        def __init__(self, *connections: list[bytes]) -> None:
            super().__init__(*connections)
            servers.append(self)

    yield Tracked
    for server in servers:
        server.close()


def json_answer(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/json; charset=utf-8\r\n"
            + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_keep_alive_and_content_length(serve: type[CannedServer]) -> None:
    server = serve([json_answer(b'{"processes": []}'), json_answer(b'{"ok": true}', "202 Accepted")])
    with Client("127.0.0.1", server.port, token="t0k") as client:
        assert client.processes() == []
        assert client.request("POST", "/monitor/shutdown", {"x": 1}) == {"ok": True}
    first, second = server.requests
    assert first.startswith(b"GET /processes?facts=1 HTTP/1.1\r\n") and b"Authorization: Bearer t0k\r\n" in first
    assert second.startswith(b"POST /monitor/shutdown HTTP/1.1\r\n") and second.endswith(b'\r\n\r\n{"x": 1}')


def test_chunked_body_with_extensions_and_trailers(serve: type[CannedServer]) -> None:
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nX-Trailer: y\r\n\r\n")
    server = serve([answer])
    with Client("127.0.0.1", server.port) as client:
        assert client.request("GET", "/x") == {"a": 1}


def test_body_until_close_is_not_reused(serve: type[CannedServer]) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOK"], [json_answer(b"[]")])
    with Client("127.0.0.1", server.port) as client:
        assert client.request("GET", "/alive") == "OK"
        assert client.request("GET", "/again") == []


def test_a_keep_alive_connection_closed_while_idle_is_retried_once(serve: type[CannedServer]) -> None:
    server = serve([json_answer(b"1")], [json_answer(b"2")])  # the first connection closes after one answer
    with Client("127.0.0.1", server.port) as client:
        assert client.request("GET", "/one") == 1
        assert client.request("GET", "/two") == 2


def test_error_bodies_become_pmtop_errors(serve: type[CannedServer]) -> None:
    body = b'{"error": {"code": "no_such_process", "message": "no process named \'x\'", "name": "x"}}'
    server = serve([json_answer(body, "404 Not Found")])
    with Client("127.0.0.1", server.port) as client, pytest.raises(NoSuchProcess, match="'x'"):
        client.request("POST", "/processes/x/start")


def test_what_is_not_http_is_not_a_daemon(serve: type[CannedServer]) -> None:
    server = serve([b"SSH-2.0-OpenSSH_9.6\r\n"])
    with Client("127.0.0.1", server.port) as client, pytest.raises(DaemonUnavailable, match="not a pmtop daemon"):
        client.processes()


def test_sse_lines_across_chunks(serve: type[CannedServer]) -> None:
    events = b'event: status\ndata: {"name":"a"}\n\n: keepalive\n\ndata: "line"\n\nevent: end\ndata: {"reason":"removed"}\n\n'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(events[i:i + 7]), events[i:i + 7]) for i in range(0, len(events), 7))
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Pmtop-Heartbeat: 15\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    server = serve([answer])
    client = Client("127.0.0.1", server.port)
    stream = client.events("/events")
    assert next(stream) == ("status", '{"name":"a"}')
    assert next(stream) == ("message", '"line"')
    assert next(stream) == ("end", '{"reason":"removed"}')
    with pytest.raises(DaemonUnavailable, match="lost the connection"):
        next(stream)


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        Connection("127.0.0.1", port, 1.0).connect()
    with pytest.raises(DaemonUnavailable, match=f"no pmtop daemon for instance 'x' at 127.0.0.1:{port}"):
        Client("127.0.0.1", port, instance="x").processes()
    assert issubclass(ProtocolError, DaemonUnavailable), "a client has one thing to catch for 'no daemon'"
