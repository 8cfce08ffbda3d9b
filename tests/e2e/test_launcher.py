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


def test_launcher_prints_the_gateway_restarts_a_killed_child_and_sigterm_stops_every_process(tmp_path):
    env = {**os.environ, **stack_environment(tmp_path / "data")}
    for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "services.mesh.launcher"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        gateway = f"http://127.0.0.1:{env['PICTOR_GATEWAY_PORT']}"
        assert gateway in text, text
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{gateway}/v1/usernames/nobody", timeout=5)  # noqa: S310
        assert answer.value.code == 404
        children = psutil.Process(proc.pid).children(recursive=True)
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
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"still running after SIGTERM: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
