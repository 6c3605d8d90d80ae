"""Processes added or removed at run time persist to the project's pmtop.toml, comments kept."""

from __future__ import annotations

from pathlib import Path

from pmtop.core.config import load_config, parse_process
from pmtop.core.locations import InstancePaths
from pmtop.core.model import Scope
from pmtop.core.supervisor import Supervisor
from tests.waiting import wait_for


async def test_add_and_remove_edit_the_config_file(tmp_path: Path, paths: InstancePaths) -> None:
    config_path = tmp_path / "pmtop.toml"
    config_path.write_text('# keep me\n[process.base]\ncommand = ["sleep", "600"]\nautostart = false\n')
    config = load_config(config_path)
    sup = Supervisor(config.processes, paths=paths, config_path=config_path)
    try:
        spec = parse_process("extra", {"command": ["sleep", "600"], "restart": "always"}, base_dir=tmp_path)
        assert spec.scope is Scope.PROJECT and spec.project == str(tmp_path)
        async with sup.subscribe() as events:
            await sup.add(spec)
            await wait_for(events, lambda s: s.name == "extra" and s.state == "running", what="extra running")
        reloaded = load_config(config_path)
        assert [s.name for s in reloaded.processes] == ["base", "extra"]
        assert reloaded.by_name["extra"] == spec
        assert config_path.read_text().startswith("# keep me\n")
        assert sup.runtime_specs == []

        await sup.remove("base")
        assert [s.name for s in load_config(config_path).processes] == ["extra"]
        assert "# keep me" in config_path.read_text()
    finally:
        await sup.shutdown()


async def test_global_additions_stay_out_of_the_file(tmp_path: Path, paths: InstancePaths) -> None:
    config_path = tmp_path / "pmtop.toml"
    config_path.write_text('[process.base]\ncommand = ["sleep", "600"]\nautostart = false\n')
    sup = Supervisor(load_config(config_path).processes, paths=paths, config_path=config_path)
    try:
        spec = parse_process("tool", {"command": ["sleep", "600"], "scope": "global",
                                      "autostart": False}, base_dir=tmp_path)
        await sup.add(spec)
        assert [s.name for s in load_config(config_path).processes] == ["base"]
        assert [s.name for s in sup.runtime_specs] == ["tool"]
    finally:
        await sup.shutdown()
