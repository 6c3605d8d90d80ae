"""What the dashboard remembers, and what a user may set, in the user config dir (`core.paths.user_config_dir`).

    settings.toml    written by pmtop: the chosen theme (tomli-w, atomically: temp file, fsync, rename)
    keymap.toml      written by the user, only read: binding id = "keys", e.g. process-stop = "k"
    themes/*.toml    the user's own themes (see `theming`)

pmtop never rewrites a file a person edits by hand, so the keymap (with its comments) lives apart from
the settings pmtop writes. A broken file is reported and ignored: it never stops the dashboard.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import tomli_w

from pmtop.core.files import write_atomic

SETTINGS_FILE: Final = "settings.toml"
KEYMAP_FILE: Final = "keymap.toml"
THEMES_DIR: Final = "themes"


@dataclass(frozen=True, slots=True)
class Settings:
    theme: str | None = None
    """The theme last chosen with `t`, the palette or `--theme`."""


def load_settings(folder: Path) -> Settings:
    try:
        data = tomllib.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return Settings()  # missing or damaged: start from the defaults; the next save repairs it
    theme = data.get("theme")
    return Settings(theme=theme if isinstance(theme, str) and theme else None)


def save_settings(folder: Path, settings: Settings) -> None:
    """Atomically: a crash mid-write leaves the old file, never half a file."""
    document = {"theme": settings.theme} if settings.theme else {}
    header = b"# Written by pmtop: the dashboard's remembered choices.\n"
    write_atomic(folder / SETTINGS_FILE, header + tomli_w.dumps(document).encode())


def load_keymap(folder: Path) -> tuple[dict[str, str], list[str]]:
    """The user's key overrides by binding id, and one message per problem found (not fatal)."""
    path = folder / KEYMAP_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: ignored ({exc})"]
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in data.items():
        if isinstance(keys, str) and keys.strip():
            keymap[binding_id] = keys.strip()
        else:
            problems.append(f"{path}: {binding_id}: must be a key string such as \"ctrl+k\" or \"k,K\"")
    return keymap, problems
