"""A browser session's dashboard process ends with the web server that started it.

Imported by the session process itself (`pmtop --web-session`), so it stays free of the server's
libraries.
"""

from __future__ import annotations

import os
import signal

PARENT_ENV = "PMTOP_WEB_PARENT"
"""The web server's PID, given to each session, to check that it did not already miss its death."""
PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """Have the kernel send SIGTERM when the web server dies, however it dies (Linux; elsewhere the
    dashboard ends when its output pipe breaks). The dashboard quits on SIGTERM."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here
        return
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and str(os.getppid()) != expected:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
