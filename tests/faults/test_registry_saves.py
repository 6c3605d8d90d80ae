"""Registry saves: only for what the registry records, compact, written off the event loop, and always
the last content taken that lands (a hand-over waits for a write still under way)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pmtop.core.config import Config, DaemonSettings
from pmtop.core.daemon.registry import Registry, RegistryData, recorded_facts
from pmtop.core.daemon.service import Daemon, Endpoint
from pmtop.core.model import Health, LiveChild
from pmtop.core.system.facts import Facts
from tests.conftest import spec
from tests.waiting import poll_until


def test_the_file_is_compact_and_reads_back(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    child = LiveChild(pid=42, create_time=1.5, started_at=2.5, run_dir="/logs/web/1", restarts=3,
                      consecutive_failures=1, pipes={"stdout": 7, "stderr": 8}, keeper_fds={"stdout": 5, "stderr": 6},
                      group=42)
    data = RegistryData(live={"web": child}, schedules={"job": 10.0}, scaled={"api": (3, 2)})
    registry.save(data)
    text = registry.path.read_text()
    assert "\n" not in text.rstrip("\n") and ", " not in text, "one compact line"
    assert json.loads(text)["live"]["web"] == dataclasses.asdict(child)
    assert registry.load() == data


async def test_only_what_the_registry_records_schedules_a_save(pmtop_home: object) -> None:
    config = Config(None, DaemonSettings(instance="saves"), (spec("web"),))
    daemon = Daemon(config, instance="saves", endpoint=Endpoint("127.0.0.1", 0))
    supervisor = daemon.prepare()
    await daemon.launch()
    try:
        runner = supervisor._runners["web"]  # noqa: SLF001
        before = runner.status()
        assert recorded_facts(before) == recorded_facts(dataclasses.replace(
            before, cpu_percent=12.0, memory_rss=1 << 20, ports=(8080,), health=Health.UNHEALTHY, reason="other"))

        def saved_restarts() -> int | None:
            live = Registry(daemon.registry.path).load().live.get("web")
            return live.restarts if live is not None else None  # the first save may predate the spawn

        await poll_until(lambda: saved_restarts() is not None, what="the running process saved (start-up done)")
        scheduled: list[float] = []
        save_later = daemon._save_later  # noqa: SLF001

        def counting(delay: float) -> None:
            scheduled.append(delay)
            save_later(delay)

        daemon._save_later = counting  # type: ignore[method-assign]  # noqa: SLF001
        runner.facts = Facts(cpu_percent=5.0, memory_rss=1 << 20)
        runner.publish()  # live facts: nothing the registry records
        runner.facts = Facts(cpu_percent=7.0, memory_rss=2 << 20)
        runner.publish()
        runner.restarts += 1
        runner.publish()  # the restart counter: recorded
        # Events are taken in order: once the last one scheduled its save, the two before it were seen.
        await poll_until(lambda: len(scheduled) >= 1, what="the save of the restart counter")
        assert len(scheduled) == 1, scheduled
        await poll_until(lambda: saved_restarts() == runner.restarts,
                         what="the new counter on disk (written by the writer thread)")
    finally:
        await daemon.stop()
