"""Posts process: `python -m services.posts.server`."""

from __future__ import annotations

import grpc
from pictor.posts.v1 import posts_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, EngagementClient, GraphClient, MediaClient, ModerationClient
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.engagement.warm_states import CachedStates
from services.posts.cache import PostCache
from services.posts.cleanup import Cleanup, CleanupConfig
from services.posts.erasure import PostsEraser
from services.posts.exports import KINDS
from services.posts.reading import PostHydrator, PostReader
from services.posts.repository import PostgresPostsRepository
from services.posts.service import Access, PostsService
from services.posts.servicer import PostsServicer
from services.posts.timelines import RedisAuthorTimelines

SPEC = by_name("posts")


class GraphAccess:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def access(self, viewer_id: int, author_ids: list[int]) -> dict[int, Access]:
        found = await self.graph.relationships(viewer_id, author_ids)
        return {owner: Access(r.can_view, r.blocked) for owner, r in found.items()}


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings = resources.settings
    channels, redis = resources.channels(), resources.redis()
    db = await resources.database()
    posts = PostgresPostsRepository(db)
    service = PostsService(posts, await resources.ids(),
                           GraphAccess(GraphClient(channels)),
                           RedisAuthorTimelines(redis), MediaClient(channels), ModerationClient(channels))
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    engagement = EngagementClient(channels)
    hydrator = PostHydrator(AccountsClient(channels), MediaClient(channels), engagement,
                            CachedStates(redis, engagement))
    reader = PostReader(service, hydrator, PostCache(redis))
    posts_service_pb2_grpc.add_PostsServiceServicer_to_server(PostsServicer(service, verifier, reader, UserDataExport(db, KINDS)), grpc_server)
    cleanup = Cleanup(posts, EngagementClient(channels), MediaClient(channels), CleanupConfig.from_env(),
                      settings.logical_shards)
    erasure.start(resources, "posts", PostsEraser(db, posts, cleanup, redis).erase_user)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
