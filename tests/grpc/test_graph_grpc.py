"""The graph servicer on a real grpc.aio server (port 0) against the real PostgreSQL: SetAccountPrivacy
(the graph's own record of who exists and who is private, kept by accounts) and FilterViewers (stories'
check of many viewers of one owner)."""

from __future__ import annotations

import grpc
import pytest
from pictor.graph.v1 import graph_service_pb2 as pb
from pictor.graph.v1 import graph_service_pb2_grpc

from services.common.auth import TokenSigner
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


@pytest.fixture
async def stories_stub(serve):
    # As stories, the one caller FilterViewers admits.
    return await serve(SPEC, setup, graph_service_pb2_grpc.GraphServiceStub, "stories")


def as_user(settings, user_id: int) -> list[tuple[str, str]]:
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 600)
    return [("authorization", f"Bearer {signer.sign(user_id)}")]


async def test_filter_viewers_applies_can_view_to_many_viewers_of_one_owner(stub, stories_stub, settings, new_id):
    owner, follower, stranger, blocked, blocker = (new_id() for _ in range(5))
    for user in (owner, follower, stranger, blocked, blocker):
        await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=user, is_private=False), timeout=5)
    await stub.Follow(pb.FollowRequest(user_id=owner), metadata=as_user(settings, follower), timeout=5)
    await stub.Block(pb.BlockRequest(user_id=blocked), metadata=as_user(settings, owner), timeout=5)
    await stub.Block(pb.BlockRequest(user_id=owner), metadata=as_user(settings, blocker), timeout=5)

    async def allowed() -> list[int]:
        reply = await stories_stub.FilterViewers(pb.FilterViewersRequest(
            owner_id=owner, viewer_ids=[blocker, stranger, follower, blocked, stranger, owner, 0]), timeout=5)
        assert reply.owner_found
        return list(reply.allowed_viewer_ids)

    # Public: anyone signed in or not, but neither side of a block; in the order asked, once each.
    assert await allowed() == [stranger, follower, owner, 0]
    await stub.SetAccountPrivacy(pb.SetAccountPrivacyRequest(user_id=owner, is_private=True), timeout=5)
    assert await allowed() == [follower, owner]  # private: approved followers (and the owner)


async def test_filter_viewers_of_an_unknown_owner_allows_no_one(stories_stub, new_id):
    reply = await stories_stub.FilterViewers(pb.FilterViewersRequest(owner_id=new_id(), viewer_ids=[new_id()]),
                                             timeout=5)
    assert not reply.owner_found and list(reply.allowed_viewer_ids) == []


async def test_filter_viewers_takes_at_most_a_thousand_viewers(stories_stub, new_id):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stories_stub.FilterViewers(pb.FilterViewersRequest(owner_id=new_id(), viewer_ids=range(1, 1002)),
                                         timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error.value).metadata["field"] == "viewer_ids"


async def test_filter_viewers_is_for_stories_only(stub, new_id):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.FilterViewers(pb.FilterViewersRequest(owner_id=new_id(), viewer_ids=[new_id()]), timeout=5)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
