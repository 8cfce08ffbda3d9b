"""Engagement process: `python -m services.engagement.server`.

The counts' flusher runs as its own process (services.engagement.worker).
"""

from __future__ import annotations

import grpc
from pictor.engagement.v1 import engagement_service_pb2_grpc

from services.common import server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, PostsClient
from services.common.events import EventPublisher
from services.common.ids import IdAllocator
from services.engagement.counters import RedisCounters
from services.engagement.purge import PostPurger
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.service import EngagementService
from services.engagement.servicer import EngagementServicer
from services.engagement.signals import FeedSignals
from services.common.registry import by_name

SPEC = by_name("engagement")


class PostsVisibility:
    """Who may see which post is the posts service's call (privacy, blocks, deletion)."""

    def __init__(self, posts: PostsClient) -> None:
        self.posts = posts

    async def authors_visible_to(self, viewer_id: int, post_ids: list[int]) -> dict[int, int]:
        return {p.id: p.author.id for p in await self.posts.visible_posts(viewer_id, post_ids)}


class GraphBlocks:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def blocked_either_way(self, viewer_id: int, user_ids: list[int]) -> set[int]:
        return {owner for owner, r in (await self.graph.relationships(viewer_id, user_ids)).items() if r.blocked}


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels, redis = resources.settings, resources.channels(), resources.redis()
    db = await resources.database()
    posts = PostsClient(channels)
    repo, store = PostgresEngagementRepository(db), PostgresCountStore(db)
    counters = RedisCounters(redis, store.counts)
    service = EngagementService(
        repo, counters, PostsVisibility(posts), GraphBlocks(GraphClient(channels)), FeedSignals(redis),
        EventPublisher(redis), IdAllocator(settings.logical_shards))
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    engagement_service_pb2_grpc.add_EngagementServiceServicer_to_server(
        EngagementServicer(service, verifier, AccountsClient(channels), posts, PostPurger(repo, counters, store)),
        grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
