"""`make seed` (loadtest.seed) against the running stack, twice, on a small dataset; then `make bench-feed`
(loadtest.feed_bench) on that dataset.

The bench needs wrk, which it installs with apt-get when it is missing; where it cannot (no
apt-get, not root) its tests are skipped, as the bench itself would stop and say so. They come
after the seeding test in this file: the stack is seeded once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from loadtest.feed_bench import load_generator
from services.common.config import REPO_ROOT
from services.common.dependencies import split_cluster_url

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


@pytest.fixture(scope="module")
def bench_lines(stack) -> list[dict]:
    if shutil.which("wrk") is None:
        try:
            load_generator()
        except SystemExit as missing:
            pytest.skip(str(missing))
    assert seed().returncode == 0
    env = {**os.environ, "BENCH_SECONDS": "1", "BENCH_CONCURRENCY": "2", "BENCH_USERS": "40",
           "BENCH_PAGE_SAMPLE": "3"}
    result = subprocess.run([sys.executable, "-m", "loadtest.feed_bench"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_bench_prints_each_figure_as_a_json_line_at_each_level_and_at_eight(bench_lines):
    by_op: dict[str, list[dict]] = {}
    for line in bench_lines:
        by_op.setdefault(line["op"], []).append(line)
    assert by_op["bench.load_generator"][0]["tool"] == "wrk"
    for op in ("gateway.ceiling", "feed.envoy"):
        assert [line["connections"] for line in by_op[op]] == [2, 8]
        assert all(line["requests"] > 0 and line["non_2xx"] == 0 for line in by_op[op])
    for op in ("feed.vs_ceiling", "feed.ids_hybrid_vs_naive", "feed.page_hybrid_vs_naive"):
        assert len(by_op[op]) == 2 and all(isinstance(line["met"], bool) for line in by_op[op])
    assert set(by_op["feed.goals"][0]) >= {"feed_vs_ceiling", "page_json_bytes", "id_selection_speedup",
                                           "hydrated_page_speedup", "all_met"}


def test_page_sizes_are_as_envoy_sends_them(bench_lines):
    page = next(line for line in bench_lines if line["op"] == "feed.page_bytes")
    assert "skipped" not in page, page
    assert page["posts"] == 20
    assert 0 < page["br_bytes"] < page["json_bytes"] and 0 < page["gzip_bytes"] < page["json_bytes"]
    assert page["protobuf_bytes"] > 0


def test_the_page_cpu_tool_reads_seeded_pages_and_says_the_cpu_of_one(stack):
    assert seed().returncode == 0  # seeded once per session (a second run says it did nothing)

    def page_cpu(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loadtest.page_cpu", *args], cwd=REPO_ROOT, env=dict(os.environ),
                              capture_output=True, text=True, timeout=120, check=False)

    cluster = split_cluster_url(stack.settings.redis_url)[1]
    for reads in ("wire", "redis-py"):
        result = page_cpu("--pages", "40", "--users", "10", "--concurrency", "2", "--reads", reads)
        assert result.returncode == 0, result.stdout + result.stderr
        line = json.loads(result.stdout.strip().splitlines()[-1])
        assert {k: line[k] for k in ("op", "reads", "pages", "readers", "concurrency")} == {
            "op": "feed.page_cpu", "reads": "redis-py" if cluster else reads, "pages": 40, "readers": 10,
            "concurrency": 2}  # on a Redis Cluster the feed reads through redis-py
        assert line["cpu_ms_per_page"] > 0 and line["pages_per_s"] > 0
    refused = page_cpu("--pages", "0")
    assert refused.returncode == 2 and "--pages, --users and --concurrency must be at least 1" in refused.stderr
