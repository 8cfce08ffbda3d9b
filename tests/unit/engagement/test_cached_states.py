"""CachedStates passes over engagement's cache for engagement itself when the cache cannot be read."""

from __future__ import annotations

import socket

import redis.asyncio as aioredis
from pictor.engagement.v1 import engagement_service_pb2 as pb

from services.engagement.warm_states import CachedStates


class Engagement:
    """Stands in for EngagementClient: what it was asked, and one answer."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, list[int]]] = []

    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, pb.PostState]:
        self.asked.append((viewer_id, post_ids))
        return {p: pb.PostState(post_id=p, like_count=3, liked_by_me=True) for p in post_ids}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_cache_that_cannot_be_read_leaves_the_answer_to_engagement():
    client = aioredis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    engagement = Engagement()
    try:
        states = await CachedStates(client, engagement).post_states_if_up(5, [11, 12])
    finally:
        await client.aclose()
    assert engagement.asked == [(5, [11, 12])]
    assert [(s.post_id, s.like_count, s.liked_by_me) for s in states.values()] == [(11, 3, True), (12, 3, True)]
