"""loadtest/summary.py: the summary's shape and the verdict of `make loadtest`."""

from __future__ import annotations

import json
import subprocess
import sys

from services.common.config import REPO_ROOT

HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
          "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
          "99.99%,100%")


def write_stats(folder, feed_p99: int, failures: int) -> None:
    rows = [
        (f"GET,GET /v1/feed,1000,{failures},20,25,5,{feed_p99},65000,20.0,0.0,20,22,25,27,30,40,50,{feed_p99},"
         f"{feed_p99},{feed_p99},{feed_p99}"),
        "POST,POST /v1/posts/[id]/like,100,0,10,12,3,40,40,2.0,0.0,10,11,12,13,15,20,30,35,40,40,40",
        (f",Aggregated,1100,{failures},18,23,3,{feed_p99},60000,22.0,0.0,18,20,24,26,29,38,48,{feed_p99},"
         f"{feed_p99},{feed_p99},{feed_p99}"),
    ]
    (folder / "locust_stats.csv").write_text("\n".join([HEADER, *rows]) + "\n")


def run_summary(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadtest.summary", str(folder)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)


def test_summary_has_the_contracted_shape_and_passes(tmp_path):
    write_stats(tmp_path, feed_p99=120, failures=0)
    assert run_summary(tmp_path).returncode == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"requests_per_s", "failure_ratio", "endpoints"}
    assert summary["endpoints"]["GET /v1/feed"] == {"p50_ms": 20.0, "p95_ms": 40.0, "p99_ms": 120.0,
                                                     "requests_per_s": 20.0, "failures": 0, "requests": 1000}


def test_feed_p99_over_200_ms_fails_the_run(tmp_path):
    write_stats(tmp_path, feed_p99=250, failures=0)
    result = run_summary(tmp_path)
    assert result.returncode == 1 and "p99" in result.stderr


def test_more_than_one_percent_failures_fails_the_run(tmp_path):
    write_stats(tmp_path, feed_p99=100, failures=20)
    result = run_summary(tmp_path)
    assert result.returncode == 1 and "failed" in result.stderr


def write_steps(folder, p99_by_users: dict[int, float]) -> None:
    steps = {str(users): {"requests": 500, "requests_per_s": users * 0.8, "p50_ms": p99 / 3, "p95_ms": p99 / 1.5,
                          "p99_ms": p99} for users, p99 in p99_by_users.items()}
    (folder / "feed_by_users.json").write_text(json.dumps(steps))


def reported_knee(folder) -> tuple[dict, str]:
    result = run_summary(folder)
    report, sentence = result.stdout.strip().splitlines()
    return json.loads(report)["knee"], sentence


def test_knee_is_the_highest_step_whose_feed_p99_is_under_200_ms(tmp_path):
    write_stats(tmp_path, feed_p99=420, failures=0)
    write_steps(tmp_path, {50: 40.0, 100: 120.0, 150: 199.0, 200: 420.0})
    knee, sentence = reported_knee(tmp_path)
    assert (knee["users"], knee["feed_p99_ms"], knee["next_step"]) == (150, 199.0, {"users": 200, "feed_p99_ms": 420.0})
    assert knee["met"] is True
    assert sentence == "loadtest: knee at 150 concurrent users (feed p99 199.0 ms; 200 users: 420.0 ms); goal 150 users: met"


def test_knee_below_the_goal_is_reported_as_not_met(tmp_path):
    write_stats(tmp_path, feed_p99=300, failures=0)
    write_steps(tmp_path, {40: 81.0, 80: 161.0, 100: 200.0})
    knee, sentence = reported_knee(tmp_path)
    assert knee["users"] == 80 and knee["met"] is False
    assert sentence.endswith("goal 150 users: not met")


def test_knee_of_a_run_that_never_crossed_is_at_least_its_highest_step(tmp_path):
    write_stats(tmp_path, feed_p99=120, failures=0)
    write_steps(tmp_path, {20: 60.0})
    knee, sentence = reported_knee(tmp_path)
    assert knee["users"] == 20 and knee["next_step"] is None
    assert "knee at least 20 concurrent users" in sentence
