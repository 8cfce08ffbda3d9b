"""Messaging's shapes: domain views to the API's protos, and the JSON the streams carry.

The JSON a stream shows is the proto's JSON mapping (snake_case, ids as strings),
so a client parses a live message exactly as one from GET .../messages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage
from pictor.accounts.v1 import accounts_pb2
from pictor.messaging.v1 import messaging_pb2

if TYPE_CHECKING:
    from services.messaging.service import ConversationView, Message, MessageView

PREVIEW_CHARS = 100


def to_json(data: dict[str, object]) -> str:
    return json.dumps(data, separators=(",", ":"))


def proto_json(message: ProtoMessage) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def message_proto(view: MessageView) -> messaging_pb2.Message:
    m = view.message
    message = messaging_pb2.Message(
        id=m.id, conversation_id=m.conversation_id, sender_id=m.sender_id, client_message_id=m.client_message_id,
        kind=messaging_pb2.MessageKind.Value(f"MESSAGE_KIND_{m.kind}"), text=m.text,
        reactions=[messaging_pb2.Reaction(user_id=u, emoji=e) for u, e in view.reactions],
        envelopes=[messaging_pb2.Envelope(device_id=d, ciphertext=c) for d, _, c in view.envelopes])
    if view.media is not None:
        message.media.CopyFrom(view.media)
    if m.kind == "POST":
        # A post the reader may not see is "unavailable" and nothing else: not even its id.
        shared = messaging_pb2.SharedPost(post_id=m.post_id if view.post_visible else 0,
                                          unavailable=not view.post_visible)
        if view.post is not None:
            shared.post.CopyFrom(view.post)
        message.post.CopyFrom(shared)
    if m.kind == "STORY":
        # A story the reader may not see (expired, deleted, private, blocked) is "unavailable" and nothing else.
        shared = messaging_pb2.SharedStory(story_id=m.story_id if view.story_visible else 0,
                                           unavailable=not view.story_visible)
        if view.story is not None:
            shared.story.CopyFrom(view.story)
        message.story.CopyFrom(shared)
    if m.created_at is not None:
        message.created_at.FromDatetime(m.created_at)
    return message


def message_json(view: MessageView) -> str:
    return proto_json(message_proto(view))


def reactions_json(message_id: int, reactions: list[tuple[int, str]]) -> str:
    return to_json({"message_id": str(message_id),
                    "reactions": [{"user_id": str(u), "emoji": e} for u, e in reactions]})


def preview(m: Message) -> messaging_pb2.MessagePreview:
    message = messaging_pb2.MessagePreview(
        id=m.id, sender_id=m.sender_id, kind=messaging_pb2.MessageKind.Value(f"MESSAGE_KIND_{m.kind}"),
        text=m.text[:PREVIEW_CHARS] if m.kind == "TEXT" else "")
    if m.created_at is not None:
        message.created_at.FromDatetime(m.created_at)
    return message


def conversation_proto(view: ConversationView, people: dict[int, accounts_pb2.UserSummary]
                       ) -> messaging_pb2.Conversation:
    c = view.conversation
    message = messaging_pb2.Conversation(
        id=c.id, title=c.title, is_group=c.is_group, secret=c.secret, creator_id=c.creator_id,
        folder=view.view.folder,
        muted=view.view.muted, unread_count=view.unread_count,
        members=[messaging_pb2.Member(user=people.get(m.user_id, accounts_pb2.UserSummary(id=m.user_id)),
                                      last_read_message_id=0 if m.user_id in view.hidden_reads else m.last_read_id)
                 for m in view.members])
    if c.created_at is not None:
        message.created_at.FromDatetime(c.created_at)
    newest = view.last_message
    if newest is not None:
        message.last_message.CopyFrom(preview(newest))
        if newest.created_at is not None:
            message.last_activity_at.FromDatetime(newest.created_at)
    elif c.created_at is not None:
        message.last_activity_at.FromDatetime(c.created_at)
    return message
