"""Notifications' part of an account's erasure (services.common.erasure).

What the deleted user caused in others' notification centres is taken back as a
deleted post's notifications are (their groups recounted, a notification.changed
for each), whatever the event that made it; then their own centre, settings and
digest state go.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.erasure import delete_in_every_shard
from services.notifications.inbox import Inbox
from services.notifications.repository import PostgresNotificationStore


@dataclass
class NotificationsEraser:
    store: PostgresNotificationStore
    inbox: Inbox

    async def erase_user(self, user_id: int) -> None:
        await self.inbox.take_back_everywhere(actor_id=user_id)
        await delete_in_every_shard(self.store.db, [
            f"DELETE FROM {{schema}}.{table} WHERE user_id = %(user)s"
            for table in ("notifications", "notification_groups", "notification_settings", "notification_digests")
        ], user_id)
