"""What realtime asks of other services, behind the narrow interfaces service.py declares."""

from __future__ import annotations

import logging

import grpc

from services.common.clients import AccountsClient, GraphClient, MessagingClient

log = logging.getLogger(__name__)


class Contacts:
    """messaging's answer to who shares an accepted conversation with a user."""

    def __init__(self, messaging: MessagingClient) -> None:
        self.messaging = messaging

    async def of(self, user_id: int, among: list[int] | None = None) -> set[int]:
        """None of them when messaging does not answer: presence then rests on follows alone."""
        try:
            return await self.messaging.contacts(user_id, among)
        except grpc.aio.AioRpcError as error:
            log.warning("presence: messaging's contacts of %d not known (%s)", user_id, error.code().name)
            return set()


class PresenceAudience:
    """Who may see whose presence: people who follow each other or share an accepted conversation,
    both showing their activity status.

    The graph answers who follows whom, messaging who talks with whom, accounts who shows their
    activity status."""

    def __init__(self, graph: GraphClient, accounts: AccountsClient, contacts: Contacts) -> None:
        self.graph = graph
        self.accounts = accounts
        self.contacts = contacts

    async def may_see(self, viewer_id: int, user_id: int) -> bool:
        if viewer_id == user_id:
            return True
        # The graph knows of no such user, or a block stands between them: nothing more to ask.
        there = (await self.graph.relationships(viewer_id, [user_id])).get(user_id)
        if there is None or there.blocked:
            return False
        together = False
        if there.following:
            back = (await self.graph.relationships(user_id, [viewer_id])).get(viewer_id)
            together = back is not None and back.following
        if not together and user_id not in await self.contacts.of(viewer_id, [user_id]):
            return False
        return await self.accounts.showing_activity([viewer_id, user_id]) == {viewer_id, user_id}

    async def mutuals(self, user_id: int) -> set[int]:
        """Who follows `user_id` and is followed back, and who shares an accepted conversation with them
        (a block either way leaves them out)."""
        following = set(await self.graph.following_ids(user_id))
        mutual: set[int] = set()
        if following:
            async for page in self.graph.follower_id_pages(user_id):
                mutual.update(u for u in page if u in following)
        talking = await self.contacts.of(user_id) - mutual
        if talking:
            relations = await self.graph.relationships(user_id, list(talking))
            mutual.update(u for u in talking if u in relations and not relations[u].blocked)
        return mutual

    async def showing(self, user_ids: list[int]) -> set[int]:
        """Which of the users show their activity status."""
        return await self.accounts.showing_activity(user_ids) if user_ids else set()


class FollowerCounts:
    """How many followers a user has: accounts keeps the count shown on profiles."""

    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def follower_counts(self, user_ids: list[int]) -> dict[int, int]:
        return {uid: u.follower_count for uid, u in (await self.accounts.get_users(user_ids)).items()}
