"""`pmtop export nomad`: a job that python-hcl2 parses and that keeps Nomad's documented job spec."""

from __future__ import annotations

from pmtop.core.config import Config

from .conftest import TRICKY_WORDS, render
from .nomad_spec import blocks, literal, validate_job


def _tasks(document: dict) -> dict[str, dict]:
    [(_, job)] = blocks(document, "job")
    return {name: task for _, group in blocks(job, "group") for name, task in blocks(group, "task")}


def test_the_example_is_a_valid_job(example: Config) -> None:
    result = render("nomad", example)
    assert set(result.files) == {"demo.nomad.hcl", "demo-report.nomad.hcl"}  # migrate: a prestart task of api's
    document = validate_job(result.files["demo.nomad.hcl"])
    [(name, job)] = blocks(document, "job")
    assert name == "demo" and job["type"] == "service"
    groups = {label: group for label, group in blocks(job, "group")}
    assert set(groups) == {"api", "worker", "cache", "queue", "notifier", "docs", "shard", "site"}  # one per dependency island
    assert groups["shard"]["count"] == 3  # replicas
    island = {name for name, _ in blocks(groups["api"], "task")}
    assert island == {"web", "migrate", "api"}
    tasks = _tasks(document)
    [(_, web_life)] = blocks(tasks["web"], "lifecycle")
    [(_, migrate_life)] = blocks(tasks["migrate"], "lifecycle")
    assert web_life == {"hook": "prestart", "sidecar": True, "__is_block__": True}
    assert migrate_life["sidecar"] is False  # api waits for it to complete
    assert not blocks(tasks["api"], "lifecycle")
    assert groups["docs"]["count"] == 0  # disabled
    [(_, service)] = blocks(tasks["web"], "service")
    [(_, check)] = blocks(service, "check")
    assert check["type"] == "http" and check["path"] == "/"
    [(_, check_restart)] = blocks(check, "check_restart")
    assert check_restart["limit"] == 2
    [(_, restart)] = blocks(tasks["worker"], "restart")
    assert restart["mode"] == "delay" and restart["attempts"] == 4  # retry_forever
    # SPEC §10: the declared port is the group's static port and $PORT; env files are templates read on
    # the node; a heartbeat is a Consul script check running pmtop's probe; sd_notify has no equivalent.
    assert tasks["web"]["env"]["PORT"] == "8765"
    ports = {label: port for _, net in blocks(groups["api"], "network") for label, port in blocks(net, "port")}
    assert ports["web"]["static"] == 8765
    [(_, template)] = blocks(tasks["api"], "template")
    assert template["source"] == str(example.by_name["api"].env_file[0]) and template["env"] is True
    [(_, queue_service)] = blocks(tasks["queue"], "service")
    [(_, queue_check)] = blocks(queue_service, "check")
    assert queue_check["type"] == "script" and queue_check["command"] == "python3"
    assert queue_service["provider"] == "consul"
    assert not blocks(tasks["notifier"], "service")
    dropped = {(loss.process, loss.setting) for loss in result.losses if loss.kind == "dropped"}
    assert {("notifier", "health"), ("web", "ready_log_line")} <= dropped


def test_tricky_values_survive_hcl_quoting(tricky: Config) -> None:
    result = render("nomad", tricky)
    document = validate_job(result.files["demo.nomad.hcl"])
    tasks = _tasks(document)
    [(_, config)] = blocks(tasks["api"], "config")
    args = [literal(word) for word in config["args"]]
    assert config["command"] == "/usr/bin/env"
    assert args == ["-C", tricky.by_name["api"].cwd, *tricky.by_name["api"].command]
    assert args[-len(TRICKY_WORDS):] == TRICKY_WORDS
    env = {k: literal(v) for k, v in tasks["web"]["env"].items()}
    assert env == dict(tricky.by_name["web"].env)
    assert tasks["web"]["kill_signal"] == "SIGINT" and tasks["web"]["kill_timeout"] == "2.5s"


def test_exec_checks_use_consul_and_chains_are_reported(tricky: Config) -> None:
    result = render("nomad", tricky)
    document = validate_job(result.files["demo.nomad.hcl"])
    tasks = _tasks(document)
    [(_, service)] = blocks(tasks["worker"], "service")
    assert service["provider"] == "consul"
    [(_, check)] = blocks(service, "check")
    assert check["type"] == "script" and check["command"] == tricky.by_name["worker"].health.check.command[0]
    losses = {(l.process, l.setting) for l in result.losses}
    assert ("api", "depends_on") in losses  # web = healthy: Nomad does not wait for checks
    assert ("web", "health") in losses  # checked at the node's address, not 127.0.0.1
    assert ("api", "log_max_bytes") in losses  # 1500KB is not whole MB


def test_processes_that_never_restart_go_to_a_batch_job(tmp_path) -> None:
    from pmtop.core.config import load_config

    (tmp_path / "pmtop.toml").write_text('[process.once]\ncommand = ["/bin/true"]\nrestart = "no"\n'
                                         '[process.web]\ncommand = ["/bin/sleep", "1000"]\n')
    result = render("nomad", load_config(tmp_path / "pmtop.toml"))
    assert set(result.files) == {"demo.nomad.hcl", "demo-batch.nomad.hcl"}
    batch = validate_job(result.files["demo-batch.nomad.hcl"])
    [(name, job)] = blocks(batch, "job")
    assert name == "demo-batch" and job["type"] == "batch"
    [(_, config)] = blocks(_tasks(batch)["once"], "config")
    assert config == {"command": "/usr/bin/env", "args": ["-C", str(tmp_path), "/bin/true"], "__is_block__": True}
