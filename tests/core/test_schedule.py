"""Schedules as pure functions of a given time and zone: cron, `every`, daylight saving, missed runs.

Every time here is a fixed moment in a named zone: the machine's clock and zone never enter.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pmtop.core.schedule import (
    CronSchedule,
    IntervalSchedule,
    local_zone,
    missed_between,
    parse_schedule,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=zone, fold=fold).timestamp()  # type: ignore[misc]


def walk(rule: str, zone: ZoneInfo, start: float, count: int) -> list[str]:
    """The next `count` times after `start`, as local wall-clock text with the UTC offset."""
    schedule = parse_schedule(rule, zone)
    out, t = [], start
    for _ in range(count):
        t = schedule.next_after(t)
        out.append(datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M%z"))
    return out


def test_every_five_minutes() -> None:
    assert walk("*/5 * * * *", BERLIN, at(BERLIN, 2024, 5, 1, 12, 3), 3) == [
        "05-01 12:05+0200", "05-01 12:10+0200", "05-01 12:15+0200"]


def test_next_is_strictly_after() -> None:
    schedule = parse_schedule("0 * * * *", BERLIN)
    noon = at(BERLIN, 2024, 5, 1, 12, 0)
    assert schedule.next_after(noon) == at(BERLIN, 2024, 5, 1, 13, 0)
    assert schedule.next_after(noon - 0.5) == noon


def test_aliases() -> None:
    assert walk("@daily", BERLIN, at(BERLIN, 2024, 5, 1, 12), 2) == ["05-02 00:00+0200", "05-03 00:00+0200"]
    assert walk("@hourly", BERLIN, at(BERLIN, 2024, 5, 1, 12, 30), 1) == ["05-01 13:00+0200"]


# -- spring forward: 02:00 -> 03:00 (Berlin 2024-03-31, New York 2024-03-10) ----------------------------

def test_spring_forward_fixed_time_runs_once_right_after_the_jump() -> None:
    """02:30 does not exist that day: the job runs at 03:00, once (as Vixie cron does), then as usual."""
    assert walk("30 2 * * *", BERLIN, at(BERLIN, 2024, 3, 30, 12), 3) == [
        "03-31 03:00+0200", "04-01 02:30+0200", "04-02 02:30+0200"]
    assert walk("30 2 * * *", NEW_YORK, at(NEW_YORK, 2024, 3, 9, 12), 2) == [
        "03-10 03:00-0400", "03-11 02:30-0400"]


def test_spring_forward_interval_job_keeps_real_intervals() -> None:
    assert walk("*/30 * * * *", BERLIN, at(BERLIN, 2024, 3, 31, 1, 10), 3) == [
        "03-31 01:30+0100", "03-31 03:00+0200", "03-31 03:30+0200"]


# -- fall back: 03:00 -> 02:00 (Berlin 2024-10-27, New York 2024-11-03 at 02:00 -> 01:00) -------------

def test_fall_back_fixed_time_runs_once() -> None:
    """02:30 happens twice that night: a job at a fixed time of day runs at the first one only."""
    assert walk("30 2 * * *", BERLIN, at(BERLIN, 2024, 10, 26, 12), 3) == [
        "10-27 02:30+0200", "10-28 02:30+0100", "10-29 02:30+0100"]
    assert walk("30 1 * * *", NEW_YORK, at(NEW_YORK, 2024, 11, 2, 12), 2) == [
        "11-03 01:30-0400", "11-04 01:30-0500"]


def test_fall_back_wildcard_hour_runs_in_both_copies_of_the_hour() -> None:
    """`0 * * * *` and `*/30` keep their real interval through the repeated hour."""
    assert walk("0 * * * *", BERLIN, at(BERLIN, 2024, 10, 27, 0, 30), 4) == [
        "10-27 01:00+0200", "10-27 02:00+0200", "10-27 02:00+0100", "10-27 03:00+0100"]
    assert walk("*/30 * * * *", BERLIN, at(BERLIN, 2024, 10, 27, 1, 50), 4) == [
        "10-27 02:00+0200", "10-27 02:30+0200", "10-27 02:00+0100", "10-27 02:30+0100"]


def test_fixed_time_from_inside_the_repeated_hour() -> None:
    """Starting between the two 02:30s, the second one is not run: next is the day after."""
    between = at(BERLIN, 2024, 10, 27, 2, 45)  # the first 02:45 (CEST)
    assert walk("30 2 * * *", BERLIN, between, 1) == ["10-28 02:30+0100"]
    second = at(BERLIN, 2024, 10, 27, 2, 10, fold=1)  # 02:10 CET, after the clocks went back
    assert walk("30 2 * * *", BERLIN, second, 1) == ["10-28 02:30+0100"]


def test_day_of_week_and_month_ranges() -> None:
    friday = at(BERLIN, 2024, 5, 3, 18)  # a Friday
    assert walk("0 9 * * mon-fri", BERLIN, friday, 2) == ["05-06 09:00+0200", "05-07 09:00+0200"]


# -- every -------------------------------------------------------------------------------------------

def test_every_is_anchored_real_time() -> None:
    schedule = parse_schedule("every 30s")
    assert isinstance(schedule, IntervalSchedule)
    anchored = schedule.anchored(1000.0)
    assert anchored.next_after(1000.0) == 1030.0
    assert anchored.next_after(1029.9) == 1030.0
    assert anchored.next_after(1075.0) == 1090.0
    assert parse_schedule("every 1m30s").seconds == 90  # type: ignore[union-attr]
    assert parse_schedule("every 2 h").seconds == 7200  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "words"), [
    ("", "use 5 cron fields"),
    ("every", "every what?"),
    ("every 0.5s", "the shortest is every 1s"),
    ("every soon", "invalid duration"),
    ("* * * *", "cron needs 5 fields"),
    ("* * * * * *", "seconds or years are not supported"),
    ("61 * * * *", "out of range"),
    ("H * * * *", "hashed H fields"),
    ("* * * * funday", "invalid schedule"),
])
def test_bad_schedules_say_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match="invalid schedule") as info:
        parse_schedule(text, BERLIN)
    assert words in str(info.value)


# -- missed runs ---------------------------------------------------------------------------------------

def test_missed_cron_runs_are_counted() -> None:
    schedule = parse_schedule("*/5 * * * *", BERLIN)
    missed = missed_between(schedule, at(BERLIN, 2024, 5, 1, 12, 3), at(BERLIN, 2024, 5, 1, 12, 21))
    assert missed is not None and missed.count == 4 and not missed.capped  # 12:05, :10, :15, :20
    assert missed.last == at(BERLIN, 2024, 5, 1, 12, 20)
    assert missed_between(schedule, at(BERLIN, 2024, 5, 1, 12, 5), at(BERLIN, 2024, 5, 1, 12, 9)) is None
    assert "missed 4 scheduled runs while pmtop was not running" in missed.describe()


def test_missed_runs_are_capped() -> None:
    schedule = parse_schedule("* * * * *", BERLIN)
    missed = missed_between(schedule, at(BERLIN, 2024, 5, 1), at(BERLIN, 2024, 5, 3))
    assert missed is not None and missed.capped and missed.count == 1000
    assert "1000+ scheduled runs" in missed.describe()


def test_missed_interval_runs() -> None:
    schedule = parse_schedule("every 30s")
    missed = missed_between(schedule, 1000.0, 1095.0)
    assert missed is not None and missed.count == 3 and missed.last == 1090.0
    assert missed_between(schedule, 1000.0, 1029.0) is None


def test_local_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    zone = local_zone()
    assert datetime(2024, 7, 1, tzinfo=zone).utcoffset() != datetime(2024, 1, 1, tzinfo=zone).utcoffset(), \
        "the local zone has its daylight-saving rules (not a fixed offset)"
    schedule = parse_schedule("0 12 * * *")
    assert isinstance(schedule, CronSchedule)
    assert datetime.fromtimestamp(schedule.next_after(at(NEW_YORK, 2024, 7, 1)), NEW_YORK).hour == 12
