"""Every `pmtop COMMAND` in one table: its help, its arguments and what runs it, declared together.

A command is a function decorated with `@command(...)` in a module of `cli/commands/`; the decorator
records it here, and `cli/main.py` builds the argument parser from this table and dispatches through
it. So a new command is one function and its arguments, in one place (plus its tests and README).

Cheap on purpose (no `dataclasses`, no `typing` at run time): every `pmtop` invocation loads it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Final

    Run = Callable[[argparse.Namespace], int]
    Arguments = Callable[[argparse.ArgumentParser], None]


class Command:
    __slots__ = ("name", "help", "run", "arguments", "common", "rest", "description")

    def __init__(self, name: str, help: str, run: Run, arguments: Arguments | None, *, common: bool,
                 rest: bool, description: str | None) -> None:
        self.name = name
        self.help = help
        self.run = run
        self.arguments = arguments
        """Adds the command's own arguments to its parser."""
        self.common = common
        """Takes the options that pick the daemon (`--config`, `--instance`, `--host`, `--port`, `--token-file`)."""
        self.rest = rest
        """Everything after `--` is the command's `argv` (a command line to run, never through a shell)."""
        self.description = description


REGISTRY: Final[dict[str, Command]] = {}
"""Command name -> its declaration, in the order `pmtop --help` lists them."""


def command(*names: str, help: str, arguments: Arguments | None = None, common: bool = True, rest: bool = False,
            description: str | None = None) -> Callable[[Run], Run]:
    """Register the decorated function as `pmtop NAME` (several names: the same function for each,
    which reads `args.command` to know which it is)."""

    def register(run: Run) -> Run:
        for name in names:
            if name in REGISTRY:
                raise ValueError(f"pmtop {name} is declared twice")
            REGISTRY[name] = Command(name, help.format(name=name), run, arguments, common=common, rest=rest,
                                     description=description)
        return run

    return register
