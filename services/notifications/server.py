"""Notifications process: `python -m services.notifications.server`.

The notifier worker (services.notifications.worker) writes notifications from
events; the digest worker (services.notifications.digest) emails them.
"""

from __future__ import annotations

import grpc
from pictor.notifications.v1 import notifications_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, PostsClient
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.notifications.adapters import MeshRelations, People, PostThumbnails
from services.notifications.erasure import NotificationsEraser
from services.notifications.exports import KINDS
from services.notifications.inbox import Inbox
from services.notifications.render import GroupRenderer
from services.notifications.repository import PostgresNotificationStore
from services.notifications.service import Grouping, NotificationsService
from services.notifications.servicer import NotificationsServicer

SPEC = by_name("notifications")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels = resources.settings, resources.channels()
    db = await resources.database()
    store = PostgresNotificationStore(db)
    service = NotificationsService(store)
    people = People(AccountsClient(channels))
    renderer = GroupRenderer(people, PostThumbnails(PostsClient(channels)))
    inbox = Inbox(store, MeshRelations(GraphClient(channels), PostsClient(channels)), people, renderer,
                  Grouping.from_env())
    # The digest worker may still be taking in realtime's presence and class events about the user
    # (the take-backs of other owners' erasures cause some): erase again once the deletion is 20 s old.
    erasure.start(resources, "notifications", NotificationsEraser(store, inbox).erase_user, settle_s=20)
    notifications_service_pb2_grpc.add_NotificationsServiceServicer_to_server(
        NotificationsServicer(service, TokenVerifier(settings.jwks_file, settings.jwt_issuer), renderer,
                              UserDataExport(db, KINDS)), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
