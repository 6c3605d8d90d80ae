"""Who may open the dashboard in a browser: the holder of the instance's token (SPEC §6, §13).

- The page and the terminal's websocket need the session cookie, which only the token buys (from
  the `?token=` link or the form), compared in constant time.
- A browser's `Origin` on the websocket and the form must be this server itself (another page on
  this machine, even on another port, cannot drive a session).
- (The `Host` header is checked before either, as the API does it: `pmtop.core.api.hosts`.)

The cookie is not the token: it is an HMAC of this server run's random secret under the token, so
it dies with the server or a new token, and a cookie that leaks (cookies are not kept apart by
port) never reveals the token the API takes. Nothing here imports aiohttp.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

MAX_TOKEN_LENGTH = 1024
"""Longer input is refused unread: no token is that long."""


class Gate:
    def __init__(self, token: Callable[[], str | None], *, port: int) -> None:
        """`token()` is read at each check, so a new token (a daemon that made one) applies at once."""
        self._token = token
        self._secret = secrets.token_bytes(32)
        self.port = port
        self.cookie_name = f"pmtop-web-{port}"
        """One per port: browsers send a cookie to every port of a host, and two servers (two
        instances) must not overwrite each other's."""

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

    # -- where the request comes from -------------------------------------------------------------

    @staticmethod
    def origin_allowed(origin: str | None, scheme: str, host_header: str | None) -> bool:
        """A browser's `Origin` is this very server (scheme, host and port). Clients that are not
        browsers send none; they still need the cookie."""
        if origin is None:
            return True
        return bool(host_header) and origin == f"{scheme}://{host_header}"

