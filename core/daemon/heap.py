"""Handing the heap that start-up used and freed back to the OS, once.

A daemon's start-up (imports, config parsing, the first registry save, run folder pruning) allocates
and frees a few megabytes that the daemon will not need again. glibc keeps freed heap pages for reuse,
so they stay in its RSS; `malloc_trim(0)` returns them. Done once, a little after the API serves.
"""

from __future__ import annotations

import gc
from typing import Final

STARTUP_TRIM_DELAY: Final = 1.0
"""Seconds after the API serves until start-up's freed memory is handed back (once)."""


def return_free_memory() -> None:
    """Collect garbage, then return free heap pages to the OS (glibc's `malloc_trim`; nothing
    elsewhere). ctypes costs about 0.3 MB of what it saves, so it is imported only here."""
    gc.collect()
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, ImportError):  # not glibc, or no ctypes
        return
    trim(0)
