"""The dashboard's one entry point for the CLI: `run_app`.

The CLI decides local or attached mode, builds the controller (the in-process `Supervisor`, or the
HTTP client of a running daemon), checks `--theme` early with `check_theme`, and then awaits
`run_app` in its own event loop. The dashboard never stops, hands over or adopts processes itself:
it reports the user's choice, and the caller acts on it in `on_quit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from textual.app import App

from pmtop.core.controller import Controller

from .app import Mode, OnQuit, PmtopApp
from .screens.quit import QuitChoice

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def run_app(
    controller: Controller,
    *,
    mode: Mode,
    theme: str | None = None,
    read_only: bool = False,
    on_quit: OnQuit | None = None,
    exit_signals: Sequence[signal.Signals] = EXIT_SIGNALS,
) -> QuitChoice:
    """Run the dashboard until the user quits; return how they chose to quit.

    Awaited inside the caller's event loop (the one the in-process supervisor runs on). `on_quit(choice)`
    is awaited exactly once before this returns: while the dashboard still shows (the user watches the
    processes stop), or, if the dashboard ended another way (an error, or one of `exit_signals`:
    SIGTERM, or SIGHUP when the terminal goes away), afterwards, with the safe default (`STOP_ALL`
    locally, `DETACH` attached or over a fleet). If `on_quit` raises `PmtopError` while the dashboard shows, the message
    is shown and the dashboard stays. Raises `ThemeError` for an unknown `theme`. While it runs, the
    asyncio handlers of `exit_signals` are its own (pass `()` to keep yours).
    """
    app = PmtopApp(controller, mode=mode, theme=theme, read_only=read_only, on_quit=on_quit)
    with ends_on_signals(app, exit_signals):
        result = await app.run_async()
    if app.quit_handled and result is not None:
        return result
    choice = QuitChoice.STOP_ALL if mode == "local" else QuitChoice.DETACH
    if on_quit is not None:
        await on_quit(choice)
    return choice


@contextmanager
def ends_on_signals(app: App[Any], signals: Sequence[signal.Signals]) -> Iterator[None]:
    """While inside, each of `signals` ends the app (as `app.exit()`; handlers only record, the caller acts)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, (lambda: terminal_gone(app)) if sig == signal.SIGHUP else app.exit)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def terminal_gone(app: App[Any]) -> None:
    """SIGHUP: the terminal went away. End the app without ever blocking on the dead terminal.

    Writing to a hung-up terminal fails (EIO), and the first failed write ends Textual's writer thread;
    its queue then fills, and the app's shutdown (which queues one more write and joins the thread)
    would block the event loop, and with it the supervisor, for good. So: the standard streams go to
    /dev/null first (later writes succeed and vanish), and if the writer thread already died, a thread
    of ours empties its queue once it has (a write in flight may still fail after the redirection).
    (Textual's writer is private: looked up defensively, skipped if absent.)
    """
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.dup2(null, fd)
    os.close(null)
    writer = getattr(getattr(app, "_driver", None), "_writer_thread", None)
    queue = getattr(writer, "_queue", None)
    if isinstance(writer, threading.Thread) and queue is not None:
        def discard() -> None:
            writer.join()  # (ended by an EIO, or normally: then nothing more is queued)
            while True:
                queue.get()

        threading.Thread(target=discard, name="pmtop-hung-up-output", daemon=True).start()
    app.exit()
