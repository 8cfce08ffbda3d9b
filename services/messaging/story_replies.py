"""Story replies become direct messages (consumer group "story-replies" of the stories topic).

POST /v1/stories/{story_id}/replies is checked and stored by stories, which
writes story.reply to its outbox. Here each one becomes a STORY message with
the reply's text, from the replier, in the replier's one-to-one conversation
with the author: started if need be, in the author's requests when the author
does not follow the replier, as any first message would be. The author hears
of it as of any message (MESSAGE or MESSAGE_REQUEST when away).

Idempotent: the message's client_message_id is the event's id, so a
redelivered event returns the message already sent. A reply that can no
longer be delivered (one of the two blocked the other since) is dropped with
a log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.events import Event
from services.messaging.service import Draft, MessagingService

log = logging.getLogger(__name__)

GROUP = "story-replies"
TOPICS = ["stories"]


@dataclass
class StoryReplies:
    service: MessagingService

    async def handle(self, event: Event) -> None:
        if event.type != "story.reply":
            return
        d = event.data
        replier, author = d["user_id"], d["author_id"]
        try:
            conversation = await self.service.create(replier, [author], "", False)
            await self.service.send(replier, conversation.conversation.id,
                                    Draft(f"story-reply:{event.id}", text=d["text"], story_id=d["story_id"]),
                                    story_checked=True)
        except (NotFound, PermissionDenied, InvalidArgument) as refused:
            log.info("story reply %s from %d to %d not delivered: %s", event.id, replier, author, refused)
