"""Who may open the dashboard in a browser: the holder of the instance's token, through this
server's own address (SPEC §6, §13).

The rules, each applied to every request but `/health`'s token check:

- the `Host` header must name an address the server listens on, or `localhost` (a page on some
  other site that rebinds its name to 127.0.0.1 gets nothing: DNS rebinding);
- the page and the terminal's websocket need the session cookie, which only the token buys
  (from the `?token=` link or the form), compared in constant time;
- a browser's `Origin` on the websocket and the form must be this server itself (another page on
  this machine, even on another port, cannot drive a session).

The cookie is not the token: it is an HMAC of this server run's random secret under the token, so
it dies with the server or a new token, and a cookie that leaks (cookies are not kept apart by
port) never reveals the token the API takes. Nothing here imports aiohttp.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Iterable

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
MAX_TOKEN_LENGTH = 1024
"""Longer input is refused unread: no token is that long."""


class Gate:
    def __init__(self, token: Callable[[], str | None], *, host: str, port: int,
                 local_addresses: Callable[[], Iterable[str]] | None = None) -> None:
        """`token()` is read at each check, so a new token (a daemon that made one) applies at once.
        `local_addresses()` lists this machine's addresses, asked once, for a wildcard `host`."""
        self._token = token
        self._secret = secrets.token_bytes(32)
        self.port = port
        self.cookie_name = f"pmtop-web-{port}"
        """One per port: browsers send a cookie to every port of a host, and two servers (two
        instances) must not overwrite each other's."""
        names = set(LOCAL_NAMES)
        if host in WILDCARDS:
            names.update(_normal(a) for a in (local_addresses or all_local_addresses)())
        else:
            names.add(_normal(host))
        self.hosts = frozenset(names)

    # -- the token and the cookie it buys ---------------------------------------------------------

    def token_matches(self, given: str | None) -> bool:
        token = self._token()
        if not token or not given or len(given) > MAX_TOKEN_LENGTH:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())

    def cookie_value(self) -> str:
        """What the session cookie holds once the token was shown (raises if there is no token)."""
        token = self._token()
        if not token:
            raise LookupError("no token")
        return hmac.new(token.encode(), self._secret, hashlib.sha256).hexdigest()

    def cookie_matches(self, given: str | None) -> bool:
        if not given or len(given) > MAX_TOKEN_LENGTH:
            return False
        try:
            expected = self.cookie_value()
        except LookupError:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())

    # -- where the request comes through ----------------------------------------------------------

    def host_allowed(self, host_header: str | None) -> bool:
        """The `Host` header's name (port aside) is one of this server's addresses or `localhost`."""
        if not host_header:
            return False
        name, port = host_header.strip(), ""
        if name.startswith("["):  # [::1]:19890
            end = name.find("]")
            name, port = (name[1:end], name[end + 1:]) if end > 0 else ("", "")
            if port and not port.startswith(":"):
                return False
            port = port[1:]
        elif name.count(":") == 1:
            name, port = name.split(":")
        if port and not port.isdigit():
            return False
        return _normal(name) in self.hosts

    @staticmethod
    def origin_allowed(origin: str | None, scheme: str, host_header: str | None) -> bool:
        """A browser's `Origin` is this very server (scheme, host and port). Clients that are not
        browsers send none; they still need the cookie."""
        if origin is None:
            return True
        return bool(host_header) and origin == f"{scheme}://{host_header}"


def _normal(name: str) -> str:
    """One spelling per address: lower case, no trailing dot, IPv6 compressed."""
    name = name.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def all_local_addresses() -> list[str]:
    """Every address of this machine's interfaces (what a wildcard bind listens on)."""
    import psutil

    return [a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family.name in ("AF_INET", "AF_INET6")]
