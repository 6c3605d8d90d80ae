"""Editing a user's pmtop.toml keeps everything else, comments included, and is re-read before writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmtop.core.config import load_config, parse_process, spec_to_table
from pmtop.core.config.writer import add_process_table, remove_process_table
from pmtop.core.errors import ConfigError

ORIGINAL = """\
# my stack
[defaults]
restart = "always"  # everything restarts

# the database
[process.db]
command = ["postgres"]

# the web server, do not remove this comment
[process.web]
command = "python -m http.server"
depends_on = ["db"]

[process.web.health]
type = "tcp"
address = "127.0.0.1:8000"

[process."worker.v2"]
command = ["worker"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pmtop.toml"
    path.write_text(ORIGINAL)
    return path


def test_add_appends_a_table_and_keeps_comments(config: Path) -> None:
    spec = parse_process("cache", {"command": ["redis-server", "--port", "0"], "restart": "no"},
                         base_dir=config.parent)
    add_process_table(config, "cache", spec_to_table(spec, base_dir=config.parent))
    text = config.read_text()
    assert text.startswith(ORIGINAL)
    loaded = load_config(config)
    assert loaded.by_name["cache"].command == ("redis-server", "--port", "0")
    assert loaded.by_name["cache"].restart == spec.restart


def test_add_refuses_a_duplicate(config: Path) -> None:
    with pytest.raises(ConfigError, match="already declared"):
        add_process_table(config, "db", {"command": ["x"]})
    assert config.read_text() == ORIGINAL


def test_add_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pmtop.toml"
    add_process_table(path, "one", {"command": ["sleep", "1"]})
    assert [s.name for s in load_config(path).processes] == ["one"]


def test_remove_cuts_the_table_its_subtables_and_its_comment(config: Path) -> None:
    remove_process_table(config, "db")
    remove_process_table(config, "worker.v2")
    text = config.read_text()
    assert "# the database" not in text and "postgres" not in text and "worker" not in text
    assert "# my stack" in text and "# everything restarts" in text
    assert "# the web server, do not remove this comment" in text
    doc = load_config_text(config)
    assert set(doc["process"]) == {"web"}
    assert doc["process"]["web"]["health"]["type"] == "tcp"


def test_remove_with_subtable(config: Path) -> None:
    assert remove_process_table(config, "web") is True
    text = config.read_text()
    assert "[process.web" not in text and "http.server" not in text
    assert "# the web server" not in text
    assert "# the database" in text
    assert remove_process_table(config, "web") is False


def test_inline_tables_are_refused_without_damage(tmp_path: Path) -> None:
    path = tmp_path / "pmtop.toml"
    original = 'process = { a = { command = ["x"] } }\n'
    path.write_text(original)
    with pytest.raises(ConfigError, match="remove it by hand"):
        remove_process_table(path, "a")
    assert path.read_text() == original


def load_config_text(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())
