"""Trace ids through Envoy and the services, read from the processes' JSON logs.

The test stack logs every call graph serves as slow (PICTOR_GRAPH_SLOW_CALL_MS=0, tests/conftest.py),
one JSON line each with the call's trace id (services.common.logs).
"""

from __future__ import annotations

import json
import time

TRACE = "0af7651916cd43dd8448eb211c80319c"


def log_lines(stack, process: str) -> list[dict]:
    lines = []
    for raw in stack.child(process).log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def eventually_logged(stack, process: str, match, timeout_s: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [line for line in log_lines(stack, process) if match(line)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no such line in {process}'s log"
        time.sleep(0.1)


def test_a_clients_traceparent_reaches_the_service_envoy_routes_to(stack, new_user):
    alice, bob = new_user(), new_user()
    r = alice.post(f"/v1/users/{bob.id}/follow", headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"})
    assert r.status == 200
    line = eventually_logged(stack, "graph", lambda line: line["trace_id"] == TRACE and "/Follow " in line["message"])
    assert line["process"] == "graph" and line["level"] == "WARNING"


def test_the_trace_id_follows_the_call_from_feed_to_graph(stack, new_user):
    alice = new_user()
    trace = "1" * 16 + "2" * 16
    assert alice.get("/v1/feed", headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"}).status == 200
    # Feed's read asks graph who alice follows and excludes: graph's lines carry the same trace id.
    line = eventually_logged(stack, "graph", lambda line: line["trace_id"] == trace)
    assert "pictor.graph.v1.GraphService" in line["message"]

