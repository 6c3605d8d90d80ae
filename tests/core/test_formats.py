"""The one formatter of numbers, times and reasons that the dashboard, `pmtop ps` and the daemon share."""

from __future__ import annotations

import pytest

from pmtop.core import formats as fmt
from pmtop.core.states import ProcessState

NOW = 1_000_000.0


@pytest.mark.parametrize("seconds, text", [(None, ""), (0, "0s"), (4, "4s"), (59.9, "59s"), (192, "3m12s"),
                                           (3600, "1h00m"), (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h"),
                                           (-5, "0s")])
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


@pytest.mark.parametrize("n, text", [(None, ""), (0, "0B"), (900, "900B"), (1024, "1K"), (25_270_000, "24.1M"),
                                     (54_300_000, "51.8M"), (150 * 1024**2, "150M"), (1_300_000_000, "1.2G"),
                                     (3 * 1024**5, "3072T")])
def test_size_reads_like_top(n: int | None, text: str) -> None:
    assert fmt.size(n) == text


def test_countdown() -> None:
    assert fmt.countdown(None, NOW) == ""
    assert fmt.countdown(NOW + 3.44, NOW) == "retry in 3.4s"
    assert fmt.countdown(NOW, NOW) == "retry now"
    assert fmt.countdown(NOW - 5, NOW) == "retry now", "overdue: the supervisor is about to act"
    assert fmt.countdown(NOW + 300, NOW) == "retry in 5m00s"


def test_the_live_reason_of_a_retrying_process_counts_down() -> None:
    retrying, reason = ProcessState.RETRYING, "exit 1 after 0.4s; retry 3/5"
    assert fmt.live_reason(reason, retrying, NOW + 3.44, NOW) == "exit 1 after 0.4s; retry 3/5 in 3.4s"
    assert fmt.live_reason(reason, retrying, NOW + 0.01, NOW) == "exit 1 after 0.4s; retry 3/5 now"
    assert fmt.live_reason(reason, "retrying", NOW + 90, NOW) == "exit 1 after 0.4s; retry 3/5 in 1m30s", \
        "the CLI passes the JSON's strings"
    forever = "exit 1 after 0.4s; retry 7, retrying forever"
    assert fmt.live_reason(forever, retrying, NOW + 2, NOW) == f"{forever} in 2.0s"


def test_the_live_reason_says_retry_when_the_reason_does_not() -> None:
    assert fmt.live_reason("health: HTTP 500", "retrying", NOW + 3.44, NOW) == "health: HTTP 500; retry in 3.4s"
    assert fmt.live_reason("", "retrying", NOW - 1, NOW) == "retry now"


def test_other_reasons_are_left_alone() -> None:
    assert fmt.live_reason("exit 1 after 0.4s; gave up after 5 consecutive failures", "failed", None, NOW) == \
        "exit 1 after 0.4s; gave up after 5 consecutive failures"
    assert fmt.live_reason("running", "running", NOW + 3, NOW) == "running", "a stale next_retry_at is ignored"
    assert fmt.live_reason("exit 1; retry 1/5", "retrying", None, NOW) == "exit 1; retry 1/5"


def test_uptime_only_while_a_run_is_in_progress() -> None:
    assert fmt.uptime_seconds("running", 42, NOW - 192, NOW) == 192
    assert fmt.uptime_seconds(ProcessState.STOPPING, 42, NOW - 1, NOW) == 1
    assert fmt.uptime_seconds("stopped", None, NOW - 100, NOW) is None
    assert fmt.uptime_seconds("crashed", 42, NOW - 100, NOW) is None
    assert fmt.uptime_seconds("starting", None, None, NOW) is None, "waiting for a dependency: nothing runs"


def test_small_formats() -> None:
    assert fmt.percent(None) == "" and fmt.percent(1.25) == "1.2" and fmt.percent(40) == "40.0"
    assert fmt.exit_code(-9) == "SIGKILL" and fmt.exit_code(3) == "3" and fmt.exit_code(None) == ""
    assert fmt.exit_code(-77) == "signal 77"
    assert fmt.ports((8000, 8001)) == "8000,8001" and fmt.ports(()) == ""
    assert fmt.truncate("abcdef", 4) == "abc…" and fmt.truncate("abc", 4) == "abc" and fmt.truncate("abc", 0) == ""
    assert fmt.precise_duration(0.44) == "0.4s" and fmt.precise_duration(192) == "3m12s"
    assert fmt.clock_time(None) == ""
