"""Just enough HTTP/1.1 on a plain socket for the client commands to talk to their own daemon.

Why not the standard library's `http.client`: importing it costs ~21 ms of CPU (it pulls in the
`email` parser and `ssl`), a fifth of the 100 ms that `pmtop ps` may take in all, interpreter start
included (bench/bench_cli.py). The peer is always pmtop's own server (`http11`), so the subset is small
and fixed: requests with a JSON body and `Content-Length`; responses framed by `Content-Length`, by
`Transfer-Encoding: chunked` (event streams), or by the end of the connection; keep-alive between
requests. Anything else (a malformed status line, a bad chunk) is a `ProtocolError`.
"""

from __future__ import annotations

import socket

from ..errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    from collections.abc import Mapping
    from io import BufferedReader
    from typing import Final

MAX_LINE: Final = 1 << 20
"""Longest status, header or chunk-size line accepted, and longest SSE line returned in one piece."""
READ_SIZE: Final = 65536


class Response:
    """Status, headers (lower-case names) and a body that is read once, all at once or line by line."""

    def __init__(self, file: BufferedReader, status: int, headers: dict[str, str], method: str) -> None:
        self._file = file
        self.status = status
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._left: int | None = None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._left = 0
        elif not self._chunked and length is not None:
            try:
                self._left = int(length)
            except ValueError:
                raise ProtocolError(f"bad Content-Length {length!r}") from None
        self.until_close = not self._chunked and self._left is None
        """The body ends with the connection, which therefore cannot be used again."""
        self._buffer = b""
        self._done = False

    def _readline(self) -> bytes:
        return self._file.readline(MAX_LINE)

    def _more(self) -> bytes:
        """The next piece of the body; b"" once it has all been read."""
        if self._done:
            return b""
        if self._chunked:
            size_line = self._readline()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("the connection broke in the middle of an answer") from None
            if size == 0:
                while self._readline() not in (b"\r\n", b"\n", b""):  # trailers, if any
                    pass
                self._done = True
                return b""
            data = self._file.read(size)
            self._readline()  # the CRLF after the chunk
            if len(data) < size:
                raise ProtocolError("the connection broke in the middle of an answer")
            return data
        if self._left == 0:
            self._done = True
            return b""
        want = READ_SIZE if self._left is None else min(READ_SIZE, self._left)
        data = self._file.read1(want)
        if not data:
            if self._left is not None:
                raise ProtocolError("the connection broke in the middle of an answer")
            self._done = True
            return b""
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self) -> bytes:
        parts = [self._buffer]
        self._buffer = b""
        while piece := self._more():
            parts.append(piece)
        return b"".join(parts)

    def readline(self) -> bytes:
        """The next line of the body with its b"\\n" (b"" at the end; longer lines come in pieces)."""
        while b"\n" not in self._buffer and len(self._buffer) < MAX_LINE:
            piece = self._more()
            if not piece:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += piece
        cut = self._buffer.find(b"\n") + 1 or MAX_LINE
        line, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return line

    @property
    def complete(self) -> bool:
        return self._done and not self._buffer


class Connection:
    """One TCP connection to `host:port`, kept alive across requests while the server allows it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._file: BufferedReader | None = None
        self.used = False
        """A request went over this connection already (so the server may have closed it idle)."""

    def connect(self) -> None:
        """`socket.create_connection`, but an ASCII host goes to getaddrinfo as bytes: a str would
        be run through the `idna` codec, whose import alone costs ~2 ms."""
        host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, self.port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            self.sock = sock
            break
        else:
            raise error or OSError(f"cannot resolve {self.host}")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self.sock.makefile("rb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, read_timeout: float | None
    ) -> Response:
        """Send one request and read the answer's head; the caller reads the body."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None and self._file is not None
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{self.port}", "User-Agent: pmtop"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        self.sock.settimeout(self.timeout)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        self.used = True
        self.sock.settimeout(read_timeout)
        file = self._file
        status_line = file.readline(MAX_LINE)
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP answer: {status_line[:60]!r}")
        response_headers: dict[str, str] = {}
        while True:
            line = file.readline(MAX_LINE)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ProtocolError("the connection broke in the middle of an answer's head")
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        return Response(file, int(parts[1]), response_headers, method)

    def reusable(self, response: Response) -> bool:
        """May the next request go over this connection once `response` has been read?"""
        return (response.complete and not response.until_close
                and response.headers.get("connection", "").lower() != "close")
