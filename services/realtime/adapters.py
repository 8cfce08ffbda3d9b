"""What realtime asks of other services, behind the narrow interfaces service.py declares."""

from __future__ import annotations

from services.common.clients import AccountsClient, GraphClient


class PresenceAudience:
    """Who may see whose presence: people who follow each other, both showing their activity status.

    The graph answers who follows whom; accounts answers who shows their activity status."""

    def __init__(self, graph: GraphClient, accounts: AccountsClient) -> None:
        self.graph = graph
        self.accounts = accounts

    async def may_see(self, viewer_id: int, user_id: int) -> bool:
        if viewer_id == user_id:
            return True
        # The graph knows of no such user, or the viewer does not follow them: no need to ask the other way.
        there = (await self.graph.relationships(viewer_id, [user_id])).get(user_id)
        if there is None or not there.following:
            return False
        back = (await self.graph.relationships(user_id, [viewer_id])).get(viewer_id)
        if back is None or not back.following:
            return False
        return await self.accounts.showing_activity([viewer_id, user_id]) == {viewer_id, user_id}

    async def mutuals(self, user_id: int) -> set[int]:
        """Who follows `user_id` and is followed back."""
        following = set(await self.graph.following_ids(user_id))
        mutual: set[int] = set()
        if following:
            async for page in self.graph.follower_id_pages(user_id):
                mutual.update(u for u in page if u in following)
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
