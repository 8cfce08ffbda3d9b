"""Private stacks' ports: below the kernel's ephemeral range (where another program's outgoing
connection could take one before the stack binds it), free, and never handed out twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.mesh import private_stack
from services.mesh.private_stack import PRIVATE_PORTS_FROM, _ephemeral_start, bindable, free_ports


def test_ports_are_free_distinct_and_below_the_ephemeral_range():
    first, second = free_ports(40), free_ports(40)
    assert len(set(first + second)) == 80  # a second stack's never repeat the first's
    assert all(PRIVATE_PORTS_FROM <= p < _ephemeral_start() for p in first + second)
    for port in first:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_ports_with_partners_leave_both_free_below_the_range_and_hand_out_neither_again():
    nodes = free_ports(3, also_at=(10_000,))  # a Redis Cluster node and its bus
    partners = [p + 10_000 for p in nodes]
    assert all(p < _ephemeral_start() for p in partners)
    assert all(bindable(p) for p in nodes + partners)
    assert not set(free_ports(200)) & set(nodes + partners)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch):
    low = next(p for p in range(PRIVATE_PORTS_FROM, 30_000, 3)
               if all(bindable(q) and q not in private_stack._handed_out for q in (p, p + 1, p + 2)))
    # A range of three ports, the middle one taken.
    monkeypatch.setattr(private_stack, "PRIVATE_PORTS_FROM", low)
    monkeypatch.setattr(private_stack, "_ephemeral_start", lambda: low + 3)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", low + 1))
        listener.listen()
        assert sorted(free_ports(2)) == [low, low + 2]
        with pytest.raises(RuntimeError):
            free_ports(1)  # the two others are handed out now


def test_every_replicas_metrics_port_is_free_and_none_is_another_processs_port():
    from services.common.config import metrics_replica_offset
    from services.common.registry import SERVICES, WORKERS

    env = private_stack.private_environment(Path("/nonexistent"), "posts=3,feed=2,fanout=2")
    metrics = {process.name: int(env[f"{process.env_prefix}_METRICS_PORT"]) for process in (*SERVICES, *WORKERS)}
    replicas = {"posts": 3, "feed": 2, "fanout": 2}
    served = [port + metrics_replica_offset(n) for name, port in metrics.items()
              for n in range(1, replicas.get(name, 1) + 1)]
    listening = [int(p) for name, value in env.items() if name.endswith("_PORTS") for p in value.split(",")]
    listening += [int(value) for name, value in env.items() if name.endswith("_PORT") and "METRICS" not in name]
    assert len(set(served)) == len(served)
    assert not set(served) & set(listening)
    assert all(p < _ephemeral_start() and bindable(p) for p in served)
    assert set(served) <= private_stack._handed_out  # so no later stack of this process is given one
