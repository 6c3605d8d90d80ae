"""`pmtop export kubernetes`: manifests that kubernetes-validate accepts (strict: no unknown fields)."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from pmtop.core.config import Config

from .conftest import TRICKY_WORDS, render

VERSION = kubernetes_validate.latest_version()


def _documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("image", [None, "ghcr.io/example/app:1.0"])
def test_every_manifest_validates(example: Config, tricky: Config, image: str | None) -> None:
    for config in (example, tricky):
        result = render("kubernetes", config, image=image)
        [text] = result.files.values()
        for document in _documents(text):
            kubernetes_validate.validate(document, VERSION, strict=True)
        if image is None:
            assert any(l.setting == "image" and "REPLACE-ME" in l.detail for l in result.losses)


def test_workloads_probes_and_values(tricky: Config) -> None:
    result = render("kubernetes", tricky, image="img:1")
    docs = {doc["metadata"]["name"]: doc for doc in _documents(result.files["demo.k8s.yaml"])}
    assert docs["demo-migrate"]["kind"] == "Job"  # restart = "no"
    assert docs["demo-migrate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert docs["demo-web"]["kind"] == "Deployment"
    assert docs["demo-db"]["spec"]["replicas"] == 0  # disabled
    web = docs["demo-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"] == {"path": "/status?full=1", "port": 8765, "scheme": "HTTP"}
    assert web["startupProbe"]["failureThreshold"] == 40
    assert web["env"] == [{"name": k, "value": v} for k, v in tricky.by_name["web"].env.items()]
    api = docs["demo-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["command"] == list(tricky.by_name["api"].command)
    assert api["command"][-len(TRICKY_WORDS):] == TRICKY_WORDS
    worker = docs["demo-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["livenessProbe"]["exec"]["command"] == list(tricky.by_name["worker"].health.check.command)
    db = docs["demo-db"]["spec"]["template"]["spec"]["containers"][0]
    assert db["readinessProbe"]["tcpSocket"] == {"port": 5432}
    assert docs["demo-web"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 3  # 2.5s, rounded up
    losses = {(l.process, l.setting) for l in result.losses}
    assert ("api", "depends_on") in losses and ("web", "stop_signal") in losses
    assert ("web", "stop_timeout") in losses and ("web", "health.startup") in losses
