"""RealtimeService over gRPC: Subscribe natively through the gateway, and two replicas of the service
(real grpc.aio servers on port 0) sharing one user's stream through Redis."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from pictor.realtime.v1 import realtime_pb2, realtime_service_pb2_grpc
from pictor.realtime.v1 import realtime_service_pb2 as pb

from services.common.auth import TokenSigner
from services.common.dependencies import async_redis
from services.common.events import envelope, fields, stream
from services.common.ids import IdAllocator
from services.common.mesh_tls import gateway_channel
from services.realtime.server import SPEC, setup
from tests.grpc.status import error_info


@pytest.fixture
def new_user(settings):
    """A fresh user id and an access token for it (signed with the stack's key)."""
    ids = IdAllocator(settings.logical_shards)
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 600)

    def make() -> tuple[int, list[tuple[str, str]]]:
        user_id = ids.new_id_in_random_shard()
        return user_id, [("authorization", f"Bearer {signer.sign(user_id)}")]

    return make


@pytest.fixture
async def bus(settings):
    client = async_redis(settings.redis_url)
    yield client
    await client.aclose()


async def publish(bus, user_id: int, group_key: str, unread: int) -> None:
    group = {"group_key": group_key, "type": "LIKE", "actor_count": "1"}
    message = envelope("notification.changed", {"user_id": user_id, "group_key": group_key,
                                                 "group_json": json.dumps(group), "unread_count": unread})
    await bus.xadd(stream("notifications"), fields(message.SerializeToString(), message.type))


async def until(call, count: int, timeout_s: float = 10) -> list[realtime_pb2.StreamEvent]:
    """The next `count` events of a Subscribe call that are not heartbeats."""
    found = []

    async def read() -> None:
        async for event in call:
            if event.type != "heartbeat":
                found.append(event)
                if len(found) == count:
                    return

    await asyncio.wait_for(read(), timeout_s)
    return found


async def ready(call) -> None:
    """Until the first heartbeat: the stream is set up by then."""
    async for event in call:
        if event.type == "heartbeat":
            return


async def test_subscribe_through_the_gateway_carries_typed_events(settings, new_user, bus):
    user_id, metadata = new_user()
    async with gateway_channel(settings) as channel:
        stub = realtime_service_pb2_grpc.RealtimeServiceStub(channel)
        call = stub.Subscribe(pb.SubscribeRequest(), metadata=metadata)
        await ready(call)
        await publish(bus, user_id, "like:g", 3)
        notification, unread = await until(call, 2)
        call.cancel()
    assert notification.type == "notification" and notification.id
    assert notification.notification.group_key == "like:g"
    assert notification.notification.group["type"] == "LIKE"
    assert unread.unread_count.count == 3 and unread.occurred_at.seconds > 0


async def test_subscribe_without_a_token_is_unauthenticated(settings):
    async with gateway_channel(settings) as channel:
        stub = realtime_service_pb2_grpc.RealtimeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stub.Subscribe(pb.SubscribeRequest(), timeout=5):
                pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "TOKEN_MISSING"


async def test_subscribe_from_a_bad_id_is_invalid_argument_naming_since(serve, new_user):
    stub = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub)
    _, metadata = new_user()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Subscribe(pb.SubscribeRequest(since="x-1"), metadata=metadata, timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == "since"


async def test_two_replicas_each_deliver_an_event_to_the_streams_they_hold(serve, new_user, bus):
    first = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub)
    second = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub)
    user_id, metadata = new_user()
    calls = [stub.Subscribe(pb.SubscribeRequest(), metadata=metadata) for stub in (first, second)]
    for call in calls:
        await ready(call)
    await publish(bus, user_id, "like:r", 1)
    received = [await until(call, 2) for call in calls]
    for call in calls:
        call.cancel()
    assert [e.id for e in received[0]] == [e.id for e in received[1]]


async def test_a_stream_resumed_on_another_replica_loses_and_repeats_nothing(serve, new_user, bus):
    first = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub)
    second = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub)
    user_id, metadata = new_user()
    call = first.Subscribe(pb.SubscribeRequest(), metadata=metadata)
    await ready(call)
    await publish(bus, user_id, "like:1", 1)
    before = await until(call, 2)
    call.cancel()
    for n in (2, 3):
        await publish(bus, user_id, f"like:{n}", n)
    call = second.Subscribe(pb.SubscribeRequest(since=before[-1].id), metadata=metadata)
    after = await until(call, 4)
    call.cancel()
    assert [e.unread_count.count for e in before + after if e.type == "unread_count"] == [1, 2, 3]
    assert len({e.id for e in before + after}) == 6


async def test_user_classes_of_users_never_seen_are_inactive_in_the_order_asked(serve, new_user):
    stub = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub, "feed")
    ids = [new_user()[0] for _ in range(3)]
    reply = await stub.BatchGetUserClasses(pb.BatchGetUserClassesRequest(user_ids=ids), timeout=5)
    assert [u.user_id for u in reply.users] == ids
    assert all(list(u.classes) == [realtime_pb2.USER_CLASS_INACTIVE] for u in reply.users)


async def test_user_classes_refuse_more_than_1000_ids(serve):
    stub = await serve(SPEC, setup, realtime_service_pb2_grpc.RealtimeServiceStub, "feed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.BatchGetUserClasses(pb.BatchGetUserClassesRequest(user_ids=range(1, 1002)), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
