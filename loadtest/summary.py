"""Turn Locust's CSV into loadtest/results/summary.json, and judge the run.

    python -m loadtest.summary loadtest/results

Exit status 1 when the feed's p99 is over 200 ms or more than 1% of the
requests failed, 0 otherwise. With a stepped run (LOADTEST_SHAPE=steps) it also
names the knee: the most concurrent users at which the feed's p99 stayed under
200 ms.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

FEED = "GET /v1/feed"
FEED_P99_LIMIT_MS = 200
FAILURE_RATIO_LIMIT = 0.01


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


def knee(results: Path) -> int | None:
    steps_file = results / "feed_by_users.json"
    if not steps_file.exists():
        return None
    steps = json.loads(steps_file.read_text())
    under = [int(users) for users, s in steps.items() if s["p99_ms"] < FEED_P99_LIMIT_MS and int(users) > 0]
    return max(under) if under else None


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "loadtest/results")
    summary = summarize(results / "locust_stats.csv")
    (results / "summary.json").write_text(json.dumps(summary, indent=2))
    feed = summary["endpoints"].get(FEED)
    print(json.dumps({"requests_per_s": summary["requests_per_s"], "failure_ratio": summary["failure_ratio"],
                      FEED: feed, "knee_users": knee(results)}))
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
