"""The feed's ranking features: a projection it keeps itself from engagement's events.

The ranker weighs each candidate post by its like and comment counts and by
the viewer's affinity for its author (services.feed.store.features reads
them). Engagement owns the true counts; the feed does not read them but counts
for itself, in its fan-out worker, from the events engagement publishes on
its topic:

  like             feat:<post> likes +1; the liker's affinity for the author rises
  unlike           feat:<post> likes -1
  comment          feat:<post> comments +1; the commenter's affinity for the author rises
  comment.deleted  feat:<post> comments -removed (a comment goes with its replies)

and forgets a post's features on post.deleted (services.feed.fanout).

Affinity rule: each like and each comment a viewer gives an author's post
(not their own) raises the viewer's affinity for that author by
AFFINITY_STEP, capped at AFFINITY_MAX. An unlike or a deleted comment takes
nothing back: affinity records interest shown, and only ranks the viewer's
own feed. It decays only by expiring: the hash goes AFFINITY_TTL_S after the
viewer's last like or comment.

NOTE: events arrive at least once. Each one is applied to each key by one
script that first marks it seen there ({feat:<post>}:seen:<event>, and the
same for the affinity hash; kept longer than a consumer takes to reclaim and
retry a message, and in the key's cluster slot), so a redelivered event
changes nothing. A count may dip below zero for a moment (an unlike handled
before its like by another replica); the ranker reads it as zero. Features
lost with Redis start again from zero: they only order a page, never decide
what is in it. A worker whose consumer group is new reads the engagement
stream from its start, so a first deployment counts what the stream holds.

A post's two counts are one string, "<likes>:<comments>", so that the ranker
reads a whole window of posts with one MGET (services.feed.store; each feed
process keeps what it read for a few seconds, RecentFeatures). Before
that they were a hash of two fields; the script that counts an event reads
either, and writes the string. convert_hashes turns the hashes an older
version left into strings, once (the feed worker runs it at start until
FEATURES_FORMAT_KEY says it is done); until then the ranker reads a hash as
no counts at all (MGET gives nil for it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis

from services.common.cluster import call_each, is_cluster
from services.common.config import events_claim_idle_ms
from services.common.events import Event
from services.feed.keys import FEATURES_FORMAT_KEY, FEATURES_PATTERN, affinity_key, features_key, seen_key

log = logging.getLogger(__name__)

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
FORMAT = "string"  # FEATURES_FORMAT_KEY's value once no hash is left
CONVERT_BATCH = 1000
PROGRESS_EVERY_S = 5.0

# A post's counts as two numbers, from the string or from the hash an older version wrote.
_COUNTS_OF = """
local function counts_of(key)
  if redis.call('TYPE', key).ok == 'hash' then
    local old = redis.call('HMGET', key, 'likes', 'comments')
    return tonumber(old[1]) or 0, tonumber(old[2]) or 0
  end
  local likes, comments = string.match(redis.call('GET', key) or '', '^(-?%d+):(-?%d+)$')
  return tonumber(likes) or 0, tonumber(comments) or 0
end
"""

# KEYS: seen marker, feat:<post>. ARGV: seen ttl, field, delta, features ttl.
COUNT = _COUNTS_OF + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local likes, comments = counts_of(KEYS[2])
if ARGV[2] == 'likes' then likes = likes + tonumber(ARGV[3]) else comments = comments + tonumber(ARGV[3]) end
redis.call('SET', KEYS[2], string.format('%d:%d', likes, comments), 'EX', tonumber(ARGV[4]))
return 1
"""

# KEYS: feat:<post>. The hash an older version wrote becomes the string, with the TTL it had left.
CONVERT = _COUNTS_OF + """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local likes, comments = counts_of(KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], string.format('%d:%d', likes, comments))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
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
        own script, as the two keys may be on two nodes. Should the second fail, the event is
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


class RecentFeatures:
    """Ranking features as the readers of this process last read them, kept `ttl_s`: posts' like and
    comment counts, and each viewer's affinities for authors. The ranker weighs a post by features at
    most that old. A ranked page scores its whole window (some 120 posts by some dozens of authors), the
    readers of one process rank many of the same posts, and a viewer who reads again within `ttl_s`
    ranks the same authors, so most pages read few features from Redis or none, and then make no round
    trip for them (an MGET of a window's counts costs Redis about 90 µs in a keyspace this size).

    What is kept is one generation, dropped whole when it is `ttl_s` old or holds `capacity` entries:
    one clock read a page, one dict lookup a post. ttl_s 0 keeps nothing."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, capacity: int = 500_000) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.capacity = capacity
        self._counts: dict[int, tuple[int, int]] = {}
        self._affinities: dict[int, dict[int, float]] = {}
        self._since = float("-inf")
        self._kept = 0

    def fresh(self, viewer_id: int) -> tuple[dict[int, tuple[int, int]], dict[int, float]]:
        """Posts' (likes, comments) and the viewer's affinity by author, as fresh as `ttl_s`; the caller
        adds what it reads to them, and says how much with `kept`."""
        now = self.clock()
        if now - self._since >= self.ttl_s or self._kept >= self.capacity:
            self._counts, self._affinities, self._since, self._kept = {}, {}, now, 0
        return self._counts, self._affinities.setdefault(viewer_id, {})

    def kept(self, entries: int) -> None:
        self._kept += entries


def parse_counts(values: list[bytes | None]) -> tuple[list[int], list[int]]:
    """The posts' likes and comments from their features strings (None: nothing counted yet), parsed all
    at once; as counted from events, a count can dip below zero for a moment, and reads as zero."""
    if not values:
        return [], []
    numbers = list(map(int, b":".join(value or b"0:0" for value in values).split(b":")))
    if min(numbers) < 0:
        numbers = [max(0, n) for n in numbers]
    return numbers[0::2], numbers[1::2]


async def convert_hashes(client: aioredis.Redis, clock: Callable[[], float] = time.monotonic) -> int:
    """Turn every features hash an older version wrote into the string the ranker reads, logging progress
    with an estimate of the time left; then mark the keyspace done, so that later starts skip it. Safe
    to run in several workers at once, and beside the counting. Returns how many it converted."""
    if await client.get(FEATURES_FORMAT_KEY) == FORMAT.encode():
        return 0
    convert = client.register_script(CONVERT)
    converted = 0
    started = reported = clock()
    async for keys, done in _scan_hashes(client):
        converted += sum(await call_each(client, convert, [([key], []) for key in keys]))
        if clock() - reported >= PROGRESS_EVERY_S and 0 < done < 1:
            reported = clock()
            left = (clock() - started) * (1 - done) / done
            log.info("features: %d hashes converted to strings, %.0f%% of the keyspace scanned, about %.0f s left",
                     converted, done * 100, left)
    await client.set(FEATURES_FORMAT_KEY, FORMAT)
    if converted:
        log.info("features: %d hashes converted to strings in %.1f s", converted, clock() - started)
    return converted


async def _scan_hashes(client: aioredis.Redis) -> AsyncIterator[tuple[list[bytes], float]]:
    """The features keys that are hashes, a SCAN batch at a time, each with the share of the keyspace
    scanned so far (on a cluster, over every primary)."""
    scan = {"match": FEATURES_PATTERN, "count": CONVERT_BATCH, "_type": "hash"}
    if not is_cluster(client):
        cursor = 0
        while True:
            cursor, keys = await client.scan(cursor, **scan)
            yield keys, _scanned(cursor)
            if not cursor:
                return
    cursors, keys = await client.scan(**scan)  # cursor 0 on every primary
    while True:
        yield keys, sum(map(_scanned, cursors.values())) / len(cursors)
        going = [name for name, cursor in cursors.items() if cursor]
        if not going:
            return
        found, keys = await client.scan(cursors[going[0]], target_nodes=client.get_node(node_name=going[0]), **scan)
        cursors[going[0]] = found[going[0]]


def _scanned(cursor: int) -> float:
    """How far a SCAN has come by its next cursor (0: all the way). Redis walks its table's buckets with
    the cursor's bits reversed counting up, so reversed they say how many it has passed."""
    return int(f"{cursor:064b}"[::-1], 2) / 2**64 if cursor else 1.0
