"""What messaging asks of other services: who relates how (graph), media (media), shared posts
(posts), shared stories (stories), devices (accounts); and the bus, for typing. Narrow calls; none calls back."""

from __future__ import annotations

import logging

import grpc

from services.common.clients import AccountsClient, GraphClient, MediaClient, PostsClient, StoriesClient
from services.common.events import EventPublisher
from services.messaging.events import TOPIC, MessagingEvent
from services.messaging.service import Relation

log = logging.getLogger(__name__)

# posts' BatchGetPosts and CheckPostAccess take at most this many ids.
POSTS_BATCH = 100


class GraphRelations:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def relations(self, viewer_id: int, user_ids: list[int]) -> dict[int, Relation]:
        found = await self.graph.relationships(viewer_id, user_ids)
        return {u: Relation(follows=r.following, blocked=r.blocked) for u, r in found.items()}


class MediaItems:
    def __init__(self, media: MediaClient) -> None:
        self.media = media

    async def get(self, media_ids: list[int]) -> dict[int, object]:
        return dict(await self.media.get_media(media_ids))

    async def pin(self, owner_id: int, message_id: int, media_id: int) -> None:
        # The message's id stands in the attachment's post_id; confirmed: media never asks posts about it.
        await self.media.attach_media(owner_id, message_id, [media_id], confirmed=True)

    async def unpin(self, owner_id: int, message_id: int, media_id: int) -> None:
        try:
            await self.media.release_media(owner_id, [media_id], message_id)
        except grpc.aio.AioRpcError as error:
            log.warning("media %d of unsent message %d not released: %s", media_id, message_id, error.code().name)


class SharedPosts:
    def __init__(self, posts: PostsClient) -> None:
        self.posts = posts

    async def visible(self, viewer_id: int, post_ids: list[int]) -> dict[int, object]:
        unique, found = list(dict.fromkeys(post_ids)), {}
        for start in range(0, len(unique), POSTS_BATCH):
            found.update((p.id, p) for p in await self.posts.visible_posts(viewer_id, unique[start:start + POSTS_BATCH]))
        return found

    async def sees(self, viewer_id: int, post_ids: list[int]) -> set[int]:
        return set(await self.posts.visible_authors(viewer_id, list(dict.fromkeys(post_ids))[:POSTS_BATCH]))


class SharedStories:
    def __init__(self, stories: StoriesClient) -> None:
        self.stories = stories

    async def visible(self, viewer_id: int, story_ids: list[int]) -> dict[int, object]:
        return {s.id: s for s in await self.stories.visible_stories(viewer_id, story_ids)}


class AccountDevices:
    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def device_ids(self, user_ids: list[int]) -> dict[int, set[int]]:
        return await self.accounts.device_ids(user_ids)


class BusTyping:
    """Typing goes straight onto the stream: nothing stored, nothing to roll back."""

    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher

    async def publish(self, type: str, event: MessagingEvent) -> None:
        await self.publisher.publish(TOPIC, type, **event.fields())
