"""Graph process: `python -m services.graph.server`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import redis.asyncio as aioredis
from pictor.graph.v1 import graph_service_pb2_grpc

from services.common import server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, MeshChannels
from services.common.config import Settings
from services.common.db import Database
from services.common.events import EventPublisher
from services.graph.repository import PostgresGraphRepository, PostgresProfiles
from services.graph.service import GraphService
from services.graph.servicer import GraphServicer
from services.common.registry import by_name

SPEC = by_name("graph")


async def setup(grpc_server: grpc.aio.Server, settings: Settings) -> Sequence[server.Closer]:
    db = Database(settings)
    await db.open()
    channels = MeshChannels(settings)
    accounts = AccountsClient(channels)
    redis = aioredis.from_url(settings.redis_url)
    service = GraphService(PostgresGraphRepository(db), PostgresProfiles(db), EventPublisher(redis))
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    graph_service_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(service, verifier, accounts), grpc_server)
    return [channels.close, redis.aclose, db.close]


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
