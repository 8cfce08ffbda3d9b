"""Engagement process: `python -m services.engagement.server`.

The counts' flusher runs as its own process (services.engagement.worker).
"""

from __future__ import annotations

import grpc
from pictor.engagement.v1 import engagement_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, PostsClient
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.engagement.adapters import BlockedUsers, PostsVisibility
from services.engagement.counters import RedisCounters
from services.engagement.erasure import EngagementEraser
from services.engagement.exports import KINDS
from services.engagement.purge import PostPurger
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.service import EngagementService
from services.engagement.servicer import EngagementServicer
from services.engagement.viewer_state import ViewerStates

SPEC = by_name("engagement")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels, redis = resources.settings, resources.channels(), resources.redis()
    db = await resources.database()
    repo, store = PostgresEngagementRepository(db), PostgresCountStore(db)
    counters, viewer_states = RedisCounters(redis, store.counts), ViewerStates(redis)
    service = EngagementService(
        repo, counters, PostsVisibility(PostsClient(channels)), BlockedUsers(GraphClient(channels)),
        await resources.ids(), viewer_states)
    erasure.start(resources, "engagement", EngagementEraser(db, repo, counters, redis).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    engagement_service_pb2_grpc.add_EngagementServiceServicer_to_server(
        EngagementServicer(service, verifier, AccountsClient(channels), PostPurger(repo, counters, store, viewer_states),
                           UserDataExport(db, KINDS)),
        grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
