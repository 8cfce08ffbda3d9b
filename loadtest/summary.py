"""Turn Locust's CSV into loadtest/results/summary.json, and judge the run.

    python -m loadtest.summary loadtest/results

Exit status 1 when the feed's p99 is over 200 ms or more than 1% of the
requests failed, 0 otherwise. It also names the knee, from the feed's latencies
per number of concurrent users that the locustfile keeps (feed_by_users.json):
the highest step whose feed p99 stayed under 200 ms, against issue 12's goal of
150 users. A stepped run (LOADTEST_SHAPE=steps) is what finds it; a run at a
fixed user count has one step, so it can only say the knee is at least there.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

FEED = "GET /v1/feed"
FEED_P99_LIMIT_MS = 200
FAILURE_RATIO_LIMIT = 0.01
KNEE_GOAL_USERS = 150


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return 0.0


def summarize(stats_csv: Path) -> dict:
    endpoints, total = {}, None
    with stats_csv.open() as f:
        for row in csv.DictReader(f):
            entry = {
                "p50_ms": _number(row["50%"]), "p95_ms": _number(row["95%"]), "p99_ms": _number(row["99%"]),
                "requests_per_s": round(_number(row["Requests/s"]), 2), "failures": int(_number(row["Failure Count"])),
                "requests": int(_number(row["Request Count"])),
            }
            if row["Name"] == "Aggregated":
                total = entry
            else:
                endpoints[row["Name"]] = entry
    if total is None or total["requests"] == 0:
        raise SystemExit(f"{stats_csv}: no requests were made")
    return {
        "requests_per_s": total["requests_per_s"],
        "failure_ratio": round(total["failures"] / total["requests"], 5),
        "endpoints": endpoints,
    }


def knee(results: Path) -> dict | None:
    """The highest step (concurrent users) whose feed p99 < 200 ms, with every step's figures."""
    steps_file = results / "feed_by_users.json"
    if not steps_file.exists():
        return None
    steps = {int(users): {k: round(v, 1) if isinstance(v, float) else v for k, v in s.items()}
             for users, s in json.loads(steps_file.read_text()).items() if int(users) > 0}
    if not steps:
        return None
    under = [users for users, s in steps.items() if s["p99_ms"] < FEED_P99_LIMIT_MS]
    users = max(under) if under else None
    over = sorted(u for u in steps if users is None or u > users)
    return {
        "users": users,
        "feed_p99_ms": steps[users]["p99_ms"] if users else None,
        # The first step past it; none when every step stayed under (the knee is at least `users`).
        "next_step": {"users": over[0], "feed_p99_ms": steps[over[0]]["p99_ms"]} if over else None,
        "goal_users": KNEE_GOAL_USERS,
        "met": users is not None and users >= KNEE_GOAL_USERS,
        "steps": {str(u): steps[u] for u in sorted(steps)},
    }


def describe_knee(found: dict | None) -> str:
    if found is None:
        return "loadtest: knee unknown (no feed requests in steady state)"
    goal = f"goal {found['goal_users']} users: {'met' if found['met'] else 'not met'}"
    if found["users"] is None:
        return f"loadtest: no step kept the feed's p99 under {FEED_P99_LIMIT_MS} ms; {goal}"
    where = f"{found['users']} concurrent users (feed p99 {found['feed_p99_ms']} ms"
    if found["next_step"]:
        nxt = found["next_step"]
        return f"loadtest: knee at {where}; {nxt['users']} users: {nxt['feed_p99_ms']} ms); {goal}"
    return f"loadtest: knee at least {where}, the highest step run); {goal}"


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "loadtest/results")
    summary = summarize(results / "locust_stats.csv")
    (results / "summary.json").write_text(json.dumps(summary, indent=2))
    feed = summary["endpoints"].get(FEED)
    found = knee(results)
    print(json.dumps({"requests_per_s": summary["requests_per_s"], "failure_ratio": summary["failure_ratio"],
                      FEED: feed, "knee": found}))
    print(describe_knee(found))
    problems = []
    if feed is None:
        problems.append(f"no {FEED} requests were made")
    elif feed["p99_ms"] > FEED_P99_LIMIT_MS:
        problems.append(f"{FEED} p99 is {feed['p99_ms']} ms, over {FEED_P99_LIMIT_MS} ms")
    if summary["failure_ratio"] > FAILURE_RATIO_LIMIT:
        problems.append(f"{summary['failure_ratio']:.2%} of requests failed, over {FAILURE_RATIO_LIMIT:.0%}")
    if problems:
        sys.exit("loadtest: " + "; ".join(problems))


if __name__ == "__main__":
    main()
