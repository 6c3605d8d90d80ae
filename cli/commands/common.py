"""What every client command shares: the daemon it talks to, and how it prints.

Every command either succeeds (exit 0, its output on stdout: an aligned table, or JSON on request), or
prints exactly one line `Error: ...` on stderr and exits non-zero (mapped once, in `cli/main.py`).
Nothing here imports Textual, httpx or aiohttp, and `pmtop ps`'s path imports no more than it needs:
it must finish in 100 ms.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pmtop.core.errors import ActionRefused, ApiError, PmtopError

from .. import output
from ..locate import Target, locate

TYPE_CHECKING = False
if TYPE_CHECKING:  # (not `typing.TYPE_CHECKING`: importing typing alone costs `pmtop ps` ~4 ms)
    import argparse
    from typing import Any, Final

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_BROKEN_PIPE: Final = 141
"""128 + SIGPIPE, what a shell reports for a program whose reader went away (`pmtop logs x | head`)."""


def exit_code(exc: PmtopError) -> int:
    """1 when there is no daemon, no such process, or the daemon refuses (401/403/409); 2 for a bad
    command line, config or request (400/413/422), and a port that is taken."""
    if isinstance(exc, ApiError):
        return EXIT_USAGE if exc.status in (400, 413, 422) else EXIT_ERROR
    return EXIT_USAGE if exc.code in ("config_invalid", "usage", "port_in_use") else EXIT_ERROR


def fail(exc: PmtopError) -> int:
    """The one line on stderr, and the exit code."""
    print(f"Error: {' '.join(exc.message.split())}", file=sys.stderr, flush=True)
    return exit_code(exc)


def target_of(args: argparse.Namespace) -> Target:
    return locate(
        instance=getattr(args, "instance", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        token_file=getattr(args, "token_file", None),
        config=getattr(args, "config", None),
    )


def emit(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    """Indented for a person at a terminal; one compact line for a program (the C encoder, which
    `indent` would swap for the pure-Python one: ~10 ms more for `pmtop ps --json` at 200)."""
    emit(json.dumps(data, indent=2) if sys.stdout.isatty() else json.dumps(data, separators=(",", ":")))


def colour() -> bool:
    return output.use_colour(sys.stdout)


def terminal_width() -> int | None:
    if not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


def json_option(parser: argparse.ArgumentParser, help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def write_new(path: Path, text: str, *, force: bool = False, why: str) -> None:
    """Write a file that must not exist yet (`init`, `import` never overwrite a config); `why` ends
    the refusal: `pmtop init never overwrites a config`."""
    try:
        with open(path, "w" if force else "x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        raise ActionRefused(f"{path} already exists; {why}") from None
    except OSError as exc:
        raise ActionRefused(f"cannot write {path}: {exc.strerror or exc}") from None
