"""The graph servicer's SetAccountPrivacy on a real grpc.aio server (port 0) against the real PostgreSQL:
the graph's own record of who exists and who is private, kept by accounts."""

from __future__ import annotations

import grpc
import pytest
from pictor.graph.v1 import graph_service_pb2 as pb
from pictor.graph.v1 import graph_service_pb2_grpc

from services.common.ids import IdAllocator
from services.graph.server import SPEC, setup
from tests.grpc.status import error_info


@pytest.fixture
async def stub(serve):
    # As accounts, which calls GetRelationships and SetAccountPrivacy.
    return await serve(SPEC, setup, graph_service_pb2_grpc.GraphServiceStub, "accounts")


@pytest.fixture
def new_id(settings):
    ids = IdAllocator(settings.logical_shards)
    return ids.new_id_in_random_shard


async def owner_seen(stub, owner_id: int) -> list[pb.Relationship]:
    """The relationships a signed-out viewer gets for `owner_id` (none: the graph does not know them)."""
    reply = await stub.GetRelationships(pb.GetRelationshipsRequest(viewer_id=0, owner_ids=[owner_id]), timeout=5)
    return list(reply.relationships)


async def test_an_account_the_graph_was_not_told_of_does_not_exist(stub, new_id):
    assert await owner_seen(stub, new_id()) == []


async def test_set_account_privacy_is_idempotent_and_read_back_at_once(stub, new_id):
    user_id = new_id()
    for _ in range(2):
        await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=user_id, is_private=True), timeout=5)
    [seen] = await owner_seen(stub, user_id)
    assert seen.owner_is_private and not seen.can_view


async def test_an_account_made_public_again_is_visible(stub, new_id):
    user_id = new_id()
    await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=user_id, is_private=True), timeout=5)
    await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=user_id, is_private=False), timeout=5)
    [seen] = await owner_seen(stub, user_id)
    assert not seen.owner_is_private and seen.can_view


@pytest.mark.parametrize("bad_id", [0, -1, 2**63 - 1])
async def test_an_id_no_account_can_have_is_invalid_argument_naming_user_id(stub, bad_id):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=bad_id, is_private=True), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error.value).metadata["field"] == "user_id"
