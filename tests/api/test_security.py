"""Who may do what: trusted hosts, the token, remote-access permissions, the executable lists, and
the persisted settings behind them. Loopback only: 127.0.0.1 is made untrusted where a test needs a
remote client."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import httpx
import pytest

from pmtop.core.api.security import (
    HostMatcher,
    SecuritySettings,
    SecurityStore,
    address_matches,
    executable_refusal,
    normalize_address,
)
from pmtop.core.locations import InstancePaths
from pmtop.core.model import ProcessSpec
from tests.api.conftest import TOKEN, UNTRUSTED, Serve
from tests.api.test_server import error
from tests.conftest import spec

SLEEPER = ["python3", "-c", "import time; time.sleep(600)"]


async def test_a_trusted_host_still_needs_the_token(serve: Serve) -> None:
    """Loopback is not trust: every local user can reach it. 127.0.0.1 is a trusted host here."""
    api = await serve(spec("web"))
    anonymous = api.http(None)
    assert (await anonymous.get("/alive")).text == "OK", "/alive needs no token"
    assert (await anonymous.get("/health")).json()["service"] == "pmtop", "/health needs no token"
    for path in ("/processes", "/status", "/metrics", "/events", "/config/trusted-hosts", "/openapi.json", "/nope"):
        response = await anonymous.get(path)
        assert "pmtop token" in error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    error(await api.http("wrong-token").get("/processes"), 401, "unauthorized")
    error(await api.http(TOKEN + "x").get("/processes"), 401, "unauthorized")
    error(await anonymous.get("/processes", headers={"Authorization": f"Basic {TOKEN}"}), 401, "unauthorized")
    error(await anonymous.get("/processes", headers={"Authorization": "Bearer"}), 401, "unauthorized")
    owner = api.http()
    assert (await owner.get("/processes")).json()["processes"][0]["name"] == "web"
    error(await owner.get("/nope"), 404, "not_found")


async def test_untrusted_with_the_token_may_read(serve: Serve) -> None:
    api = await serve(spec("web"))
    api.distrust_loopback()
    remote = api.http(TOKEN)
    assert (await remote.get("/processes")).json()["processes"][0]["name"] == "web"
    assert (await remote.get("/config/remote-access")).status_code == 200, "GET config: any token holder"


async def test_remote_access_permissions(serve: Serve) -> None:
    api = await serve(spec("web"))
    trusted = api.http()
    put = await trusted.put("/config/remote-access", json={"start": False, "disable": False})
    assert put.status_code == 200 and put.json()["start"] is False and put.json()["stop"] is True
    api.distrust_loopback()
    remote = api.http(TOKEN)
    assert "'start'" in error(await remote.post("/processes/web/start"), 403, "forbidden")
    assert "'start'" in error(await remote.post("/processes/web/restart"), 403, "forbidden")
    assert "'disable'" in error(await remote.post("/processes/web/disable"), 403, "forbidden")
    assert "'disable'" in error(await remote.post("/processes/web/enable"), 403, "forbidden")
    assert (await remote.post("/processes/web/stop")).json()["state"] == "stopped", "stop is still allowed"
    assert "'monitor_restart'" in error(await remote.post("/monitor/restart"), 403, "forbidden")
    for path in ("/monitor/shutdown", "/monitor/reload"):
        assert "trusted host" in error(await remote.post(path), 403, "forbidden")
    assert "trusted host" in error(await remote.put("/config/standalone-mode", json={"enabled": True}), 403,
                                   "forbidden")
    assert api.daemon.shutdowns == 0 and api.daemon.restarts == 0
    assert not api.store.settings.standalone_mode

    api.store.save(dataclasses.replace(api.store.settings, remote_access=dataclasses.replace(
        api.store.settings.remote_access, monitor_restart=True, deregister=False)))
    assert (await remote.post("/monitor/restart")).status_code == 202
    assert "'deregister'" in error(await remote.delete("/processes/web"), 403, "forbidden")
    assert api.sup.names == ["web"]


async def test_remote_registration_and_the_executable_lists(serve: Serve) -> None:
    api = await serve()
    api.distrust_loopback()
    remote = api.http(TOKEN)
    body = {"name": "job", "command": SLEEPER, "start": False}
    assert "whitelist is empty" in error(await remote.post("/processes", json=body), 403, "forbidden")

    python3 = shutil.which("python3")
    assert python3 is not None
    settings = dataclasses.replace(api.store.settings, executable_whitelist=(os.path.dirname(python3) + "/*",))
    api.store.save(settings)
    created = await remote.post("/processes", json=body)
    assert created.status_code == 201, created.text

    elsewhere = {"name": "other", "command": ["/opt/nowhere/prog"], "start": False}
    assert "matches no" in error(await remote.post("/processes", json=elsewhere), 403, "forbidden")

    api.store.save(dataclasses.replace(api.store.settings, executable_blacklist=("python3*",)))
    refused = await remote.post("/processes", json={**body, "name": "job2"})
    assert "blacklisted" in error(refused, 403, "forbidden")
    assert api.sup.names == ["job"]


async def test_remote_registration_needs_autostart_to_start(serve: Serve) -> None:
    api = await serve()
    python3 = shutil.which("python3")
    assert python3 is not None
    access = dataclasses.replace(api.store.settings.remote_access, autostart=False)
    api.store.save(dataclasses.replace(api.store.settings, trusted_hosts=UNTRUSTED, remote_access=access,
                                       executable_whitelist=(python3,)))
    remote = api.http(TOKEN)
    refused = await remote.post("/processes", json={"name": "job", "command": [python3, "-c", "pass"]})
    assert "'autostart'" in error(refused, 403, "forbidden")
    quiet = {"name": "job", "command": [python3, "-c", "pass"], "autostart": False}
    assert (await remote.post("/processes", json=quiet)).status_code == 201
    assert api.sup.names == ["job"] and (await api.sup.status("job")).state.value == "stopped"


async def test_trusted_registration_skips_the_lists(serve: Serve) -> None:
    api = await serve()
    created = await api.http().post("/processes", json={"name": "job", "command": SLEEPER, "start": False})
    assert created.status_code == 201, "trusted hosts may register anything (the whitelist is for remotes)"


# ------------------------------------------------------------------------------- /config endpoints

SECTION_BODIES = {
    "remote-access": {"register": False, "deregister": True, "start": True, "stop": False, "disable": True,
                      "autostart": False, "monitor_restart": True},
    "trusted-hosts": {"hosts": ["localhost", "127.0.0.1", "::1", "192.168.1.*"]},
    "executable-whitelist": {"patterns": ["/usr/bin/*"]},
    "executable-blacklist": {"patterns": ["rm", "/bin/sh"]},
    "standalone-mode": {"enabled": True},
    "partner-discovery": {"enabled": True, "partner": {"host": "127.0.0.1", "port": 19882, "instance": "watcher"}},
}
DEFAULTS = {
    "remote-access": {"register": True, "deregister": True, "start": True, "stop": True, "disable": True,
                      "autostart": True, "monitor_restart": False},
    "trusted-hosts": {"hosts": ["localhost", "127.0.0.1", "::1"]},
    "executable-whitelist": {"patterns": []},
    "executable-blacklist": {"patterns": []},
    "standalone-mode": {"enabled": False},
    "partner-discovery": {"enabled": False, "partner": None},
}


async def test_config_sections_default_put_and_persist(serve: Serve, paths: InstancePaths) -> None:
    api = await serve()
    http = api.http()
    for section, default in DEFAULTS.items():
        assert (await http.get(f"/config/{section}")).json() == default, section
    for section, body in SECTION_BODIES.items():
        put = await http.put(f"/config/{section}", json=body)
        assert put.status_code == 200 and put.json() == body, section
        assert (await http.get(f"/config/{section}")).json() == body, section
    path = paths.state_dir / "security.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reread = SecurityStore(paths.state_dir)
    assert reread.settings == api.store.settings and reread.set_aside_as is None
    assert reread.settings.partner_discovery.partner is not None
    assert reread.settings.partner_discovery.partner.instance == "watcher"


async def test_config_put_is_validated(serve: Serve) -> None:
    api = await serve()
    http = api.http()
    before = api.store.settings
    cases = [
        ("remote-access", {"start": "yes"}, "remote-access.start"),
        ("remote-access", {"monitor_restrat": True}, "remote-access.monitor_restrat"),
        ("trusted-hosts", {"hosts": "localhost"}, "trusted-hosts.hosts"),
        ("trusted-hosts", {"hosts": [1]}, "trusted-hosts.hosts"),
        ("executable-whitelist", {"patterns": [""]}, "executable-whitelist.patterns"),
        ("standalone-mode", {"enabled": 1}, "standalone-mode.enabled"),
        ("partner-discovery", {"partner": {"host": "h", "port": 0, "instance": "w"}}, "partner-discovery.partner.port"),
        ("partner-discovery", {"partner": {"host": "h"}}, "partner-discovery.partner"),
    ]
    for section, body, key in cases:
        response = await http.put(f"/config/{section}", json=body)
        assert key in error(response, 422, "config_invalid"), (section, body)
    error(await http.put("/config/standalone-mode", content=b"{"), 400, "invalid_json")
    error(await http.put("/config/standalone-mode", json=[True]), 400, "bad_request")
    error(await http.put("/config/nope", json={}), 404, "not_found")
    assert api.store.settings == before, "a refused PUT changes nothing"
    partial = await http.put("/config/partner-discovery", json={"enabled": True})
    assert partial.json() == {"enabled": True, "partner": None}, "keys left out keep their values"


def test_corrupt_file_is_set_aside(paths: InstancePaths) -> None:
    paths.state_dir.mkdir(parents=True)
    path = paths.state_dir / "security.json"
    for garbage in (b"{not json", b'{"remote-access": {"start": "maybe"}}', b"[1, 2]", b"\xff\xfe"):
        path.write_bytes(garbage)
        store = SecurityStore(paths.state_dir)
        assert store.settings == SecuritySettings()
        assert store.set_aside_as is not None and store.set_aside_as.read_bytes() == garbage
        assert not path.exists()


def test_missing_sections_take_defaults(paths: InstancePaths) -> None:
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "security.json").write_text(json.dumps({"version": 1, "standalone-mode": {"enabled": True}}))
    store = SecurityStore(paths.state_dir)
    assert store.settings == dataclasses.replace(SecuritySettings(), standalone_mode=True)


# ------------------------------------------------------------------------------------ pure rules

@pytest.mark.parametrize(("address", "patterns", "trusted"), [
    ("127.0.0.1", ("localhost",), True),
    ("127.0.0.2", ("localhost",), False),
    ("127.1.2.3", ("localhost",), False),
    ("::ffff:127.0.0.1", ("localhost",), True),
    ("::1", ("localhost",), True),
    ("10.0.0.1", ("localhost",), False),
    ("192.168.1.77", ("192.168.1.*",), True),
    ("192.168.10.7", ("192.168.1.?",), False),
    ("fe80::1", ("fe80::*",), True),
    ("10.0.0.1", ("*.example.com",), False),
])
def test_address_patterns(address: str, patterns: tuple[str, ...], trusted: bool) -> None:
    assert address_matches(normalize_address(address), patterns) is trusted


def test_address_normalization() -> None:
    assert normalize_address("::ffff:192.168.1.5") == "192.168.1.5"
    assert normalize_address("FE80::1%eth0") == "fe80::1"


async def test_hostname_patterns_use_a_cached_lookup() -> None:
    asked: list[str] = []

    async def resolve(address: str) -> str | None:
        asked.append(address)
        return {"10.1.2.3": "build.example.com"}.get(address)

    hosts = HostMatcher(resolve)
    patterns = ("localhost", "*.example.com")
    assert await hosts.is_trusted("10.1.2.3", patterns)
    assert await hosts.is_trusted("10.1.2.3", patterns)
    assert not await hosts.is_trusted("10.9.9.9", patterns)
    assert await hosts.is_trusted("127.0.0.1", patterns), "an address match needs no lookup"
    assert not await hosts.is_trusted(None, patterns)
    assert asked == ["10.1.2.3", "10.9.9.9"], "each address looked up once"
    assert await HostMatcher(resolve).is_trusted("10.1.2.3", ("10.1.2.*",))
    assert asked == ["10.1.2.3", "10.9.9.9"], "no host-name pattern, no lookup"


async def test_hostname_patterns_through_the_server(serve: Serve) -> None:
    async def resolve(address: str) -> str | None:
        return "ci.example.com" if address == "127.0.0.1" else None

    api = await serve(resolver=resolve)
    api.store.save(dataclasses.replace(api.store.settings, trusted_hosts=("*.example.com",)))
    assert (await api.http().put("/config/standalone-mode", json={"enabled": True})).status_code == 200
    api.store.save(dataclasses.replace(api.store.settings, trusted_hosts=("*.example.org",)))
    refused = await api.http().put("/config/standalone-mode", json={"enabled": False})
    assert "trusted host" in error(refused, 403, "forbidden")
    assert api.store.settings.standalone_mode, "the refused PUT changed nothing"


def test_executable_rules(tmp_path: Path) -> None:
    python = os.path.realpath(sys.executable)
    link = tmp_path / "innocent"
    link.symlink_to(python)
    by_link = ProcessSpec(name="x", command=(str(link),))
    assert executable_refusal(by_link, (str(tmp_path) + "/*",), ()) is None
    assert executable_refusal(by_link, (str(tmp_path) + "/*",), (python,)) is not None, "symlink target counts"
    assert executable_refusal(by_link, ("*",), (os.path.basename(python),)) is not None, "bare name: base name"
    relative = ProcessSpec(name="x", command=("./innocent",), cwd=str(tmp_path))
    assert executable_refusal(relative, (str(link),), ()) is None, "relative to the process's cwd"
    bare = ProcessSpec(name="x", command=("innocent",), env={"PATH": str(tmp_path)})
    assert executable_refusal(bare, (str(link),), ()) is None, "looked up on the spec's own PATH"
    assert executable_refusal(bare, (), ()) is not None, "empty whitelist refuses"
    assert executable_refusal(bare, ("/nowhere/*",), ()) is not None


# ------------------------------------------------------------------------- routes fail closed

async def test_a_route_outside_the_table_is_refused(paths: InstancePaths) -> None:
    """A route someone adds without declaring its access is refused, even with the token (fail closed)."""
    from pmtop.core.api.http11 import Request, Response, Server, json_response
    from pmtop.core.api.server import make_app
    from tests.api.conftest import FakeDaemon

    async def leak(request: Request) -> Response:
        return json_response({"secret": True})

    from pmtop.core.supervisor import Supervisor

    app = make_app(Supervisor([], paths=paths), FakeDaemon(), security=SecurityStore(paths.state_dir), token=TOKEN)
    app.router.add_get("/named-but-undeclared", leak, name="undeclared")
    app.router.add_get("/unnamed", leak)
    server = Server(app)
    await server.start_tcp("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for path in ("/named-but-undeclared", "/unnamed"):
                assert "declares no access" in error(await client.get(path), 403, "forbidden")
    finally:
        await server.close()


def test_every_route_declares_its_access() -> None:
    from pmtop.core.api.protocol import ROUTES, Access
    from pmtop.core.api.server import HANDLERS

    assert {route.name for route in ROUTES} == set(HANDLERS)
    assert {route.name for route in ROUTES if route.access is Access.OPEN} == {"alive", "health"}
    for route in ROUTES:
        assert isinstance(route.access, Access), route
        if route.method != "GET" and route.access is Access.TOKEN:
            assert route.permissions, f"{route} changes something: an untrusted peer needs a permission"


# ------------------------------------------------------------------------------ the Host header

@pytest.mark.parametrize(("header", "local", "names", "allowed"), [
    ("127.0.0.1:19881", "127.0.0.1", frozenset(), True),
    ("localhost:19881", "127.0.0.1", frozenset(), True),
    ("LocalHost", "127.0.0.1", frozenset(), True),
    ("[::1]:19881", "::1", frozenset(), True),
    ("[::1]:19881", "127.0.0.1", frozenset(), False),
    ("127.0.0.2:19881", "127.0.0.1", frozenset(), False),
    ("evil.example:19881", "127.0.0.1", frozenset(), False),
    ("localhost.evil.example", "127.0.0.1", frozenset(), False),
    ("buildbox", "127.0.0.1", frozenset({"buildbox"}), False),
    ("buildbox:19881", "192.168.1.5", frozenset({"buildbox"}), True),
    ("buildbox.evil.example", "192.168.1.5", frozenset({"buildbox"}), False),
    ("192.168.1.5", "::ffff:192.168.1.5", frozenset(), True),
    ("", "127.0.0.1", frozenset(), False),
    (None, "127.0.0.1", frozenset(), False),
])
def test_host_header_rule(header: str | None, local: str, names: frozenset[str], allowed: bool) -> None:
    from pmtop.core.api.hosts import host_problem

    assert (host_problem(header, local, names) is None) is allowed
