"""A daemon's partner (SPEC §9): whom it watches, decided by its settings, and what `/status` says.

The default instance has no partner until a watcher announces itself through
`PUT /config/partner-discovery`; from then on it watches that watcher (`watcher.PartnerWatch`) and
restarts it with `pmtop watcher --detach`. The watcher's own link has a fixed partner: the instance it
was started for, restarted with `pmtop --headless --detach` and the same config.

Standalone mode (`--standalone` for one run, or `PUT /config/standalone-mode`) ends every watch at
once: nothing is checked, nothing restarted. A partner that is not this instance's watcher or not on a
loopback address is ignored (and said so in `/status`): the setting can be written by anyone with
the token, so it must never make a daemon start anything but its own watcher, on this machine.
An unpartnered daemon runs no task for this at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..locations import DaemonRecord, InstancePaths, instance_paths
from .peer import Command
from .watcher import (
    LOOPBACK_HOSTS,
    Announcement,
    PartnerState,
    PartnerWatch,
    Target,
    Timing,
    pmtop_command,
    watcher_instance,
)

if TYPE_CHECKING:
    from ..api.security import SecuritySettings, SecurityStore


class PartnerLink:
    def __init__(
        self,
        paths: InstancePaths,
        *,
        standalone: bool = False,
        timing: Timing | None = None,
        fixed: Target | None = None,
    ) -> None:
        """`fixed`: the watcher's link (it also announces itself there); None: the partner comes
        from the settings."""
        self.paths = paths
        self.standalone = standalone
        """`--standalone`: for this run, whatever the settings say."""
        self.timing = timing if timing is not None else Timing.from_env()
        self.fixed = fixed
        self.announce: Announcement | None = None
        self.config: Path | None = None
        self.watch: PartnerWatch | None = None
        self._idle = {"state": PartnerState.NONE.value, "reason": "no watcher has announced itself"}
        self._store: SecurityStore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.Task[None] | None = None

    def attach(self, store: SecurityStore, *, config: Path | None, address: tuple[str, int]) -> None:
        """The daemon serves at `address`: start watching what the settings say, and follow their changes."""
        self._store = store
        self.config = config
        if self.fixed is not None:
            self.announce = Announcement(address[0], address[1], self.paths.instance)
        self._loop = asyncio.get_running_loop()
        store.listeners.append(self._settings_saved)
        self._apply(store.settings)

    def _settings_saved(self, settings: SecuritySettings) -> None:
        """Called by the store after a `PUT /config/...`, possibly from a worker thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._apply, settings)

    def _apply(self, settings: SecuritySettings) -> None:
        target, idle = self._target(settings)
        current = self.watch
        if current is not None and target is not None and current.target == target:
            return
        self._idle = idle
        if current is not None:
            self.watch = None
            previous = self._pending
            self._pending = asyncio.get_running_loop().create_task(self._replace(previous, current, target))
        elif target is not None:
            self._start(target)

    async def _replace(self, previous: asyncio.Task[None] | None, old: PartnerWatch, target: Target | None) -> None:
        if previous is not None:
            await previous
        await old.close()
        if target is not None and self.watch is None:
            self._start(target)

    def _start(self, target: Target) -> None:
        self.watch = PartnerWatch(target, own_instance=self.paths.instance, timing=self.timing,
                                  announce=self.announce)
        self.watch.start()

    def _target(self, settings: SecuritySettings) -> tuple[Target | None, dict[str, Any]]:
        """Whom to watch, or None and what `/status` says instead."""
        if self.standalone or settings.standalone_mode:
            how = "--standalone" if self.standalone else "standalone-mode"
            return None, {"state": PartnerState.STANDALONE.value, "reason": f"{how}: no partner is watched"}
        if self.fixed is not None:
            return self.fixed, {}
        discovery = settings.partner_discovery
        partner = discovery.partner
        if not discovery.enabled or partner is None:
            return None, {"state": PartnerState.NONE.value, "reason": "no watcher has announced itself"}
        own = self.paths.instance
        expected = watcher_instance(own)
        named = {"instance": partner.instance, "host": partner.host, "port": partner.port}
        if partner.instance != expected:
            return None, {"state": PartnerState.NONE.value, **named,
                          "reason": f"{partner.instance!r} is not this instance's watcher ({expected!r}): ignored"}
        if partner.host not in LOOPBACK_HOSTS:
            return None, {"state": PartnerState.NONE.value, **named,
                          "reason": f"{partner.host} is not a loopback address: ignored"}
        config = self.config

        def restart_watcher(_: DaemonRecord | None) -> Command:
            argv = pmtop_command("watcher", "--detach", "--instance", own, "--host", partner.host,
                                 "--port", str(partner.port))
            if config is not None:
                argv += ["--config", str(config)]
            return Command(argv, cwd=config.parent if config is not None else instance_paths(own).state_dir,
                           unset=("PMTOP_CONFIG",))

        return Target(partner.instance, partner.host, partner.port, restart_watcher), {}

    def status(self) -> dict[str, Any]:
        """The `partner` field of `/status`."""
        if self.watch is not None:
            return self.watch.status()
        return dict(self._idle)

    def summary(self) -> str | None:
        """For the dashboard header: the partner's state word, or None without a partner."""
        state = self.status().get("state")
        return None if state == PartnerState.NONE.value else str(state)

    async def close(self) -> None:
        if self._store is not None and self._settings_saved in self._store.listeners:
            self._store.listeners.remove(self._settings_saved)
        if self._pending is not None:
            await self._pending
        if self.watch is not None:
            watch, self.watch = self.watch, None
            await watch.close()


def default_restart(instance: str, host: str, port: int | str, config: Path | None) -> Callable[[DaemonRecord | None], Command]:
    """The watcher's way back for the instance it watches: `pmtop --headless --detach`, same instance,
    same config (the one its `daemon.json` records), same address."""

    def command(record: DaemonRecord | None) -> Command:
        where_host, where_port = (record.host, record.port) if record is not None else (host, port)
        config_file = Path(record.config) if record is not None and record.config else config
        argv = pmtop_command("--headless", "--detach", "--instance", instance, "--host", where_host,
                             "--port", str(where_port))
        if config_file is not None and config_file.is_absolute():
            argv += ["--config", str(config_file)]
            return Command(argv, cwd=config_file.parent)
        # No config file: run where none can be found by accident.
        return Command(argv, cwd=instance_paths(instance).state_dir, unset=("PMTOP_CONFIG",))

    return command


def watcher_link(watched: str, *, host: str, port: int | str, config: Path | None,
                 timing: Timing | None = None) -> PartnerLink:
    """The link of `pmtop watcher`: it watches `watched` (found at `host:port` when it is not running,
    else where its `daemon.json` says) and announces itself there."""
    target = Target(watched, host, None, default_restart(watched, host, port, config), trusted=True)
    return PartnerLink(instance_paths(watcher_instance(watched)), timing=timing, fixed=target)


