"""Forgetting a deleted post: its likes, comments, saves and counts, in PostgreSQL and Redis.

The posts cleanup worker (services.posts.cleanup) calls this through
PurgePost once the post is deleted and has been for a few seconds, so no
like or comment that passed the visibility check before the delete is
still on its way. Every step is idempotent: a retry removes what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument
from services.engagement.counters import RedisCounters
from services.engagement.flusher import lock_name
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.viewer_state import ViewerStates


@dataclass(frozen=True)
class Purged:
    likes: int = 0
    comments: int = 0
    saves: int = 0


@dataclass
class PostPurger:
    repo: PostgresEngagementRepository
    counters: RedisCounters
    store: PostgresCountStore
    viewer_states: ViewerStates

    async def purge(self, post_id: int) -> Purged:
        if not self.store.db.holds(post_id):
            raise InvalidArgument("post_id", f"{post_id} is not a post id")
        # The cached answers first: a retry after a crash in between still finds the rows to name them.
        await self.viewer_states.forget_post(post_id, *await self.repo.engaged_users(post_id))
        # Under the flusher's lock: a flush in hand would write the count row back.
        async with self.store.exclusive(lock_name(self.counters.keys.prefix)):
            await self.counters.forget(post_id)
            likes, comments = await self.repo.purge_post(post_id)
        saves = await self.repo.purge_saves(post_id)
        return Purged(likes, comments, saves)
