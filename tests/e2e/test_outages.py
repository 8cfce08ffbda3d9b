"""PostgreSQL and Redis outages, and processes that die, on a private supervised stack.

These tests stop (SIGSTOP) and kill (SIGKILL) the stack's own stores and
services, so they run on a stack of their own, never the session's. What
holds: a call that needs a store that is down answers 503 with the JSON
error envelope within 2 s (never a 500, never a hang), the services that need
it say NOT_SERVING, and once the store is back everything answers again
within 5 s without a restart; a process that dies is restarted by the
launcher's supervision, and nothing else notices more than a 503.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.ids import shard_of
from services.common.mesh_tls import service_channel
from services.common.registry import SERVICES, by_name
from services.mesh.embedded import wait_for_port
from services.mesh.launcher import Stack
from tests.conftest import private_stack
from tests.e2e.http import Gateway, Response, UserClient
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

OUTAGE_ANSWER_S = 2.0
RECOVERY_S = 5.0


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with private_stack(tmp_path_factory.mktemp("outages")) as running:
        yield running


@pytest.fixture(scope="module")
def user(own_stack: Stack) -> UserClient:
    gateway = Gateway(own_stack.settings.gateway_port)
    r = gateway.post("/v1/accounts", {"username": "outage", "email": "outage@example.com",
                                      "password": "correct horse"})
    assert r.status == 200, r.body
    return UserClient(gateway, r.json)


def health(stack: Stack, service: str) -> int | None:
    """The service's health status, or None while it does not answer (not started yet)."""
    spec = by_name(service)
    with service_channel(stack.settings, service, aio=False) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=spec.proto_services[0]), timeout=1)
        except grpc.RpcError:
            return None
    return reply.status


def eventually(check: Callable[[], bool], within_s: float) -> float:
    """Seconds until `check()` holds; fails after `within_s`."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < within_s, f"not within {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - began


def timed(call: Callable[[], Response]) -> tuple[Response, float]:
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def assert_unavailable(response: Response, reason: str) -> None:
    assert response.status == 503, (response.status, response.body)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json
    assert body["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert body["message"]
    assert [d["reason"] for d in body["details"]] == [reason]


def pause(stack: Stack, names: list[str]) -> None:
    """Frozen servers (with PostgreSQL's backends): they hold their connections and answer nothing."""
    for name in names:
        stack.child(name).kill(signal.SIGSTOP)


def resume(stack: Stack, names: list[str]) -> None:
    for name in names:
        stack.child(name).kill(signal.SIGCONT)


def store_children(stack: Stack, store: str, user: UserClient) -> list[str]:
    """The children that are `store` to the user: Redis (every node of a Redis Cluster,
    PICTOR_REDIS_NODES), or the PostgreSQL server that holds the user's shard (with
    PICTOR_POSTGRES_SERVERS, the others go on answering)."""
    if store != "postgres":
        return redis_children(stack)
    url = stack.settings.database_for_shard(shard_of(int(user.id)))
    number = next(n for n, port in enumerate(stack.settings.postgres_ports, start=1) if f":{port}/" in url)
    return ["postgres" if number == 1 else f"postgres-{number}"]


def redis_children(stack: Stack) -> list[str]:
    return [c.name for c in stack.children if c.name == "redis" or c.name.startswith("redis-")]


def store_port(stack: Stack, name: str) -> int:
    number = int(name.partition("-")[2] or 1)
    return (stack.settings.postgres_ports if name.startswith("postgres") else stack.settings.redis_ports)[number - 1]


def pids(stack: Stack) -> dict[str, int]:
    return {c.name: c.proc.pid for c in stack.children}


def recovered(stack: Stack, user: UserClient) -> bool:
    """Every service SERVING and every route of NEEDS answering: nothing still feels the outage."""
    return (all(health(stack, spec.name) == health_pb2.HealthCheckResponse.SERVING for spec in SERVICES)
            and all(user.get(route).status == 200 for route, _, _ in NEEDS.values()))


# What each store's outage is seen through: a route that needs it, the service that says NOT_SERVING.
NEEDS = {
    "postgres": ("/v1/users/me", "accounts", "DATABASE_UNAVAILABLE"),
    "redis": ("/v1/feed", "feed", "CACHE_UNAVAILABLE"),
}


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_a_paused_store_answers_503_json_within_2s_and_everything_recovers_within_5s_of_its_return(
        own_stack, user, store):
    route, service, reason = NEEDS[store]
    assert user.get(route).status == 200
    before = pids(own_stack)
    names = store_children(own_stack, store, user)
    pause(own_stack, names)
    try:
        response, took = timed(lambda: user.get(route))
        assert_unavailable(response, reason)
        assert took < OUTAGE_ANSWER_S
        eventually(lambda: health(own_stack, service) == health_pb2.HealthCheckResponse.NOT_SERVING, OUTAGE_ANSWER_S)
    finally:
        resume(own_stack, names)
    eventually(lambda: user.get(route).status == 200, RECOVERY_S)
    eventually(lambda: recovered(own_stack, user), RECOVERY_S)
    assert pids(own_stack) == before, "no process was restarted"


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_a_killed_store_answers_503_json_within_2s_is_restarted_and_everything_recovers_within_5s(
        own_stack, user, store):
    route, _, reason = NEEDS[store]
    assert user.get(route).status == 200
    names = store_children(own_stack, store, user)
    for name in names:
        own_stack.child(name).kill(signal.SIGKILL)
    response, took = timed(lambda: user.get(route))
    assert_unavailable(response, reason)
    assert took < OUTAGE_ANSWER_S
    for name in names:
        wait_for_port("127.0.0.1", store_port(own_stack, name), 60)  # the supervisor started it again
    eventually(lambda: user.get(route).status == 200, RECOVERY_S)
    eventually(lambda: recovered(own_stack, user), RECOVERY_S)
    assert all(own_stack.child(name).restarts >= 1 for name in names)


def test_redis_paused_5s_then_resumed_leaves_every_process_alive_and_the_platform_answering(own_stack, user):
    before = pids(own_stack)
    pause(own_stack, redis_children(own_stack))
    time.sleep(5)
    resume(own_stack, redis_children(own_stack))
    eventually(lambda: user.get("/v1/feed").status == 200, RECOVERY_S)
    r = user.upload(small_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    r = user.post("/v1/posts", {"media_ids": [r.json["id"]], "caption": "after the pause"})
    assert r.status == 200, r.body
    assert all(c.running for c in own_stack.children)
    assert pids(own_stack) == before, "no process died"


@pytest.mark.parametrize("process", ["graph", "cleanup-1"])
def test_a_killed_process_is_restarted_by_the_launcher_and_calls_succeed_again(own_stack, user, process, caplog):
    child = own_stack.child(process)
    old_pid, restarts = child.proc.pid, child.restarts
    with caplog.at_level(logging.WARNING, logger="pictor"):
        child.kill(signal.SIGKILL)
        eventually(lambda: child.restarts == restarts + 1 and child.running, 10)
    assert child.proc.pid != old_pid
    assert f"{process} (pid {old_pid}) ended after" in caplog.text
    assert "killed by SIGKILL; restarting it in" in caplog.text
    eventually(lambda: user.get(f"/v1/users/{user.id}/followers").status == 200, RECOVERY_S)


def test_a_service_restarted_while_the_database_is_down_starts_not_serving_and_serves_once_it_is_back(
        own_stack, user):
    accounts = own_stack.child("accounts")
    restarts = accounts.restarts
    names = store_children(own_stack, "postgres", user)
    pause(own_stack, names)
    try:
        accounts.kill(signal.SIGKILL)
        eventually(lambda: accounts.restarts > restarts, 10)
        eventually(lambda: health(own_stack, "accounts") == health_pb2.HealthCheckResponse.NOT_SERVING, 30)
        assert_unavailable(user.get("/v1/users/me"), "DATABASE_UNAVAILABLE")
    finally:
        resume(own_stack, names)
    eventually(lambda: user.get("/v1/users/me").status == 200, RECOVERY_S)
    assert health(own_stack, "accounts") == health_pb2.HealthCheckResponse.SERVING
    assert accounts.restarts == restarts + 1, "it started once and stayed up"
