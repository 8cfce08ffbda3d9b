"""The consumer group "accounts-moderation" (in accounts' worker): a suspension applied to the account.

moderation.account_suspended marks the user suspended (sign-in and refresh answer 403
ACCOUNT_SUSPENDED; others see the profile as missing), revokes every refresh token, so no
access token is issued after it, and voids those issued before (services.common.revocation):
every service refuses them within about a second.
Idempotent: a repeat changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.accounts.repository import PostgresAccountsRepository
from services.common.events import Event
from services.common.revocation import TokenRevoker

GROUP = "accounts-moderation"
TOPICS = ["moderation"]


@dataclass
class Suspensions:
    accounts: PostgresAccountsRepository
    revoker: TokenRevoker

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.account_suspended":
            user_id = int(event.data["user_id"])
            await self.accounts.suspend(user_id)
            # Its access tokens too, at once (a Redis error retries the event).
            await self.revoker.user(user_id)
