"""Bus events into the users' replay buffers (the dispatch worker's handler).

  notification.changed (topic "notifications", from the notifications service)
      -> for its user: `notification` (the group, or its removal) and `unread_count`
  message.* (topic "messaging", from the messaging service)
      -> for each recipient the event names: `message`, `message_unsent`,
         `message_reaction`, `read_receipt` or `typing`, with the JSON meant
         for them (services.messaging.events)
  media.progress, media.processed (topic "media", from the media service's transcoder)
      -> for the upload's owner: `media_progress` (percent) and `media_processed`
         (READY or FAILED, with why)
  presence.changed (topic "presence", realtime's own)
      -> `presence` for each user with a stream open who may see it: they and the
         user follow each other and both show their activity status

Each bus event is appended once however often the bus delivers it (the
buffer's per-event marker, services.realtime.buffer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Protocol

import redis.asyncio as aioredis
from google.protobuf import struct_pb2
from pictor.realtime.v1 import realtime_pb2

from services.common.events import Event
from services.realtime import keys
from services.realtime.buffer import ReplayBuffers

log = logging.getLogger(__name__)

# Events for the users they name, each one append (or one per member): read apart from presence,
# whose fan-out asks graph and accounts first, so a burst of streams opening (a presence change
# each) never holds a message back behind it.
DIRECT_TOPICS = ["notifications", "messaging", "media"]
PRESENCE_TOPICS = ["presence"]
TOPICS = DIRECT_TOPICS + PRESENCE_TOPICS
# Messaging's event types -> the stream's.
MESSAGING_TYPES = {"message.created": "message", "message.unsent": "message_unsent",
                   "message.reacted": "message_reaction", "message.read": "read_receipt", "message.typing": "typing"}

MEDIA_TYPES = {"media.progress": "media_progress", "media.processed": "media_processed"}


class Audience(Protocol):
    async def mutuals(self, user_id: int) -> set[int]: ...
    async def showing(self, user_ids: list[int]) -> set[int]: ...


def _stream_event(event: Event, type: str, **payload: object) -> realtime_pb2.StreamEvent:
    message = realtime_pb2.StreamEvent(type=type, **payload)
    if event.envelope is not None and event.envelope.HasField("occurred_at"):
        message.occurred_at.CopyFrom(event.envelope.occurred_at)
    else:
        message.occurred_at.GetCurrentTime()
    return message


def notification_events(event: Event) -> list[realtime_pb2.StreamEvent]:
    data = event.data
    update = realtime_pb2.NotificationUpdate(group_key=data["group_key"])
    if data["group_json"]:
        group = struct_pb2.Struct()
        group.update(json.loads(data["group_json"]))
        update.group.CopyFrom(group)
    else:
        update.removed = True
    return [_stream_event(event, "notification", notification=update),
            _stream_event(event, "unread_count", unread_count=realtime_pb2.UnreadCount(count=data["unread_count"]))]


def presence_event(event: Event) -> realtime_pb2.StreamEvent:
    data = event.data
    presence = realtime_pb2.Presence(user_id=data["user_id"],
                                     state=realtime_pb2.PresenceState.Value(f"PRESENCE_STATE_{data['state']}"))
    changed = event.envelope.presence_changed if event.envelope is not None else None
    if changed is not None and changed.HasField("last_active_at"):
        presence.last_active_at.CopyFrom(changed.last_active_at)
    return _stream_event(event, "presence", presence=presence)


def messaging_event(event: Event, data_json: str) -> realtime_pb2.StreamEvent:
    data = struct_pb2.Struct()
    data.update(json.loads(data_json))
    update = realtime_pb2.MessagingUpdate(conversation_id=event.data["conversation_id"], data=data)
    return _stream_event(event, MESSAGING_TYPES[event.type], messaging=update)


def media_event(event: Event) -> realtime_pb2.StreamEvent:
    d = event.data
    if event.type == "media.progress":
        update = realtime_pb2.MediaUpdate(media_id=d["media_id"], state="PROCESSING", percent=d.get("percent", 0))
    else:
        state = d.get("state", "")
        update = realtime_pb2.MediaUpdate(media_id=d["media_id"], state=state, percent=100 if state == "READY" else 0,
                                          failure_reason=d.get("failure_reason", ""))
    return _stream_event(event, MEDIA_TYPES[event.type], media=update)


class Dispatcher:
    def __init__(self, redis: aioredis.Redis, buffers: ReplayBuffers, audience: Audience) -> None:
        self.redis = redis
        self.buffers = buffers
        self.audience = audience

    async def handle(self, event: Event) -> None:
        if event.type == "notification.changed":
            try:
                payloads = [e.SerializeToString() for e in notification_events(event)]
            except (ValueError, AttributeError) as error:
                # A group that is not a JSON object would fail the same way on every try.
                log.error("notification.changed %s: unreadable group_json (%s); skipped", event.id, error)
                return
            await self.buffers.append(event.data["user_id"], event.id, payloads)
        elif event.type == "presence.changed":
            await self._presence(event)
        elif event.type in MESSAGING_TYPES:
            await self._messaging(event)
        elif event.type in MEDIA_TYPES and event.data.get("owner_id"):
            await self.buffers.append(event.data["owner_id"], event.id, [media_event(event).SerializeToString()])

    async def _messaging(self, event: Event) -> None:
        """Each recipient's copy into their buffer; the copies go out together (one wait, not one per member)."""
        personal = event.data.get("data_json_for") or {}
        try:
            shared = messaging_event(event, event.data["data_json"]).SerializeToString()
            payloads = {u: messaging_event(event, personal[u]).SerializeToString() if u in personal else shared
                        for u in dict.fromkeys(event.data["recipient_ids"])}
        except (ValueError, AttributeError) as error:
            log.error("%s %s: unreadable data_json (%s); skipped", event.type, event.id, error)
            return
        await asyncio.gather(*(self.buffers.append(u, event.id, [p]) for u, p in payloads.items()))

    async def _presence(self, event: Event) -> None:
        user_id = event.data["user_id"]
        mutuals = sorted(await self.audience.mutuals(user_id))
        if not mutuals:
            return
        now = int(time.time() * 1000)
        scores = await self.redis.zmscore(keys.LIVE, mutuals)
        live = [u for u, s in zip(mutuals, scores, strict=True) if s is not None and s > now]
        if not live:
            return
        showing = await self.audience.showing([user_id, *live])
        if user_id not in showing:
            return
        payload = presence_event(event).SerializeToString()
        for recipient in live:
            if recipient in showing:
                await self.buffers.append(recipient, event.id, [payload])
