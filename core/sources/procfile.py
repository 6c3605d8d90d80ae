"""Procfile (foreman, honcho, Heroku): `name: command` lines, and the `.env` beside it.

Runners run each line with `sh -c` in the Procfile's folder, with `.env` in the environment and `PORT`
set to 5000, 5100, ... in line order (foreman's and honcho's default). Those become the process's
argv (through `sh -c` only if the line needs a shell), `[defaults] env`, and `PORT` where a line uses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from .model import ImportResult
from .shell import parse_command

LINE: Final = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
BASE_PORT: Final = 5000


def detect(path: Path, text: str) -> bool:
    return path.name == "Procfile" or path.name.startswith("Procfile.")


def read(path: Path, text: str) -> ImportResult:
    result = ImportResult(source="procfile", path=str(path))
    dotenv = path.parent / ".env"
    if dotenv.is_file():
        from dotenv import dotenv_values

        values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None}
        if values:
            result.defaults["env"] = values
            result.note(".env", f"{len(values)} variable(s) from {dotenv.name} became [defaults] env")
    index = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            result.dropped("line", f"{path.name}:{number}: not `name: command`: {line.strip()[:60]!r}")
            continue
        name, command = match.groups()
        process = result.add(name)
        parsed = parse_command(command)
        process.table["command"] = parsed.argv
        if parsed.cwd is not None:
            process.table["cwd"] = parsed.cwd
        env = dict(parsed.env)
        if re.search(r"\$\{?PORT\b", command) and "PORT" not in env:
            process.table["port"] = BASE_PORT + 100 * index  # pmtop gives it as $PORT, and checks it is free
            result.note("PORT", f"the line uses $PORT: port = {process.table['port']}, as foreman and honcho "
                                "would set it", process.name)
        if env:
            process.table["env"] = env
        if parsed.shell:
            result.note("command", "uses the shell: runs through `sh -c`, as the Procfile runner did",
                        process.name)
        index += 1
    if result.processes:
        result.note("restart", "Procfile runners restart nothing and stop everything when one process exits; "
                               'pmtop restarts on failure (restart = "on-failure", its default)')
    return result
