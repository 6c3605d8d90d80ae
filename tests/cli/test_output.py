"""What the client commands print, without a daemon: rows, live countdowns, alignment and colour.

(The numbers themselves are `pmtop.core.formats`, tested in tests/core/test_formats.py.)"""

from __future__ import annotations

import io
import re

from pmtop.cli import output
from pmtop.core.model import Health, ProcessState, ProcessStatus

NOW = 1_000_000.0


def status(**kw: object) -> dict[str, object]:
    base = ProcessStatus(name="web", state=ProcessState.RUNNING)
    return {**base.to_dict(), **kw}


def test_row_of_a_running_process() -> None:
    s = status(pid=42, ports=[8000, 8001], health=str(Health.HEALTHY), restarts=2, started_at=NOW - 192,
               cpu_percent=1.25, memory_rss=25_270_000, reason="running")
    assert output.row(s, NOW) == ["web", "running", "42", "8000,8001", "healthy", "2", "3m12s", "1.2", "24.1M",
                                  "running"], "numbers read as in the dashboard"


def test_a_stopped_process_has_no_uptime() -> None:
    assert output.row(status(state="stopped", started_at=NOW - 100), NOW)[2:9] == ["-", "-", "unknown", "0", "-",
                                                                                    "-", "-"]


def test_retrying_countdown_is_computed_from_next_retry_at() -> None:
    s = status(state="retrying", next_retry_at=NOW + 3.44, reason="exit 1 after 0.4s; retry 3/5")
    assert output.reason_cell(s, NOW) == "exit 1 after 0.4s; retry 3/5 in 3.4s"
    assert output.reason_cell(s, NOW + 4) == "exit 1 after 0.4s; retry 3/5 now"
    s = status(state="retrying", next_retry_at=NOW + 3.44, reason="health: HTTP 500")
    assert output.reason_cell(s, NOW) == "health: HTTP 500; retry in 3.4s"
    assert output.status_lines([status(state="retrying", next_retry_at=NOW + 1, reason="exit 2; retry 1/5")],
                               now=NOW) == "web  retrying  -  exit 2; retry 1/5 in 1.0s"


def test_table_is_aligned_and_colour_does_not_shift_columns() -> None:
    statuses = [status(name="a", state="running", pid=1), status(name="longer-name", state="failed", reason="x")]
    plain = output.process_table(statuses, now=NOW)
    coloured = output.process_table(statuses, now=NOW, colour=True)
    assert "\x1b" not in plain
    assert "\x1b[32mrunning" in coloured and "\x1b[1;31mfailed" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    lines = plain.splitlines()
    column = lines[0].index("STATE")
    assert [line[column:].split()[0] for line in lines] == ["STATE", "running", "failed"]


def test_the_last_column_is_cut_to_the_width() -> None:
    text = output.process_table([status(reason="x" * 500)], now=NOW, width=100)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert text.endswith("…")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_for_a_terminal_without_no_color() -> None:
    assert output.use_colour(Tty(), {}) is True
    assert output.use_colour(Tty(), {"NO_COLOR": "1"}) is False
    assert output.use_colour(Tty(), {"NO_COLOR": ""}) is True, "an empty NO_COLOR is unset (no-color.org)"
    assert output.use_colour(io.StringIO(), {}) is False


def test_counts_line() -> None:
    assert output.counts_line({"running": 3, "stopped": 0, "failed": 1}, 4) == "4: 3 running, 1 failed"
    assert output.counts_line({}, 0) == "0"
