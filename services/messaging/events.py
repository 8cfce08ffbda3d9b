"""Messaging's events (topic "messaging"): what the members' streams and their notifications need.

message.created, message.unsent, message.reacted and message.read are written
to the conversation shard's outbox with their change; message.typing is
ephemeral and goes straight onto the stream (no row anywhere, and a lost one
costs nothing). Each carries the recipients decided with the change (the
active members), and the JSON their streams show: one for all, or one per
recipient who sees it otherwise (a shared post they may not see, the
envelopes of their own devices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOPIC = "messaging"
CREATED = "message.created"
UNSENT = "message.unsent"
REACTED = "message.reacted"
READ = "message.read"
TYPING = "message.typing"


@dataclass
class MessagingEvent:
    conversation_id: int
    actor_id: int
    recipient_ids: list[int]
    data_json: str
    message_id: int = 0
    data_json_for: dict[int, str] = field(default_factory=dict)
    notify_user_ids: list[int] = field(default_factory=list)
    request_user_ids: list[int] = field(default_factory=list)

    def fields(self) -> dict[str, object]:
        """The payload's fields (pictor.events.v1.MessagingEvent)."""
        return {"conversation_id": self.conversation_id, "actor_id": self.actor_id, "message_id": self.message_id,
                "recipient_ids": self.recipient_ids, "data_json": self.data_json,
                "data_json_for": self.data_json_for, "notify_user_ids": self.notify_user_ids,
                "request_user_ids": self.request_user_ids}
