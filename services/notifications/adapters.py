"""What notifications asks of other services: people (accounts), posts' thumbnails and visibility
(posts), blocks and mutes (graph). Narrow calls; nothing that calls back into notifications."""

from __future__ import annotations

from pictor.accounts.v1 import accounts_pb2
from pictor.posts.v1 import posts_pb2

from services.common.clients import AccountsClient, GraphClient, PostsClient

# posts' BatchGetPosts takes at most this many ids.
POSTS_BATCH = 100


def thumbnail_url(post: posts_pb2.Post) -> str:
    """The smallest JPEG of the post's first media item (the 150 square), else its smallest variant;
    from the item's url_template when it comes compact (no variants)."""
    if not post.media:
        return ""
    media = post.media[0]
    variants = sorted(media.variants, key=lambda v: (v.format != "jpeg", v.size))
    if variants:
        return variants[0].url
    if media.url_template and media.sizes:
        return media.url_template.replace("{variant}", f"{min(media.sizes)}.jpg")
    return ""


class People:
    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def summaries(self, user_ids: list[int]) -> dict[int, accounts_pb2.UserSummary]:
        return await self.accounts.summaries(user_ids)

    async def ids(self, usernames: list[str]) -> dict[str, int]:
        """The mentioned users that exist, by username."""
        found = {}
        for name in dict.fromkeys(usernames):
            user_id = await self.accounts.user_id_by_username(name)
            if user_id:
                found[name] = user_id
        return found

    async def emails(self, user_ids: list[int]) -> dict[int, str]:
        return await self.accounts.emails(user_ids)


class PostThumbnails:
    def __init__(self, posts: PostsClient) -> None:
        self.posts = posts

    async def thumbnails(self, viewer_id: int, post_ids: list[int]) -> dict[int, str]:
        """post_id -> thumbnail URL of the posts the viewer may see (deleted and hidden ones left out)."""
        found: dict[int, str] = {}
        unique = list(dict.fromkeys(post_ids))
        for start in range(0, len(unique), POSTS_BATCH):
            for post in await self.posts.visible_posts(viewer_id, unique[start:start + POSTS_BATCH]):
                found[post.id] = thumbnail_url(post)
        return found


class MeshRelations:
    """Blocks and mutes from the graph; who sees a post from posts."""

    def __init__(self, graph: GraphClient, posts: PostsClient) -> None:
        self.graph = graph
        self.posts = posts

    async def excluded(self, recipient_id: int, actor_id: int) -> bool:
        relation = (await self.graph.relationships(recipient_id, [actor_id])).get(actor_id)
        return relation is not None and (relation.blocked or relation.muted)

    async def sees_post(self, viewer_id: int, post_id: int) -> bool:
        return post_id in await self.posts.visible_authors(viewer_id, [post_id])
