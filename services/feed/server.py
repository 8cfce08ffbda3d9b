"""Feed process: `python -m services.feed.server`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import redis.asyncio as aioredis
from pictor.feed.v1 import feed_service_pb2_grpc

from services.common import server
from services.common.auth import TokenVerifier
from services.common.clients import MeshChannels, PostsClient
from services.common.config import Settings
from services.feed.config import FeedConfig
from services.feed.service import FeedService
from services.feed.servicer import FeedServicer
from services.feed.sources import MeshSources
from services.feed.store import FeedStore
from services.common.registry import by_name

SPEC = by_name("feed")


async def setup(grpc_server: grpc.aio.Server, settings: Settings) -> Sequence[server.Closer]:
    channels = MeshChannels(settings)
    redis = aioredis.from_url(settings.redis_url)
    service = FeedService(FeedStore(redis), MeshSources(channels), PostsClient(channels), FeedConfig.from_env())
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    feed_service_pb2_grpc.add_FeedServiceServicer_to_server(FeedServicer(service, verifier), grpc_server)
    return [channels.close, redis.aclose]


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
