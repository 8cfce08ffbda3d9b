"""Which posts a viewer liked and saved, cached in Redis so a warm feed page asks PostgreSQL nothing.

    vs:{viewer}  HASH  "l{post}" / "s{post}" -> "1" or "0" (services.engagement.keys)

Each field is an answer on its own: a reader fills only the fields it lacks,
with HSETNX, after reading the rows; a writer clears the field before it
commits and sets it after. So a reader that read the rows before a write
either fills first (the writer then overwrites) or finds the writer's value
there (HSETNX does nothing). What is left is a writer that dies between its
commit and its set while a reader filled the old value in between: that
answer stands until the key expires (VIEWER_STATE_TTL_S after its last fill).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis

from services.engagement.keys import VIEWER_STATE_TTL_S, viewer_state_key

LIKED, SAVED = "l", "s"


def _fields(post_ids: list[int]) -> list[str]:
    return [f"{kind}{p}" for p in post_ids for kind in (LIKED, SAVED)]


def _answers(post_ids: list[int], values: list[bytes | None]) -> tuple[dict[int, bool], dict[int, bool]]:
    liked = {p: v == b"1" for p, v in zip(post_ids, values[0::2]) if v is not None}
    saved = {p: v == b"1" for p, v in zip(post_ids, values[1::2]) if v is not None}
    return liked, saved


class ViewerStates:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def known(self, viewer_id: int, post_ids: list[int]) -> tuple[dict[int, bool], dict[int, bool]]:
        """(liked, saved): the answers cached for these posts; a post absent from a map is not cached."""
        return _answers(post_ids, await self.client.hmget(viewer_state_key(viewer_id), _fields(post_ids)))

    def queue_known(self, pipe: aioredis.client.Pipeline, viewer_id: int, post_ids: list[int]
                    ) -> Callable[[Iterator[Any]], tuple[dict[int, bool], dict[int, bool]]]:
        """`known`'s read queued on a pipeline; the function returned takes its reply from the pipeline's."""
        pipe.hmget(viewer_state_key(viewer_id), _fields(post_ids))
        return lambda replies: _answers(post_ids, next(replies))

    async def fill(self, viewer_id: int, liked: dict[int, bool], saved: dict[int, bool]) -> None:
        """Answers just read from the rows, for fields nobody set meanwhile."""
        if not liked and not saved:
            return
        key = viewer_state_key(viewer_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for kind, answers in ((LIKED, liked), (SAVED, saved)):
                for post_id, yes in answers.items():
                    pipe.hsetnx(key, f"{kind}{post_id}", "1" if yes else "0")
            pipe.expire(key, VIEWER_STATE_TTL_S)
            await pipe.execute()

    async def forget(self, viewer_id: int, kind: str, post_id: int) -> None:
        """Before a write commits: readers meanwhile go to the rows."""
        await self.client.hdel(viewer_state_key(viewer_id), f"{kind}{post_id}")

    async def forget_post(self, post_id: int, likers: list[int], savers: list[int]) -> None:
        """Before a deleted post's likes and saves go: nobody's answer about it stays behind."""
        async with self.client.pipeline(transaction=False) as pipe:
            for kind, users in ((LIKED, likers), (SAVED, savers)):
                for user_id in users:
                    pipe.hdel(viewer_state_key(user_id), f"{kind}{post_id}")
            await pipe.execute()

    async def set(self, viewer_id: int, kind: str, post_id: int, yes: bool) -> None:
        """After a write committed: its answer wins over any fill in flight."""
        key = viewer_state_key(viewer_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{kind}{post_id}", "1" if yes else "0")
            pipe.expire(key, VIEWER_STATE_TTL_S)
            await pipe.execute()
