"""`GET /metrics`: process statuses in the Prometheus text exposition format, version 0.0.4.

A pure function of the statuses and the clock, so it is tested without a server. Every metric has
its HELP and TYPE lines even when there is no process, so a scraper sees a stable schema.

Choices where the format leaves room:
- `pmtop_process_state` is one-hot over all eight states, so `pmtop_process_state{state="failed"} == 1`
  is an alert rule and a state change never makes a series vanish;
- `pmtop_process_healthy` is 1 or 0 and left out while health is `unknown` (no check configured, or
  not probed yet): a missing sample means "no data", never a false "unhealthy";
- uptime is 0 when the process is not up; CPU and memory are left out until they are sampled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Final

from ..model import Health, ProcessState, ProcessStatus
from ..states import UP_STATES

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


Sample = Callable[[ProcessStatus, float], float | None]

#: name, type, help, value (None: leave the sample out).
_METRICS: Final[tuple[tuple[str, str, str, Sample], ...]] = (
    (
        "pmtop_process_restarts_total", "counter",
        "Restarts made by the restart policy since the supervisor began managing the process.",
        lambda s, now: float(s.restarts),
    ),
    (
        "pmtop_process_uptime_seconds", "gauge",
        "Seconds since the current run started; 0 when the process is not up.",
        lambda s, now: max(0.0, now - s.started_at) if s.started_at is not None and s.state in UP_STATES
        else 0.0,
    ),
    (
        "pmtop_process_healthy", "gauge",
        "1 when the last health check passed, 0 when the process is unhealthy; absent while unknown.",
        lambda s, now: None if s.health is Health.UNKNOWN else float(s.health is Health.HEALTHY),
    ),
    (
        "pmtop_process_cpu_percent", "gauge",
        "CPU use of the process tree in percent of one core.",
        lambda s, now: s.cpu_percent,
    ),
    (
        "pmtop_process_memory_rss_bytes", "gauge",
        "Resident memory of the process tree in bytes.",
        lambda s, now: None if s.memory_rss is None else float(s.memory_rss),
    ),
)


def escape_label(value: str) -> str:
    """Label values escape backslash, double quote and line feed (and nothing else)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def render(statuses: Iterable[ProcessStatus], now: float | None = None) -> str:
    """The whole exposition, one family after another, ending with a newline."""
    current = time.time() if now is None else now
    items = list(statuses)
    lines = [
        "# HELP pmtop_process_state 1 for the state the process is in, 0 for the other seven.",
        "# TYPE pmtop_process_state gauge",
    ]
    for status in items:
        name = escape_label(status.name)
        for state in ProcessState:
            lines.append(f'pmtop_process_state{{name="{name}",state="{state.value}"}} {int(status.state is state)}')
    for metric, kind, help_text, sample in _METRICS:
        lines.append(f"# HELP {metric} {_escape_help(help_text)}")
        lines.append(f"# TYPE {metric} {kind}")
        for status in items:
            value = sample(status, current)
            if value is not None:
                lines.append(f'{metric}{{name="{escape_label(status.name)}"}} {format_value(value)}')
    return "\n".join(lines) + "\n"
