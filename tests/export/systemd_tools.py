"""Running the real systemd on exported units, in a container with no systemd running.

`systemd-analyze verify` checks units offline. To learn what systemd *reads* from them (each argv word of
`ExecStart=` after its unquoting, each `Environment=` value), `systemd --test --user` loads the units into a
user manager that starts nothing and dumps its view; it refuses to run as root, so as root it runs as
`nobody` (setpriv) over a world-readable copy of the units.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SYSTEMD = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.path.exists(p)), None)
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
needs_systemd = pytest.mark.skipif(SYSTEMD is None or (os.geteuid() == 0 and shutil.which("setpriv") is None),
                                   reason="no systemd binary (or no setpriv to leave root)")


def write_units(files: Mapping[str, str]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pmtop-units-"))
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of every unit in `folder` (system mode: user mode needs a runtime dir)."""
    units = sorted(str(p) for p in folder.iterdir())
    return subprocess.run([str(ANALYZE), "verify", "--man=no", *units], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "info"})


@dataclass
class LoadedUnit:
    commands: dict[str, list[list[str]]] = field(default_factory=dict)
    """`ExecStart` -> the argv of each command line, as systemd holds them (before $VAR substitution)."""
    environment: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def load_with_systemd(folder: Path, start: str) -> dict[str, LoadedUnit]:
    """What a user manager reads from the units in `folder`: a copy that `nobody` can read, `--test`, parsed."""
    assert SYSTEMD is not None
    work = Path(tempfile.mkdtemp(prefix="pmtop-sdtest-"))
    try:
        units = work / "units"
        shutil.copytree(folder, units)
        runtime = work / "runtime"
        runtime.mkdir()
        for path in (work, units, *units.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            os.chown(runtime, 65534, 65534)
        runtime.chmod(0o700)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
               "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_UNIT_PATH": f"{units}:"}
        result = subprocess.run([*prefix, SYSTEMD, "--test", "--user", f"--unit={start}", "--no-pager"],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        return parse_dump(result.stdout, {p.name for p in folder.iterdir()})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_dump(text: str, names: set[str]) -> dict[str, LoadedUnit]:
    units: dict[str, LoadedUnit] = {}
    current: LoadedUnit | None = None
    command_kind = ""
    for line in text.splitlines():
        if line.startswith("\t-> Unit "):
            name = line[len("\t-> Unit "):].rstrip(":")
            current = units.setdefault(name, LoadedUnit()) if name in names else None
            continue
        if current is None:
            continue
        stripped = line.strip()
        if line.startswith("\t\t-> Exec"):
            command_kind = stripped[3:].rstrip(":")
        elif line.startswith("\t\t\tCommand Line: "):
            current.commands.setdefault(command_kind, []).append(split_command_line(stripped[len("Command Line: "):]))
        elif line.startswith("\t\tEnvironment: "):
            current.environment.append(stripped[len("Environment: "):])
        elif line.startswith("\t\t") and ": " in stripped and not line.startswith("\t\t\t"):
            key, _, value = stripped.partition(": ")
            current.settings.setdefault(key, value)
    return units


_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def split_command_line(text: str) -> list[str]:
    """The inverse of systemd's quote_command_line(): bare words, or "..." with backslash and C escapes."""
    words: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] != '"':
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            words.append(text[i:end])
            i = end
            continue
        i += 1
        out = []
        while text[i] != '"':
            char = text[i]
            if char == "\\":
                nxt = text[i + 1]
                if nxt == "x":
                    out.append(chr(int(text[i + 2:i + 4], 16)))
                    i += 4
                    continue
                out.append(_C.get(nxt, nxt))
                i += 2
                continue
            out.append(char)
            i += 1
        words.append("".join(out))
        i += 1
    return words


def systemd_sees(argv: list[str] | tuple[str, ...]) -> list[str]:
    """The argv as systemd holds it before running it: `$` doubled, since `$$` becomes `$` at exec time."""
    return [word.replace("$", "$$") for word in argv]


