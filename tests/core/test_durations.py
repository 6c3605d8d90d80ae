"""Durations, sizes and signals: exact values in, exact values (or a quoted refusal) out."""

from __future__ import annotations

import math
import re
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmtop.core.values import format_duration, format_signal, format_size, parse_duration, parse_signal, parse_size

DETERMINISTIC = settings(derandomize=True, max_examples=300, deadline=None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (2, 2.0),
        (1.5, 1.5),
        ("0s", 0.0),
        ("250ms", 0.25),
        ("100ms", 0.1),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("6h", 21600.0),
        ("1d", 86400.0),
        ("3", 3.0),
        ("0.5", 0.5),
        (" 2s ", 2.0),
        ("2 s", 2.0),
        ("2S", 2.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    [-1, -0.5, math.nan, math.inf, "", "   ", "s", "1x", "5 parsecs", "-1s", "1.2.3s", "1e3s", "ms5",
     True, False, None, ["1s"], {"s": 1}],
)
def test_parse_duration_refuses_and_quotes_the_value(value: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid duration {value!r} (")):
        parse_duration(value)


def test_parse_duration_message_shape() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("5 parsecs")
    assert str(info.value) == "invalid duration '5 parsecs' (use seconds or a number with ms, s, m, h, d)"
    with pytest.raises(ValueError) as info:
        parse_duration("-2s")
    assert str(info.value) == "invalid duration '-2s' (must not be negative)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0s"), (2.0, "2s"), (90.0, "90s"), (300.0, "5m"), (21600.0, "6h"), (172800.0, "2d"),
     (0.25, "250ms"), (0.1, "100ms"), (1.5, "1.5s"), (1.2345, "1.2345s"), (0.0001, "0.0001s"), (1e-7, 1e-7)],
)
def test_format_duration(seconds: float, text: str | float) -> None:
    assert format_duration(seconds) == text


@DETERMINISTIC
@given(st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_format_duration_round_trips_exactly(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (512, 512),
        (1e6, 1_000_000),
        ("512", 512),
        ("0", 0),
        ("100B", 100),
        ("10KB", 10 * 1024),
        ("10kb", 10 * 1024),
        ("10K", 10 * 1024),
        ("10KiB", 10 * 1024),
        ("10MB", 10 * 1024**2),
        ("10 MiB", 10 * 1024**2),
        ("1GB", 1024**3),
        ("1g", 1024**3),
        ("1.5KB", 1536),
    ],
)
def test_parse_size_accepts(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    "value", [-1, -1.0, 1.5, math.nan, math.inf, "", "MB", "10 parsecs", "10XB", "-1KB", "1,5MB", True, None, [1]]
)
def test_parse_size_refuses_and_quotes_the_value(value: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid size {value!r} (")):
        parse_size(value)


def test_parse_size_message_shape() -> None:
    with pytest.raises(ValueError) as info:
        parse_size("10 parsecs")
    assert str(info.value) == "invalid size '10 parsecs' (use a number of bytes or a number with KB, MB, GB)"


@DETERMINISTIC
@given(st.integers(min_value=0, max_value=2**50))
def test_format_size_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size


def test_format_size_prefers_units() -> None:
    assert format_size(10 * 1024**2) == "10MB"
    assert format_size(3 * 1024**3) == "3GB"
    assert format_size(2048) == "2KB"
    assert format_size(1000) == 1000
    assert format_size(0) == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TERM", signal.SIGTERM),
        ("SIGTERM", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("sigint", signal.SIGINT),
        (" HUP ", signal.SIGHUP),
        ("KILL", signal.SIGKILL),
        (15, signal.SIGTERM),
        ("2", signal.SIGINT),
        (signal.SIGQUIT, signal.SIGQUIT),
    ],
)
def test_parse_signal_accepts(value: object, expected: signal.Signals) -> None:
    assert parse_signal(value) is expected


@pytest.mark.parametrize("value", ["TREM", "SIG", "", "SIG_DFL", 0, 99999, -15, True, None, 1.5])
def test_parse_signal_refuses(value: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid signal {value!r} (")):
        parse_signal(value)


@pytest.mark.parametrize("sig", list(signal.Signals))
def test_format_signal_round_trips(sig: signal.Signals) -> None:
    assert parse_signal(format_signal(sig)) is sig
    assert not format_signal(sig).startswith("SIG")
