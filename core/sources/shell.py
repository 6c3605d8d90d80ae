"""Commands written for a shell (Procfile, process-compose) made into an argv without one when that is exact.

pmtop never runs a shell. A command line that uses none of the shell's features (operators, `$`
expansion, globs, backquotes, `~`, redirections) splits with `shlex` into exactly the argv the shell
would have run; anything else is kept working by running it through the shell explicitly (`sh -c`).
A leading `cd DIR &&`, `KEY=value` assignments and `exec` (which `pmtop export procfile` writes) are
read as the process's folder and environment.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Final

_ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS: Final = frozenset("|&;<>()")
_EXPANSIONS: Final = re.compile(r"[$`*?\[~]|^#")


@dataclass(slots=True)
class ShellCommand:
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    shell: bool = False
    """True: `argv` is `[SHELL, "-c", line]`, because the line needs a shell."""


def _needs_shell(line: str) -> bool:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return True
    if any(token and set(token) <= _OPERATORS for token in tokens):
        return True
    # Expansions happen outside single quotes; a conservative look at the raw text is enough here.
    unquoted = re.sub(r"'[^']*'", "", line)
    return bool(_EXPANSIONS.search(unquoted))


def parse_command(line: str, *, shell: tuple[str, ...] = ("sh", "-c")) -> ShellCommand:
    line = line.strip()
    words_cwd: str | None = None
    match = re.match(r"cd\s+('[^']*'|\"[^\"]*\"|[^\s;&|]+)\s*&&\s*", line)
    rest = line
    if match:
        try:
            [words_cwd] = shlex.split(match.group(1))
            rest = line[match.end():]
        except ValueError:
            words_cwd = None
    if _needs_shell(rest):
        return ShellCommand(argv=[*shell, line], shell=True)
    words = shlex.split(rest)
    env: dict[str, str] = {}
    if words and words[0] == "exec":
        words = words[1:]
    if words and words[0] == "env" and len(words) > 1 and _ASSIGNMENT.match(words[1]):
        words = words[1:]
    while words and _ASSIGNMENT.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if words and words[0] == "exec":
        words = words[1:]
    if not words:
        return ShellCommand(argv=[*shell, line], shell=True)
    return ShellCommand(argv=words, cwd=words_cwd, env=env)
