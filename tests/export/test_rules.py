"""The generic part: every setting has a rule in every target, and an unknown one is never dropped silently."""

from __future__ import annotations

import importlib

import pytest

from pmtop.core.config.schema import FIELDS
from pmtop.core.export import TARGET_MODULES, target
from pmtop.core.export.model import LossKind
from pmtop.core.export.rules import Report, Rules
from pmtop.core.model import ProcessSpec

from .conftest import render


@pytest.mark.parametrize("name", TARGET_MODULES)
def test_every_setting_of_today_has_a_rule_in_every_target(name: str) -> None:
    rules = importlib.import_module(f"pmtop.core.export.{TARGET_MODULES[name]}").RULES
    assert set(FIELDS) <= rules.claimed, set(FIELDS) - rules.claimed


def test_a_setting_without_a_rule_is_reported_as_dropped() -> None:
    """What a later pmtop adds (`spec_to_table` writes it) shows up in the report until it has a rule."""
    rules: Rules[dict] = Rules("sometarget")
    rules.maps("command")(lambda spec, out, ctx: out.update(command=spec.command))
    report = Report()
    out: dict = {}
    rules.apply(ProcessSpec(name="x", command=("true",), cwd="/tmp", env={"A": "1"}, autostart=False), out, report)
    assert out == {"command": ("true",)}
    dropped = {(l.setting, l.kind) for l in report.losses}
    assert dropped == {("cwd", LossKind.DROPPED), ("env", LossKind.DROPPED), ("autostart", LossKind.DROPPED)}


def test_rules_read_settings_by_name_from_the_table() -> None:
    """Rules read a setting from its TOML form (`ctx.settings`), as `spec_to_table` writes it."""
    from pmtop.core.export import compose, systemd
    from pmtop.core.export.rules import Context

    spec = ProcessSpec(name="x", command=("true",))
    unit = systemd.Unit(process=spec, name="a-x.service", app="a")
    ctx = Context(report=Report(), settings={"env_file": [".env", "100%.env"]}, target="systemd")
    systemd._env_file(spec, unit, ctx)
    assert unit.sections["Service"] == [("EnvironmentFile", ".env"), ("EnvironmentFile", "100%%.env")]
    service = compose.Service(process=spec, image="i", has_check={})
    compose._env_file(spec, service, Context(report=Report(), settings={"env_file": ".env"}, target="compose"))
    assert service.body["env_file"] == [".env"]


@pytest.mark.parametrize("name", TARGET_MODULES)
def test_every_target_reports_and_names_its_files(name: str, example) -> None:
    result = render(name, example)
    assert result.target == name and result.files
    assert any(loss.kind is LossKind.NOTE for loss in result.losses)
    assert target(name).name == name
