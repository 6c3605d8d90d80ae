"""Where an instance keeps its state and logs: `$PMTOP_HOME` when set (tests), else platformdirs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class InstancePaths:
    instance: str
    state_dir: Path
    """`instance.lock`, `daemon-<port>.pid`, `daemon.json`, `registry.json`, `token`."""
    log_dir: Path
    """`daemon-<timestamp>.log` and one folder per process."""

    def process_log_dir(self, name: str) -> Path:
        return self.log_dir / name


def instance_paths(instance: str, environ: os._Environ[str] | dict[str, str] | None = None) -> InstancePaths:
    env = os.environ if environ is None else environ
    home = env.get("PMTOP_HOME")
    if home:
        base = Path(home).expanduser()
        return InstancePaths(instance, base / "state" / instance, base / "log" / instance)
    import platformdirs  # imported here: only processes that touch files pay for it

    return InstancePaths(
        instance,
        platformdirs.user_state_path("pmtop") / instance,
        platformdirs.user_log_path("pmtop") / instance,
    )


def user_config_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """Per-user settings: remembered theme, user themes (`themes/*.toml`), keymap.

    `$PMTOP_HOME/config` when `$PMTOP_HOME` is set, so tests never touch the real home.
    """
    env = os.environ if environ is None else environ
    home = env.get("PMTOP_HOME")
    if home:
        return Path(home).expanduser() / "config"
    import platformdirs

    return platformdirs.user_config_path("pmtop")
