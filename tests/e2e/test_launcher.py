"""`make run`'s launcher as a user runs it: starts everything, SIGTERM stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from services.common.config import REPO_ROOT
from tests.conftest import stack_environment

pytestmark = pytest.mark.e2e


def start_launcher(tmp_path) -> tuple[subprocess.Popen, dict[str, str], list[str]]:
    """The launcher as `make run` starts it, once it says it is up: (process, environment, output)."""
    env = {**os.environ, **stack_environment(tmp_path / "data")}
    for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "services.mesh.launcher"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    # Generous: nine services and eleven workers start in turn, and a machine shared by several
    # suites (load average 50 on 2 cores) took over 90 s to bring them up.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Ctrl-C stops everything" in line:
            break
    return proc, env, output


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_launcher_prints_the_gateway_restarts_a_killed_child_and_sigterm_stops_every_process(tmp_path):
    proc, env, output = start_launcher(tmp_path)
    try:
        text = "".join(output)
        gateway = f"http://127.0.0.1:{env['PICTOR_GATEWAY_PORT']}"
        assert gateway in text, text
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{gateway}/v1/usernames/nobody", timeout=5)
        assert answer.value.code == 404
        # The processes the launcher supervises. Not their own children: PostgreSQL's backends and
        # autovacuum workers come and go on their own (the killed worker's connections end with it).
        children = psutil.Process(proc.pid).children()
        assert len(children) >= 4  # postgres, redis, the services, envoy
        # A child that dies is restarted, with a line saying so; nothing else stops.
        victim = next(c for c in children if "services.feed.worker" in " ".join(c.cmdline()))
        victim.kill()
        lines = []
        while not any("fanout-1 restarted" in line for line in lines):
            lines.append(proc.stdout.readline())
            assert lines[-1], "".join(output + lines)
        assert any(f"fanout-1 (pid {victim.pid}) ended after" in line and "killed by SIGKILL" in line
                   for line in lines), "".join(lines)
        assert proc.poll() is None
        assert all(c.is_running() for c in children if c.pid != victim.pid)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"still running after SIGTERM: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_every_process_dies_with_a_launcher_that_is_killed(tmp_path):
    proc, _, output = start_launcher(tmp_path)
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("postgres" in " ".join(c.cmdline()) for c in children), "".join(output)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while not all(gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [c.pid for c in children if not gone(c)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
