"""`pmtop web` without a browser: the gate over HTTP and the websocket, one dashboard process per
session (and none for a refused one), one server per port, and the daemon it attaches to."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import psutil
import pytest

from tests.daemon.conftest import DaemonProc, free_port, poll, write_config
from tests.waiting import poll_until

from .conftest import PMTOP, WebProc, api_state, env_for, gone, stack, token_of

StartWeb = Callable[..., WebProc]


def test_the_page_asks_for_the_token_and_only_the_token_opens_it(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    assert f"{web.url}/?token={web.token}" in web.text(), "the link with the token is printed"
    assert web.token == token_of(stack_daemon.home), "the daemon's own token"

    asked = httpx.get(web.url + "/")
    assert asked.status_code == 401 and 'name="token"' in asked.text and "terminal" not in asked.text
    wrong = httpx.get(web.url + "/", params={"token": "not-the-token"})
    assert wrong.status_code == 401 and "wrong" in wrong.text and "set-cookie" not in wrong.headers

    page = httpx.get(web.url + "/", params={"token": web.token})
    assert page.status_code == 200 and 'id="terminal"' in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert web.token not in cookie, "the cookie is not the token"
    assert "replaceState" in page.text, "the page drops ?token= from the address bar"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    again = httpx.get(web.url + "/", cookies=page.cookies)
    assert again.status_code == 200 and 'id="terminal"' in again.text, "the cookie opens it from then on"


def test_the_form_buys_the_cookie(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    refused = httpx.post(web.url + "/login", data={"token": "nope"})
    assert refused.status_code == 401 and "wrong" in refused.text
    assert httpx.post(web.url + "/login", data={"token": web.token}, headers={"Origin": "http://evil.example"}
                      ).status_code == 403, "a form on another site"
    accepted = httpx.post(web.url + "/login", data={"token": web.token}, headers={"Origin": web.url})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    assert httpx.get(web.url + "/", cookies=accepted.cookies).status_code == 200


def test_another_host_name_gets_nothing(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    web = start_web("--no-browser", home=stack_daemon.home)
    for path in ("/health", "/", f"/?token={web.token}", "/static/js/textual.js"):
        answer = httpx.get(web.url + path, headers={"Host": f"evil.example:{web.port}"})
        assert answer.status_code == 403, path
    assert httpx.get(web.url + "/health", headers={"Host": f"localhost:{web.port}"}).status_code == 200


async def test_a_session_is_one_dashboard_process_attached_to_the_daemon(
        stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(web.url + "/", params={"token": web.token}) as page:
            assert page.status == 200
        async with client.ws_connect(web.url + "/ws?width=160&height=40", origin=web.url) as ws:
            screen = bytearray()
            async with asyncio.timeout(30):
                while b"alpha" not in screen or b"beta" not in screen:
                    message = await ws.receive()
                    assert message.type == aiohttp.WSMsgType.BINARY, message
                    screen += message.data
            [session] = web.sessions()
            argv = session.cmdline()
            assert "--web-session" in argv and str(stack_daemon.info["port"]) in argv
            assert "--token" not in argv and web.token not in " ".join(argv), "the token never shows in ps"
            assert os.getpgid(session.pid) == session.pid, "its own process group"
            assert b"attached" in screen
            daemon_pid = stack_daemon.proc.pid
            assert session.pid not in {c.pid for c in psutil.Process(daemon_pid).children(recursive=True)}
        await poll_until(lambda: not web.sessions(), what="the session's dashboard to end with its websocket")
    assert api_state(stack_daemon, "alpha") == "running", "a session that ends leaves the processes alone"


async def test_a_refused_websocket_starts_no_dashboard(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_cookie:
            await client.ws_connect(web.url + "/ws")
        assert no_cookie.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as forged:
            await client.ws_connect(web.url + "/ws", headers={"Cookie": f"pmtop-web-{web.port}={web.token}"})
        assert forged.value.status == 401, "the token is not the cookie"
        async with client.get(web.url + "/", params={"token": web.token}):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as cross_site:
            await client.ws_connect(web.url + "/ws", origin="http://127.0.0.1:1")
        assert cross_site.value.status == 403, "a page on another port of this machine"
    assert web.sessions() == []
    assert "session" not in web.text(), "no session was ever opened"


async def test_the_sessions_die_with_the_server_however_it_dies(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(web.url + "/", params={"token": web.token}):
            pass
        async with client.ws_connect(web.url + "/ws", origin=web.url), client.ws_connect(web.url + "/ws", origin=web.url):
            sessions = web.wait_sessions(2)
            web.proc.send_signal(signal.SIGKILL)  # no chance to end them itself
            web.proc.wait()
            await poll_until(lambda: all(gone(s) for s in sessions), what="the dashboards to die with the server")
    assert api_state(stack_daemon, "alpha") == "running"


def test_sigterm_ends_the_server_and_its_sessions(stack_daemon: DaemonProc, start_web: StartWeb) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)

    async def open_session() -> int:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.get(web.url + "/", params={"token": web.token}):
                pass
            async with client.ws_connect(web.url + "/ws", origin=web.url) as ws:
                [session] = web.wait_sessions(1)
                web.proc.send_signal(signal.SIGTERM)
                message = await ws.receive(timeout=30)
                while message.type == aiohttp.WSMsgType.BINARY:
                    message = await ws.receive(timeout=30)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
                return session.pid

    session_pid = asyncio.run(open_session())
    assert web.proc.wait(timeout=30) == 0
    assert not psutil.pid_exists(session_pid), "the server ended (and reaped) its session before it exited"
    assert api_state(stack_daemon, "alpha") == "running", "the daemon and its processes keep running"


def test_a_second_pmtop_web_on_the_port_opens_the_first(stack_daemon: DaemonProc, start_web: StartWeb,
                                                         tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" >> {opened}\n")
    browser.chmod(0o755)
    env = env_for(stack_daemon.home, DISPLAY=":99", BROWSER=str(browser))
    web = start_web(home=stack_daemon.home, env=env)
    link = f"{web.url}/?token={web.token}"
    poll(lambda: opened.exists() and link in opened.read_text(), "the first one to open the browser")

    second = subprocess.run([*PMTOP, "web", "--port", str(web.port)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "already serving" in second.stdout and link in second.stdout
    assert opened.read_text().count(link) == 2, "the second one only opened the browser"
    assert web.proc.poll() is None


def test_no_display_no_browser(stack_daemon: DaemonProc, start_web: StartWeb, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" >> {opened}\n")
    browser.chmod(0o755)
    web = start_web(home=stack_daemon.home, env=env_for(stack_daemon.home, BROWSER=str(browser)))
    poll(lambda: "no display" in web.text(), "the note that there is no display")
    assert not opened.exists()


def test_a_port_held_by_another_program_is_a_clear_error(stack_daemon: DaemonProc, tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([*PMTOP, "web", "--no-browser", "--port", str(port)], cwd=tmp_path,
                              env=env_for(stack_daemon.home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"Error: port {port} is already in use by another program (")
    assert f"pid {os.getpid()}" in line and "choose another port with --port" in line


def test_the_daemons_port_is_not_the_web_port(stack_daemon: DaemonProc, tmp_path: Path) -> None:
    port = stack_daemon.info["port"]
    done = subprocess.run([*PMTOP, "web", "--no-browser", "--port", str(port)], cwd=tmp_path,
                          env=env_for(stack_daemon.home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"Error: port {port} is the API port of pmtop instance 'default'. "
                                   "Choose another port with --port.")


def test_another_instances_web_server_is_named(stack_daemon: DaemonProc, start_web: StartWeb, tmp_path: Path) -> None:
    web = start_web("--no-browser", home=stack_daemon.home)
    other = tmp_path / "other"
    write_config(other, stack(free_port()).replace("[daemon]\n", '[daemon]\ninstance = "other"\n'))
    done = subprocess.run([*PMTOP, "web", "--no-browser", "--port", str(web.port)], cwd=other,
                          env=env_for(stack_daemon.home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "already used by pmtop web of instance 'default'" in done.stderr
    assert not (stack_daemon.home / "state" / "other" / "daemon.json").exists(), "no daemon was started for it"


def test_without_a_daemon_it_starts_one_and_attaches(start_web: StartWeb, tmp_path: Path) -> None:
    daemon_port = free_port()
    write_config(tmp_path, stack(daemon_port))
    home = tmp_path / "home"
    web = start_web("--no-browser", home=home)
    info = json.loads((home / "state" / "default" / "daemon.json").read_text())
    daemon = psutil.Process(info["pid"])
    try:
        assert info["port"] == daemon_port
        assert "pmtop daemon started" in web.text()
        assert "--headless" in daemon.cmdline()
        token = token_of(home)
        assert httpx.get(f"http://127.0.0.1:{daemon_port}/processes",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        web.proc.send_signal(signal.SIGTERM)
        assert web.proc.wait(timeout=30) == 0
        assert daemon.is_running(), "the daemon outlives `pmtop web`, as a daemon does"
    finally:
        children = daemon.children(recursive=True)
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except psutil.TimeoutExpired:
            daemon.kill()
        for child in children:
            if child.is_running():
                child.kill()


def test_a_session_never_becomes_the_supervisor(tmp_path: Path) -> None:
    """`--web-session` (what the server runs per session) with no daemon: an error, not a supervisor."""
    home = tmp_path / "home"
    done = subprocess.run([*PMTOP, "--web-session", "--port", str(free_port())], cwd=tmp_path, env=env_for(home),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: no pmtop daemon of instance 'default' answers at 127.0.0.1:")
    assert not (home / "state" / "default" / "instance.lock").exists(), "it never took the instance"


def test_an_unknown_theme_is_refused_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([*PMTOP, "web", "--no-browser", "--theme", "nope", "--port", str(free_port())],
                          cwd=tmp_path, env=env_for(home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: unknown theme 'nope' (known: dark, light, high-contrast")
    assert not (home / "state" / "default" / "daemon.json").exists(), "no daemon was started"


def test_a_bad_web_port_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([*PMTOP, "web", "--port", "http"], cwd=tmp_path, env=env_for(tmp_path / "home"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip() == "Error: --port must be a number from 1 to 65535 (got 'http')"
