"""Where the CPU goes: each process of a running stack, its CPU time over a window.

    python -m loadtest.cpu_share --seconds 20 [--requests N]

Run it beside a load (make bench-feed, wrk, locust): it finds the stack's
processes (those under this PICTOR_DATA_DIR: Envoy, PostgreSQL and its backends,
Redis, every service and worker; not the load generator), reads their CPU time from /proc
at the start and the end of the window, and prints one JSON line per process
name, most CPU first: seconds of CPU, share of all the stack's CPU, and with
--requests (the requests served in the window) the milliseconds of CPU per
request. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from services.common.config import load_settings
from services.common.proc_times import proc_times


def _launcher_data_dir(pid: int) -> Path | None:
    """The data folder of a launcher: its PICTOR_DATA_DIR, or the default (.pictor in the
    repository it runs from: `make run` sets none)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"PICTOR_DATA_DIR="):
            return (cwd / entry.split(b"=", 1)[1].decode()).resolve()
    return (cwd / ".pictor").resolve()


def _name(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = [a.decode(errors="replace") for a in args if a]
    if "-m" in text:  # python -m services.feed.server
        return text[text.index("-m") + 1].removeprefix("services.")
    if text and text[0].startswith("postgres:"):
        return "postgres"
    return Path(text[0].split()[0]).name if text else "?"


def _parent(pid: int) -> int:
    times = proc_times(pid)
    return times.parent if times else 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stack_processes(data_dir: Path) -> dict[int, str]:
    """pid -> a short name, for every process of the stack under data_dir: its launcher (whose
    data folder it is: _launcher_data_dir), what names the folder (PostgreSQL), and their descendants."""
    pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    parents = {pid: _parent(pid) for pid in pids}
    roots = {pid for pid in pids if str(data_dir).encode() in _cmdline(pid)
             or (b"services.mesh.launcher" in _cmdline(pid) and _launcher_data_dir(pid) == data_dir.resolve())}
    found = {}
    for pid in pids:
        ancestor = pid
        while ancestor > 1 and ancestor not in roots:
            ancestor = parents.get(ancestor, 0)
        if ancestor in roots:
            found[pid] = _name(pid)
    return found


def cpu_seconds(pid: int) -> float:
    times = proc_times(pid)
    return times.cpu_s if times else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=0, help="requests served in the window")
    args = parser.parse_args()
    data_dir = load_settings().data_dir
    before = {pid: cpu_seconds(pid) for pid in stack_processes(data_dir)}
    time.sleep(args.seconds)
    names = stack_processes(data_dir)
    used: dict[str, float] = defaultdict(float)
    for pid, name in names.items():
        used[name] += cpu_seconds(pid) - before.get(pid, 0.0)
    total = sum(used.values()) or 1.0
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        line = {"process": name, "cpu_s": round(seconds, 2), "share": round(seconds / total, 3),
                "cores": round(seconds / args.seconds, 2)}
        if args.requests:
            line["cpu_ms_per_request"] = round(seconds * 1000 / args.requests, 3)
        print(json.dumps(line))


if __name__ == "__main__":
    main()
