"""`pmtop export compose`: a file that the Compose specification's JSON schema accepts.

The schema is the compose-spec one that check-jsonschema (PyPI) vendors as `vendor.compose-spec`;
it is applied here with jsonschema, the validator check-jsonschema itself uses.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from importlib.resources import files

import jsonschema
import pytest
import yaml

from pmtop.core.config import Config

from .conftest import TRICKY_WORDS, render

SCHEMA = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())


def _validate(text: str) -> dict:
    document = yaml.safe_load(text)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft7Validator)
    return document


@pytest.mark.parametrize("image", [None, "python:3.12-slim"])
def test_the_file_follows_the_compose_spec(example: Config, tricky: Config, image: str | None) -> None:
    for config in (example, tricky):
        [text] = render("compose", config, image=image).files.values()
        _validate(text)


def test_the_schema_is_really_applied() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"x": {"restart_policy": "sometimes"}}}, SCHEMA)


def test_depends_on_maps_one_to_one_and_dollars_are_literal(tricky: Config) -> None:
    document = _validate(render("compose", tricky).files["demo.compose.yaml"])
    services = document["services"]
    assert services["api"]["depends_on"] == {"web": {"condition": "service_healthy"},
                                             "migrate": {"condition": "service_completed_successfully"}}
    assert services["worker"]["depends_on"] == {"worker.v2": {"condition": "service_started"}}
    unescape = lambda word: word.replace("$$", "$")  # noqa: E731  (Compose reads $$ as $)
    assert [unescape(w) for w in services["api"]["entrypoint"]][-len(TRICKY_WORDS):] == TRICKY_WORDS
    assert {k: unescape(v) for k, v in services["web"]["environment"].items()} == dict(tricky.by_name["web"].env)
    assert services["db"]["profiles"] == ["disabled"]
    assert services["migrate"]["restart"] == "no" and services["api"]["restart"] == "always"
    assert services["web"]["stop_signal"] == "SIGINT" and services["web"]["stop_grace_period"] == "2.5s"
    assert services["web"]["healthcheck"]["retries"] == 2
    assert services["worker"]["healthcheck"]["test"] == ["CMD", *tricky.by_name["worker"].health.check.command]


def test_the_healthcheck_command_really_probes(tricky: Config) -> None:
    """The healthcheck's test, run as Docker would run it (CMD form): 0 on a live URL, 1 on a dead one."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        document = _validate(render("compose", tricky).files["demo.compose.yaml"])
        test = document["services"]["web"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        argv = [w.replace("$$", "$") for w in test[1:]]
        live = [*argv[:4], f"http://127.0.0.1:{server.server_address[1]}/", *argv[5:]]
        assert subprocess.run(live, timeout=60).returncode == 0
        server.shutdown()
        server.server_close()
        assert subprocess.run(live, timeout=60).returncode == 1
    finally:
        server.shutdown()
        server.server_close()
