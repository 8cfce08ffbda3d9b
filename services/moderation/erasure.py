"""Moderation's part of an account's erasure (services.common.erasure).

The deleted user's reports (made by them, or about what they made: that content
is erased by its owners), their moderator grant, and their id in the audit log:
the log keeps every action, and the reports a deleted moderator closed stay
closed, with the deleted user's id put to 0 wherever it stood (the actor, the
owner of the target, the account acted on, who closed a report).
"""

from __future__ import annotations

from dataclasses import dataclass

from pictor.moderation.v1 import moderation_pb2

from services.common.db import Database
from services.common.erasure import delete_in_every_shard

ACCOUNT = moderation_pb2.TargetType.TARGET_TYPE_ACCOUNT


@dataclass
class ModerationEraser:
    db: Database

    async def erase_user(self, user_id: int) -> None:
        await delete_in_every_shard(self.db, [
            "DELETE FROM {schema}.moderation_reports WHERE reporter_id = %(user)s OR owner_id = %(user)s",
            "UPDATE {schema}.moderation_reports SET closed_by = 0 WHERE closed_by = %(user)s",
            "DELETE FROM {schema}.moderators WHERE user_id = %(user)s",
            "UPDATE {schema}.moderation_audit SET actor_id = 0 WHERE actor_id = %(user)s",
            "UPDATE {schema}.moderation_audit SET owner_id = 0 WHERE owner_id = %(user)s",
            (f"UPDATE {{schema}}.moderation_audit SET target_id = 0 WHERE target_type = {ACCOUNT} "
             "AND target_id = %(user)s"),
        ], user_id)
