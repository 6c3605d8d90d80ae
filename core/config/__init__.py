"""Configuration: what the user declared, checked whole before anything starts.

Owns `pmtop.toml` (`loader`: find, parse, validate; `schema`: the rules of one `[process.NAME]` table,
shared by the file, `pmtop add` and the API; `writer`: adding and removing tables with comments kept),
and `fleet.toml` (`fleet`: the daemons one dashboard shows; `lines`: where a key is in a TOML text).
May import: the model, values, errors, files, locations, and `checks` (each health kind parses its own
table). Never the process, daemon or api layers.

The names below are loaded on first use (PEP 562): `pmtop ps --fleet` imports `config.fleet` on a
100 ms budget, and must not pay for the process schema and every health check kind on the way.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
