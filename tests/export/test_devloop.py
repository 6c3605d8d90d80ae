"""Exports of the dev-loop settings (schedules, replicas, watch, hooks), checked by the real tools:
systemd's own calendar arithmetic and `verify`, kubernetes-validate, Nomad's job spec, the Compose schema."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import kubernetes_validate
import pytest
import yaml

from pmtop.core.config import Config, load_config
from pmtop.core.export.timers import calendar_event, cron_line
from pmtop.core.schedule import parse_schedule

from .conftest import PY, render
from .nomad_spec import blocks, validate_job
from .systemd_tools import ANALYZE, needs_analyze, verify, write_units
from .test_compose import _validate as validate_compose

CONFIG = f"""
[process.web]
command = ["{PY}", "-m", "http.server"]
replicas = 3
watch = {{ paths = ["src/**/*.py"], cascade = true }}

[process.api]
command = ["{PY}", "-c", "pass"]
depends_on = ["web"]

[process.nightly]
command = ["{PY}", "-c", "print('backup')"]
schedule = "30 2 * * 1-5"
catch_up = true

[process.tick]
command = ["{PY}", "-c", "print('tick')"]
schedule = "every 30s"
overlap = "replace"
run_on_start = true

[process.tick.hooks]
on = ["failed"]
url = "http://127.0.0.1:9/hook"
"""

CALENDARS = ["*/5 * * * *", "30 2 * * 1-5", "0 9 * * mon", "15 */2 * jan-mar *", "0 0 1 * *",
             "*/15 9-17 * * mon-fri", "0 12 * * fri-mon", "@daily", "@hourly", "5 4 * * sun", "0 0 29 2 *"]


@pytest.fixture
def devloop(tmp_path: Path) -> Config:
    (tmp_path / "pmtop.toml").write_text(CONFIG)
    return load_config(tmp_path / "pmtop.toml")


def _systemd_elapses(event: str, count: int) -> list[float]:
    """When systemd itself says a calendar event elapses next (`systemd-analyze calendar`), in UTC."""
    assert ANALYZE is not None
    out = subprocess.run([ANALYZE, "calendar", f"--iterations={count}", event], capture_output=True, text=True,
                         env={**os.environ, "TZ": "UTC"}, timeout=30, check=True).stdout
    times = [line.split(": ", 1)[1].strip() for line in out.splitlines()
             if line.strip().startswith(("Next elapse:", "Iter. #"))]
    return [datetime.strptime(t, "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC).timestamp() for t in times]


@needs_analyze
@pytest.mark.parametrize("rule", CALENDARS)
def test_systemd_computes_the_same_times_as_pmtop(rule: str) -> None:
    """The calendar event, handed to systemd's own calendar code, elapses exactly when pmtop would run."""
    event = calendar_event(rule)
    assert event.exact, event.why
    got = _systemd_elapses(event.text, 6)
    schedule = parse_schedule(rule, ZoneInfo("UTC"))
    expected, t = [], got[0] - 1
    for _ in range(6):
        t = schedule.next_after(t)
        expected.append(t)
    assert got == expected, (event.text, [datetime.fromtimestamp(x, UTC) for x in got])


def test_what_has_no_calendar_form_is_said() -> None:
    both = calendar_event("0 9 1 * mon")
    assert not both.exact and "OR" in both.why
    last = calendar_event("0 0 L * *")
    assert last.text == "" and "no calendar event written" in last.why
    assert cron_line("every 5m").text == "*/5 * * * *" and cron_line("every 5m").exact
    assert cron_line("every 7m").exact is False
    assert cron_line("every 30s", seconds=True).text == "*/30 * * * * * *"


@needs_analyze
def test_systemd_timers_and_template_units_verify(devloop: Config) -> None:
    result = render("systemd", devloop, systemd_version=252)
    files = result.files
    assert set(files) == {"demo-web@.service", "demo-api.service", "demo-nightly.service", "demo-nightly.timer",
                          "demo-tick.service", "demo-tick.timer", "demo.target"}
    verified = verify(write_units(files))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    nightly = files["demo-nightly.timer"]
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00" in nightly and "Persistent=true" in nightly
    assert "AccuracySec=1s" in nightly and "Unit=demo-nightly.service" in nightly
    assert "OnUnitActiveSec=30s" in files["demo-tick.timer"]
    assert "Type=oneshot" in files["demo-nightly.service"] and "RemainAfterExit" not in files["demo-nightly.service"]
    assert "Environment=PMTOP_REPLICA=%i" in files["demo-web@.service"]
    api = files["demo-api.service"]
    assert all(f"Requires=demo-web@{i}.service" in api for i in (1, 2, 3))
    wants = next(line for line in files["demo.target"].splitlines() if line.startswith("Wants="))
    assert wants.split("=", 1)[1].split() == ["demo-web@1.service", "demo-web@2.service", "demo-web@3.service",
                                              "demo-api.service", "demo-nightly.timer", "demo-tick.timer",
                                              "demo-tick.service"]
    losses = {(l.process, l.setting, l.kind.value) for l in result.losses}
    assert {("web", "watch", "dropped"), ("tick", "hooks", "dropped"), ("tick", "overlap", "approximated"),
            ("tick", "schedule", "approximated"), ("tick", "run_on_start", "note")} <= losses


def test_kubernetes_cronjobs_and_replicas_validate(devloop: Config) -> None:
    result = render("kubernetes", devloop, image="img:1")
    [text] = result.files.values()
    documents = [d for d in yaml.safe_load_all(text) if d]
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    by_name = {d["metadata"]["labels"]["app.kubernetes.io/name"]: d for d in documents}
    assert by_name["web"]["kind"] == "Deployment" and by_name["web"]["spec"]["replicas"] == 3
    nightly = by_name["nightly"]
    assert nightly["kind"] == "CronJob" and nightly["spec"]["schedule"] == "30 2 * * 1-5"
    assert nightly["spec"]["concurrencyPolicy"] == "Forbid" and nightly["spec"]["startingDeadlineSeconds"] == 3600
    tick = by_name["tick"]
    assert tick["spec"]["concurrencyPolicy"] == "Replace" and tick["spec"]["schedule"] == "* * * * *"
    losses = {(l.process, l.setting) for l in result.losses}
    assert {("tick", "schedule"), ("tick", "run_on_start"), ("web", "watch"), ("web", "replicas")} <= losses


def test_nomad_periodic_jobs_and_count(devloop: Config) -> None:
    result = render("nomad", devloop)
    assert set(result.files) == {"demo.nomad.hcl", "demo-nightly.nomad.hcl", "demo-tick.nomad.hcl"}
    for text in result.files.values():
        validate_job(text)
    [(_, job)] = blocks(validate_job(result.files["demo-nightly.nomad.hcl"]), "job")
    [(_, periodic)] = blocks(job, "periodic")
    assert periodic["crons"] == ["30 2 * * 1-5"] and periodic["prohibit_overlap"] is True
    [(_, tick)] = blocks(validate_job(result.files["demo-tick.nomad.hcl"]), "job")
    [(_, every)] = blocks(tick, "periodic")
    assert every["crons"] == ["*/30 * * * * * *"], "Nomad's cron has seconds: 30s is exact"
    losses = {(l.process, l.setting) for l in result.losses}
    assert {("nightly", "catch_up"), ("tick", "run_on_start"), ("web", "replicas")} <= losses


def test_compose_replicas_follow_the_spec(devloop: Config) -> None:
    result = render("compose", devloop, image="python:3.12-slim")
    [text] = result.files.values()
    document = validate_compose(text)
    assert document["services"]["web"]["deploy"]["replicas"] == 3
    losses = {(l.process, l.setting, l.kind.value) for l in result.losses}
    assert {("nightly", "schedule", "dropped"), ("web", "watch", "dropped")} <= losses


def test_a_procfile_comments_out_scheduled_processes(devloop: Config) -> None:
    result = render("procfile", devloop)
    [text] = result.files.values()
    assert "# nightly runs on a schedule in pmtop.toml; a Procfile has none:" in text
    assert not any(line.startswith("nightly:") for line in text.splitlines())
    assert any(l.setting == "replicas" for l in result.losses)
