"""`env_file`: dotenv files read strictly, when the config is loaded or reloaded.

When: at load and at reload (and when a process is registered), never at each start. So a missing or
broken file is a config error that stops the load (nothing starts, nothing changes), as every other
mistake in the config is; a changed file makes a changed spec, so `pmtop reload` restarts exactly the
processes whose environment changed; and the crash-to-restart path reads no file. (systemd reads its
`EnvironmentFile=` at each start; Compose reads `env_file` when it creates the container, which is the
model here: edit the file, then reload.)

How: python-dotenv's own parser (imported on first use: ~10 ms that a config without `env_file` never
pays), in its strict form. `dotenv_values` only logs a warning for a line it cannot parse and skips it;
a supervisor must not start a process with half its environment, so each statement is checked first
and the first bad one is an error naming the file and its line. `${VAR}` expands from earlier lines of
the same file and from pmtop's own environment, as python-dotenv does; `export KEY=...` is accepted; a
bare `KEY` (no `=`) sets nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

from ..errors import Invalid
from ..values import KeyPath


def resolve(files: Iterable[str], base_dir: str) -> tuple[str, ...]:
    """Absolute paths: `~` expanded, relative ones taken from `base_dir` (the config file's folder)."""
    return tuple(os.path.normpath(os.path.join(base_dir, os.path.expanduser(f))) for f in files)


def read_env_files(paths: Iterable[str], path: KeyPath, *, shown: Iterable[str] | None = None) -> dict[str, str]:
    """The variables of every file, later files winning; `Invalid` at `path` for the first problem.

    `shown` are the names as the user wrote them (for messages), parallel to `paths`.
    """
    paths = list(paths)
    names = list(shown) if shown is not None else paths
    merged: dict[str, str] = {}
    for file, name in zip(paths, names, strict=True):
        merged.update(read_env_file(file, name, path))
    return merged


def read_env_file(file: str, name: str, path: KeyPath) -> dict[str, str]:
    where = name if name == file else f"{name} ({file})"
    try:
        with open(file, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise Invalid(path, f"no such file: {where}") from None
    except IsADirectoryError:
        raise Invalid(path, f"is a folder, not a dotenv file: {where}") from None
    except UnicodeDecodeError:
        raise Invalid(path, f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise Invalid(path, f"cannot read {where}: {(exc.strerror or str(exc)).lower()}") from None
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            statement = binding.original.string.strip().splitlines()[0] if binding.original.string.strip() else ""
            shown = statement if len(statement) <= 60 else statement[:57] + "..."
            raise Invalid(path, f"{name}:{binding.original.line}: cannot parse {shown!r} (expected KEY=VALUE)")
        if binding.key is not None and (not binding.key or "\0" in binding.key):
            raise Invalid(path, f"{name}:{binding.original.line}: {binding.key!r} is not a valid variable name")
    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    for key, value in values.items():
        if value is not None and "\0" in value:
            raise Invalid(path, f"{name}: the value of {key} contains a NUL character")
    return {key: value for key, value in values.items() if value is not None}
