"""The values a user writes (in `pmtop.toml`, `pmtop add`, an API body) and the rules that check them.

Two kinds of small pure functions, shared by every table that takes such values (the process table, each
health check kind, the daemon's own table):

- converters for durations, sizes and signals: a value is understood exactly or refused with a
  `ValueError` that quotes it; each has a `format_*` inverse that produces the shortest form it reads
  back to the same value (used when a spec is written back to a config file);
- `want_*` checks that raise `Invalid` at a key path (`process.web.restart`), which the loader turns
  into the one-line error naming the file and line.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import signal
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Final, TypeVar

from .errors import Invalid

_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"

# ---------------------------------------------------------------------------------------- durations

_DURATION_HINT: Final = "use seconds or a number with ms, s, m, h, d"
_DURATION_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PART: Final = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)", re.IGNORECASE)
_DURATION_TEXT: Final = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d)\s*)+", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from a number (`2`, `0.5`) or a string (`"250ms"`, `"2s"`, `"5m"`, `"6h"`, `"1d"`, `"3"`).

    Parts may be combined (`"1m30s"`). Negative, NaN, infinite, empty or unit-less garbage is refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {value!r} ({_DURATION_HINT})")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"invalid duration {value!r} (must not be negative)")
        if re.fullmatch(_NUMBER, text):
            seconds = float(text)
        elif _DURATION_TEXT.fullmatch(text):
            seconds = 0.0
            for number, unit in _DURATION_PART.findall(text):
                unit = unit.lower()
                if unit == "ms":
                    seconds += float(number) / 1000  # division, so "100ms" is exactly 0.1
                else:
                    seconds += float(number) * _DURATION_SECONDS[unit]
        else:
            raise ValueError(f"invalid duration {value!r} ({_DURATION_HINT})")
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"invalid duration {value!r} (too large)") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {value!r} ({_DURATION_HINT})")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r} (must not be negative)")
    return seconds


def format_duration(seconds: float) -> str | float:
    """A string `parse_duration` reads back to exactly `seconds`: "6h", "90s", "1.5s", "250ms".

    Falls back to the bare float for values only an exponent can spell.
    """
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"invalid duration {seconds!r} ({_DURATION_HINT})")
    if float(seconds).is_integer():
        whole = int(seconds)
        if whole == 0:
            return "0s"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    if seconds < 1:
        millis = round(seconds * 1000)
        if millis / 1000 == seconds:
            return f"{millis}ms"
    text = repr(float(seconds))
    return float(seconds) if "e" in text else f"{text}s"


# -------------------------------------------------------------------------------------------- sizes

_SIZE_HINT: Final = "use a number of bytes or a number with KB, MB, GB"
_SIZE_UNITS: Final = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1024**4, "tib": 1024**4,
}
_SIZE_TEXT: Final = re.compile(rf"({_NUMBER})\s*([a-z]*)")


def parse_size(value: object) -> int:
    """Bytes from an integer or a string like `"512"`, `"10KB"`, `"10MB"`, `"1GB"`.

    Units are case-insensitive binary multiples, as in supervisord's `logfile_maxbytes`: KB = KiB = K =
    1024. A fractional result (`"1.5KB"` is fine) is rounded to whole bytes.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r} ({_SIZE_HINT})")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r} (must not be negative)")
        return value
    if isinstance(value, float):
        if not value.is_integer() or value < 0:
            raise ValueError(f"invalid size {value!r} ({_SIZE_HINT})")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid size {value!r} ({_SIZE_HINT})")
    text = value.strip().lower()
    if text.startswith("-"):
        raise ValueError(f"invalid size {value!r} (must not be negative)")
    match = _SIZE_TEXT.fullmatch(text)
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"invalid size {value!r} ({_SIZE_HINT})")
    number, unit = match.groups()
    factor = _SIZE_UNITS[unit]
    if "." in number:
        return round(float(number) * factor)
    return int(number) * factor


def format_size(size: int) -> int | str:
    """`"10MB"` when `size` is a whole number of KB/MB/GB, else the plain number of bytes."""
    if size < 0:
        raise ValueError(f"invalid size {size!r} (must not be negative)")
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return size


# ------------------------------------------------------------------------------------------ signals

_SIGNAL_HINT: Final = "use a name like TERM, INT, HUP, KILL or a number"


def parse_signal(value: object) -> signal.Signals:
    """A signal from `"TERM"`, `"SIGTERM"`, `"term"`, `15` or `"15"`."""
    if isinstance(value, signal.Signals):
        return value
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            member = signal.Signals.__members__.get(name)
            if member is not None:
                return member
    if number is not None:
        try:
            return signal.Signals(number)
        except ValueError:
            pass
    raise ValueError(f"invalid signal {value!r} ({_SIGNAL_HINT})")


def format_signal(sig: signal.Signals) -> str:
    """The config spelling of a signal: `TERM`, not `SIGTERM`."""
    return sig.name.removeprefix("SIG")


# ---------------------------------------------------------------------------- checks at a key path

KeyPath = tuple[str, ...]
E = TypeVar("E", bound=StrEnum)


def show(value: object) -> str:
    """A value as the user wrote it in TOML, short enough for a one-line message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return repr(value)


# ------------------------------------------------------------------------------------ basic checks

def check_keys(table: Mapping[str, Any], path: KeyPath, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            import difflib  # only for a mistake's hint

            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            elif len(allowed) <= 8:
                hint = " (expected one of: " + ", ".join(allowed) + ")"
            else:
                hint = ""
            raise Invalid((*path, key), "unknown key" + hint)


def want_table(value: object, path: KeyPath) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(path, f"must be a table (got {show(value)})")
    return value


def want_str(value: object, path: KeyPath, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(path, f"must be a string (got {show(value)})")
    if not empty and not value.strip():
        raise Invalid(path, "must not be empty")
    if "\0" in value:
        raise Invalid(path, f"must not contain a NUL character (got {show(value)})")
    return value


def want_bool(value: object, path: KeyPath) -> bool:
    if not isinstance(value, bool):
        raise Invalid(path, f"must be true or false (got {show(value)})")
    return value


def want_int(value: object, path: KeyPath, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= minimum and (maximum is None or value <= maximum):
            return value
    rule = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    raise Invalid(path, f"must be an integer {rule} (got {show(value)})")


def want_enum(value: object, path: KeyPath, kind: type[E]) -> E:
    choices = [member.value for member in kind]
    if isinstance(value, str) and value in choices:
        return kind(value)
    listed = ", ".join(f'"{c}"' for c in choices)
    raise Invalid(path, f"must be one of {listed} (got {show(value)})")


def want_duration(value: object, path: KeyPath, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None
    if positive and seconds == 0:
        raise Invalid(path, f"must be longer than 0 (got {show(value)})")
    return seconds


def want_size(value: object, path: KeyPath) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise Invalid(path, str(exc)) from None


def want_command(value: object, path: KeyPath) -> tuple[str, ...]:
    """A list of strings, or one string split like a shell would (but never run by one)."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise Invalid(path, f"cannot split {show(value)} ({str(exc).lower()})") from None
    elif isinstance(value, list | tuple):
        words = list(value)
        for word in words:
            if not isinstance(word, str):
                raise Invalid(path, f"must be an array of strings (found {show(word)})")
    else:
        raise Invalid(path, f"must be an array of strings or a string (got {show(value)})")
    if not words or not words[0]:
        raise Invalid(path, "must not be empty (it needs at least the program to run)")
    return tuple(want_str(word, path, empty=True) for word in words)
