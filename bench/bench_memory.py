#!/usr/bin/env python3
"""Where the supervisor's memory goes: imports step by step, then the daemon with N = 200 and 1,000.

    python bench/bench_memory.py [--quick] [--json FILE]

Run it with the interpreter pmtop is installed into. Memory does not depend on the machine's load,
so unlike the timing benches its figures repeat to within about 0.1 MB.

1. Imports, in fresh interpreters: RSS after each step of the daemon's own import order (the
   interpreter, asyncio, pmtop's core and daemon modules, h11 with pmtop's HTTP/1.1 server, pmtop's API),
   and for comparison what `import aiohttp` (round 1's server) costs on the same modules.
2. The daemon: the real `pmtop --headless` with N `sleep` processes. Once all N have exec'd and the
   API serves, and the start-up settled (3 s), its RSS, USS, anonymous and file-backed memory and
   open descriptors; the slope between N = 200 and N = 1,000 is what one managed process costs.

Safety: every daemon runs under a throwaway PMTOP_HOME with `port = "auto"` on 127.0.0.1; it is
stopped with SIGTERM and whatever is left is killed by PID (psutil, create-time checked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon_proc import children, pmtop_command, write_config  # noqa: E402

SETTLE_S = 3.0
"""After the API serves: the daemon hands start-up's freed heap back after 1 s."""

STEP_CODE = r"""
import gc, json, sys
def rss():
    out = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS", "RssAnon", "RssFile")):
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out
steps = json.loads(sys.argv[1])
result = [("start", rss(), len(sys.modules))]
for label, code in steps:
    exec(code, {})
    gc.collect()
    result.append((label, rss(), len(sys.modules)))
print(json.dumps(result))
"""

DAEMON_STEPS = [
    ("asyncio without ssl (core/system/lazy_tls.py)",
     "from pmtop.core.system import lazy_tls\nlazy_tls.import_asyncio()\nimport asyncio"),
    ("json, logging, subprocess, argparse", "import json, logging, subprocess, argparse"),
    ("pmtop.cli.main (the entry point)", "import pmtop.cli.main"),
    ("pmtop core (supervisor, runners, config)", "import pmtop.core.supervisor"),
    ("pmtop daemon (core.daemon, cli.daemon_main)", "import pmtop.cli.daemon_main"),
    ("h11 and pmtop's HTTP/1.1 server on it (http11)", "import pmtop.core.api.http11"),
    ("pmtop API server (routes, security, SSE)", "import pmtop.core.api.server"),
]
WHOLE_AIOHTTP = [
    ("asyncio", "import asyncio"),
    ("pmtop daemon modules", "import pmtop.cli.main, pmtop.cli.daemon_main"),
    ("import aiohttp (client and server)", "import aiohttp\nfrom aiohttp import web"),
]


def import_steps(steps: list[tuple[str, str]], runs: int) -> list[tuple[str, float, float, int]]:
    """(label, RSS MB, anonymous MB, modules) after each step: the median of `runs` interpreters."""
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STEP_CODE, json.dumps(steps)], capture_output=True,
                             text=True, check=True, timeout=120)
        results.append(json.loads(out.stdout))
    table = []
    for i, (label, _, modules) in enumerate(results[0]):
        rss = statistics.median(r[i][1]["VmRSS"] for r in results) / 1024
        anon = statistics.median(r[i][1]["RssAnon"] for r in results) / 1024
        table.append((label, rss, anon, modules))
    return table


def execd(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read() == b"sleep\x00600\x00"
    except OSError:
        return False


def daemon_memory(n: int, workdir: Path) -> dict[str, float]:
    """The daemon with `n` sleeps, measured once it serves and settled."""
    config = workdir / f"pmtop{n}.toml"
    write_config(config, n)
    home = workdir / f"home{n}"
    env = {k: v for k, v in os.environ.items() if k not in ("PMTOP_CONFIG", "PMTOP_TOKEN")}
    env["PMTOP_HOME"] = str(home)
    out = open(workdir / f"daemon{n}.out", "wb")
    proc = subprocess.Popen([*pmtop_command(), "--headless", "--config", str(config)], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    seen: list[psutil.Process] = []
    try:
        info = home / "state" / "bench" / "daemon.json"
        deadline = time.monotonic() + 120
        while True:
            kids = children(proc.pid)
            if len(kids) >= n and all(execd(k) for k in kids) and info.exists():
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon with {n} processes did not come up (exit {proc.poll()})")
            time.sleep(0.05)
        for k in kids:
            try:
                seen.append(psutil.Process(k))
            except psutil.Error:
                pass
        time.sleep(SETTLE_S)
        ps = psutil.Process(proc.pid)
        full = ps.memory_full_info()
        status = {}
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon", "RssFile")):
                    key, value = line.split(":")
                    status[key] = int(value.split()[0]) / 1024
        return {"n": n, "rss_mb": full.rss / 2**20, "uss_mb": full.uss / 2**20, "pss_mb": full.pss / 2**20,
                "anon_mb": status.get("RssAnon", float("nan")), "file_mb": status.get("RssFile", float("nan")),
                "fds": float(ps.num_fds())}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for child in seen:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
            except psutil.Error:
                pass
        out.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one interpreter per import step")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--n", default="200,1000", help="process counts (default 200,1000)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 3
    ns = [int(x) for x in args.n.split(",")]
    print(f"pmtop memory bench: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    print("[1/2] imports in fresh interpreters ...", flush=True)
    steps = import_steps(DAEMON_STEPS, runs)
    whole = import_steps(WHOLE_AIOHTTP, runs)
    print("[2/2] the daemon with " + " and ".join(str(n) for n in ns) + " processes ...", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="pmtop-bench-mem-"))
    try:
        daemons = [daemon_memory(n, workdir) for n in ns]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("Imports, in the daemon's order (RSS after each step; median of "
          f"{runs} interpreter{'s' if runs > 1 else ''}):")
    print(f"  {'step':48s} {'RSS':>8s} {'added':>8s} {'anon':>7s} {'modules':>8s}")
    prev = None
    for label, rss, anon, modules in steps:
        added = "" if prev is None else f"+{rss - prev:.2f}"
        print(f"  {label:48s} {rss:6.2f} MB {added:>8s} {anon:6.2f} {modules:8d}")
        prev = rss
    lean = steps[-2][1] - steps[-3][1]
    full = whole[-1][1] - whole[-2][1]
    print(f"  for comparison, `import aiohttp` (round 1's server): +{full:.2f} MB; h11 and pmtop's "
          f"server on it: +{lean:.2f} MB")
    print()
    print("The daemon (pmtop --headless), all processes running, settled:")
    print(f"  {'processes':>9s} {'RSS':>9s} {'USS':>9s} {'anon':>8s} {'file':>8s} {'fds':>6s}")
    for d in daemons:
        print(f"  {d['n']:9.0f} {d['rss_mb']:6.1f} MB {d['uss_mb']:6.1f} MB {d['anon_mb']:5.1f} MB "
              f"{d['file_mb']:5.1f} MB {d['fds']:6.0f}")
    per_process = None
    if len(daemons) >= 2:
        a, b = daemons[0], daemons[-1]
        per_process = (b["rss_mb"] - a["rss_mb"]) * 2**20 / (b["n"] - a["n"])
        base = a["rss_mb"] - per_process * a["n"] / 2**20
        print(f"  one managed process costs {per_process / 1024:.1f} KB of RSS "
              f"(N={a['n']:.0f} -> {b['n']:.0f}); the daemon without any: {base:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "imports": steps, "import_aiohttp_whole": whole, "daemons": daemons,
            "bytes_per_process": per_process}, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
