"""Themes are data: `themes/*.toml` (shipped) and `<user config dir>/themes/*.toml` become Textual `Theme`s.

A theme file holds the fields of Textual's `Theme` (`primary`, `background`, `dark`, ...) plus pmtop's own
colours in `[states]` (one per process state) and `[health]`, which become the theme variables
`state-running`, `health-unhealthy`, ... that `pmtop.tcss` and the table's cells use. Any other Textual
variable may be set in `[variables]`. Textual's built-in themes know nothing of pmtop's variables, so
`variable_defaults` derives them from a theme's own palette (running = success, failed = error, ...):
every theme Textual knows works here too.

Invariant: a theme file is checked whole before it is used; a broken user theme is skipped with a
message naming the file and key, never half-applied, and never stops the dashboard.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from rich.style import Style
from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

from pmtop.core.errors import PmtopError
from pmtop.core.locations import user_config_dir
from pmtop.core.model import Health, ProcessState

DEFAULT_THEME: Final = "dark"
SHIPPED_ORDER: Final = ("dark", "light", "high-contrast")
"""How `t` cycles: pmtop's own themes first, then user themes, then Textual's built-ins."""

STATE_VARIABLES: Final = {state: f"state-{state.value}" for state in ProcessState}
HEALTH_VARIABLES: Final = {health: f"health-{health.value}" for health in Health}

_COLOR_FIELDS: Final = (
    "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost",
)
_TOP_KEYS: Final = ("name", "dark", "luminosity_spread", "text_alpha", *_COLOR_FIELDS, "states", "health", "variables")

# Which colour of a theme's own palette stands for each state and health, when the theme does not say.
_STATE_FALLBACK: Final = {
    ProcessState.RUNNING: "success",
    ProcessState.STARTING: "primary",
    ProcessState.STOPPING: "warning",
    ProcessState.CRASHED: "error",
    ProcessState.RETRYING: "warning",
    ProcessState.FAILED: "error",
    ProcessState.STOPPED: "foreground-muted",
    ProcessState.DISABLED: "foreground-disabled",
}
_HEALTH_FALLBACK: Final = {
    Health.HEALTHY: "success",
    Health.UNHEALTHY: "error",
    Health.UNKNOWN: "foreground-muted",
}
# For palettes that are not RGB (Textual's `ansi-dark` / `ansi-light`): the terminal's own colours.
_ANSI: Final = {
    "success": "ansi_green", "primary": "ansi_blue", "warning": "ansi_yellow", "error": "ansi_red",
    "foreground-muted": "ansi_bright_black", "foreground-disabled": "ansi_bright_black",
}


class ThemeError(PmtopError):
    """A theme file that cannot be used, or a theme name nobody knows."""

    code = "usage"


def _color(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{where}: must be a colour string such as \"#1e90ff\" (got {value!r})")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{where}: not a colour: {value!r}") from None
    return value


def _color_table(table: object, where: str, names: Iterable[str]) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise ThemeError(f"{where}: must be a table")
    allowed = list(names)
    out: dict[str, str] = {}
    for key, value in table.items():
        if key not in allowed:
            raise ThemeError(f"{where}.{key}: unknown key (expected one of: {', '.join(allowed)})")
        out[key] = _color(value, f"{where}.{key}")
    return out


def theme_from_table(data: Mapping[str, Any], *, default_name: str, source: str) -> Theme:
    """Check one theme document and build its `Theme`. Raises `ThemeError` naming `source` and the key."""
    for key in data:
        if key not in _TOP_KEYS:
            raise ThemeError(f"{source}: {key}: unknown key")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{source}: name: must be a non-empty string")
    if "primary" not in data:
        raise ThemeError(f"{source}: primary: missing (every theme needs a primary colour)")
    colors = {f: _color(data[f], f"{source}: {f}") for f in _COLOR_FIELDS if f in data}
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(f"{source}: dark: must be true or false")
    variables: dict[str, str] = {}
    for state, value in _color_table(data.get("states", {}), f"{source}: states", [s.value for s in ProcessState]).items():
        variables[f"state-{state}"] = value
    for health, value in _color_table(data.get("health", {}), f"{source}: health", [h.value for h in Health]).items():
        variables[f"health-{health}"] = value
    extra = data.get("variables", {})
    if not isinstance(extra, Mapping) or not all(isinstance(v, str) for v in extra.values()):
        raise ThemeError(f"{source}: variables: must be a table of strings")
    variables.update(extra)
    numbers: dict[str, float] = {}
    for key in ("luminosity_spread", "text_alpha"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThemeError(f"{source}: {key}: must be a number")
            numbers[key] = float(value)
    return Theme(name=name.strip(), dark=dark, variables=variables, **colors, **numbers)  # type: ignore[arg-type]


def load_theme(path: Path) -> Theme:
    """One theme file; its name is its `name` key, else the file name without `.toml`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path}: invalid TOML: {exc}") from None
    return theme_from_table(data, default_name=path.stem, source=str(path))


def shipped_themes() -> list[Theme]:
    """dark, light and high-contrast (and any other TOML shipped beside `pmtop.tcss`)."""
    folder = resources.files("pmtop.themes")
    themes = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            themes.append(theme_from_table(data, default_name=entry.name[:-5], source=f"themes/{entry.name}"))
    order = {name: i for i, name in enumerate(SHIPPED_ORDER)}
    return sorted(themes, key=lambda t: (order.get(t.name, len(order)), t.name))


def user_themes(folder: Path) -> tuple[list[Theme], list[str]]:
    """Themes a user dropped into `folder`, and one message per file that could not be used."""
    themes: list[Theme] = []
    problems: list[str] = []
    if not folder.is_dir():
        return themes, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            themes.append(load_theme(path))
        except ThemeError as exc:
            problems.append(exc.message)
    return themes, problems


def theme_cycle(available: Iterable[str], own: Iterable[str]) -> list[str]:
    """The order `t` walks: pmtop's own and users' themes first, then Textual's built-ins (not ANSI)."""
    names = list(available)
    first = [n for n in own if n in names]
    rest = sorted(n for n in names if n not in first and not n.startswith("ansi-"))
    return first + rest


def check_name(name: str, available: Iterable[str], own: Iterable[str]) -> None:
    names = list(available)
    if name not in names:
        raise ThemeError(f"unknown theme {name!r} (known: {', '.join(theme_cycle(names, own))})")


def check_theme(name: str | None, config_dir: Path | None = None) -> None:
    """`--theme NAME` checked before anything starts: `ThemeError` (code "usage") if no theme has that name."""
    if name is not None:
        folder = (config_dir if config_dir is not None else user_config_dir()) / "themes"
        own = [t.name for t in shipped_themes()] + [t.name for t in user_themes(folder)[0]]
        check_name(name, [*BUILTIN_THEMES, *own], own)


def variable_defaults(theme: Theme) -> dict[str, str]:
    """pmtop's variables for a theme that does not set them, taken from its own palette."""
    generated = theme.to_color_system().generate()
    try:
        background = Color.parse(generated["background"])
    except ColorParseError:
        background = Color(0, 0, 0)

    def pick(source: str) -> str:
        try:
            return _solid(generated[source], background)
        except (KeyError, ColorParseError):  # "ansi_default 50%" and the like
            return _ANSI[source]

    defaults: dict[str, str] = {}
    for state, name in STATE_VARIABLES.items():
        defaults[name] = pick(_STATE_FALLBACK[state])
    for health, name in HEALTH_VARIABLES.items():
        defaults[name] = pick(_HEALTH_FALLBACK[health])
    return defaults


def _solid(value: str, background: Color) -> str:
    """A colour with transparency, flattened onto the background (Rich text has no alpha)."""
    color = Color.parse(value)
    if color.ansi is not None:
        return value  # a terminal colour stays one (an ANSI theme)
    if color.a < 1:
        color = background.blend(color.with_alpha(1.0), color.a)
    return color.hex


@dataclass(frozen=True, slots=True)
class CellStyles:
    """Rich styles for the table's coloured cells, resolved from the current theme's variables."""

    states: Mapping[ProcessState, Style]
    health: Mapping[Health, Style]
    muted: Style
    accent: Style
    error: Style

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> CellStyles:
        try:
            background = Color.parse(variables.get("background", "#000000"))
        except ColorParseError:
            background = Color(0, 0, 0)

        def style(name: str, fallback: str, *, bold: bool = False) -> Style:
            try:
                color = Color.parse(_solid(variables.get(name, fallback), background))
            except ColorParseError:
                color = Color.parse(fallback)
            return Style(color=color.rich_color, bold=bold)

        return cls(
            states={s: style(v, "#888888", bold=s in _BOLD_STATES) for s, v in STATE_VARIABLES.items()},
            health={h: style(v, "#888888") for h, v in HEALTH_VARIABLES.items()},
            muted=style("foreground-muted", "#888888"),
            accent=style("accent", "#ffa62b", bold=True),
            error=style("error", "#ff5555", bold=True),
        )


_BOLD_STATES: Final = frozenset({ProcessState.FAILED, ProcessState.CRASHED})

