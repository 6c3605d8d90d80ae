"""Hooks: tell someone when a process crashes, fails, turns unhealthy or recovers (SPEC §11).

`HookEvents` turns the stream of statuses into events: a state entered (`crashed`, `failed`, `running`,
any of the eight), `unhealthy` (health turned bad) and `recovered` (running and not unhealthy again,
after a crash, a retry, a failure or bad health, and without a stop in between).

`Hooks` delivers them. Every process has its own queue, worked by a task that exists only while the
queue is not empty, so deliveries of one process keep their order, a slow receiver of one process never
delays another's, and supervision never waits for any of it. A queue holds at most `QUEUE_LIMIT`
deliveries (the oldest are dropped, and the log says so). A command runs in its own process group and
is killed after the hook's `timeout`; a URL is POSTed the status as JSON up to `URL_ATTEMPTS` times
with a growing pause. Whatever fails is logged and handed to `on_result`, which the supervisor shows as
the process's `hook_error`; nothing here ever raises into the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import SpawnError
from ..model import Health, HookSpec, ProcessState, ProcessStatus
from ..system import commands

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("pmtop.core")

QUEUE_LIMIT: Final = 32
URL_ATTEMPTS: Final = 3
URL_BACKOFF: Final = (1.0, 3.0)
"""Seconds before the second and third POST of a URL hook."""
TROUBLE: Final = frozenset({ProcessState.CRASHED, ProcessState.RETRYING, ProcessState.FAILED})
CALM: Final = frozenset({ProcessState.STOPPED, ProcessState.DISABLED})
"""A stop (or disable) ends a troubled spell: what comes after is a start, not a recovery."""
_PLACEHOLDER: Final = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}")


class HookEvents:
    """Which hook events a new status means, given the one before it."""

    def __init__(self) -> None:
        self._last: dict[str, ProcessStatus] = {}
        self._troubled: set[str] = set()

    def seen(self, status: ProcessStatus) -> None:
        """Remember a status without deriving events (the state when hooks start watching)."""
        self._last[status.name] = status
        if status.state in TROUBLE or status.health is Health.UNHEALTHY:
            self._troubled.add(status.name)

    def forget(self, name: str) -> None:
        self._last.pop(name, None)
        self._troubled.discard(name)

    def events(self, status: ProcessStatus) -> list[str]:
        name = status.name
        old = self._last.get(name)
        self._last[name] = status
        found: list[str] = []
        if old is None or old.state is not status.state:
            found.append(status.state.value)
        if status.health is Health.UNHEALTHY and (old is None or old.health is not Health.UNHEALTHY):
            found.append("unhealthy")
        if status.state in TROUBLE or status.health is Health.UNHEALTHY:
            self._troubled.add(name)
        elif status.state in CALM:
            self._troubled.discard(name)
        elif status.state is ProcessState.RUNNING and name in self._troubled:
            self._troubled.discard(name)
            found.append("recovered")
        return found


@dataclass(frozen=True, slots=True)
class Delivery:
    hook: HookSpec
    event: str
    status: ProcessStatus
    cwd: str | None
    at: float


def fill(word: str, values: dict[str, str]) -> str:
    """One command word with its placeholders filled in (`{{` and `}}` are braces)."""
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(match.group(1) or "", token)
    return _PLACEHOLDER.sub(replace, word)


def placeholder_values(event: str, status: ProcessStatus, instance: str) -> dict[str, str]:
    return {
        "name": status.name,
        "state": status.state.value,
        "reason": status.reason,
        "pid": "" if status.pid is None else str(status.pid),
        "exit_code": "" if status.exit_code is None else str(status.exit_code),
        "event": event,
        "health": status.health.value,
        "instance": instance,
    }


class Hooks:
    """Delivers hook events, one queue per process (see the module docstring)."""

    def __init__(
        self,
        *,
        instance: str,
        hooks_of: Callable[[str], list[tuple[HookSpec, str | None]]],
        on_result: Callable[[str, str | None], None],
    ) -> None:
        """`hooks_of(name)`: the hooks that apply to a process (global ones and its own), each with the
        folder its command runs in; `on_result(name, error)`: after each delivery (error None: it worked)."""
        self.instance = instance
        self._hooks_of = hooks_of
        self._on_result = on_result
        self.events = HookEvents()
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        """Deliveries finished (worked or failed): observable in tests."""

    def observe(self, status: ProcessStatus) -> None:
        """A published status: queue a delivery for each hook that wants one of its events. Cheap."""
        events = self.events.events(status)
        if not events:
            return
        for hook, cwd in self._hooks_of(status.name):
            for event in events:
                if event in hook.on:
                    self._queue(Delivery(hook, event, status, cwd, time.time()))

    def _queue(self, delivery: Delivery) -> None:
        name = delivery.status.name
        queue = self._queues.setdefault(name, deque())
        if len(queue) >= QUEUE_LIMIT:
            dropped = queue.popleft()
            log.warning("hooks of %s fall behind: dropped the %s hook of %s", name, dropped.event,
                        time.strftime("%H:%M:%S", time.localtime(dropped.at)))
        queue.append(delivery)
        if name not in self._workers:
            self._workers[name] = asyncio.get_running_loop().create_task(self._work(name), name=f"pmtop:hooks:{name}")

    async def _work(self, name: str) -> None:
        queue = self._queues[name]
        try:
            while queue:
                delivery = queue.popleft()
                error = await self._deliver(delivery)
                self.delivered += 1
                if error is not None:
                    log.warning("%s: a hook did not work: %s", name, error)
                self._on_result(name, error)
        finally:
            self._workers.pop(name, None)
            if not queue:
                self._queues.pop(name, None)

    async def _deliver(self, delivery: Delivery) -> str | None:
        """None if every part of the hook worked, else one line saying what failed."""
        problems = []
        if delivery.hook.command is not None:
            problem = await self._run_command(delivery)
            if problem is not None:
                problems.append(problem)
        if delivery.hook.url is not None:
            problem = await self._post(delivery)
            if problem is not None:
                problems.append(problem)
        if not problems:
            return None
        stamp = time.strftime("%H:%M:%S", time.localtime(delivery.at))
        return f"{stamp} hook on {delivery.event}: " + "; ".join(problems)

    async def _run_command(self, delivery: Delivery) -> str | None:
        hook, status = delivery.hook, delivery.status
        assert hook.command is not None
        values = placeholder_values(delivery.event, status, self.instance)
        argv = [fill(word, values) for word in hook.command]
        env = {**os.environ, **{f"PMTOP_{key.upper()}": value for key, value in values.items()}}
        try:
            done = await commands.run(argv, timeout=hook.timeout, cwd=delivery.cwd, env=env)
        except SpawnError as exc:
            return f"command {argv[0]}: {exc.message}"
        if done.exit_code == 0:
            return None
        what = f"killed after {hook.timeout:g}s" if done.exit_code is None else f"exit {done.exit_code}"
        said = done.output.splitlines()[-1][:200] if done.output else ""
        return f"command {argv[0]}: {what}" + (f" ({said})" if said else "")

    async def _post(self, delivery: Delivery) -> str | None:
        import httpx

        hook = delivery.hook
        assert hook.url is not None
        if self._client is None:
            self._client = httpx.AsyncClient(headers={"User-Agent": "pmtop-hook"})
        body: dict[str, Any] = {**delivery.status.to_dict(), "event": delivery.event, "instance": self.instance,
                                "at": delivery.at}
        problem = ""
        for attempt in range(URL_ATTEMPTS):
            if attempt:
                await asyncio.sleep(URL_BACKOFF[min(attempt, len(URL_BACKOFF)) - 1])
            try:
                response = await self._client.post(hook.url, json=body, timeout=hook.timeout)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.is_success:
                return None
            problem = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                break  # the receiver refuses this request: asking again will not change its mind
        return f"POST {hook.url}: {problem} ({attempt + 1} attempt{'s' if attempt else ''})"

    async def aclose(self) -> None:
        """Stop delivering: queued deliveries are dropped, running ones cancelled (commands killed)."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._queues.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def busy(self) -> bool:
        return bool(self._workers)
