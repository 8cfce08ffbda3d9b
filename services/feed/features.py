"""The feed's ranking features: a projection it keeps itself from engagement's events.

The ranker weighs each candidate post by its like and comment counts and by
the viewer's affinity for its author (services.feed.store.features reads
them). Engagement owns the true counts; the feed does not read them but counts
for itself, in its fan-out worker, from the events engagement publishes on
its topic:

  like             feat:{post} likes +1; the liker's affinity for the author rises
  unlike           feat:{post} likes -1
  comment          feat:{post} comments +1; the commenter's affinity for the author rises
  comment.deleted  feat:{post} comments -removed (a comment goes with its replies)

and forgets a post's features on post.deleted (services.feed.fanout).

Affinity rule: each like and each comment a viewer gives an author's post
(not their own) raises the viewer's affinity for that author by
AFFINITY_STEP, capped at AFFINITY_MAX. An unlike or a deleted comment takes
nothing back: affinity records interest shown, and only ranks the viewer's
own feed. It decays only by expiring: the hash goes AFFINITY_TTL_S after the
viewer's last like or comment.

NOTE: events arrive at least once. Each one is applied by one script that
first marks it seen (feat:seen:{topic}:{id}, kept longer than a consumer
takes to reclaim and retry a message), so a redelivered event
changes nothing. A count may dip below zero for a moment (an unlike handled
before its like by another replica); the ranker reads it as zero. Features
lost with Redis start again from zero: they only order a page, never decide
what is in it. A worker whose consumer group is new reads the engagement
stream from its start, so a first deployment counts what the stream holds.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.common.config import events_claim_idle_ms
from services.common.events import Event
from services.feed.keys import affinity_key, features_key, seen_key

AFFINITY_STEP = 0.1
AFFINITY_MAX = 1.0
AFFINITY_TTL_S = 90 * 86_400
FEATURES_TTL_S = 30 * 86_400
# Longer than a message can stay pending and be redelivered (the consumer retries it up to 5 times,
# PICTOR_EVENTS_CLAIM_IDLE_MS apart, then buries it), short enough that the markers stay small (one
# per event for 10 minutes by default).
SEEN_TTL_S = 600
LIKES, COMMENTS = "likes", "comments"
TOPIC = "engagement"

# KEYS: seen marker, feat:{post}, aff:{viewer}.
# ARGV: seen ttl, field, delta, features ttl, then (to raise affinity) author, step, cap, affinity ttl.
# Affinity is rounded to 6 places so ten steps of 0.1 make exactly 1.
APPLY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
if ARGV[5] then
  local current = tonumber(redis.call('HGET', KEYS[3], ARGV[5])) or 0
  local raised = math.min(tonumber(ARGV[7]), current + tonumber(ARGV[6]))
  raised = math.floor(raised * 1000000 + 0.5) / 1000000
  redis.call('HSET', KEYS[3], ARGV[5], string.format('%.6f', raised))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
end
return 1
"""


class RankingFeatures:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._apply = client.register_script(APPLY)
        self.seen_ttl_s = max(SEEN_TTL_S, 10 * events_claim_idle_ms() // 1000)

    async def handle(self, event: Event) -> bool:
        """Count one engagement event (fields it does not use are ignored); False when it changed nothing."""
        data: dict[str, Any] = event.data
        if event.type == "like":
            return await self._count(event, int(data["post_id"]), LIKES, +1, int(data["user_id"]),
                                     int(data["author_id"]))
        if event.type == "unlike":
            return await self._count(event, int(data["post_id"]), LIKES, -1)
        if event.type == "comment":
            return await self._count(event, int(data["post_id"]), COMMENTS, +1, int(data["user_id"]),
                                     int(data["author_id"]))
        if event.type == "comment.deleted":
            return await self._count(event, int(data["post_id"]), COMMENTS, -int(data.get("removed", 1)))
        return False

    async def _count(self, event: Event, post_id: int, field: str, delta: int, viewer_id: int = 0,
                     author_id: int = 0) -> bool:
        args: list[object] = [self.seen_ttl_s, field, delta, FEATURES_TTL_S]
        if viewer_id and author_id and viewer_id != author_id:
            args += [author_id, AFFINITY_STEP, AFFINITY_MAX, AFFINITY_TTL_S]
        keys = [seen_key(event.topic, event.id), features_key(post_id), affinity_key(viewer_id)]
        return bool(await self._apply(keys=keys, args=args))

    async def forget(self, post_id: int) -> None:
        """A deleted post's features go."""
        await self.client.delete(features_key(post_id))
