"""What search asks of other services: blocks and mutes (graph), posts as the viewer sees them
(posts); and its own explore token chains in Redis. Narrow calls; nothing calls back into search."""

from __future__ import annotations

import secrets
from array import array

import redis.asyncio as aioredis
from pictor.accounts.v1 import accounts_service_pb2, accounts_service_pb2_grpc
from pictor.engagement.v1 import engagement_service_pb2, engagement_service_pb2_grpc
from pictor.posts.v1 import posts_pb2, posts_service_pb2, posts_service_pb2_grpc

from services.common.clients import GraphClient, MeshChannels, PostsClient
from services.search import keys

# posts' BatchGetPosts takes at most this many ids.
POSTS_BATCH = 100


class GraphRelations:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        return await self.graph.exclusions(user_id)

    async def unavailable(self, viewer_id: int, user_ids: list[int]) -> set[int]:
        relations = await self.graph.relationships(viewer_id, user_ids)
        return {u for u, r in relations.items() if r.following or r.requested or r.blocked}

    async def blocked(self, viewer_id: int, user_id: int) -> bool:
        relation = (await self.graph.relationships(viewer_id, [user_id])).get(user_id)
        return relation is None or relation.blocked


class PostPages:
    """Post ids to posts as the viewer sees them: posts (their owner) leaves out any the viewer may
    not see, so a stale index can never show a hidden or deleted post."""

    def __init__(self, posts: PostsClient) -> None:
        self.posts = posts

    async def hydrate(self, viewer_id: int, post_ids: list[int]) -> list[posts_pb2.Post]:
        found: list[posts_pb2.Post] = []
        for start in range(0, len(post_ids), POSTS_BATCH):
            found += await self.posts.visible_posts(viewer_id, post_ids[start:start + POSTS_BATCH])
        return found


class RedisExplorePages:
    """One explore token chain's ranking, kept for an hour so its pages never repeat a post."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def save(self, viewer_id: int, post_ids: list[int]) -> str:
        chain = secrets.token_hex(8)
        await self.client.set(keys.explore_key(viewer_id, chain), array("q", post_ids).tobytes(),
                              ex=keys.EXPLORE_TTL_S)
        return chain

    async def load(self, viewer_id: int, chain: str) -> list[int] | None:
        raw = await self.client.get(keys.explore_key(viewer_id, chain))
        if raw is None:
            return None
        return list(array("q", raw))


class Owners:
    """The owners' data, paged through their mesh-only scans: what the index rebuild reads
    (services.search.rebuild). Outside any request, so each call has its own timeout."""

    TIMEOUT_S = 60.0

    def __init__(self, channels: MeshChannels) -> None:
        self._accounts = accounts_service_pb2_grpc.AccountsServiceStub(channels.channel("accounts"))
        self._posts = posts_service_pb2_grpc.PostsServiceStub(channels.channel("posts"))
        self._engagement = engagement_service_pb2_grpc.EngagementServiceStub(channels.channel("engagement"))
        self._graph = GraphClient(channels)

    async def users(self, shard: int, after_id: int, page_size: int) -> tuple[list, int]:
        reply = await self._accounts.ScanUsers(accounts_service_pb2.ScanUsersRequest(
            shard=shard, after_id=after_id, page_size=page_size), timeout=self.TIMEOUT_S)
        return list(reply.users), reply.next_after_id

    async def posts(self, shard: int, after_id: int, page_size: int) -> tuple[list[posts_pb2.Post], int]:
        reply = await self._posts.ScanPosts(posts_service_pb2.ScanPostsRequest(
            shard=shard, after_id=after_id, page_size=page_size), timeout=self.TIMEOUT_S)
        return list(reply.posts), reply.next_after_id

    async def likes(self, shard: int, after: tuple[int, int], page_size: int) -> list[tuple[int, int, int]]:
        reply = await self._engagement.ScanLikes(engagement_service_pb2.ScanLikesRequest(
            shard=shard, after_post_id=after[0], after_user_id=after[1], page_size=page_size),
            timeout=self.TIMEOUT_S)
        return [(like.post_id, like.user_id, like.created_at_ms) for like in reply.likes]

    async def following(self, user_id: int) -> list[int]:
        return await self._graph.following_ids(user_id)
