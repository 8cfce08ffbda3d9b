"""Messaging's part of an account's erasure (services.common.erasure).

The deleted user leaves every conversation: the messages they sent (with the
reactions to them and their secret envelopes), their reactions and envelopes,
their memberships, inbox rows and direct-pair rows go. The other members keep the
conversation and their own messages; a group the user created keeps going with no
creator (creator_id 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.db import Database
from services.common.erasure import delete_in_every_shard

MINE = "(SELECT id FROM {schema}.messages WHERE sender_id = %(user)s)"


@dataclass
class MessagingEraser:
    db: Database

    async def erase_user(self, user_id: int) -> None:
        await delete_in_every_shard(self.db, [
            f"DELETE FROM {{schema}}.message_reactions WHERE user_id = %(user)s OR message_id IN {MINE}",
            f"DELETE FROM {{schema}}.message_envelopes WHERE user_id = %(user)s OR message_id IN {MINE}",
            "DELETE FROM {schema}.messages WHERE sender_id = %(user)s",
            "DELETE FROM {schema}.conversation_members WHERE user_id = %(user)s",
            "DELETE FROM {schema}.user_conversations WHERE user_id = %(user)s",
            "DELETE FROM {schema}.direct_conversations WHERE user_low = %(user)s OR user_high = %(user)s",
            "UPDATE {schema}.conversations SET creator_id = 0 WHERE creator_id = %(user)s",
        ], user_id)
