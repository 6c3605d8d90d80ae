"""The dev loop over HTTP: scale and the merged log view, through the real server and HttpController."""

from __future__ import annotations

import asyncio

import pytest

from pmtop.core.errors import ActionRefused, ApiError, NoSuchProcess
from pmtop.core.model import ProcessState
from tests.api.conftest import Serve
from tests.conftest import spec
from tests.waiting import poll_until, wait_state

S = ProcessState
TICKER = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n    time.sleep(0.05)"


async def test_scale_over_http(serve: Serve) -> None:
    api = await serve(spec("web", replicas=1), spec("plain"))
    ctl = api.controller()
    await api.sup.boot()
    async with ctl.subscribe() as events:
        grown = await ctl.scale("web", 3)
        assert [s.name for s in grown] == ["web-1", "web-2", "web-3"] and {s.group for s in grown} == {"web"}
        await wait_state(events, "web-3", S.RUNNING)
    assert [s.name for s in await ctl.scale("web", 1)] == ["web-1"]
    with pytest.raises(ActionRefused, match="no replicas setting"):
        await ctl.scale("plain", 2)
    with pytest.raises(NoSuchProcess):
        await ctl.scale("nope", 2)
    client = api.http()
    bad = await client.post("/processes/web/scale", json={"replicas": "3"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"
    detail = (await client.get("/processes/web-1")).json()
    assert detail["group"] == "web" and detail["replica"] == 1
    rebuilt = await ctl.spec("web-1")
    assert rebuilt.replica is not None and rebuilt.replica.group == "web"


async def test_merged_logs_over_http(serve: Serve) -> None:
    api = await serve(spec("tick", TICKER), spec("tock", TICKER.replace("tick", "tock")))
    ctl = api.controller()
    await api.sup.boot()
    await poll_until(lambda: len(api.sup._tail("tock", "stdout", 3)) == 3, what="output from both")
    lines = await ctl.merged_logs(lines=20)
    assert {line.name for line in lines} == {"tick", "tock"}
    assert [line.time for line in lines] == sorted(line.time for line in lines)
    only = await ctl.merged_logs(["tock"], grep=r"tock [0-2]$")
    assert [line.text for line in only] == ["tock 0", "tock 1", "tock 2"]
    client = api.http()
    raw = (await client.get("/logs", params={"names": "tick", "lines": "2"})).json()
    assert [sorted(line) for line in raw["lines"]] == [["line", "name", "stream", "time"]] * 2
    assert (await client.get("/logs", params={"grep": "("})).status_code == 400
    assert (await client.get("/logs", params={"since": "yesterday-ish"})).status_code == 400
    assert (await client.get("/logs", params={"names": "nope"})).status_code == 404
    recent = (await client.get("/logs", params={"since": "1h", "names": "tick"})).json()["lines"]
    assert recent and all(line["name"] == "tick" for line in recent)


async def test_follow_merged_over_sse(serve: Serve) -> None:
    api = await serve(spec("tick", TICKER), spec("tock", TICKER.replace("tick", "tock")))
    ctl = api.controller()
    await api.sup.boot()
    names: set[str] = set()
    async with ctl.follow_merged(lines=0, grep="[02468]$") as lines:
        async with asyncio.timeout(20):
            async for line in lines:
                assert line.text[-1] in "02468"
                names.add(line.name)
                if names == {"tick", "tock"}:
                    break
    with pytest.raises(ApiError):
        async with ctl.follow_merged(grep="("):
            pass
