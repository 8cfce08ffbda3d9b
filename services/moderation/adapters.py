"""What moderation asks of the owners: whether a reporter can see a target, and who wrote it.
Narrow calls (ids in, ids out); none of them calls moderation back."""

from __future__ import annotations

from services.common.clients import AccountsClient, GraphClient, PostsClient

POST, COMMENT, STORY, MESSAGE, ACCOUNT = 1, 2, 3, 4, 5


class OwnerTargets:
    def __init__(self, posts: PostsClient, accounts: AccountsClient, graph: GraphClient) -> None:
        self.posts = posts
        self.accounts = accounts
        self.graph = graph

    async def owner(self, viewer_id: int, target_type: int, target_id: int) -> int | None:
        if target_type == POST:
            return (await self.posts.visible_authors(viewer_id, [target_id])).get(target_id)
        if target_type == ACCOUNT:
            if target_id not in await self.accounts.get_users([target_id]):
                return None
            relation = (await self.graph.relationships(viewer_id, [target_id])).get(target_id)
            return None if relation is None or relation.blocked else target_id
        return None
