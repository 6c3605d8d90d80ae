"""What one pmtop supervisor can find out about another on the same machine, without trusting it.

The partner watch (`watcher.py`) asks three questions about the supervisor it watches, each answered
by the kernel or by the other supervisor's API, never by a file the other one could have left behind:

- is its PID running, and is it stopped (`SIGSTOP`, a debugger)? (`/proc/<pid>/stat`)
- who holds its instance lock right now? (`/proc/locks`: the lock is taken for a supervisor's whole
  life and released by the kernel when it dies, so the holder *is* the supervisor of that instance)
- does it answer `/alive` and `/health` (`request`: a few lines of HTTP/1.1 over asyncio streams;
  no client library, so a check costs one connection and no import)

Linux first: without /proc, `process_state` falls back to psutil and `lock_holder` answers None
(the watcher then trusts `daemon.json` and the PID alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

STOPPED_STATES: Final = frozenset({"T", "t"})
"""`/proc/<pid>/stat` states of a process that is stopped (job control, SIGSTOP) or traced."""
MAX_RESPONSE: Final = 1 << 20


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (`R`, `S`, `T`...), or None when it is gone or a zombie."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0].decode()
    except FileNotFoundError:
        return None
    except (OSError, IndexError):  # pragma: no cover - no /proc (macOS)
        import psutil

        try:
            status = psutil.Process(pid).status()
        except psutil.Error:
            return None
        return {psutil.STATUS_STOPPED: "T", psutil.STATUS_ZOMBIE: "Z"}.get(status, "S")
    return None if state in ("Z", "X") else state


def is_stopped(pid: int) -> bool:
    return process_state(pid) in STOPPED_STATES


def lock_holder(lock_path: Path) -> int | None:
    """The PID holding an `flock` on `lock_path` (None: nobody, or no /proc/locks to tell).

    Read-only: taking the lock to test it, even for a moment, could make a supervisor that starts at
    that very moment fail with "already supervised".
    """
    try:
        info = os.stat(lock_path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146335 0 EOF"; waiters carry a "->" after the number
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float,
) -> Response | None:
    """One HTTP/1.1 request; the response, or None when nothing answered within `timeout`."""
    payload = json.dumps(body).encode() if body is not None else b""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = [f"{method} {path} HTTP/1.1", f"Host: {netloc}", "Connection: close",
            f"Content-Length: {len(payload)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    if token:
        head.append(f"Authorization: Bearer {token}")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            await writer.drain()
            raw = await reader.read(MAX_RESPONSE)
            while len(raw) < MAX_RESPONSE:
                more = await reader.read(MAX_RESPONSE - len(raw))
                if not more:
                    break
                raw += more
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return _parse(raw)


def _parse(raw: bytes) -> Response | None:
    header, sep, body = raw.partition(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if lines else []
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    try:
        status = int(parts[1])
    except ValueError:
        return None
    if any(line.lower().replace(b" ", b"") == b"transfer-encoding:chunked" for line in lines[1:]):
        body = _unchunk(body)
    return Response(status, body)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


# ------------------------------------------------------------------- its files, and restarting it

@dataclass(frozen=True, slots=True)
class Command:
    argv: list[str]
    cwd: Path | None = None
    unset: tuple[str, ...] = ()
    """Environment variables the command must not inherit (`PMTOP_CONFIG` for a config-less daemon)."""


def standalone_on_disk(state_dir: Path) -> bool:
    """The partner's persisted standalone mode (its `security.json`; this user's own file)."""
    try:
        data = json.loads((state_dir / "security.json").read_bytes())
        return data["standalone-mode"]["enabled"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_token(state_dir: Path) -> str | None:
    try:
        return (state_dir / "token").read_text().strip() or None
    except OSError:
        return None


def json_object(response: Response | None) -> dict[str, Any]:
    if response is None or response.status != 200:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def run_command(command: Command, timeout: float) -> tuple[int, str]:
    """Run a restart command; its exit status and the line that says how it went."""
    env = {k: v for k, v in os.environ.items() if k not in command.unset}
    try:
        proc = await asyncio.create_subprocess_exec(
            *command.argv, cwd=command.cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return 127, f"cannot run {command.argv[0]}: {exc.strerror or exc}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return 124, f"no answer within {timeout:g}s"
    lines = [line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith("Error:")), lines[-1] if lines else "")
    return proc.returncode or 0, said[:300]
