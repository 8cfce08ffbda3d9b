"""The engagement servicer on a real grpc.aio server (port 0) against the real PostgreSQL and Redis.

Posts' visibility comes from the stack's posts service, through the mesh.
Authors and their posts are written straight into PostgreSQL (no media, no
argon2), likers are users with tokens signed by the stack's key.
"""

from __future__ import annotations

import asyncio

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from pictor.engagement.v1 import engagement_service_pb2 as pb
from pictor.engagement.v1 import engagement_service_pb2_grpc

from services.common.cluster import is_cluster
from services.common.db import shard_schema
from services.common.dependencies import async_redis
from services.common.ids import IdAllocator, shard_of
from services.engagement.bench import seed_users
from services.engagement.keys import viewer_state_key
from services.engagement.server import SPEC, setup
from services.engagement.warm_states import CachedStates, WarmStates
from services.feed.pages import CacheReads
from services.posts.cache import PostCache
from services.posts.keys import cached_post_key
from tests.grpc.status import error_info


@pytest.fixture
async def stub(serve):
    # As posts, which calls GetPostStates and (its cleanup) PurgePost.
    return await serve(SPEC, setup, engagement_service_pb2_grpc.EngagementServiceStub, "posts")


class User:
    def __init__(self, seeded) -> None:
        self.id = seeded.id
        self.metadata = [("authorization", f"Bearer {seeded.token}")]


@pytest.fixture
def new_user(settings):
    def make(private: bool = False) -> User:
        user = User(seed_users(settings, 1, prefix="grpc")[0])
        if private:
            with psycopg.connect(settings.database_for_shard(shard_of(user.id))) as conn:
                conn.execute(f"UPDATE {shard_schema(shard_of(user.id))}.users SET is_private = true WHERE id = %s",
                             (user.id,))
                conn.execute(f"UPDATE {shard_schema(shard_of(user.id))}.members SET is_private = true WHERE user_id = %s",
                             (user.id,))
        return user

    return make


@pytest.fixture
def new_post(settings):
    ids = IdAllocator(settings.logical_shards)

    def make(author: User) -> int:
        post_id = ids.new_id(shard_of(author.id))
        with psycopg.connect(settings.database_for_shard(shard_of(post_id))) as conn:
            conn.execute(f"INSERT INTO {shard_schema(shard_of(post_id))}.posts (id, author_id, media_ids) "
                         "VALUES (%s, %s, %s)", (post_id, author.id, [post_id]))
        return post_id

    return make


async def failure(call) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error_info(error.value)


async def test_like_answers_liked_and_the_count_with_my_like(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    post = new_post(author)
    reply = await stub.LikePost(pb.LikePostRequest(post_id=post), metadata=fan.metadata, timeout=5)
    assert reply.liked is True and reply.like_count == 1


async def test_concurrent_likes_by_one_user_make_one_like(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    post = new_post(author)
    await asyncio.gather(*(stub.LikePost(pb.LikePostRequest(post_id=post), metadata=fan.metadata, timeout=10)
                           for _ in range(10)))
    states = await stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=fan.id, post_ids=[post]), timeout=5)
    assert states.states[0].like_count == 1 and states.states[0].liked_by_me


async def test_like_without_a_token_is_unauthenticated(stub, new_user, new_post):
    code, info = await failure(stub.LikePost(pb.LikePostRequest(post_id=new_post(new_user())), timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED and info.reason == "TOKEN_MISSING"


async def test_liking_a_private_strangers_post_is_not_found(stub, new_user, new_post):
    owner, stranger = new_user(private=True), new_user()
    code, info = await failure(stub.LikePost(pb.LikePostRequest(post_id=new_post(owner)),
                                             metadata=stranger.metadata, timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "POST_NOT_FOUND"


async def test_liking_an_unknown_post_is_not_found(stub, new_user):
    code, info = await failure(stub.LikePost(pb.LikePostRequest(post_id=123456789), metadata=new_user().metadata,
                                             timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "POST_NOT_FOUND"


async def test_empty_comment_is_invalid_and_names_text(stub, new_user, new_post):
    author = new_user()
    code, info = await failure(stub.CreateComment(pb.CreateCommentRequest(post_id=new_post(author), text="  "),
                                                  metadata=author.metadata, timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "text"


async def test_reply_to_a_reply_is_invalid_with_its_reason(stub, new_user, new_post):
    author = new_user()
    post = new_post(author)
    top = await stub.CreateComment(pb.CreateCommentRequest(post_id=post, text="top"), metadata=author.metadata)
    reply = await stub.CreateComment(pb.CreateCommentRequest(post_id=post, text="re", parent_comment_id=top.id),
                                     metadata=author.metadata)
    code, info = await failure(stub.CreateComment(
        pb.CreateCommentRequest(post_id=post, text="re re", parent_comment_id=reply.id), metadata=author.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "REPLY_TO_REPLY"
    assert info.metadata["field"] == "parent_comment_id"


async def test_a_comment_comes_back_with_its_author_and_mentions(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    comment = await stub.CreateComment(pb.CreateCommentRequest(post_id=new_post(author), text="hey @Ada"),
                                       metadata=fan.metadata, timeout=5)
    assert comment.author.id == fan.id and comment.mentions == ["ada"] and comment.HasField("created_at")


async def test_a_stranger_deleting_a_comment_is_permission_denied(stub, new_user, new_post):
    author, fan, stranger = new_user(), new_user(), new_user()
    comment = await stub.CreateComment(pb.CreateCommentRequest(post_id=new_post(author), text="mine"),
                                       metadata=fan.metadata)
    code, info = await failure(stub.DeleteComment(pb.DeleteCommentRequest(comment_id=comment.id),
                                                  metadata=stranger.metadata, timeout=5))
    assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == "NOT_COMMENT_AUTHOR"


async def test_comments_list_oldest_first_when_asked(stub, new_user, new_post):
    author = new_user()
    post = new_post(author)
    made = [(await stub.CreateComment(pb.CreateCommentRequest(post_id=post, text=f"c{i}"),
                                      metadata=author.metadata)).id for i in range(3)]
    listed = await stub.ListComments(pb.ListCommentsRequest(post_id=post, order=pb.OLDEST), timeout=5)
    assert [c.id for c in listed.comments] == made


async def test_a_negative_page_size_is_invalid(stub, new_user, new_post):
    code, info = await failure(stub.ListPostLikes(pb.ListPostLikesRequest(post_id=new_post(new_user()),
                                                                          page_size=-1), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "page_size"


async def test_post_states_say_what_the_viewer_liked_and_saved(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    liked, saved = new_post(author), new_post(author)
    await stub.LikePost(pb.LikePostRequest(post_id=liked), metadata=fan.metadata)
    await stub.SavePost(pb.SavePostRequest(post_id=saved), metadata=fan.metadata)
    reply = await stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=fan.id, post_ids=[liked, saved]), timeout=5)
    assert [(s.post_id, s.liked_by_me, s.saved_by_me) for s in reply.states] == [(liked, True, False),
                                                                                 (saved, False, True)]



async def liked_saved_untouched(stub, new_user, new_post) -> tuple[User, list[int]]:
    """A fan, and three posts of another: the fan liked the first (and so did someone else), saved the
    second, left the third alone."""
    author, fan, other = new_user(), new_user(), new_user()
    liked, saved, _ = posts = [new_post(author) for _ in range(3)]
    await stub.LikePost(pb.LikePostRequest(post_id=liked), metadata=fan.metadata, timeout=5)
    await stub.SavePost(pb.SavePostRequest(post_id=saved), metadata=fan.metadata, timeout=5)
    await stub.LikePost(pb.LikePostRequest(post_id=liked), metadata=other.metadata, timeout=5)
    return fan, posts


async def test_warm_states_answer_as_get_post_states_once_it_filled_the_cache(stub, new_user, new_post, settings):
    """What the feed reads (services.engagement.warm_states): nothing until engagement has answered the
    viewer about every post; then the same answers, the viewer's like and save and another's like in."""
    fan, posts = await liked_saved_untouched(stub, new_user, new_post)
    untouched = posts[2]
    client = async_redis(settings.redis_url)
    try:
        warm = WarmStates(client)
        assert await warm.states(fan.id, posts) is None
        reply = await stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=fan.id, post_ids=posts), timeout=5)
        assert await warm.states(fan.id, posts) == {s.post_id: s for s in reply.states}
        assert [(s.like_count, s.liked_by_me, s.saved_by_me) for s in reply.states] == [
            (2, True, False), (0, False, True), (0, False, False)]
        assert await warm.states(fan.id, [untouched]) == {untouched: reply.states[2]}
        signed_out = await warm.states(0, posts)
        assert [(signed_out[p].like_count, signed_out[p].liked_by_me) for p in posts] == [(2, False), (0, False),
                                                                                            (0, False)]
    finally:
        await client.aclose()


class ThroughStub:
    """EngagementClient.post_states_if_up over the stub, counting what it was asked."""

    def __init__(self, stub) -> None:
        self.stub, self.asked = stub, []

    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, pb.PostState]:
        self.asked.append(post_ids)
        reply = await self.stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=viewer_id, post_ids=post_ids),
                                              timeout=5)
        return {s.post_id: s for s in reply.states}


async def test_a_feed_page_reads_states_beside_posts_cache_as_it_would_alone(stub, new_user, new_post, settings):
    """What a feed page reads of the caches (services.feed.pages.CacheReads, one pipeline on one Redis):
    posts' cached bytes, and each state as GetPostStates gives it, engagement asked only while its cache
    lacks one; the signed-out viewer's too."""
    fan, posts = await liked_saved_untouched(stub, new_user, new_post)
    liked, saved, untouched = posts
    client = async_redis(settings.redis_url)
    try:
        # Posts fills its cache as it answers (a like asks it who may see the post), with SET NX: each key
        # set here stays as set.
        for post in posts:
            await client.set(cached_post_key(post), b"shape %d" % post, ex=60)
        engagement = ThroughStub(stub)
        reads = CacheReads(PostCache(client), CachedStates(client, engagement))
        assert reads.pipelined is not is_cluster(client)
        expected = await stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=fan.id, post_ids=posts), timeout=5)
        await client.delete(viewer_state_key(fan.id))  # the fan's answers no longer cached
        cached, states = await reads.read(fan.id, posts)
        assert cached == [b"shape %d" % p for p in posts]
        assert states == {s.post_id: s for s in expected.states} and engagement.asked == [posts]
        cached, states = await reads.read(fan.id, [untouched, liked, saved])  # now warm, in another order
        assert states == {s.post_id: s for s in expected.states} and len(engagement.asked) == 1
        assert cached == [b"shape %d" % p for p in (untouched, liked, saved)]
        _, signed_out = await reads.read(0, posts)
        assert [(signed_out[p].like_count, signed_out[p].liked_by_me, signed_out[p].saved_by_me) for p in posts] == [
            (2, False, False), (0, False, False), (0, False, False)]
        assert len(engagement.asked) == 1
    finally:
        await client.aclose()


async def test_likers_are_hydrated_users(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    post = new_post(author)
    await stub.LikePost(pb.LikePostRequest(post_id=post), metadata=fan.metadata)
    reply = await stub.ListPostLikes(pb.ListPostLikesRequest(post_id=post), timeout=5)
    assert [u.id for u in reply.users] == [fan.id] and reply.users[0].username.startswith("grpc")


async def test_purge_forgets_a_posts_likes_and_refuses_what_is_no_post(stub, new_user, new_post):
    author, fan = new_user(), new_user()
    post = new_post(author)
    await stub.LikePost(pb.LikePostRequest(post_id=post), metadata=fan.metadata, timeout=10)
    purged = await stub.PurgePost(pb.PurgePostRequest(post_id=post), timeout=10)
    assert (purged.likes_removed, purged.comments_removed, purged.saves_removed) == (1, 0, 0)
    states = await stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=fan.id, post_ids=[post]), timeout=10)
    assert (states.states[0].like_count, states.states[0].liked_by_me) == (0, False)
    code, _ = await failure(stub.PurgePost(pb.PurgePostRequest(post_id=-1), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
