"""`ready_log_line`: watching a fresh run's output for the line that says it is ready.

Cost, by design: nothing for a process without the setting (its pipes are drained exactly as before; the
runner hands this matcher only to runs that have it), and nothing once the line has been seen (the
matcher lets go and the output goes straight to the log files again). While it waits, each chunk read
from a pipe is split into lines (per stream: a line may arrive in pieces) and each complete line is
searched once. A line longer than `logs.MAX_LINE` characters is searched in pieces of that size.
"""

from __future__ import annotations

import asyncio
import re

from .logs import MAX_LINE, decode_line

_MAX_PARTIAL = MAX_LINE * 4
"""Bytes of an unfinished line kept while waiting for its end."""


def shown(pattern: str) -> str:
    """How a reason line writes the pattern: `/listening on .*:8000/`."""
    return f"/{pattern}/"


class LogLineMatcher:
    """Finds the first line of stdout or stderr that matches `pattern`; `matched` resolves with it."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._partial: dict[str, bytes] = {}
        self.matched: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self.matched.done()

    def feed(self, stream: str, data: bytes) -> bool:
        """Search the complete lines of `data` (after what `stream` left unfinished); True once matched."""
        if self.matched.done():
            return True
        parts = (self._partial.get(stream, b"") + data).split(b"\n")
        rest = parts.pop()
        if len(rest) > _MAX_PARTIAL:  # a huge line without its newline yet: search what there is
            parts.append(rest)
            rest = b""
        self._partial[stream] = rest
        search = self._regex.search
        for raw in parts:
            line = decode_line(raw)
            if search(line) is not None:
                self.matched.set_result(line)
                self._partial.clear()
                return True
        return False

    def close(self) -> None:
        """The run ended (or the runner let go): nothing more will be fed."""
        self._partial.clear()
        if not self.matched.done():
            self.matched.cancel()
