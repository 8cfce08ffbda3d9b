"""User classes: the classifier worker's labels, from events.

Each user holds one activity class and, at or over the celebrity threshold, POPULAR:
  LIVE      a stream is open (presence says so: rt:live)
  ACTIVE    acted (posted, liked, commented, followed) within PICTOR_CLASSIFIER_ACTIVE_DAYS (7)
  PASSIVE   visited (opened a stream) or acted within PICTOR_CLASSIFIER_INACTIVE_DAYS (30), but
            acted not within 7: visits, rarely acts
  INACTIVE  neither for 30 days; also every user no event ever named
  POPULAR   at or over PICTOR_FEED_CELEBRITY_THRESHOLD followers (accounts' profile count)

Inputs are kept in Redis (last act, last visit per user, keys.ACTS and
keys.VISITS); each event that touches a user recomputes their labels, and a
sweep every PICTOR_CLASSIFIER_SWEEP_MS recomputes those whom time alone moved
across a boundary and those whose follower count moved. A change of labels is
written to PostgreSQL (current labels, a history row, and user.classified on
topic "classes" for the services the labels steer, in one transaction) and
then to Redis (uc:{uid} for reads, uc:class:<CLASS> sets for membership checks). The
computation is a function of the inputs, so an event delivered twice changes
nothing more.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import redis.asyncio as aioredis

from services.common.cluster import mget
from services.common.events import Event, published_at
from services.realtime import keys
from services.realtime.config import ClassifierConfig

log = logging.getLogger(__name__)

LIVE, ACTIVE, PASSIVE, INACTIVE, POPULAR = "LIVE", "ACTIVE", "PASSIVE", "INACTIVE", "POPULAR"
ALL = (LIVE, ACTIVE, PASSIVE, INACTIVE, POPULAR)
DAY_MS = 86_400_000
SWEPT = "uc:swept"

# event type -> payload field of the user who acted
ACTS = {"post.created": "author_id", "like": "user_id", "comment": "user_id", "follow": "follower_id"}


def classify(now_ms: int, live: bool, last_act_ms: int | None, last_visit_ms: int | None, popular: bool,
             config: ClassifierConfig) -> list[str]:
    seen = max(last_act_ms or 0, last_visit_ms or 0)
    if live:
        activity = LIVE
    elif last_act_ms is not None and now_ms - last_act_ms < config.active_days * DAY_MS:
        activity = ACTIVE
    elif seen and now_ms - seen < config.inactive_days * DAY_MS:
        activity = PASSIVE
    else:
        activity = INACTIVE
    return [activity, POPULAR] if popular else [activity]


class ClassesStore(Protocol):
    async def record(self, user_id: int, classes: list[str]) -> bool: ...


class FollowerCounts(Protocol):
    async def follower_counts(self, user_ids: list[int]) -> dict[int, int]: ...


class RedisClasses:
    """Reads of the labels (RealtimeService.BatchGetUserClasses)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def classes_of(self, user_ids: list[int]) -> dict[int, list[str]]:
        if not user_ids:
            return {}
        values = await mget(self.redis, [keys.classes(u) for u in user_ids])
        return {u: v.decode().split(",") if v else [INACTIVE] for u, v in zip(user_ids, values, strict=True)}


class Classifier:
    def __init__(self, redis: aioredis.Redis, store: ClassesStore, counts: FollowerCounts,
                 config: ClassifierConfig) -> None:
        self.redis = redis
        self.store = store
        self.counts = counts
        self.config = config
        self.reader = RedisClasses(redis)

    async def handle(self, event: Event) -> None:
        at = int(published_at(event) * 1000)
        if event.type in ACTS:
            user_id = event.data[ACTS[event.type]]
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(keys.ACTS, {user_id: at}, gt=True)
                pipe.zadd(keys.VISITS, {user_id: at}, gt=True)
                await pipe.execute()
            await self.reclassify([user_id])
        if event.type in ("follow", "unfollow"):
            target = event.data["target_id"]
            # Accounts counts the follow from the same event, maybe after us: look again at the sweep.
            await self.redis.sadd(keys.RECHECK, target)
            await self.reclassify([target], recount=True)
        elif event.type == "presence.changed":
            user_id = event.data["user_id"]
            # A visit: a stream open now, or one that was open at last_active_at. Presence records
            # states as they settle, so a visit shorter than that (open, a heartbeat, closed) comes
            # as an OFFLINE alone, and only its last_active_at tells that the user came.
            seen = event.data.get("last_active_at")
            visit = at if event.data["state"] != "OFFLINE" else min(seen.ToMilliseconds() if seen else 0, at)
            if visit > 0:
                await self.redis.zadd(keys.VISITS, {user_id: visit}, gt=True)
            await self.reclassify([user_id])

    async def reclassify(self, user_ids: list[int], recount: bool = False) -> int:
        """Recompute the users' labels; record those that changed. Returns how many changed."""
        if not user_ids:
            return 0
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zmscore(keys.LIVE, user_ids)
            pipe.zmscore(keys.ACTS, user_ids)
            pipe.zmscore(keys.VISITS, user_ids)
            live, acts, visits = await pipe.execute()
        current = await self.reader.classes_of(user_ids)
        counts = await self.counts.follower_counts(user_ids) if recount else {}
        changed = 0
        for i, user_id in enumerate(user_ids):
            if recount and user_id not in counts:
                continue  # accounts knows no such user: a deleted account's last unfollows label nobody
            if recount:
                popular = counts[user_id] >= self.config.celebrity_threshold
            else:
                popular = POPULAR in current[user_id]
            labels = classify(now, live[i] is not None and live[i] > now, _ms(acts[i]), _ms(visits[i]), popular,
                              self.config)
            if labels != current[user_id] or not await self.redis.exists(keys.classes(user_id)):
                await self._record(user_id, labels)
                changed += 1
        return changed

    async def _record(self, user_id: int, labels: list[str]) -> None:
        # PostgreSQL first: should Redis then fail, the event is retried and writes Redis again.
        await self.store.record(user_id, labels)
        # Not one transaction: the class sets are other slots than the user's key on a Redis Cluster.
        # The writes are the same again when the event is retried; a reader may see one before the other.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.classes(user_id), ",".join(labels))
            for label in ALL:
                if label in labels:
                    pipe.sadd(keys.class_members(label), user_id)
                else:
                    pipe.srem(keys.class_members(label), user_id)
            await pipe.execute()

    async def sweep(self) -> int:
        """Recompute whom time moved across a boundary since the last sweep, and recount the follows."""
        now = int(time.time() * 1000)
        previous = int(await self.redis.get(SWEPT) or 0) or now - self.config.sweep_ms
        due: set[int] = set()
        for name, days in ((keys.ACTS, self.config.active_days), (keys.VISITS, self.config.inactive_days),
                           (keys.ACTS, self.config.inactive_days)):
            members = await self.redis.zrangebyscore(name, previous - days * DAY_MS, now - days * DAY_MS)
            due.update(int(m) for m in members)
        # LIVE without a stream: presence publishes the OFFLINE, this catches a lost one.
        live = [int(m) for m in await self.redis.smembers(keys.class_members(LIVE))]
        if live:
            scores = await self.redis.zmscore(keys.LIVE, live)
            due.update(u for u, s in zip(live, scores, strict=True) if s is None or s <= now)
        changed = await self.reclassify(sorted(due))
        recheck = [int(m) for m in await self.redis.smembers(keys.RECHECK)]
        if recheck:
            changed += await self.reclassify(recheck, recount=True)
            await self.redis.srem(keys.RECHECK, *recheck)
        await self.redis.set(SWEPT, now)
        return changed


def _ms(score: float | None) -> int | None:
    return int(score) if score is not None else None
