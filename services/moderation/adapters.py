"""What moderation asks of the owners: whether a reporter can see a target, and who wrote it.
Narrow calls (ids in, an id out); none of them calls moderation back. A message is checked with
messaging at once (CheckMessageAccess: the reporter must be a member of its conversation), not
accepted and verified later, so the queue never holds a report its reporter could not make."""

from __future__ import annotations

import grpc
from pictor.engagement.v1 import engagement_service_pb2, engagement_service_pb2_grpc
from pictor.messaging.v1 import messaging_service_pb2, messaging_service_pb2_grpc
from pictor.stories.v1 import stories_service_pb2, stories_service_pb2_grpc

from services.common.clients import AccountsClient, GraphClient, MeshChannels, PostsClient
from services.common.deadlines import outbound_timeout

POST, COMMENT, STORY, MESSAGE, ACCOUNT = 1, 2, 3, 4, 5


class OwnerTargets:
    def __init__(self, channels: MeshChannels) -> None:
        self.posts = PostsClient(channels)
        self.accounts = AccountsClient(channels)
        self.graph = GraphClient(channels)
        self._engagement = engagement_service_pb2_grpc.EngagementServiceStub(channels.channel("engagement"))
        self._stories = stories_service_pb2_grpc.StoriesServiceStub(channels.channel("stories"))
        self._messaging = messaging_service_pb2_grpc.MessagingServiceStub(channels.channel("messaging"))

    async def owner(self, viewer_id: int, target_type: int, target_id: int) -> int | None:
        try:
            if target_type == POST:
                return (await self.posts.visible_authors(viewer_id, [target_id])).get(target_id)
            if target_type == ACCOUNT:
                return await self._account(viewer_id, target_id)
            if target_type == COMMENT:
                return (await self._engagement.CheckCommentAccess(engagement_service_pb2.CheckCommentAccessRequest(
                    viewer_id=viewer_id, comment_id=target_id), timeout=outbound_timeout())).author_id
            if target_type == STORY:
                return (await self._stories.CheckStoryAccess(stories_service_pb2.CheckStoryAccessRequest(
                    viewer_id=viewer_id, story_id=target_id), timeout=outbound_timeout())).author_id
            if target_type == MESSAGE:
                return (await self._messaging.CheckMessageAccess(messaging_service_pb2.CheckMessageAccessRequest(
                    viewer_id=viewer_id, message_id=target_id), timeout=outbound_timeout())).sender_id
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        return None

    async def _account(self, viewer_id: int, user_id: int) -> int | None:
        if user_id not in await self.accounts.get_users([user_id]):
            return None
        relation = (await self.graph.relationships(viewer_id, [user_id])).get(user_id)
        return None if relation is None or relation.blocked else user_id
