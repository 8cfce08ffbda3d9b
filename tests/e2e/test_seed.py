"""`make seed` (loadtest.seed) against the running stack, twice, on a small dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from services.common.config import REPO_ROOT

pytestmark = pytest.mark.e2e

SMALL = {"SEED_USERS": "40", "SEED_POSTS": "120", "SEED_FOLLOWEES": "5", "SEED_ACTIVE_USERS": "10",
         "SEED_MEDIA": "2", "SEED_LIKES": "2", "SEED_COMMENTS": "1"}


def seed() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadtest.seed"], cwd=REPO_ROOT, env={**os.environ, **SMALL},
                          capture_output=True, text=True, timeout=300, check=False)


def test_seeding_twice_fills_once_then_says_it_did_nothing(stack, gateway):
    first = seed()
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["users"] == 40 and summary["posts"] == 120
    login = gateway.post("/v1/sessions", {"username": "seed_0000001", "password": "pictor-seed"})
    assert login.status == 200, login.body

    second = seed()
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert json.loads(second.stdout.strip().splitlines()[0]) == {"skipped": True, "seed_users": 40}
    assert "already holds a seed" in second.stdout
