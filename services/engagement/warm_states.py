"""Post states from engagement's Redis alone, for readers in other processes (the feed, posts).

Engagement answers GetPostStates from Redis whenever every answer is cached
there: the counts (the pc: read model with its pending deltas and unfinished
flushes: services.engagement.counters) and the viewer's likes and saves
(vs:, services.engagement.viewer_state). WarmStates reads those keys through
the same code, and only reads: when any answer is not cached it returns None,
and the caller asks engagement (GetPostStates), which reads the rows and fills
the cache, so the reader's next page is warm. The answers are the ones
GetPostStates would give at that instant, a like or save the viewer just made
included (engagement sets its answer before it replies).

CachedStates puts the two together: engagement's cache first, GetPostStates
when it lacks an answer or cannot be read. The feed's pages and posts' reads
use it, so a warm read asks engagement nothing (services.feed.pages,
services.posts.reading).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis.asyncio as aioredis
from pictor.engagement.v1 import engagement_service_pb2 as pb

from services.common.clients import EngagementClient
from services.common.dependencies import REDIS_ERRORS
from services.engagement.counters import RedisCounters
from services.engagement.service import Counts, PostState
from services.engagement.viewer_state import ViewerStates

log = logging.getLogger(__name__)


async def _no_rows(post_ids: list[int]) -> Mapping[int, Counts]:
    raise RuntimeError("WarmStates reads Redis alone")  # RedisCounters.cached never calls it


def state_proto(state: PostState) -> pb.PostState:
    return pb.PostState(post_id=state.post_id, like_count=state.like_count, comment_count=state.comment_count,
                        liked_by_me=state.liked_by_me, saved_by_me=state.saved_by_me)


class WarmStates:
    def __init__(self, client: aioredis.Redis) -> None:
        self.viewer_states = ViewerStates(client)
        self.counters = RedisCounters(client, _no_rows)

    async def states(self, viewer_id: int, post_ids: list[int]) -> dict[int, pb.PostState] | None:
        """Each post's state for the viewer (0: signed out, who liked and saved nothing), or None unless
        Redis holds all of it."""
        unique = list(dict.fromkeys(post_ids))
        if not unique:
            return {}
        (liked, saved), counts = await asyncio.gather(self._viewers(viewer_id, unique), self.counters.cached(unique))
        return _states(unique, liked, saved, counts)

    def queue(self, pipe: aioredis.client.Pipeline, viewer_id: int, post_ids: list[int]
              ) -> Callable[[Iterator[Any]], dict[int, pb.PostState] | None]:
        """`states`' reads queued on a pipeline of one Redis, for a reader that reads other keys in the same
        round trip; the function returned gives `states`' answer from the pipeline's replies, taking its own
        in their order."""
        unique = list(dict.fromkeys(post_ids))
        if not unique:
            return lambda replies: {}
        counts_from = self.counters.queue_cached(pipe, unique)
        known_from = (self.viewer_states.queue_known(pipe, viewer_id, unique) if viewer_id
                      else lambda replies: _nothing_known(unique))

        def answer(replies: Iterator[Any]) -> dict[int, pb.PostState] | None:
            counts = counts_from(replies)
            return _states(unique, *known_from(replies), counts)
        return answer

    async def _viewers(self, viewer_id: int, post_ids: list[int]) -> tuple[dict[int, bool], dict[int, bool]]:
        if not viewer_id:
            return _nothing_known(post_ids)
        return await self.viewer_states.known(viewer_id, post_ids)


def _nothing_known(post_ids: list[int]) -> tuple[dict[int, bool], dict[int, bool]]:
    """A signed-out viewer's likes and saves: none."""
    return dict.fromkeys(post_ids, False), dict.fromkeys(post_ids, False)


def _states(post_ids: list[int], liked: dict[int, bool], saved: dict[int, bool], counts: Mapping[int, Counts] | None
            ) -> dict[int, pb.PostState] | None:
    """The posts' states from what Redis held, or None when it did not hold all of it."""
    if counts is None or len(liked) < len(post_ids) or len(saved) < len(post_ids):
        return None
    return {p: state_proto(PostState(p, shown.likes, shown.comments, liked[p], saved[p]))
            for p, shown in ((p, counts[p].shown()) for p in post_ids)}


class CachedStates:
    """GetPostStates' answers: from engagement's cache when it holds them all, else from engagement."""

    def __init__(self, client: aioredis.Redis, engagement: EngagementClient) -> None:
        self.client = client
        self.warm = WarmStates(client)
        self.engagement = engagement

    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, pb.PostState]:
        """As EngagementClient.post_states_if_up: nothing while engagement is unavailable and its cache
        lacks an answer."""
        try:
            cached = await self.warm.states(viewer_id, post_ids)
        except REDIS_ERRORS as error:  # on a Redis Cluster, its keys' node may be the one down
            log.warning("engagement's cache not read (%s); asking engagement", error)
            cached = None
        return await self.or_engagement(viewer_id, post_ids, cached)

    def queue(self, pipe: aioredis.client.Pipeline, viewer_id: int, post_ids: list[int]
              ) -> Callable[[Iterator[Any]], dict[int, pb.PostState] | None]:
        """The cache's reads queued on a pipeline of one Redis (self.client's), as WarmStates.queue; what the
        function returned gives goes to or_engagement. (A pipeline that fails fails its caller: its other
        reads failed with it.)"""
        return self.warm.queue(pipe, viewer_id, post_ids)

    async def or_engagement(self, viewer_id: int, post_ids: list[int], cached: dict[int, pb.PostState] | None
                            ) -> dict[int, pb.PostState]:
        """The cache's answer when it held all of it, else engagement's. (A method called by name, so the
        mesh's call graph sees the RPC: services.mesh.callgraph.)"""
        return cached if cached is not None else await self.engagement.post_states_if_up(viewer_id, post_ids)
