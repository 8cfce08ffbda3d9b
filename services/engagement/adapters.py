"""What engagement asks of other services, behind the narrow interfaces service.py declares."""

from __future__ import annotations

from services.common.clients import GraphClient, PostsClient


class PostsVisibility:
    """Who may see which post is the posts service's call (privacy, blocks, deletion).

    CheckPostAccess answers ids only: no hydration, and nothing that calls back into engagement.
    """

    def __init__(self, posts: PostsClient) -> None:
        self.posts = posts

    async def authors_visible_to(self, viewer_id: int, post_ids: list[int]) -> dict[int, int]:
        return await self.posts.visible_authors(viewer_id, post_ids)


class BlockedUsers:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def blocked_either_way(self, viewer_id: int, user_ids: list[int]) -> set[int]:
        return {owner for owner, r in (await self.graph.relationships(viewer_id, user_ids)).items() if r.blocked}
