"""Configuration: what the user declared, checked whole before anything starts.

Owns `pmtop.toml` (`loader`: find, parse, validate; `schema`: the rules of one `[process.NAME]` table,
shared by the file, `pmtop add` and the API; `writer`: adding and removing tables with comments kept).
May import: the model, values, errors, files, locations, and `checks` (each health kind parses its own
table). Never the process, daemon or api layers.
"""

from __future__ import annotations

from .loader import (
    CONFIG_ENV_VAR,
    CONFIG_FILENAME,
    DEFAULT_PORT,
    NAME_PATTERN,
    Config,
    DaemonSettings,
    find_config,
    load_config,
    parse_process,
    spec_to_table,
    validate_name,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "CONFIG_FILENAME",
    "DEFAULT_PORT",
    "NAME_PATTERN",
    "Config",
    "DaemonSettings",
    "find_config",
    "load_config",
    "parse_process",
    "spec_to_table",
    "validate_name",
]
