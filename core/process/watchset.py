"""`watch = {...}`: which changed files concern a process, and one restart per burst of changes (SPEC §11).

Paths are globs relative to the process's `cwd` (`src/**/*.py`), or folders and files (everything under
them). `**` matches any number of folders, `*` and `?` stay within one, `[...]` is a class, as in
gitignore and process-compose. Each glob is watched from its longest folder without wildcards, so
`src/**/*.py` costs watches on `src` only.

The debounce is trailing with a ceiling: a restart comes `debounce` after the last change of a burst,
and at the latest `BURST_CEILING` debounces after its first change, so an editor's save-rename-chmod
dance or a `git checkout` of many files restarts the process once, and a file written non-stop (a log
someone forgot to ignore) cannot keep it from restarting forever. (process-compose's watch restarts on
every event.)
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from ..model import WatchSpec

BURST_CEILING: Final = 5
"""A burst restarts the process at the latest this many debounce windows after its first change."""
_GLOB_CHARS: Final = frozenset("*?[")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A gitignore-like glob as a regex over `/`-separated absolute paths."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[!", i) or pattern.startswith("[]", i) else i + 1)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z")


def _root_of(pattern: str) -> str:
    """The longest leading folder of an absolute glob that has no wildcard: where watching starts."""
    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    root = "/".join(fixed) or "/"
    if len(fixed) == len(parts):  # no wildcard at all: a folder, or a file watched through its folder
        return root if os.path.isdir(root) else (os.path.dirname(root) or "/")
    return root


def _absolute(pattern: str, cwd: str) -> str:
    path = os.path.expanduser(pattern)
    return os.path.normpath(os.path.join(cwd, path)).replace(os.sep, "/")


@dataclass(frozen=True, slots=True)
class WatchRule:
    """One process's `watch`, resolved against its folder."""

    roots: tuple[str, ...]
    """Absolute folders to watch (recursively)."""
    patterns: tuple[re.Pattern[str], ...]
    ignored: tuple[re.Pattern[str], ...]
    cwd: str

    def matches(self, path: str) -> bool:
        path = path.replace(os.sep, "/")
        if not any(p.match(path) for p in self.patterns):
            return False
        return not any(p.match(path) for p in self.ignored)

    def relative(self, path: str) -> str:
        """How a reason names the file: relative to the process's folder when inside it."""
        rel = os.path.relpath(path, self.cwd)
        return path if rel.startswith("..") else rel


def compile_rule(spec: WatchSpec, cwd: str) -> WatchRule:
    absolute = [_absolute(p, cwd) for p in spec.paths]
    ignored = []
    for pattern in spec.ignore:  # a bare name (`*.log`, `tmp`) is ignored at any depth, as in gitignore
        relative = "/" not in pattern.rstrip("/")
        ignored.append(glob_to_regex(_absolute("**/" + pattern if relative else pattern, cwd)))
    return WatchRule(
        roots=tuple(dict.fromkeys(_root_of(p) for p in absolute)),
        patterns=tuple(glob_to_regex(p) for p in absolute),
        ignored=tuple(ignored),
        cwd=cwd,
    )


def minimal_roots(roots: Iterable[str]) -> list[str]:
    """Drop every root inside another: one recursive watch covers it."""
    kept: list[str] = []
    for root in sorted(set(roots), key=len):
        if not any(root == k or root.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(root)
    return sorted(kept)


class Debouncer:
    """Gathers changed paths and calls `fire(paths)` once per burst (see the module docstring)."""

    def __init__(self, debounce: float, fire: Callable[[list[str]], None]) -> None:
        self.debounce = debounce
        self._fire = fire
        self._paths: dict[str, None] = {}
        self._opened = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def feed(self, paths: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._paths:
            self._opened = now
        self._paths.update(dict.fromkeys(paths))
        if self._handle is not None:
            self._handle.cancel()
        deadline = min(now + self.debounce, self._opened + BURST_CEILING * max(self.debounce, 0.1))
        self._handle = loop.call_at(deadline, self._flush)

    def _flush(self) -> None:
        self._handle = None
        paths, self._paths = list(self._paths), {}
        if paths:
            self._fire(paths)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._paths = {}


class WatchSet:
    """Every watched process's rule and debouncer over the supervisor's one `FileWatcher`."""

    def __init__(self, restart: Callable[[str, list[str]], None], *, ignore_paths: Iterable[str] = (),
                 on_error: Callable[[str], None] | None = None) -> None:
        """`restart(name, paths)`: a burst of changes concerns `name` (paths relative to its folder)."""
        from ..system.filewatch import FileWatcher

        self._restart = restart
        self._rules: dict[str, tuple[WatchRule, Debouncer]] = {}
        self.watcher = FileWatcher(self._changed, ignore_paths=ignore_paths, on_error=on_error)

    @property
    def names(self) -> set[str]:
        return set(self._rules)

    async def update(self, specs: dict[str, tuple[WatchSpec, str]]) -> None:
        """Watch exactly these processes (name -> (watch, cwd)); an unchanged rule keeps its burst."""
        for name in list(self._rules):
            if name not in specs:
                self._rules.pop(name)[1].cancel()
        for name, (spec, cwd) in specs.items():
            rule = compile_rule(spec, cwd)
            kept = self._rules.get(name)
            if kept is not None and kept[0] == rule and kept[1].debounce == spec.debounce:
                continue
            if kept is not None:
                kept[1].cancel()
            self._rules[name] = (rule, Debouncer(spec.debounce, self._firing(name, rule)))
        await self.watcher.set_roots(minimal_roots(r for rule, _ in self._rules.values() for r in rule.roots))

    def _firing(self, name: str, rule: WatchRule) -> Callable[[list[str]], None]:
        return lambda paths: self._restart(name, [rule.relative(p) for p in paths])

    def _changed(self, paths: set[str]) -> None:
        for rule, debouncer in self._rules.values():
            matched = [p for p in paths if rule.matches(p)]
            if matched:
                debouncer.feed(sorted(matched))

    async def aclose(self) -> None:
        for _, debouncer in self._rules.values():
            debouncer.cancel()
        self._rules.clear()
        await self.watcher.aclose()
