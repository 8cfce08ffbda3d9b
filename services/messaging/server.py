"""Messaging process: `python -m services.messaging.server`.

Conversations and their messages; the realtime dispatch worker delivers its
events to the members' streams, the notifier turns new messages into MESSAGE
notifications for members who are away.
"""

from __future__ import annotations

import grpc
from pictor.messaging.v1 import messaging_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, MediaClient, PostsClient, StoriesClient
from services.common.events import EventPublisher
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.messaging.adapters import (
    AccountDevices,
    BusTyping,
    GraphRelations,
    MediaItems,
    SharedPosts,
    SharedStories,
)
from services.messaging.erasure import MessagingEraser
from services.messaging.exports import KINDS
from services.messaging.repository import PostgresMessagingStore
from services.messaging.service import MessagingService
from services.messaging.servicer import MessagingServicer

SPEC = by_name("messaging")


async def messaging_service(resources: server.Resources) -> MessagingService:
    """The service as wired in a process of the mesh (the server, and the story_replies worker)."""
    channels = resources.channels()
    return MessagingService(
        PostgresMessagingStore(await resources.database()), await resources.ids(),
        GraphRelations(GraphClient(channels)), MediaItems(MediaClient(channels)), SharedPosts(PostsClient(channels)),
        SharedStories(StoriesClient(channels)), AccountDevices(AccountsClient(channels)),
        BusTyping(EventPublisher(resources.redis())))


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings = resources.settings
    erasure.start(resources, "messaging", MessagingEraser(await resources.database()).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    messaging_service_pb2_grpc.add_MessagingServiceServicer_to_server(
        MessagingServicer(await messaging_service(resources), verifier, AccountsClient(resources.channels()),
                          UserDataExport(await resources.database(), KINDS)),
        grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
