"""The daemon runs without OpenSSL until an https:// health check needs it (`core/system/lazy_tls.py`),
and TLS works as soon as it does: asyncio's own TLS once `enable()` hands it ssl, and the daemon's https
probes (httpx, whose anyio wraps TLS itself: it needs only `import ssl` to work again)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.daemon.conftest import SLEEP, DaemonProc, free_port, poll, stop_daemon, write_config

Start = Callable[..., DaemonProc]

TLS_SERVER = """
import socket, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
with socket.create_server(("127.0.0.1", port)) as server:
    while True:
        conn, _ = server.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
        except (ssl.SSLError, OSError):
            pass
"""


def maps_openssl(pid: int) -> bool:
    return any(("libssl" in line or "libcrypto" in line) for line in Path(f"/proc/{pid}/maps").read_text().splitlines())


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return ca, cert_file, key_file


def test_asyncio_imported_without_ssl_speaks_tls_once_enabled(tmp_path: Path, certificate: tuple[trustme.CA, Path, Path]) -> None:
    """Both sides of a TLS connection on an event loop whose asyncio was imported without ssl."""
    ca, cert_file, key_file = certificate
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    code = textwrap.dedent(f"""
        import sys
        from pmtop.core.system import lazy_tls
        lazy_tls.import_asyncio()
        import asyncio
        assert "ssl" not in sys.modules and not lazy_tls.enabled()
        lazy_tls.enable()
        assert lazy_tls.enabled()
        import ssl

        async def main():
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain({str(cert_file)!r}, {str(key_file)!r})
            client_ctx = ssl.create_default_context(cafile={str(ca_file)!r})

            async def echo(reader, writer):
                writer.write((await reader.readline()).upper())
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
            writer.write(b"hello\\n")
            print((await reader.readline()).decode().strip())
            writer.close()
            server.close()

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HELLO"


def test_the_daemon_maps_openssl_only_for_an_https_check(start_daemon: Start, tmp_path: Path,
                                                         certificate: tuple[trustme.CA, Path, Path]) -> None:
    """No libssl or libcrypto while nothing speaks TLS; an https:// check then really does TLS (it fails on
    the certificate, issued by a CA the probe does not trust: not on a missing ssl module)."""
    _, cert_file, key_file = certificate
    write_config(tmp_path, f'[process.plain]\ncommand = {SLEEP}\n')
    # A home with a short path, as ~/.local/state is: under pytest's long temporary folders the notify
    # socket's path would exceed the kernel's limit, and the short name pmtop then hashes for it loads
    # hashlib (and with it libcrypto), which this test would mistake for TLS.
    home = Path(tempfile.mkdtemp(prefix="pmtop-tls-", dir="/tmp"))
    daemon = start_daemon("--port", "auto", home=home)
    try:
        daemon.wait_state("plain", "running")
        assert not maps_openssl(daemon.proc.pid), "OpenSSL loaded with no TLS to speak"

        port = free_port()
        server = [sys.executable, "-c", TLS_SERVER, str(port), str(cert_file), str(key_file)]
        body = {"name": "secure", "command": server,
                "health": {"type": "http", "url": f"https://127.0.0.1:{port}/", "interval": "200ms", "failures": 1000}}
        response = daemon.api("POST", "/processes", json=body)
        assert response.status_code == 201, response.text

        def certificate_refused() -> str | None:
            reason = daemon.api("GET", "/processes/secure").json()["reason"]
            return reason if "certificate" in reason.lower() else None

        reason = poll(certificate_refused, "the https probe to reach the TLS handshake")
        assert "ssl module" not in reason
        assert maps_openssl(daemon.proc.pid)
    finally:
        stop_daemon(daemon)
        shutil.rmtree(home, ignore_errors=True)
