"""`ready_log_line`: watching a fresh run's output for the line that says it is ready.

Cost, by design: nothing for a process without the setting (its pipes are drained exactly as before; the
runner hands this matcher only to runs that have it), and nothing once the line has been seen (the
matcher lets go and the output goes straight to the log files again). While it waits, the complete
lines of each chunk read from a pipe (per stream: a line may arrive in pieces) are decoded once and
searched in one pass of the regex engine. A line is searched up to `logs.MAX_LINE` characters, as the
log views show it.
"""

from __future__ import annotations

import asyncio
import re

from .logs import MAX_LINE

_MAX_PARTIAL = MAX_LINE * 4
"""Bytes of an unfinished line kept while waiting for its end."""


def shown(pattern: str) -> str:
    """How a reason line writes the pattern: `/listening on .*:8000/`."""
    return f"/{pattern}/"


class LogLineMatcher:
    """Finds the first line of stdout or stderr that matches `pattern`; `matched` resolves with it.

    Each chunk's complete lines are decoded once and searched in one pass (`re.MULTILINE`, so `^` and
    `$` are line boundaries); a hit is confirmed against its own line alone, so a pattern that could
    span lines (`\\s` matches a newline) still matches per line, as the setting promises.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._line = re.compile(pattern)
        self._lines = re.compile(pattern, re.MULTILINE)
        self._partial: dict[str, bytes] = {}
        self.matched: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self.matched.done()

    def feed(self, stream: str, data: bytes) -> bool:
        """Search the complete lines of `data` (after what `stream` left unfinished); True once matched."""
        if self.matched.done():
            return True
        buffer = self._partial.get(stream, b"") + data
        cut = buffer.rfind(b"\n")
        if cut < 0 and len(buffer) <= _MAX_PARTIAL:
            self._partial[stream] = buffer
            return False
        if cut < 0:  # a huge line without its newline yet: search what there is
            complete, self._partial[stream] = buffer, b""
        else:
            complete, self._partial[stream] = buffer[:cut], buffer[cut + 1:]
        text = (complete + b"\n").decode("utf-8", "replace").replace("\r\n", "\n")[:-1]  # CRLF lines too
        position = 0
        while (hit := self._lines.search(text, position)) is not None:
            start = text.rfind("\n", 0, hit.start()) + 1
            end = text.find("\n", hit.start())
            end = len(text) if end < 0 else end
            line = text[start:end].rstrip("\r")[:MAX_LINE]
            if self._line.search(line) is not None:
                self.matched.set_result(line)
                self._partial.clear()
                return True
            position = end + 1
            if position > len(text):
                break
        return False

    def close(self) -> None:
        """The run ended (or the runner let go): nothing more will be fed."""
        self._partial.clear()
        if not self.matched.done():
            self.matched.cancel()
