"""The accounts servicer on a real grpc.aio server (port 0) against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psycopg
import pytest
from argon2 import PasswordHasher
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pictor.accounts.v1 import accounts_service_pb2 as pb
from pictor.accounts.v1 import accounts_service_pb2_grpc

from services.accounts.passwords import password_hasher
from services.accounts.server import SPEC, setup
from services.common import server
from services.common.db import shard_schema
from services.common.ids import shard_of
from services.common.mesh_tls import service_channel
from tests.grpc.status import error_info


@pytest.fixture
async def stub(serve):
    # As feed, one of BatchGetUsers' callers.
    return await serve(SPEC, setup, accounts_service_pb2_grpc.AccountsServiceStub, "feed")


def unique() -> str:
    return uuid.uuid4().hex[:12]


async def register(stub) -> pb.Session:
    name = unique()
    return await stub.CreateAccount(
        pb.CreateAccountRequest(username=name, email=f"{name}@example.com", password="long enough"), timeout=10)


async def test_create_account_then_get_user(stub):
    session = await register(stub)
    user = await stub.GetUser(pb.GetUserRequest(user_id=session.user.id), timeout=5)
    assert user.username == session.user.username
    assert user.HasField("created_at")


async def test_invalid_argument_carries_reason_and_field(stub):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CreateAccount(pb.CreateAccountRequest(username="ok", email="bad", password="long enough"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error.value)
    assert info.domain == "pictor" and info.metadata["field"] == "email"


async def test_get_me_without_token_is_unauthenticated(stub):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetMe(pb.GetMeRequest(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error.value).reason == "TOKEN_MISSING"


async def test_service_verifies_tokens_itself(stub):
    """Direct callers that skip Envoy still cannot forge a token."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetMe(pb.GetMeRequest(), metadata=[("authorization", "Bearer a.b.c")], timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_batch_get_users_keeps_order_and_skips_unknown(stub):
    a, b = await register(stub), await register(stub)
    reply = await stub.BatchGetUsers(pb.BatchGetUsersRequest(user_ids=[b.user.id, 12345, a.user.id]), timeout=5)
    assert [u.id for u in reply.users] == [b.user.id, a.user.id]


async def test_concurrent_registrations_of_one_name_create_one_account(stub):
    name = unique()
    calls = [stub.CreateAccount(pb.CreateAccountRequest(username=name, email=f"{name}{i}@example.com",
                                                        password="long enough"), timeout=20)
             for i in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if isinstance(r, pb.Session)]
    taken = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1
    assert all(e.code() == grpc.StatusCode.ALREADY_EXISTS for e in taken) and len(taken) == 4


async def test_shutdown_turns_health_not_serving(settings):
    service = await server.start(SPEC, setup, settings, port=0)
    async with service_channel(settings, SPEC.name, port=service.port) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SPEC.proto_services[0])
        assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
        shutdown = asyncio.create_task(service.shutdown(grace_s=1, drain_pause_s=0.5))
        await asyncio.sleep(0.1)
        assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        await shutdown


# --- passwords: the bounded pool and rehashing --------------------------------


def stored_hash(settings, user_id: int) -> str:
    with psycopg.connect(settings.database_for_shard(shard_of(user_id)), autocommit=True) as conn:
        return conn.execute(f"SELECT password_hash FROM {shard_schema(shard_of(user_id))}.users WHERE id = %s",
                            (user_id,)).fetchone()[0]


def store_hash(settings, user_id: int, encoded: str) -> None:
    with psycopg.connect(settings.database_for_shard(shard_of(user_id)), autocommit=True) as conn:
        conn.execute(f"UPDATE {shard_schema(shard_of(user_id))}.users SET password_hash = %s WHERE id = %s",
                     (encoded, user_id))


async def test_a_hash_with_older_parameters_is_replaced_at_the_next_sign_in(stub, settings):
    session = await register(stub)
    old = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash("long enough")
    store_hash(settings, session.user.id, old)
    request = pb.CreateSessionRequest(username=session.user.username, password="long enough")
    await stub.CreateSession(request, timeout=10)
    rehashed = stored_hash(settings, session.user.id)
    assert rehashed != old and not password_hasher().check_needs_rehash(rehashed)
    await stub.CreateSession(request, timeout=10)  # the new hash verifies
    assert stored_hash(settings, session.user.id) == rehashed


async def test_a_storm_beyond_the_password_pool_is_partly_shed_with_retry_after_and_the_rest_signs_in(
        serve, monkeypatch):
    monkeypatch.setenv("PICTOR_PASSWORD_WORKERS", "1")
    monkeypatch.setenv("PICTOR_PASSWORD_QUEUE_TIMEOUT_MS", "100")
    stub = await serve(SPEC, setup, accounts_service_pb2_grpc.AccountsServiceStub)
    session = await register(stub)
    request = pb.CreateSessionRequest(username=session.user.username, password="long enough")
    results = await asyncio.gather(*(stub.CreateSession(request, timeout=30) for _ in range(40)),
                                   return_exceptions=True)
    shed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert shed and len(shed) < len(results)
    assert {(e.code(), error_info(e).reason) for e in shed} == {(grpc.StatusCode.UNAVAILABLE, "PASSWORD_HASHING_BUSY")}
    assert all(int(dict(e.trailing_metadata())["retry-after"]) >= 1 for e in shed)
    assert all(r.user.id == session.user.id for r in results if isinstance(r, pb.Session))
