"""Prometheus metrics of the stack's processes, scraped after real traffic through Envoy.

Each process serves /metrics on its own port (services.common.metrics; the private stack's are
free ports, PICTOR_<NAME>_METRICS_PORT).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

FEED = "pictor.feed.v1.FeedService"
GRAPH = "pictor.graph.v1.GraphService"


def scrape(stack, process: str, number: int = 1) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample name and sorted labels -> value, from the process's /metrics."""
    port = stack.metrics_port(process, number)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_calls_through_envoy_move_the_request_counters_and_latency_histograms(stack, new_user):
    alice, bob = new_user(), new_user()
    feed_before, graph_before = scrape(stack, "feed"), scrape(stack, "graph")

    for _ in range(3):
        assert alice.get("/v1/feed").status == 200
    assert alice.post(f"/v1/users/{bob.id}/follow").status == 200
    assert alice.post("/v1/users/1/follow").status == 404  # nobody: NOT_FOUND, counted as such

    feed_after, graph_after = scrape(stack, "feed"), scrape(stack, "graph")
    ok = {"grpc_service": FEED, "grpc_method": "GetFeedJson", "grpc_code": "OK"}  # GET /v1/feed
    assert value(feed_after, "grpc_server_handled_total", **ok) - value(feed_before, "grpc_server_handled_total", **ok) >= 3
    timed = {"grpc_service": FEED, "grpc_method": "GetFeedJson"}
    assert (value(feed_after, "grpc_server_handling_seconds_count", **timed)
            - value(feed_before, "grpc_server_handling_seconds_count", **timed)) >= 3
    assert value(feed_after, "grpc_server_handling_seconds_sum", **timed) > value(
        feed_before, "grpc_server_handling_seconds_sum", **timed)
    follow = {"grpc_service": GRAPH, "grpc_method": "Follow"}
    for code, at_least in (("OK", 1), ("NOT_FOUND", 1)):
        labels = {**follow, "grpc_code": code}
        assert (value(graph_after, "grpc_server_handled_total", **labels)
                - value(graph_before, "grpc_server_handled_total", **labels)) >= at_least, code
    # Bucket counts are cumulative: the +Inf bucket holds every call.
    assert value(feed_after, "grpc_server_handling_seconds_bucket", **timed, le="+Inf") == value(
        feed_after, "grpc_server_handling_seconds_count", **timed)


def test_every_process_serves_its_metrics_with_its_pools(stack):
    graph = scrape(stack, "graph")
    assert any(name == "pictor_db_pool_connections" and dict(labels)["state"] == "max" and v > 0
               for (name, labels), v in graph.items())
    relay = scrape(stack, "relay")
    assert any(name == "pictor_outbox_backlog" for name, _ in relay)


def backlog(stack, group: str, stream: str) -> float:
    """The group's events not handled yet on the stream, as the relay reports them: pending + lag."""
    samples = scrape(stack, "relay")
    return (value(samples, "pictor_events_pending", stream=stream, group=group)
            + value(samples, "pictor_events_lag", stream=stream, group=group))


def wait_for(condition, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_the_lag_gauge_shows_a_paused_consumer_and_clears_when_it_resumes(stack, new_user, settle):
    from services.feed.worker import GROUP

    settle()
    assert backlog(stack, GROUP, "events:graph") == 0
    fanout = stack.child("fanout-1").proc.pid
    os.kill(fanout, signal.SIGSTOP)
    try:
        carol, dave = new_user(), new_user()
        for _ in range(3):
            assert carol.post(f"/v1/users/{dave.id}/follow").status == 200
            assert carol.delete(f"/v1/users/{dave.id}/follow").status == 200
        # The follow events reach the stream (the relay), and wait there for the stopped fan-out.
        wait_for(lambda: backlog(stack, GROUP, "events:graph") >= 5, "the fan-out's backlog did not show")
    finally:
        os.kill(fanout, signal.SIGCONT)
    wait_for(lambda: backlog(stack, GROUP, "events:graph") == 0, "the fan-out's backlog did not clear")


def test_metrics_carry_no_user_ids(stack, new_user):
    alice = new_user()
    assert alice.get("/v1/feed").status == 200
    for process in ("feed", "graph", "accounts", "relay", "fanout"):
        for _, labels in scrape(stack, process):
            assert alice.id not in {v for _, v in labels}, process


def test_a_profiles_grid_asks_graph_once(stack, new_user):
    """Whether the viewer may see the author is asked once per page, not again per post's author."""
    from tests.e2e.test_posts_http import create_post

    author, fan = new_user(), new_user()
    for caption in ("one", "two"):
        create_post(author, caption)
    relationships = {"grpc_service": GRAPH, "grpc_method": "GetRelationships", "grpc_code": "OK"}
    asked = []
    for _ in range(3):  # the fewest of three reads: other work of the stack may ask graph meanwhile
        before = value(scrape(stack, "graph"), "grpc_server_handled_total", **relationships)
        grid = fan.get(f"/v1/users/{author.id}/posts")
        assert grid.status == 200 and len(grid.json["posts"]) == 2
        asked.append(value(scrape(stack, "graph"), "grpc_server_handled_total", **relationships) - before)
    assert min(asked) == 1, asked
