#!/usr/bin/env python3
"""The kernel's view of a restart: where the time between SIGKILL and the new program's exec goes.

    sudo python bench/trace_restart.py [--kills N] [--pmtop EXE] [--floor]

The peer benchmark sees a restart only from outside (a new argv in /proc, polled every 1 ms), and a
timer inside the supervisor cannot see what the kernel does for it. This bench asks ftrace (tracefs,
so root): it starts one supervisor with ten `sleep` programs (pmtop as a daemon, or with `--floor` the
peer benchmark's own `os.wait` + `subprocess.Popen` respawner), SIGKILLs them one after another at
idle, and prints, from kernel events, the median time from the kill to each step:

- `exit`: the killed program is gone (sched_process_exit);
- `wake`: the supervisor is woken for it (sched_wakeup);
- `spawn`: the supervisor enters vfork/clone for the new program;
- `execve`: the child enters execve;
- `exec`: the exec is done (sched_process_exec): what the peer benchmark waits for.

and `held`, how long the child spent inside its execve runnable but off its CPU (switched away from
while still runnable). That line found `spawner.spawn`'s `yield_cpu`: the supervisor, woken half-way
through its vfork child's exec, took that CPU until it next blocked.

Safety: loopback only (`127.0.0.1`), everything under a temporary folder; the tracing it turns on is
turned off again, the supervisor gets SIGTERM (the floor SIGKILL) and its programs are killed by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
from run import RESPAWNER as FLOOR  # noqa: E402 - the peer benchmark's own floor, the same lines

TRACING = Path("/sys/kernel/tracing")
PROGRAMS = 10
SPAWN_CALLS = {56, 58, 435}  # clone, vfork, clone3 (x86-64)
EXECVE = 59
STEPS = ("exit", "wake", "spawn", "execve", "exec")
EVENT = re.compile(r"^\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\S+): (.*)$")


def programs(tag: str) -> dict[str, int]:
    """The live `sleep` programs of this run, by their argument."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and argv[1].startswith(tag.encode()):
                found[argv[1].decode()] = int(entry)
    return found


def start(args: argparse.Namespace, work: Path, argvs: list[list[str]]) -> subprocess.Popen[bytes]:
    if args.floor:
        (work / "cmds.json").write_text(json.dumps(argvs))
        return subprocess.Popen([sys.executable, "-c", FLOOR, str(work / "cmds.json")], start_new_session=True)
    lines = ['[daemon]\nhost = "127.0.0.1"\n']
    for i, argv in enumerate(argvs):
        lines.append(f'[process.p{i}]\ncommand = {json.dumps(argv)}\nrestart = "always"\nbackoff = ["0s"]\n'
                     'retry_forever = true\nmax_restarts = 1000000\n')
    (work / "pmtop.toml").write_text("".join(lines))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PMTOP_HOME=str(work / "home"))
    with open(work / "daemon.out", "wb") as out:
        return subprocess.Popen([args.pmtop, "--headless", "--standalone", "--config", str(work / "pmtop.toml"),
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def trace_on(supervisor: int) -> None:
    def put(path: str, value: str) -> None:
        (TRACING / path).write_text(value)

    put("tracing_on", "0")
    put("trace", "")
    put("buffer_size_kb", "20000")
    for event in ("sched_process_exit", "sched_process_exec", "sched_switch"):
        put(f"events/sched/{event}/enable", "1")
    put("events/sched/sched_wakeup/filter", f"pid == {supervisor}")
    put("events/sched/sched_wakeup/enable", "1")
    calls = " || ".join(f"id == {nr}" for nr in (*SPAWN_CALLS, EXECVE))
    put("events/raw_syscalls/sys_enter/filter", f"common_pid != {os.getpid()} && ({calls})")
    put("events/raw_syscalls/sys_enter/enable", "1")
    put("tracing_on", "1")


def trace_off() -> str:
    (TRACING / "tracing_on").write_text("0")
    text = (TRACING / "trace").read_text()
    (TRACING / "set_event").write_text("")
    (TRACING / "events/raw_syscalls/sys_enter/filter").write_text("0")
    (TRACING / "events/sched/sched_wakeup/filter").write_text("0")
    (TRACING / "trace").write_text("")
    return text


def steps(text: str, supervisor: int) -> list[dict[str, float]]:
    """Per kill, ms from the kill to each step, and (`held`) the ms the child spent runnable but off
    its CPU inside its execve."""
    events = [(float(m[3]), int(m[2]), m[4], m[5]) for line in text.splitlines() if (m := EVENT.match(line))]
    kills = [i for i, e in enumerate(events) if e[2] == "tracing_mark_write" and "KILL" in e[3]]
    rows = []
    for n, first in enumerate(kills):
        t0, old = events[first][0], int(events[first][3].split()[-1])
        row: dict[str, float] = {}
        child = None
        off: float | None = None
        for t, pid, name, rest in events[first:kills[n + 1] if n + 1 < len(kills) else len(events)]:
            ms = (t - t0) * 1000
            if name == "sched_process_exit" and f"pid={old} " in rest and "exit" not in row:
                row["exit"] = ms
            elif name == "sched_wakeup" and "exit" in row and "wake" not in row:
                row["wake"] = ms
            elif name == "sys_enter" and pid == supervisor and "spawn" not in row and "wake" in row:
                if int(rest.split()[1]) in SPAWN_CALLS:
                    row["spawn"] = ms
            elif name == "sys_enter" and "spawn" in row and "execve" not in row and int(rest.split()[1]) == EXECVE:
                row["execve"], child = ms, pid
            elif name == "sched_switch" and child is not None and "exec" not in row:
                if f"prev_pid={child} " in rest and re.search(r"prev_state=R\+? ", rest):
                    off = ms
                elif f"next_pid={child} " in rest and off is not None:
                    row["held"], off = row.get("held", 0.0) + ms - off, None
            elif name == "sched_process_exec" and "execve" in row and "exec" not in row:
                row["exec"] = ms
                row.setdefault("held", 0.0)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=40, help="kills (default 40)")
    parser.add_argument("--pmtop", default=str(Path(sys.executable).with_name("pmtop")))
    parser.add_argument("--floor", action="store_true", help="trace the floor respawner instead of pmtop")
    args = parser.parse_args()
    if not (TRACING / "trace_marker").exists() or not os.access(TRACING / "trace_marker", os.W_OK):
        print(f"trace_restart: needs tracefs at {TRACING} and root; skipped", file=sys.stderr)
        return 0
    work = Path(tempfile.mkdtemp(prefix="pmtop-trace-restart-"))
    tag = f"3600.{random.randrange(10 ** 6):06d}"
    argvs = [[shutil.which("sleep") or "/bin/sleep", f"{tag}{i:04d}"] for i in range(PROGRAMS)]
    supervisor = start(args, work, argvs)
    seen: set[int] = set()
    text = ""
    try:
        deadline = time.monotonic() + 30
        while len(programs(tag)) < PROGRAMS:
            if time.monotonic() > deadline or supervisor.poll() is not None:
                raise RuntimeError(f"not all {PROGRAMS} programs started")
            time.sleep(0.05)
        time.sleep(1.0)
        trace_on(supervisor.pid)
        with open(TRACING / "trace_marker", "w") as marker:
            for k in range(args.kills):
                name = argvs[k % PROGRAMS][1]
                old = programs(tag)[name]
                seen.add(old)
                marker.write(f"KILL {old}\n")
                marker.flush()
                os.kill(old, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while (new := programs(tag).get(name, old)) == old:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not come back within 5 s")
                    time.sleep(0.001)
                seen.add(new)
                time.sleep(0.3 + random.uniform(0, 0.5))  # idle between kills, at a random phase
    finally:
        text = trace_off()
        supervisor.send_signal(signal.SIGKILL if args.floor else signal.SIGTERM)
        supervisor.wait(10)
        for pid in seen | set(programs(tag).values()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    rows = steps(text, supervisor.pid)
    who = "floor (os.wait + Popen)" if args.floor else args.pmtop
    print(f"SIGKILL -> each step, by ftrace: {who}, {len(rows)} kills, load {os.getloadavg()[0]:.2f}")
    for step in (*STEPS, "held"):
        values = [row[step] for row in rows if step in row]
        if len(values) >= 2:
            q1, med, q3 = statistics.quantiles(values, n=4)
            print(f"  {step:<7} median {med:6.3f} ms   q1 {q1:6.3f}   q3 {q3:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
