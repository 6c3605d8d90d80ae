"""asyncio without OpenSSL until something in the process needs TLS.

Why: importing asyncio imports `ssl` (for its TLS transports), and `ssl` maps OpenSSL's libcrypto and
libssl: 4 MB of a daemon that otherwise weighs about 25 MB with 200 processes (bench/bench_memory.py),
and the difference between weighing less than supervisord and more (issue 15). The daemon serves plain
HTTP and speaks TLS only when an `http` health check probes an https:// URL.

asyncio is written to run on a Python without ssl: each module that uses it does `try: import ssl`
and keeps `ssl = None` on failure. `import_asyncio()` imports asyncio that way (ssl hidden for that
import only, so anything else may still import it normally), and `enable()` imports ssl and hands it to
those modules, which is all that `import ssl` succeeding would have done. Whatever may start TLS on the
event loop calls `enable()` first: today only the http check, before it imports httpx (which needs
only `import ssl` to work: anyio wraps TLS itself over a plain connection).
"""

from __future__ import annotations

import sys
from types import ModuleType

_ASYNCIO_SSL_USERS = ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto")
"""The asyncio modules with a module-level `ssl` (CPython 3.11-3.13)."""


def import_asyncio() -> None:
    """Import asyncio without ssl, unless it (or ssl) is imported already."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def enabled() -> bool:
    """asyncio can start TLS (it was imported with ssl, or `enable()` gave it ssl since)."""
    return all(getattr(sys.modules.get(name), "ssl", True) is not None for name in _ASYNCIO_SSL_USERS)


def enable() -> None:
    """Give asyncio the ssl module it was imported without (nothing to do if it has it)."""
    if enabled():
        return
    import ssl

    for name in _ASYNCIO_SSL_USERS:
        module: ModuleType | None = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", None) is None:
            module.ssl = ssl  # type: ignore[attr-defined]
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None:  # what its module body sets only when ssl imported
        sslproto.SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)  # type: ignore[attr-defined]
