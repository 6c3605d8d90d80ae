"""The gate's rules on their own: the token, the cookie it buys, the Origin check. (The Host header
check is the API's own, `core/api/hosts.py`, tested there; tests/web/test_web.py sees it refuse.)"""

from __future__ import annotations

from pmtop.cli.web.gate import Gate

TOKEN = "s3cret-token"


def gate(token: str | None = TOKEN) -> Gate:
    return Gate(lambda: token, port=19890)


def test_only_the_token_matches() -> None:
    g = gate()
    assert g.token_matches(TOKEN)
    for wrong in ("", "s3cret", TOKEN + "x", TOKEN.upper(), "é" * 10, "x" * 5000, None):
        assert not g.token_matches(wrong), wrong


def test_without_a_token_nothing_matches() -> None:
    g = gate(token=None)
    assert not g.token_matches("")
    assert not g.token_matches("anything")
    assert not g.cookie_matches("anything")


def test_the_cookie_is_not_the_token_and_dies_with_the_server_run() -> None:
    g = gate()
    cookie = g.cookie_value()
    assert TOKEN not in cookie
    assert g.cookie_matches(cookie)
    assert not g.cookie_matches(cookie[:-1] + ("0" if cookie[-1] != "0" else "1"))
    assert not g.cookie_matches(None)
    assert not gate().cookie_matches(cookie), "another server run (or a restarted one) has another secret"


def test_a_new_token_ends_the_old_cookies() -> None:
    current = [TOKEN]
    g = Gate(lambda: current[0], port=1)
    cookie = g.cookie_value()
    current[0] = "a-new-token"
    assert not g.cookie_matches(cookie)
    assert not g.token_matches(TOKEN)
    assert g.token_matches("a-new-token")


def test_cookies_of_two_ports_do_not_collide() -> None:
    assert Gate(lambda: TOKEN, port=1).cookie_name != Gate(lambda: TOKEN, port=2).cookie_name


def test_origin_must_be_the_server_itself() -> None:
    assert Gate.origin_allowed("http://127.0.0.1:19890", "http", "127.0.0.1:19890")
    assert Gate.origin_allowed(None, "http", "127.0.0.1:19890"), "not a browser: the cookie still decides"
    for other in ("http://127.0.0.1:8080", "http://evil.example", "https://127.0.0.1:19890", "null"):
        assert not Gate.origin_allowed(other, "http", "127.0.0.1:19890"), other


def test_the_command_and_the_server_name_the_service_alike() -> None:
    """`web_main` keeps its own copy (importing the server would load aiohttp before it is needed)."""
    from pmtop.cli import web_main
    from pmtop.cli.web import server

    assert web_main.SERVICE == server.SERVICE == "pmtop-web"
