"""The consumer group "message-moderation" (messaging's worker): a message a moderator hid is hidden.

moderation.content_hidden of a message marks it; it is then listed to its sender only. A
suspension leaves direct messages where they are: the recipients keep their conversations, and
each message can be reported and hidden on its own. Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.events import Event
from services.messaging.repository import PostgresMessagingStore

GROUP = "message-moderation"
TOPICS = ["moderation"]


@dataclass
class MessageModeration:
    messages: PostgresMessagingStore

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.content_hidden" and event.data.get("target_type") == "message":
            await self.messages.hide_message(int(event.data["target_id"]))
