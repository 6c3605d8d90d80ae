"""`pmtop import`: other supervisors' files read into a commented `pmtop.toml`, with a report.

One registry, `SOURCES`: each kind of file has a module with `detect(path, text)` and
`read(path, text) -> ImportResult`. `read_source` picks the kind (by `--format`, else by file name and
content, in registry order) and turns a reader's failure into a one-line `ConfigError`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Final

from ..errors import ConfigError
from .model import ImportResult

#: Every import source: name -> module of this package.
SOURCES: Final = {
    "procfile": "procfile",
    "supervisord": "supervisord",
    "process-compose": "process_compose",
    "compose": "compose",
    "pm2": "pm2",
}


def read_source(path: Path, kind: str | None = None) -> ImportResult:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ({getattr(exc, 'strerror', None) or exc})", file=str(path)) from None
    modules = {name: importlib.import_module(f"{__name__}.{module}") for name, module in SOURCES.items()}
    if kind is None:
        kind = next((name for name, module in modules.items() if module.detect(path, text)), None)
        if kind is None:
            raise ConfigError("cannot tell what kind of file this is (a Procfile, supervisord .conf, "
                              "process-compose or Compose .yaml, PM2 .json?); say it with --format",
                              file=str(path))
    try:
        result: ImportResult = modules[kind].read(path, text)
    except Exception as exc:  # a reader meets arbitrary input: every failure is one line naming the file
        raise ConfigError(f"cannot read as {kind}: {exc}", file=str(path)) from None
    if not result.processes:
        raise ConfigError(f"no processes found (read as {kind})", file=str(path))
    return result
