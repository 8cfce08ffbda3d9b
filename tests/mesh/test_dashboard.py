"""deploy/grafana/pictor.json charts only metrics the code exports (services.common.metrics)."""

from __future__ import annotations

import json
import re

from prometheus_client import REGISTRY

import services.common.metrics  # noqa: F401 (defines the metrics)
from services.common.config import REPO_ROOT

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "pictor.json"
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "by",
                "without", "ignoring", "on", "group_left", "group_right", "and", "or", "unless", "topk", "bottomk"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "summary": ("_count", "_sum")}


def exported() -> set[str]:
    return {family.name + suffix for family in REGISTRY.collect() for suffix in SUFFIXES.get(family.type, ("",))}


def queried_metrics(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|ignoring|on)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS}


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_the_dashboard_queries_is_exported():
    known = exported()
    missing = {name for expr in expressions() for name in queried_metrics(expr)} - known
    assert missing == set()


def test_the_dashboard_charts_requests_latency_lag_backlogs_and_queues():
    queried = {name for expr in expressions() for name in queried_metrics(expr)}
    assert {"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "pictor_db_pool_connections",
            "pictor_events_lag", "pictor_events_pending", "pictor_outbox_backlog", "pictor_media_decoders_busy",
            "pictor_media_video_jobs", "pictor_realtime_open_streams"} <= queried


def test_the_check_reads_metric_names_out_of_promql():
    assert queried_metrics('histogram_quantile(0.99, sum by (grpc_method, le) (rate(x_bucket{job=~"a"}[5m])))') == {
        "x_bucket"}
