"""Trending hashtags in Redis: distinct authors per time bucket (HyperLogLogs), scored against the
tag's own baseline with time decay.

A public post's tags count its author once per bucket, so one account posting
a tag a hundred times counts as one. The score of a tag in a window is its
decayed count of distinct authors in the window (each bucket weighted by
0.5^(age / half-life)) over its own usual rate (the mean per window over the
baseline period, plus one for smoothing): a tag always busy scores about 1,
a tag rising against its own past scores high. A tag needs at least
MIN_AUTHORS distinct authors in the window to trend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.common.cluster import execute_each
from services.search import keys
from services.search.service import Trend

MIN_AUTHORS = 2


@dataclass(frozen=True)
class Window:
    bucket_s: int
    buckets: int
    half_life_s: float
    # The baseline: `baseline_buckets` buckets of `baseline_s`, before the window; their mean per window.
    baseline_s: int
    baseline_buckets: int


WINDOWS = {
    "1h": Window(bucket_s=300, buckets=12, half_life_s=1800, baseline_s=3600, baseline_buckets=24),
    "24h": Window(bucket_s=3600, buckets=24, half_life_s=6 * 3600, baseline_s=86_400, baseline_buckets=7),
}


def _bucket_key(size_s: int, index: int, tag: str) -> str:
    if size_s == 300:
        return keys.trend_5m_key(index, tag)
    if size_s == 3600:
        return keys.trend_hour_key(index, tag)
    return keys.trend_day_key(index, tag)


class RedisTrends:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def count(self, tags: list[str], author_id: int, at: float) -> None:
        """A public post with these tags by this author at `at` (Unix seconds). Idempotent."""
        await self.count_many([(tags, author_id, at)])

    async def count_many(self, posts: list[tuple[list[str], int, float]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for tags, author_id, at in posts:
                hour = int(at // 3600)
                for tag in dict.fromkeys(tags):
                    for size_s, ttl in ((300, keys.FIVE_MINUTES_TTL_S), (3600, keys.HOUR_TTL_S),
                                        (86_400, keys.DAY_TTL_S)):
                        index = int(at // size_s)
                        key = _bucket_key(size_s, index, tag)
                        pipe.pfadd(key, author_id)
                        pipe.expireat(key, (index + 1) * size_s + ttl)
                    pipe.sadd(keys.trend_tags_key(hour), tag)
                    pipe.expireat(keys.trend_tags_key(hour), (hour + 1) * 3600 + keys.HOUR_TTL_S)
            await pipe.execute()

    async def top(self, window: str, now: float, limit: int) -> list[Trend]:
        cached = await self.client.get(keys.trend_top_key(window))
        if cached:
            return [Trend(**t) for t in json.loads(cached)][:limit]
        trends = await self.compute(window, now, limit)
        await self.client.set(keys.trend_top_key(window), json.dumps([t.__dict__ for t in trends]),
                              ex=keys.TOP_TTL_S)
        return trends

    async def compute(self, window: str, now: float, limit: int) -> list[Trend]:
        w = WINDOWS[window]
        hour = int(now // 3600)
        hours = range(hour - (w.buckets * w.bucket_s) // 3600, hour + 1)
        tags: set[str] = set()
        for h in hours:
            tags |= {t.decode() if isinstance(t, bytes) else t for t in await self.client.smembers(keys.trend_tags_key(h))}
        if not tags:
            return []
        tags_list = sorted(tags)
        current = int(now // w.bucket_s)
        recent = [current - i for i in range(w.buckets)]
        first_window_base = int((current - w.buckets + 1) * w.bucket_s // w.baseline_s)
        base = [first_window_base - 1 - i for i in range(w.baseline_buckets)]
        commands: list[tuple[Any, ...]] = []
        for tag in tags_list:
            commands += [("PFCOUNT", _bucket_key(w.bucket_s, index, tag)) for index in recent]
            # One tag's buckets share a slot (services.search.keys): one PFCOUNT counts across them.
            commands.append(("PFCOUNT", *[_bucket_key(w.bucket_s, index, tag) for index in recent]))
            commands += [("PFCOUNT", _bucket_key(w.baseline_s, index, tag)) for index in base]
        replies = await execute_each(self.client, commands)
        per_tag = len(recent) + 1 + len(base)
        window_s = w.buckets * w.bucket_s
        trends = []
        for n, tag in enumerate(tags_list):
            counts = replies[n * per_tag:(n + 1) * per_tag]
            bucket_counts, distinct, baseline = counts[:len(recent)], counts[len(recent)], counts[len(recent) + 1:]
            if distinct < MIN_AUTHORS:
                continue
            decayed = sum(c * 0.5 ** ((i * w.bucket_s) / w.half_life_s) for i, c in enumerate(bucket_counts))
            # The baseline's mean per window: its buckets are `baseline_s` long, the window `window_s`.
            usual = sum(baseline) / len(baseline) * (window_s / w.baseline_s)
            trends.append(Trend(tag, distinct, round(decayed / (usual + 1.0), 4)))
        trends.sort(key=lambda t: (-t.score, -t.author_count, t.name))
        return trends[:limit]
