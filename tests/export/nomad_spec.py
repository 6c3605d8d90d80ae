"""Nomad's job specification, as its documentation states it, for checking exported jobs structurally.

Which blocks and attributes each block takes (job, group, task, the raw_exec `config`, restart,
reschedule, network/port, logs, lifecycle, service, check, check_restart, template), their allowed
values, and
the validation rules Nomad applies on `nomad job run` (restart: interval >= 5s, attempts x delay <=
interval, attempts = 0 only with mode "fail"; checks: interval and timeout >= 1s; service names RFC 1123;
script checks only with the Consul provider; one provider per group; raw_exec commands absolute).
"""

from __future__ import annotations

import re
from typing import Any

import hcl2

from pmtop.core.values import parse_duration

SPEC: dict[str, tuple[set[str], set[str]]] = {
    # block: (attributes, blocks)
    "job": ({"type", "datacenters", "region", "namespace", "priority", "all_at_once", "node_pool"},
            {"group", "meta", "constraint", "update", "periodic", "parameterized", "reschedule"}),
    "group": ({"count", "shutdown_delay", "stop_after_client_disconnect"},
              {"task", "network", "reschedule", "restart", "service", "meta", "constraint", "ephemeral_disk",
               "update", "volume"}),
    "task": ({"driver", "env", "kill_signal", "kill_timeout", "leader", "user", "shutdown_delay", "meta"},
             {"config", "restart", "logs", "lifecycle", "service", "resources", "artifact", "template",
              "constraint"}),
    "config": ({"command", "args", "cgroup_v1_override", "cgroup_v2_override", "oom_score_adj", "work_dir",
                "denied_envvars"}, set()),
    "restart": ({"attempts", "delay", "interval", "mode", "render_templates"}, set()),
    "reschedule": ({"attempts", "interval", "delay", "delay_function", "max_delay", "unlimited"}, set()),
    "network": ({"mode", "hostname"}, {"port", "dns"}),
    "port": ({"static", "to", "host_network"}, set()),
    "logs": ({"max_files", "max_file_size", "disabled"}, set()),
    "lifecycle": ({"hook", "sidecar"}, set()),
    "service": ({"name", "provider", "port", "tags", "task", "address_mode", "address", "on_update"},
                {"check", "check_restart", "meta"}),
    "check": ({"type", "path", "interval", "timeout", "protocol", "command", "args", "port", "name", "method",
               "address_mode", "task", "initial_status"}, {"check_restart", "header"}),
    "check_restart": ({"limit", "grace", "ignore_warnings"}, set()),
    "template": ({"source", "destination", "data", "env", "change_mode", "change_signal", "perms", "uid", "gid",
                  "left_delimiter", "right_delimiter", "splay", "error_on_missing_key"}, {"wait", "change_script"}),
    "periodic": ({"crons", "cron", "prohibit_overlap", "time_zone", "enabled"}, set()),
}
LABELED = {"job", "group", "task", "port"}
RFC1123 = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def load(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False))


def literal(text: str) -> str:
    """python-hcl2 decodes escapes but leaves HCL's template escapes: `$${` is a literal `${`."""
    return text.replace("$${", "${").replace("%%{", "%{")


def blocks(body: dict[str, Any], kind: str) -> list[tuple[str | None, dict[str, Any]]]:
    found = []
    for item in body.get(kind, []):
        if kind in LABELED:
            [(label, inner)] = item.items()
            found.append((label, inner))
        else:
            found.append((None, item))
    return found


def check_block(kind: str, body: dict[str, Any], path: str = "") -> None:
    attributes, children = SPEC[kind]
    for key, value in body.items():
        if key in ("__is_block__", "__comments__", "__inline_comments__"):
            continue
        where = f"{path}.{key}"
        if isinstance(value, list) and value and all(isinstance(v, dict) and v.get("__is_block__") or (
                isinstance(v, dict) and len(v) == 1 and isinstance(next(iter(v.values())), dict)
                and next(iter(v.values())).get("__is_block__")) for v in value):
            assert key in children, f"{where}: no {key!r} block in a {kind} block"
            for label, inner in blocks(body, key):
                check_block(key, inner, f"{where}[{label}]" if label else where)
        else:
            assert key in attributes, f"{where}: no {key!r} attribute in a {kind} block"


def seconds(value: str) -> float:
    return parse_duration(value)


def validate_job(text: str) -> dict[str, Any]:
    """Parse, check the structure, apply Nomad's validation rules. Returns the parsed document."""
    document = load(text)
    [(name, job)] = blocks(document, "job")
    check_block("job", job, f"job[{name}]")
    assert job["type"] in ("service", "batch", "system", "sysbatch")
    for _, periodic in blocks(job, "periodic"):  # Nomad: only batch jobs are periodic; cronexpr's 5-7 fields
        assert job["type"] == "batch", "a periodic job must be a batch job"
        for line in periodic["crons"]:
            assert 5 <= len(line.split()) <= 7, line
        if "time_zone" in periodic:
            from zoneinfo import ZoneInfo

            ZoneInfo(periodic["time_zone"])
    for group_name, group in blocks(job, "group"):
        labels = {label for _, net in blocks(group, "network") for label, _ in blocks(net, "port")}
        providers = set()
        assert blocks(group, "task"), f"group {group_name} has no task"
        for task_name, task in blocks(group, "task"):
            assert task["driver"] == "raw_exec"
            [(_, config)] = blocks(task, "config")
            assert config["command"].startswith("/"), "raw_exec wants an absolute command"
            for _, restart in blocks(task, "restart"):
                attempts = restart.get("attempts", 2)
                mode = restart.get("mode", "fail")
                assert mode in ("fail", "delay")
                if attempts == 0:
                    assert mode == "fail", "0 attempts is ambiguous unless mode = fail"
                interval = seconds(restart.get("interval", "30m"))
                assert interval >= 5, "restart interval below 5s"
                assert attempts * seconds(restart.get("delay", "15s")) <= interval
            for _, lifecycle in blocks(task, "lifecycle"):
                assert lifecycle["hook"] in ("prestart", "poststart", "poststop")
            for _, service in blocks(task, "service"):
                assert RFC1123.fullmatch(service["name"]), service["name"]
                providers.add(service.get("provider", "consul"))
                if "port" in service:
                    assert service["port"] in labels, f"port label {service['port']} not in the group's network"
                for _, check in blocks(service, "check"):
                    assert check["type"] in ("http", "tcp", "grpc", "script")
                    assert seconds(check["interval"]) >= 1 and seconds(check["timeout"]) >= 1
                    if check["type"] == "script":
                        assert service.get("provider", "consul") == "consul"
                        assert check["command"].startswith("/") or "/" not in check["command"]
                    if check["type"] == "http":
                        assert check["path"].startswith("/")
            assert "env" not in task or isinstance(task["env"], dict)
            assert task_name
        assert len(providers) <= 1, f"group {group_name} mixes service providers {providers}"
    return document
