"""The consumer group "engagement-moderation" (in engagement's counters worker): moderation's actions
applied to comments.

moderation.content_hidden of a comment hides it; moderation.account_suspended hides every comment
of the user (in every shard: comments live in their posts'). A hidden comment is left out of
listings and answers NOT_FOUND to all but its author (services.engagement.service). Idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.events import Event
from services.engagement.repository import PostgresEngagementRepository

GROUP = "engagement-moderation"
TOPICS = ["moderation"]


@dataclass
class CommentModeration:
    comments: PostgresEngagementRepository

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.content_hidden" and event.data.get("target_type") == "comment":
            await self.comments.hide_comment(int(event.data["target_id"]))
        elif event.type == "moderation.account_suspended":
            await self.comments.hide_comments_by(int(event.data["user_id"]))
