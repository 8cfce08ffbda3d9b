"""What stories asks of other services: visibility and follows (graph), media (people: AccountsClient.summaries).
Narrow calls; nothing that calls back into stories."""

from __future__ import annotations

import time
from collections.abc import Callable

from pictor.accounts.v1 import accounts_pb2
from pictor.media.v1 import media_pb2

from services.common.batching import Batcher
from services.common.clients import AccountsClient, GraphClient, MediaClient
from services.common.errors import InvalidArgument


class GraphRelations:
    """The posts' visibility path: graph's FilterViewers decides (can_view: public, or followed, and no
    block either way); ListFollowingIds for the tray.

    A celebrity's story is viewed by many at once: the checks of one owner that arrive while one is in
    flight go to the graph together in the next call (services.common.batching), one query in the
    owner's shard for all of them, never an answer older than its question.
    """

    def __init__(self, graph: GraphClient, batch_linger_s: float = 0.0) -> None:
        self.graph = graph
        self._checks: Batcher[int, int, bool | None] = Batcher(self._filter, max_batch=500, linger_s=batch_linger_s)

    async def can_view(self, viewer_id: int, owner_id: int) -> bool | None:
        return await self._checks.submit(owner_id, viewer_id)

    async def _filter(self, owner_id: int, viewer_ids: list[int]) -> list[bool | None]:
        found, allowed = await self.graph.filter_viewers(owner_id, viewer_ids)
        return [(viewer in allowed) if found else None for viewer in viewer_ids]

    async def blocked_or_unknown(self, viewer_id: int, owner_id: int) -> bool:
        relation = (await self.graph.relationships(viewer_id, [owner_id])).get(owner_id)
        return relation is None or relation.blocked

    async def following_ids(self, viewer_id: int) -> list[int]:
        return await self.graph.following_ids(viewer_id)


class StoryMedia:
    def __init__(self, media: MediaClient) -> None:
        self.media = media

    async def attach(self, owner_id: int, story_id: int, media_id: int) -> None:
        try:
            # full_screen: media makes the photo's 9:16 rendition (Media.full_screen) before answering.
            await self.media.attach_media(owner_id, story_id, [media_id], confirmed=True, full_screen=True)
        except InvalidArgument as error:
            # Media names its own field (media_ids); the route's is media_id.
            raise InvalidArgument("media_id", error.message.replace("media_ids", "media_id"),
                                  reason=error.reason) from None

    async def items(self, media_ids: list[int]) -> dict[int, media_pb2.Media]:
        return await self.media.get_media(media_ids) if media_ids else {}


class AuthorSummaries:
    """Users' summaries (accounts' BatchGetUsers), kept in this process for `ttl_s`.

    Every tray and story list shows people, up to a few hundred at a time, and
    the same ones again and again; a changed name or avatar shows within `ttl_s`.
    """

    def __init__(self, accounts: AccountsClient, ttl_s: float = 30.0, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = accounts
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._cache: dict[int, tuple[float, accounts_pb2.UserSummary]] = {}

    async def summaries(self, user_ids: list[int]) -> dict[int, accounts_pb2.UserSummary]:
        now = self.clock()
        found, missing = {}, []
        for user_id in dict.fromkeys(user_ids):
            hit = self._cache.get(user_id)
            if hit is not None and hit[0] > now:
                found[user_id] = hit[1]
            else:
                missing.append(user_id)
        if missing:
            fresh = await self.accounts.summaries(missing)
            if len(self._cache) + len(fresh) > self.max_entries:
                self._cache.clear()
            self._cache.update((user_id, (now + self.ttl_s, summary)) for user_id, summary in fresh.items())
            found.update(fresh)
        return found
