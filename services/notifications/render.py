"""Groups as the API shows them: the proto for GET /v1/notifications, and the same as JSON for the
notification.changed events (what Envoy's transcoder would print: snake_case, ids as strings, enums
by name, every field)."""

from __future__ import annotations

from google.protobuf import json_format
from pictor.notifications.v1 import notifications_pb2 as pb

from services.notifications.adapters import People, PostThumbnails
from services.notifications.service import Group


class GroupRenderer:
    def __init__(self, people: People, posts: PostThumbnails) -> None:
        self.people = people
        self.posts = posts

    async def protos(self, user_id: int, groups: list[Group]) -> list[pb.NotificationGroup]:
        """The groups with their actors and posts, leaving out those whose post the user can no longer see."""
        post_ids = [g.post_id for g in groups if g.post_id]
        thumbnails = await self.posts.thumbnails(user_id, post_ids) if post_ids else {}
        people = await self.people.summaries([a for g in groups for a in g.actor_ids])
        return [to_proto(g, people, thumbnails.get(g.post_id, ""))
                for g in groups if not g.post_id or g.post_id in thumbnails]

    async def group_json(self, group: Group) -> str:
        """The group as GET /v1/notifications shows it; "" when its user can no longer see its post."""
        shown = await self.protos(group.user_id, [group])
        return to_json(shown[0]) if shown else ""


def to_proto(g: Group, people: dict, thumbnail: str) -> pb.NotificationGroup:
    message = pb.NotificationGroup(
        group_key=g.key, type=pb.NotificationType.Value(g.type), actor_count=g.actor_count,
        notification_count=g.notification_count, unread=g.unread,
        actors=[people[a] for a in g.actor_ids if a in people])
    if g.post_id:
        message.post.CopyFrom(pb.NotificationPost(id=g.post_id, thumbnail_url=thumbnail))
    if g.comment_id:
        message.comment.CopyFrom(pb.NotificationComment(id=g.comment_id, parent_comment_id=g.parent_comment_id))
    message.latest_at.FromDatetime(g.latest_at)
    return message


def to_json(message: pb.NotificationGroup) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None,
                                     always_print_fields_with_no_presence=True)
