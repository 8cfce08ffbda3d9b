"""The consumer group "accounts-moderation" (in accounts' worker): a suspension applied to the account.

moderation.account_suspended marks the user suspended (sign-in and refresh answer 403
ACCOUNT_SUSPENDED; others see the profile as missing) and revokes every refresh token, so no
access token is issued after it; those issued before expire within PICTOR_ACCESS_TOKEN_TTL.
Idempotent: a repeat changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.accounts.repository import PostgresAccountsRepository
from services.common.events import Event

GROUP = "accounts-moderation"
TOPICS = ["moderation"]


@dataclass
class Suspensions:
    accounts: PostgresAccountsRepository

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.account_suspended":
            await self.accounts.suspend(int(event.data["user_id"]))
