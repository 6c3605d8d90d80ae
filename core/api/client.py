"""`HttpController`: the `Controller` Protocol over the HTTP API, so the dashboard drives a daemon
exactly as it drives an in-process supervisor.

What crosses the wire comes back as the same Python values and errors: statuses as `ProcessStatus`,
specs rebuilt with `parse_process`, and error bodies turned back into the `PmtopError` subclass the
server mapped them from (`errors.from_wire`, shared with the CLI's light client). A daemon that does
not answer, or stops answering, is always `DaemonUnavailable`, so a caller has one thing to catch to show "daemon gone".

Event streams (`subscribe`, `follow`) connect on entry: once `async with` has returned, the daemon
has registered the subscription. They count every byte, heartbeats included, as a sign of life, and
raise `DaemonUnavailable` after three heartbeats of silence or when the connection drops.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..config.schema import parse_process, spec_to_table
from ..controller import Controller
from ..errors import ApiError, DaemonUnavailable, PmtopError, from_wire
from ..model import (
    LogLine,
    ProcessEvent,
    ProcessRemoved,
    ProcessSpec,
    ProcessStatus,
    Replica,
    RunRecord,
    SupervisorInfo,
    fleet_name,
)
from .protocol import (
    DEFAULT_HEARTBEAT,
    HEARTBEAT_HEADER,
    SILENT_HEARTBEATS,
    EventParser,
    end_reason,
    process_path,
    read_error_body,
)


class _EventReader:
    """Server-Sent Events from a streaming response, one `(event, data)` at a time.

    Read a network chunk at a time and parsed into events here: a daemon sends a burst of statuses in
    one write, and a timeout (and an async generator step, and a parser call) per line rather than per
    chunk cost a fleet dashboard following 900 processes more than drawing them.
    """

    def __init__(self, response: httpx.Response, silence: float, url: str) -> None:
        self._chunks = response.aiter_bytes()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._events: deque[tuple[str, str]] = deque()
        self._partial = ""
        self._silence = silence
        self._url = url
        self._parser = EventParser()

    async def _read(self) -> None:
        """At least one more event into `_events`; `DaemonUnavailable` when the stream drops or stays silent."""
        while not self._events:
            try:
                async with asyncio.timeout(self._silence):
                    chunk = await anext(self._chunks)
            except TimeoutError:
                raise DaemonUnavailable(
                    f"the pmtop daemon at {self._url} went silent (nothing for {self._silence:g}s)"
                ) from None
            except (StopAsyncIteration, httpx.TransportError):
                raise DaemonUnavailable(f"lost the connection to the pmtop daemon at {self._url}") from None
            text = self._partial + self._decoder.decode(chunk)
            lines = text.splitlines(keepends=True)
            # An unfinished last line waits for the rest (a lone "\r" too: its "\n" may be in the next chunk).
            self._partial = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            self._events.extend(self._parser.feed_lines(lines))

    async def next_event(self) -> tuple[str, str]:
        """The next event; `DaemonUnavailable` when the stream drops or stays silent too long."""
        if not self._events:
            await self._read()
        return self._events.popleft()


class _StatusStream:
    """What `subscribe()` yields: the snapshot, then every change; `DaemonUnavailable` when it ends."""

    def __init__(self, reader: _EventReader, url: str, host: str | None = None) -> None:
        self._reader = reader
        self._url = url
        self._host = host

    def __aiter__(self) -> _StatusStream:
        return self

    async def __anext__(self) -> ProcessEvent:
        while True:
            event, data = await self._reader.next_event()
            if event == "status":
                return ProcessStatus.from_dict(json_value(data), host=self._host)
            if event == "removed":
                name = str(json.loads(data)["name"])
                return ProcessRemoved(name if self._host is None else fleet_name(self._host, name))
            if event == "end":
                raise DaemonUnavailable(f"the pmtop daemon at {self._url} closed the event stream (shutting down)")
            # other event types: added by a newer daemon, ignored by this client


_raw_decode = json.JSONDecoder().raw_decode


def json_value(text: str) -> Any:
    """`json.loads(text)`, quicker for a text without surrounding blanks (what a daemon sends): the
    decoder straight, without `loads`'s checks and blank skipping around it. A fleet dashboard
    decodes 900 statuses a second."""
    try:
        value, end = _raw_decode(text)
    except ValueError:
        end = -1
    return value if end == len(text) else json.loads(text)  # (a bad text fails as `loads` says)


class _LineStream:
    """What `follow()` yields: log lines; ends when the process is removed."""

    def __init__(self, reader: _EventReader, url: str) -> None:
        self._reader = reader
        self._url = url

    def __aiter__(self) -> _LineStream:
        return self

    async def __anext__(self) -> str:
        while True:
            event, data = await self._reader.next_event()
            if event == "message":
                return str(json.loads(data))
            if event == "end":
                if end_reason(data) == "removed":
                    raise StopAsyncIteration
                raise DaemonUnavailable(f"the pmtop daemon at {self._url} closed the log stream (shutting down)")


class _MergedStream:
    """What `follow_merged()` yields: lines of every process, each with its time and name."""

    def __init__(self, reader: _EventReader, url: str) -> None:
        self._reader = reader
        self._url = url

    def __aiter__(self) -> _MergedStream:
        return self

    async def __anext__(self) -> LogLine:
        while True:
            event, data = await self._reader.next_event()
            if event == "message":
                return LogLine.from_dict(json.loads(data))
            if event == "end":
                raise DaemonUnavailable(f"the pmtop daemon at {self._url} closed the log stream (shutting down)")


def _merged_params(names: list[str] | None, lines: int, grep: str | None, since: float | None) -> dict[str, str]:
    params = {"lines": str(lines)}
    if names:
        params["names"] = ",".join(names)
    if grep:
        params["grep"] = grep
    if since is not None:
        params["since"] = f"{max(0.0, time.time() - since):.3f}"
    return params


class HttpController:
    """A `Controller` backed by a pmtop daemon's HTTP API. Use as `async with` or call `aclose()`."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # trust_env=False: an HTTP(S)_PROXY meant for the internet must not capture the local daemon
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpController:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- plumbing -----------------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> DaemonUnavailable:
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            return DaemonUnavailable(f"the pmtop daemon at {self.base_url} did not answer within {self._timeout:g}s")
        return DaemonUnavailable(f"no pmtop daemon answers at {self.base_url}")

    def _error(self, status: int, body: bytes) -> PmtopError:
        """The `PmtopError` the server raised, rebuilt from its JSON error body."""
        wire = read_error_body(body)
        if wire is None:
            return ApiError(status, "http_error", f"HTTP {status} from {self.base_url}")
        return from_wire(status, wire)

    async def _request(self, method: str, path: str, *, wait: bool = False, **kwargs: Any) -> Any:
        """The decoded JSON answer. `wait`: an action that may take as long as a process's stop
        (its `stop_timeout`), so only connecting is bounded by `timeout`."""
        if wait:
            kwargs["timeout"] = httpx.Timeout(self._timeout, read=None)
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from None
        if response.status_code >= 400:
            raise self._error(response.status_code, response.content)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    @asynccontextmanager
    async def _stream(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[_EventReader]:
        request = self._client.build_request(
            "GET", path, params=params, headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(self._timeout, read=None),  # silence is judged by the heartbeat
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
        except (httpx.TransportError, TimeoutError) as exc:
            raise self._unavailable(exc) from None
        try:
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                except httpx.TransportError as exc:
                    raise self._unavailable(exc) from None
                raise self._error(response.status_code, body)
            try:
                heartbeat = float(response.headers.get(HEARTBEAT_HEADER, DEFAULT_HEARTBEAT))
            except ValueError:
                heartbeat = DEFAULT_HEARTBEAT
            yield _EventReader(response, SILENT_HEARTBEATS * heartbeat, self.base_url)
        finally:
            await response.aclose()

    # -- Controller ---------------------------------------------------------------------------------

    async def info(self) -> SupervisorInfo:
        data = await self.daemon_status()
        if data.get("started_at") is None and isinstance(data.get("uptime"), int | float):
            data["started_at"] = time.time() - float(data["uptime"])
        return SupervisorInfo.from_dict(data)

    async def processes(self, *, facts: bool = False, host: str | None = None) -> list[ProcessStatus]:
        """With `host` (a fleet's label for this daemon), named as the fleet shows them: `host/name`."""
        data = await self._request("GET", "/processes", params={"facts": "1" if facts else "0"})
        return [ProcessStatus.from_dict(item, host=host) for item in data["processes"]]

    async def status(self, name: str, *, facts: bool = False) -> ProcessStatus:
        params = {"facts": "1" if facts else "0"}
        return ProcessStatus.from_dict(await self._request("GET", process_path(name), params=params))

    async def spec(self, name: str) -> ProcessSpec:
        """Rebuilt from the daemon's `config` table, with what a table does not hold put back."""
        data = await self._request("GET", process_path(name), params={"facts": "0"})
        config: dict[str, Any] = data["config"]
        project, cwd = data.get("project"), config.get("cwd")
        base = project or (cwd if isinstance(cwd, str) and cwd.startswith("/") else "/")
        # The daemon reads the env files; this client may not be able to (another machine, say).
        spec = parse_process(name, config, base_dir=Path(base), env_files=False, adopted="command" not in config)
        index, group = data.get("replica"), data.get("group")
        replica = Replica(group, index) if isinstance(index, int) and isinstance(group, str) else None
        return dataclasses.replace(spec, cwd=cwd, project=project, session_pid=data.get("session_pid"), replica=replica)

    async def _act(self, name: str, verb: str) -> ProcessStatus:
        return ProcessStatus.from_dict(await self._request("POST", process_path(name, verb), wait=True))

    async def start(self, name: str) -> ProcessStatus:
        return await self._act(name, "start")

    async def stop(self, name: str) -> ProcessStatus:
        return await self._act(name, "stop")

    async def stop_many(self, names: list[str] | None = None) -> list[ProcessStatus]:
        body = {"names": names} if names is not None else None
        data = await self._request("POST", "/processes/*/stop", wait=True, json=body)
        return [ProcessStatus.from_dict(item) for item in data["processes"]]

    async def restart(self, name: str) -> ProcessStatus:
        return await self._act(name, "restart")

    async def enable(self, name: str) -> ProcessStatus:
        return await self._act(name, "enable")

    async def disable(self, name: str) -> ProcessStatus:
        return await self._act(name, "disable")

    async def add(self, spec: ProcessSpec, *, start: bool = True) -> ProcessStatus:
        body: dict[str, Any] = {**spec_to_table(spec), "name": spec.name, "start": start}
        if spec.session_pid is not None:
            body["session_pid"] = spec.session_pid
        if spec.project is not None:
            body["project"] = spec.project
        return ProcessStatus.from_dict(await self._request("POST", "/processes", json=body, wait=True))

    async def adopt_pid(self, spec: ProcessSpec, pid: int) -> ProcessStatus:
        body: dict[str, Any] = {**spec_to_table(spec), "name": spec.name, "pid": pid}
        if spec.session_pid is not None:
            body["session_pid"] = spec.session_pid
        return ProcessStatus.from_dict(await self._request("POST", "/processes", json=body, wait=True))

    async def remove(self, name: str) -> None:
        await self._request("DELETE", process_path(name), wait=True)

    async def logs(self, name: str, stream: str = "stdout", lines: int = 200) -> list[str]:
        data = await self._request("GET", process_path(name, "logs"), params={"stream": stream, "lines": lines})
        return [str(line) for line in data["lines"]]

    @asynccontextmanager
    async def follow(self, name: str, stream: str = "stdout", lines: int = 10) -> AsyncIterator[AsyncIterator[str]]:
        params = {"stream": stream, "lines": str(lines), "follow": "1"}
        async with self._stream(process_path(name, "logs"), params) as reader:
            yield _LineStream(reader, self.base_url)

    async def history(self, name: str) -> list[RunRecord]:
        data = await self._request("GET", process_path(name, "history"))
        return [RunRecord.from_dict(run) for run in data["runs"]]

    async def scale(self, name: str, replicas: int) -> list[ProcessStatus]:
        data = await self._request("POST", process_path(name, "scale"), json={"replicas": replicas}, wait=True)
        return [ProcessStatus.from_dict(item) for item in data["processes"]]

    async def merged_logs(self, names: list[str] | None = None, lines: int = 200, *, grep: str | None = None,
                          since: float | None = None) -> list[LogLine]:
        data = await self._request("GET", "/logs", params=_merged_params(names, lines, grep, since))
        return [LogLine.from_dict(line) for line in data["lines"]]

    @asynccontextmanager
    async def follow_merged(
        self, names: list[str] | None = None, lines: int = 10, *, grep: str | None = None, since: float | None = None
    ) -> AsyncIterator[AsyncIterator[LogLine]]:
        params = {**_merged_params(names, lines, grep, since), "follow": "1"}
        async with self._stream("/logs", params) as reader:
            yield _MergedStream(reader, self.base_url)

    @asynccontextmanager
    async def subscribe(self, *, facts: bool = False,
                        host: str | None = None) -> AsyncIterator[AsyncIterator[ProcessEvent]]:
        """With `host` (a fleet's label for this daemon), the events name processes `host/name`."""
        async with self._stream("/events", {"facts": "1"} if facts else None) as reader:
            yield _StatusStream(reader, self.base_url, host)

    # -- the daemon itself --------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._request("GET", "/health")
        return data

    async def daemon_status(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._request("GET", "/status")
        return data

    async def reload(self) -> dict[str, Any]:
        """`{"added": [...], "changed": [...], "removed": [...]}`; `ConfigError` if the config is bad."""
        data: dict[str, Any] = await self._request("POST", "/monitor/reload", wait=True)
        return data

    async def shutdown(self) -> None:
        """Ask the daemon to exit (it answers first, then stops its processes and itself)."""
        await self._request("POST", "/monitor/shutdown")

    async def restart_daemon(self) -> None:
        await self._request("POST", "/monitor/restart")

    async def metrics(self) -> str:
        return str(await self._request("GET", "/metrics"))

    async def get_config(self, section: str) -> dict[str, Any]:
        """One `/config/<section>` (`remote-access`, `trusted-hosts`, ...)."""
        data: dict[str, Any] = await self._request("GET", f"/config/{quote(section, safe='')}")
        return data

    async def put_config(self, section: str, value: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self._request("PUT", f"/config/{quote(section, safe='')}", json=value)
        return data


if TYPE_CHECKING:  # mypy proves the Protocol is implemented, signatures included
    _implements: type[Controller] = HttpController
