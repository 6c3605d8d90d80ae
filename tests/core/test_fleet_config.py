"""`fleet.toml`: strict, one line per problem (file, line, key), labels, and where each token comes from."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pmtop.core.config.fleet import Fleet, choose, fleet_path, load_fleet, parse_url, read_token
from pmtop.core.config.lines import item_line
from pmtop.core.errors import ConfigError, UsageError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_the_documented_shape(tmp_path: Path) -> None:
    (tmp_path / "web1.token").write_text("secret-1\n")
    path = write(tmp_path, """
        [fleet]
        daemons = [
            { url = "http://10.0.0.5:19881", token_file = "web1.token", name = "web1" },
            { url = "http://127.0.0.1:19881/" },
            { url = "http://127.0.0.1:19882", token_file = "~/other.token" },
        ]
        """)
    fleet = load_fleet(path)
    assert [(d.label, d.url, d.name) for d in fleet.daemons] == [
        ("web1", "http://10.0.0.5:19881", "web1"),
        ("127.0.0.1:19881", "http://127.0.0.1:19881", None),  # two on one host: the port tells them apart
        ("127.0.0.1:19882", "http://127.0.0.1:19882", None),
    ]
    assert fleet.daemons[0].token_file == tmp_path / "web1.token"  # relative to fleet.toml's folder
    assert fleet.daemons[2].token_file == Path("~/other.token").expanduser()
    assert read_token(fleet.daemons[0], {}) == "secret-1"


def test_arrays_of_tables_too(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[fleet.daemons]]
        url = "http://web1.example:19881"

        [[fleet.daemons]]
        url = "http://[::1]:19881"
        """)
    assert [(d.label, d.host, d.url) for d in load_fleet(path).daemons] == [
        ("web1.example", "web1.example", "http://web1.example:19881"), ("::1", "::1", "http://[::1]:19881")]


def test_no_file_is_an_empty_fleet(tmp_path: Path) -> None:
    fleet = load_fleet(tmp_path / "fleet.toml")
    assert fleet.daemons == () and not fleet.exists
    with pytest.raises(UsageError, match=r"fleet.toml does not exist: add \[fleet\]"):
        choose(fleet)
    assert fleet_path({"PMTOP_HOME": str(tmp_path)}) == tmp_path / "config" / "fleet.toml"


BAD = [
    ("[fleet]\ndaemon = []\n", 2, "fleet.daemon: unknown key (did you mean 'daemons'?)"),
    ("[fleets]\n", 1, "fleets: unknown key (did you mean 'fleet'?)"),
    ("[fleet]\ndaemons = 3\n", 2, "fleet.daemons: must be an array of tables"),
    ('[fleet]\ndaemons = [\n  { url = "http://a:1" },\n  { url = "https://b:19881" },\n]\n', 4,
     'fleet.daemons[1].url: "https://b:19881" is not an http:// URL (pmtop\'s API speaks plain HTTP'),
    ('[fleet]\ndaemons = [\n  { url = "http://a:1" },\n  # a comment with { braces\n  { url = "http://b" },\n]\n', 5,
     'fleet.daemons[1].url: "http://b" names no port (pmtop\'s default is 19881: http://b:19881)'),
    ('[fleet]\ndaemons = [{ url = "http://a:1", tokenfile = "x" }]\n', 2,
     "fleet.daemons[0].tokenfile: unknown key (did you mean 'token_file'?)"),
    ('[fleet]\ndaemons = [\n  { token_file = "x" },\n]\n', 3, "fleet.daemons[0]: needs a url"),
    ('[fleet]\ndaemons = [\n  "http://a:1",\n]\n', 3, "fleet.daemons[0]: must be a table"),
    ('[fleet]\ndaemons = [{ url = "http://a:1", name = "a b" }]\n', 2, 'fleet.daemons[0].name: invalid name "a b"'),
    ('[fleet]\ndaemons = [{ url = "http://a:1", token_file = 7 }]\n', 2,
     "fleet.daemons[0].token_file: must be a string (got 7)"),
    ('[fleet]\ndaemons = [\n { url = "http://a:1" },\n { url = "http://a:1/" },\n]\n', 4,
     "fleet.daemons[1].url: http://a:1 is listed twice (also fleet.daemons[0])"),
    ('[fleet]\ndaemons = [\n { url = "http://a:1", name = "x" },\n { url = "http://b:1", name = "x" },\n]\n', 4,
     "fleet.daemons[1].name: the name 'x' is taken by fleet.daemons[0]"),
    ('[[fleet.daemons]]\nurl = "http://a:1"\n[[fleet.daemons]]\nname = "b"\nurl = "http://a:1/x"\n', 5,
     'fleet.daemons[1].url: "http://a:1/x": a daemon\'s URL has no path or query'),
    ('[fleet]\ndaemons = [{ url = "http://a:1" ]\n', 2, "invalid TOML: "),
    ('[fleet]\ndaemons = [{ url = "http://a:99999" }]\n', 2, "fleet.daemons[0].url: invalid URL"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_every_problem_is_one_line_with_file_line_and_key(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    shown = caught.value.message
    assert "\n" not in shown
    assert shown.startswith(f"{path}:{line}"), shown
    assert message in shown, shown


def test_labels_that_would_look_the_same_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [fleet]
        daemons = [{ url = "http://web1:19881" }, { url = "http://10.0.0.9:19881", name = "web1" }]
        """)
    with pytest.raises(ConfigError, match="would both show as 'web1'"):
        load_fleet(path)


def test_attach_takes_what_fleet_toml_says_of_a_url_and_labels_the_chosen_ones(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [fleet]
        daemons = [{ url = "http://127.0.0.1:19881", name = "alpha", token_file = "/t" }, { url = "http://web2:19881" }]
        """)
    fleet = load_fleet(path)
    chosen = choose(fleet, ["http://127.0.0.1:19881/", "http://127.0.0.1:19999", "http://127.0.0.1:19881"])
    assert [(d.label, d.url, d.token_file) for d in chosen] == [
        ("alpha", "http://127.0.0.1:19881", Path("/t")), ("127.0.0.1:19999", "http://127.0.0.1:19999", None)]
    assert [d.label for d in choose(fleet)] == ["alpha", "web2"]
    with pytest.raises(UsageError, match=r"--attach: .*names no port"):
        choose(fleet, ["http://somewhere"])


def test_where_a_token_comes_from(tmp_path: Path) -> None:
    """token_file, else $PMTOP_TOKEN, else (loopback) the local instance whose daemon.json names the port."""
    home = tmp_path / "home"
    state = home / "state" / "default"
    state.mkdir(parents=True)
    (state / "daemon.json").write_text(json.dumps({"host": "127.0.0.1", "port": 19881, "pid": 1}))
    (state / "token").write_text("local-token\n")
    env = {"PMTOP_HOME": str(home)}
    local, remote = parse_url("http://127.0.0.1:19881"), parse_url("http://10.1.1.1:19881")
    assert read_token(local, env) == "local-token"
    assert read_token(parse_url("http://127.0.0.1:19882"), env) is None
    assert read_token(remote, env) is None
    assert read_token(remote, {**env, "PMTOP_TOKEN": "from-env"}) == "from-env"
    missing = Fleet(tmp_path, [local]).daemons[0]
    missing.token_file = tmp_path / "nope"
    with pytest.raises(UsageError, match=r"cannot read the token file .*nope: No such file"):
        read_token(missing, env)


@pytest.mark.parametrize(("index", "key", "line"), [(0, None, 3), (1, "url", 4), (2, "url", 6), (3, None, None)])
def test_item_line_counts_elements_past_strings_and_comments(index: int, key: str | None, line: int | None) -> None:
    text = textwrap.dedent("""
        [fleet]
        daemons = [ { url = "http://a:1", name = "x,{" },
          { url = "http://b:1" }, # ] } {
          # { not an element
          { url = 'http://c:1' }
        ]
        """)
    assert item_line(text, ("fleet", "daemons"), index, key) == line


def test_the_client_commands_copy_is_used_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    env = {"PMTOP_HOME": str(tmp_path / "home")}
    path = fleet_path(env)
    path.parent.mkdir(parents=True)
    path.write_text('[fleet]\ndaemons = [{ url = "http://a:1", name = "one", token_file = "t" }]\n')
    first = load_fleet(environ=env, cached=True)
    cache = tmp_path / "home" / "state" / "fleet.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    again = load_fleet(environ=env, cached=True)
    assert again.daemons == first.daemons and again.daemons[0].token_file == path.parent / "t"
    data = json.loads(cache.read_text())
    data["daemons"][0]["label"] = "from-the-copy"
    cache.write_text(json.dumps(data))
    assert load_fleet(environ=env, cached=True).daemons[0].label == "from-the-copy", "the copy is what was used"
    assert load_fleet(environ=env).daemons[0].label == "one", "the dashboard reads the file itself"
    path.write_text('[fleet]\ndaemons = [{ url = "http://a:1", name = "two" }]\n')  # an edit: read again
    assert load_fleet(environ=env, cached=True).daemons[0].label == "two"
    path.write_text('[fleet]\ndaemons = [{ url = "http://a" }]\n')
    with pytest.raises(ConfigError, match="names no port"):  # a broken file is never served from the copy
        load_fleet(environ=env, cached=True)
    cache.write_text("garbage")
    path.write_text('[fleet]\ndaemons = [{ url = "http://a:1", name = "three" }]\n')
    assert load_fleet(environ=env, cached=True).daemons[0].label == "three"
