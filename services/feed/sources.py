"""The feed's sources of truth, reached through the mesh (graph, posts, accounts, realtime's user classes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.common.clients import AccountsClient, GraphClient, MeshChannels, PostsClient, RealtimeClient


class MeshSources:
    def __init__(self, channels: MeshChannels) -> None:
        self.graph = GraphClient(channels)
        self.posts = PostsClient(channels)
        self.accounts = AccountsClient(channels)
        self.realtime = RealtimeClient(channels)

    async def following_ids(self, user_id: int) -> list[int]:
        return await self.graph.following_ids(user_id)

    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        return await self.graph.exclusions(user_id)

    def follower_id_pages(self, user_id: int) -> AsyncIterator[list[int]]:
        return self.graph.follower_id_pages(user_id)

    async def follower_counts(self, user_ids: list[int]) -> dict[int, int]:
        return {u.id: u.follower_count for u in (await self.accounts.get_users(user_ids)).values()}

    async def recent_posts(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for start in range(0, len(author_ids), 10_000):
            found += await self.posts.recent_ids(author_ids[start:start + 10_000], limit)
        return sorted(found, reverse=True)[:limit]

    async def classes_if_up(self, user_ids: list[int]) -> dict[int, set[str]] | None:
        return await self.realtime.classes_if_up(user_ids)
