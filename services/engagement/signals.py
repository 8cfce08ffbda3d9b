"""What the feed's ranker reads from engagement (services.feed.store.features), in Redis.

  pc:{post_id}    HASH  likes, comments: the post's counts as of the last
                        flush (written by the flusher and by reconciliation,
                        services.engagement.counters; kept COUNTS_TTL_S after
                        the post's last change)
  aff:{viewer_id} HASH  author_id -> the viewer's affinity for that author, 0..1

Affinity rule: each new like and each comment a viewer gives an author's post
(not their own) raises the viewer's affinity for that author by
AFFINITY_STEP, capped at AFFINITY_MAX. An unlike or a deleted comment takes
nothing back: affinity records interest shown, and only ranks the viewer's
own feed. It decays only by expiring: the hash goes AFFINITY_TTL_S after the
viewer's last like or comment.
"""

from __future__ import annotations

import redis.asyncio as aioredis

AFFINITY_STEP = 0.1
AFFINITY_MAX = 1.0
AFFINITY_TTL_S = 90 * 86_400
COUNTS_TTL_S = 30 * 86_400

# KEYS[1] aff:{viewer}; ARGV: author, step, cap, ttl. Rounded to 6 places so
# ten steps of 0.1 make exactly 1.
RAISE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local raised = math.min(tonumber(ARGV[3]), current + tonumber(ARGV[2]))
raised = math.floor(raised * 1000000 + 0.5) / 1000000
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.6f', raised))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return tostring(raised)
"""


def counts_key(post_id: int) -> str:
    return f"pc:{post_id}"


def affinity_key(viewer_id: int) -> str:
    return f"aff:{viewer_id}"


class FeedSignals:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._raise = client.register_script(RAISE)

    async def raise_for(self, viewer_id: int, author_id: int) -> None:
        await self._raise(keys=[affinity_key(viewer_id)], args=[author_id, AFFINITY_STEP, AFFINITY_MAX, AFFINITY_TTL_S])
