"""Feed process: `python -m services.feed.server`."""

from __future__ import annotations

import grpc
import redis.asyncio as aioredis

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import EngagementClient, MediaClient, MeshChannels, PostsClient
from services.common.redis_wire import WireRedis, wire_for
from services.common.registry import by_name
from services.engagement.warm_states import CachedStates
from services.feed.config import FeedConfig
from services.feed.erasure import FeedEraser
from services.feed.pages import CacheReads, FeedPages, SigningKeys
from services.feed.service import FeedService
from services.feed.servicer import FeedServicer, add_to_server
from services.feed.sources import MeshSources
from services.feed.store import FeedStore
from services.posts.cache import PostCache

SPEC = by_name("feed")


def feed_service(redis: aioredis.Redis, channels: MeshChannels, reads: WireRedis | None = None) -> FeedService:
    """The feed's service as this process serves it (loadtest.page_cpu measures the same one). reads: what a
    page's three pipelines go through (services.common.redis_wire), else `redis`."""
    posts = PostsClient(channels)
    pages = FeedPages(CacheReads(PostCache(redis), CachedStates(redis, EngagementClient(channels)), reads), posts,
                      SigningKeys(MediaClient(channels)))
    config = FeedConfig.from_env()
    return FeedService(FeedStore(redis, reads=reads, features_ttl_s=config.features_cache_s), MeshSources(channels), posts,
                       pages, config)


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels, redis = resources.settings, resources.channels(), resources.redis()
    erasure.start(resources, "feed", FeedEraser(redis).erase_user)
    # A page's reads without redis-py's cost, on one Redis server (on a cluster, redis-py's routing).
    service = feed_service(redis, channels, wire_for(redis))
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    add_to_server(FeedServicer(service, verifier), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
