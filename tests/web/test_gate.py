"""The gate's rules on their own: the token, the cookie it buys, the Host and Origin checks."""

from __future__ import annotations

import pytest

from pmtop.cli.web.gate import Gate

TOKEN = "s3cret-token"


def gate(host: str = "127.0.0.1", token: str | None = TOKEN, addresses: tuple[str, ...] = ()) -> Gate:
    return Gate(lambda: token, host=host, port=19890, local_addresses=lambda: addresses)


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
    g = Gate(lambda: current[0], host="127.0.0.1", port=1)
    cookie = g.cookie_value()
    current[0] = "a-new-token"
    assert not g.cookie_matches(cookie)
    assert not g.token_matches(TOKEN)
    assert g.token_matches("a-new-token")


def test_cookies_of_two_ports_do_not_collide() -> None:
    assert Gate(lambda: TOKEN, host="127.0.0.1", port=1).cookie_name != Gate(lambda: TOKEN, host="127.0.0.1", port=2).cookie_name


@pytest.mark.parametrize("header", ["127.0.0.1:19890", "localhost:19890", "LOCALHOST", "localhost.:19890",
                                    "[::1]:19890", "127.0.0.1"])
def test_hosts_of_a_loopback_server(header: str) -> None:
    assert gate().host_allowed(header)


@pytest.mark.parametrize("header", [None, "", "evil.example:19890", "127.0.0.1.evil.example", "192.168.1.5:19890",
                                    "[::2]:19890", "localhost:19890@evil", "127.0.0.2:19890"])
def test_other_names_are_refused(header: str | None) -> None:
    """A name that rebinds to 127.0.0.1 (DNS rebinding) is still not ours."""
    assert not gate().host_allowed(header)


def test_a_server_on_one_address_answers_to_it() -> None:
    g = gate(host="127.0.0.2")
    assert g.host_allowed("127.0.0.2:19890")
    assert g.host_allowed("localhost:19890")
    assert not g.host_allowed("127.0.0.3:19890")


def test_a_wildcard_server_answers_to_every_address_of_the_machine() -> None:
    g = gate(host="0.0.0.0", addresses=("127.0.0.1", "10.1.2.3", "fe80::1"))
    assert g.host_allowed("10.1.2.3:19890")
    assert g.host_allowed("[fe80::1]:19890")
    assert not g.host_allowed("10.1.2.4:19890")
    assert not g.host_allowed("example.com:19890")


def test_origin_must_be_the_server_itself() -> None:
    assert Gate.origin_allowed("http://127.0.0.1:19890", "http", "127.0.0.1:19890")
    assert Gate.origin_allowed(None, "http", "127.0.0.1:19890"), "not a browser: the cookie still decides"
    for other in ("http://127.0.0.1:8080", "http://evil.example", "https://127.0.0.1:19890", "null"):
        assert not Gate.origin_allowed(other, "http", "127.0.0.1:19890"), other
