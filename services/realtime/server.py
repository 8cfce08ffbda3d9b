"""Realtime process: `python -m services.realtime.server`.

Holds the users' open streams; run several behind Envoy, they share nothing
but Redis. The dispatch and classifier workers are processes of their own
(services.realtime.worker, services.realtime.classifier).
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from pictor.realtime.v1 import realtime_service_pb2_grpc

from services.common import erasure, metrics, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, MessagingClient
from services.common.registry import by_name
from services.realtime.adapters import Contacts, PresenceAudience
from services.realtime.buffer import ReplayBuffers, Tickets
from services.realtime.classes import RedisClasses
from services.realtime.config import RealtimeConfig
from services.realtime.erasure import RealtimeEraser
from services.realtime.hub import Hub
from services.realtime.presence import PresenceTracker
from services.realtime.repository import PostgresPresenceStore
from services.realtime.service import RealtimeService
from services.realtime.servicer import RealtimeServicer

SPEC = by_name("realtime")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels, redis = resources.settings, resources.channels(), resources.redis()
    config = RealtimeConfig.from_env()
    db = await resources.database(max_size=4)
    hub = Hub(settings.redis_url)
    await hub.start()
    resources.on_close(hub.close)
    metrics.REALTIME_STREAMS.set_function(lambda: hub.open_streams)
    presence = PresenceTracker(redis, PostgresPresenceStore(db), config)
    service = RealtimeService(
        ReplayBuffers(redis, config.replay_events, config.replay_ttl_s), Tickets(redis, config.ticket_ttl_s), hub,
        presence, PresenceAudience(GraphClient(channels), AccountsClient(channels), Contacts(MessagingClient(channels))), RedisClasses(redis), config)
    settler = asyncio.get_running_loop().create_task(presence.run_settler())

    async def close_settler() -> None:
        settler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await settler

    resources.on_close(close_settler)
    # Its dispatch and classifier workers may still be handling events about the user (the
    # take-backs other owners' erasures cause): erase again once the deletion is 20 s old.
    erasure.start(resources, "realtime", RealtimeEraser(db, redis).erase_user, settle_s=20)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    realtime_service_pb2_grpc.add_RealtimeServiceServicer_to_server(RealtimeServicer(service, verifier), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
