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

NOTE: events arrive at least once. Each one is applied to each hash by one
script that first marks it seen there ({feat:<post>}:seen:<event>, and the
same for the affinity hash; kept longer than a consumer takes to reclaim and
retry a message, and in the hash's cluster slot), so a redelivered event
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

# KEYS: seen marker, feat:<post>. ARGV: seen ttl, field, delta, features ttl.
COUNT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1
"""

# KEYS: seen marker, aff:<viewer>. ARGV: seen ttl, author, step, cap, affinity ttl.
# Affinity is rounded to 6 places so ten steps of 0.1 make exactly 1.
RAISE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[2])) or 0
local raised = math.min(tonumber(ARGV[4]), current + tonumber(ARGV[3]))
raised = math.floor(raised * 1000000 + 0.5) / 1000000
redis.call('HSET', KEYS[2], ARGV[2], string.format('%.6f', raised))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 1
"""


class RankingFeatures:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._count_once = client.register_script(COUNT)
        self._raise_once = client.register_script(RAISE)
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
        """The post's count, then the viewer's affinity for the author (not for themselves): each its
        own script, as the two hashes may be on two nodes. Should the second fail, the event is
        retried and the first changes nothing again."""
        counted = features_key(post_id)
        changed = bool(await self._count_once(keys=[seen_key(counted, event.topic, event.id), counted],
                                              args=[self.seen_ttl_s, field, delta, FEATURES_TTL_S]))
        if viewer_id and author_id and viewer_id != author_id:
            raised = affinity_key(viewer_id)
            await self._raise_once(keys=[seen_key(raised, event.topic, event.id), raised],
                                   args=[self.seen_ttl_s, author_id, AFFINITY_STEP, AFFINITY_MAX, AFFINITY_TTL_S])
        return changed

    async def forget(self, post_id: int) -> None:
        """A deleted post's features go."""
        await self.client.delete(features_key(post_id))
