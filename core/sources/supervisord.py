"""supervisord `.conf`: every `[program:x]` (and `numprocs` copies), in `priority` order.

supervisord splits `command` with shlex and runs no shell, as pmtop does. Its retry rules map closely:
a process that exits within `startsecs` of starting is retried up to `startretries` times with a delay
of 1s, 2s, 3s, ... (so `backoff` is that list and `max_restarts = startretries`), and one that ran
longer is restarted without limit, which is pmtop's `reset_after = startsecs`.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
from pathlib import Path
from typing import Any, Final

from .model import Imported, ImportResult

#: The keys read; every other program key is reported.
DEFAULTS: Final = {"autostart": "true", "autorestart": "unexpected", "startsecs": "1", "startretries": "3",
                   "stopsignal": "TERM", "stopwaitsecs": "10", "numprocs": "1", "numprocs_start": "0",
                   "priority": "999"}
SIZE_UNITS: Final = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}
OTHER_SECTIONS: Final = ("supervisord", "unix_http_server", "inet_http_server", "supervisorctl", "include")


def detect(path: Path, text: str) -> bool:
    return path.suffix in (".conf", ".ini") or "[program:" in text


def _bool(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "on", "1")


def _expand(value: str, names: dict[str, Any], result: ImportResult, process: str, key: str) -> str:
    try:
        return value % names
    except (KeyError, ValueError, TypeError) as exc:
        result.approximated(key, f"cannot expand {value!r} ({exc}); kept as written", process)
        return value


def _environment(value: str) -> dict[str, str]:
    """supervisord's `KEY="value",KEY2=value2`, parsed as its own dict_of_key_value_pairs does."""
    lexer = shlex.shlex(value)
    lexer.wordchars += "/.+-():"
    tokens = list(lexer)
    env: dict[str, str] = {}
    for i in range(0, len(tokens), 4):
        key_eq_value = tokens[i:i + 3]
        if len(key_eq_value) != 3 or key_eq_value[1] != "=":
            raise ValueError(f"unexpected end of key/value pairs in {value!r}")
        key, item = key_eq_value[0], key_eq_value[2]
        if len(item) >= 2 and item[0] in "\"'" and item[-1] == item[0]:
            item = item[1:-1]
        env[key] = item
    return env


def _size(value: str) -> int | None:
    match = re.fullmatch(r"(\d+)\s*(KB|MB|GB)?", value.strip().upper())
    if match is None:
        return None
    return int(match.group(1)) * SIZE_UNITS.get(match.group(2) or "", 1)


def read(path: Path, text: str) -> ImportResult:
    result = ImportResult(source="supervisord", path=str(path))
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text, source=str(path))
    here = str(path.resolve().parent)
    programs: list[tuple[int, int, str, dict[str, str]]] = []
    for order, section in enumerate(parser.sections()):
        kind, _, name = section.partition(":")
        if kind == "program" and name:
            values = {**DEFAULTS, **dict(parser.items(section))}
            programs.append((int(values["priority"]), order, name, values))
        elif kind in OTHER_SECTIONS or kind.startswith("rpcinterface"):
            result.note(f"[{section}]", "supervisord's own settings; pmtop's are its [daemon] table")
        else:
            result.dropped(f"[{section}]", f"{kind} sections have no pmtop equivalent")
    if any(p[0] != 999 for p in programs):
        result.note("priority", "programs are written in priority order (lowest first); pmtop starts them "
                                "in parallel unless depends_on says otherwise")
    for _priority, _order, name, values in sorted(programs):
        numprocs = int(values["numprocs"])
        start = int(values["numprocs_start"])
        pattern = values.get("process_name", "%(program_name)s")
        for num in range(start, start + numprocs):
            names = {"program_name": name, "process_num": num, "group_name": name, "here": here,
                     "numprocs": numprocs, "host_node_name": os.uname().nodename,
                     **{f"ENV_{k}": v for k, v in os.environ.items()}}
            process = result.add(_expand(pattern, names, result, name, "process_name"))
            _program(process, values, names, result)
        if numprocs > 1:
            copies = ", ".join(p.name for p in result.processes[-numprocs:])
            result.note("numprocs", f"{numprocs}: written as {numprocs} processes ({copies})", name)
    return result


def _program(process: Imported, values: dict[str, str], names: dict[str, Any], result: ImportResult) -> None:
    table = process.table
    who = process.name
    if "command" not in values:
        result.dropped("command", "missing: the program cannot run", who)
        table["command"] = ["false"]
    else:
        table["command"] = shlex.split(_expand(values["command"], names, result, who, "command"))
    if "directory" in values:
        table["cwd"] = _expand(values["directory"], names, result, who, "directory")
    if "environment" in values:
        try:
            table["env"] = _environment(_expand(values["environment"], names, result, who, "environment"))
        except ValueError as exc:
            result.dropped("environment", str(exc), who)
    if not _bool(values["autostart"]):
        table["autostart"] = False
    autorestart = values["autorestart"].strip().lower()
    table["restart"] = "always" if _bool(autorestart) else "on-failure" if autorestart == "unexpected" else "no"
    retries = int(values["startretries"])
    table["max_restarts"] = retries
    table["backoff"] = [f"{n}s" for n in range(1, max(retries, 1) + 1)]
    table["reset_after"] = f"{int(values['startsecs'])}s"
    signame = values["stopsignal"].strip().upper().removeprefix("SIG")
    if f"SIG{signame}" in signal.Signals.__members__:
        table["stop_signal"] = signame
    else:
        result.dropped("stopsignal", f"unknown signal {values['stopsignal']!r}", who)
    table["stop_timeout"] = f"{int(values['stopwaitsecs'])}s"
    if autorestart == "unexpected" and values.get("exitcodes", "0").replace(" ", "") not in ("0", ""):
        result.approximated("exitcodes", f"{values['exitcodes']}: pmtop counts only exit 0 as expected", who)
    if "stdout_logfile_maxbytes" in values:
        size = _size(values["stdout_logfile_maxbytes"])
        if size:
            table["log_max_bytes"] = size
    if "stdout_logfile_backups" in values:
        table["log_backups"] = int(values["stdout_logfile_backups"])
    for key in ("stopasgroup", "killasgroup"):
        if key in values:
            result.note(key, "pmtop always signals the whole process group", who)
    known = {*DEFAULTS, "command", "directory", "environment", "process_name", "exitcodes",
             "stdout_logfile_maxbytes", "stdout_logfile_backups", "stopasgroup", "killasgroup"}
    for key, value in values.items():
        if key not in known:
            result.dropped(key, f"{value!r}: no pmtop equivalent" + (
                " (pmtop keeps each run's output in its own folder)" if "log" in key else ""), who)
