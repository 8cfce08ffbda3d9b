"""What accounts' exporter asks of the other owners: a user's rows, page by page, through each
owner's mesh-only ExportUserData, and the original files through media's ReadOriginal. Outside
any request, so each call has its own timeout. Nothing calls back into accounts."""

from __future__ import annotations

from pictor.engagement.v1 import engagement_service_pb2_grpc
from pictor.exports.v1 import exports_pb2
from pictor.graph.v1 import graph_service_pb2_grpc
from pictor.media.v1 import media_service_pb2, media_service_pb2_grpc
from pictor.messaging.v1 import messaging_service_pb2_grpc
from pictor.moderation.v1 import moderation_service_pb2_grpc
from pictor.notifications.v1 import notifications_service_pb2_grpc
from pictor.posts.v1 import posts_service_pb2_grpc
from pictor.stories.v1 import stories_service_pb2_grpc

from services.common.clients import MeshChannels

Page = tuple[list[str], str]
# What each owner holds of a user, file by file of the archive: (owner, the owner's kind).
KINDS = (("posts", "posts"), ("engagement", "comments"), ("engagement", "likes"), ("engagement", "saves"),
         ("graph", "following"), ("graph", "followers"), ("graph", "blocks"), ("graph", "mutes"),
         ("graph", "follow_requests_sent"), ("graph", "follow_requests_received"), ("stories", "stories"),
         ("stories", "highlights"), ("stories", "close_friends"), ("stories", "story_mutes"),
         ("stories", "story_views"), ("messaging", "messages"), ("messaging", "conversations"),
         ("messaging", "message_reactions"), ("messaging", "devices"), ("media", "media"),
         ("notifications", "notification_settings"), ("moderation", "reports"),
         ("moderation", "moderation_actions"))


def _request(user_id: int, kind: str, page_token: str) -> exports_pb2.ExportUserDataRequest:
    return exports_pb2.ExportUserDataRequest(user_id=user_id, kind=kind, page_token=page_token, page_size=1000)


def _page(reply: exports_pb2.ExportUserDataResponse) -> Page:
    return list(reply.records), reply.next_page_token


class DataOwners:
    TIMEOUT_S = 60.0

    def __init__(self, channels: MeshChannels) -> None:
        self._posts = posts_service_pb2_grpc.PostsServiceStub(channels.channel("posts"))
        self._engagement = engagement_service_pb2_grpc.EngagementServiceStub(channels.channel("engagement"))
        self._graph = graph_service_pb2_grpc.GraphServiceStub(channels.channel("graph"))
        self._stories = stories_service_pb2_grpc.StoriesServiceStub(channels.channel("stories"))
        self._messaging = messaging_service_pb2_grpc.MessagingServiceStub(channels.channel("messaging"))
        self._media = media_service_pb2_grpc.MediaServiceStub(channels.channel("media"))
        self._notifications = notifications_service_pb2_grpc.NotificationsServiceStub(
            channels.channel("notifications"))
        self._moderation = moderation_service_pb2_grpc.ModerationServiceStub(channels.channel("moderation"))

    async def page(self, owner: str, user_id: int, kind: str, page_token: str) -> Page:
        # Each stub called by name, so that the mesh's call graph (services.mesh.callgraph) sees it.
        request, t = _request(user_id, kind, page_token), self.TIMEOUT_S
        match owner:
            case "posts":
                return _page(await self._posts.ExportUserData(request, timeout=t))
            case "engagement":
                return _page(await self._engagement.ExportUserData(request, timeout=t))
            case "graph":
                return _page(await self._graph.ExportUserData(request, timeout=t))
            case "stories":
                return _page(await self._stories.ExportUserData(request, timeout=t))
            case "messaging":
                return _page(await self._messaging.ExportUserData(request, timeout=t))
            case "media":
                return _page(await self._media.ExportUserData(request, timeout=t))
            case "notifications":
                return _page(await self._notifications.ExportUserData(request, timeout=t))
            case "moderation":
                return _page(await self._moderation.ExportUserData(request, timeout=t))
        raise KeyError(owner)

    async def original(self, owner_id: int, media_id: int, offset: int) -> tuple[bytes, int, str]:
        """Up to 1 MiB of the original from `offset`: (data, whole size, format)."""
        reply = await self._media.ReadOriginal(media_service_pb2.ReadOriginalRequest(
            owner_id=owner_id, media_id=media_id, offset=offset), timeout=self.TIMEOUT_S)
        return reply.data, reply.size_bytes, reply.format
