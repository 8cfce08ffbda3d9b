"""Rebuild search's whole index from its owners: `python -m services.search.rebuild` (`make search-index`).

Against a running stack (the same PICTOR_* settings). It empties the index,
then pages every owner's data through their mesh-only scans, never their
tables: users (accounts' ScanUsers), live posts (posts' ScanPosts), follows
(graph's ListFollowingIds, per user), likes (engagement's ScanLikes); then
counts followers, likes, hashtags and places, fills autocomplete's prefix
index in Redis from the users' documents, replays the last 8 days of public
posts into the trend counters, and refreshes explore's model. Each phase prints
its progress, rate and an estimate of what is left. `--only prefixes` fills the
prefix index alone, from the documents as they are (after an upgrade that
brought it, or a Redis that lost it; autocomplete asks PostgreSQL meanwhile).

Events keep flowing meanwhile: the rows written here carry the rebuild's start
time as their version, so an event that happened after it still wins, and one
before it changes nothing (the scan already saw its effect).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, datetime

from hotpath.ids import decode
from services.common.clients import MeshChannels
from services.common.config import load_settings
from services.common.db import Database
from services.common.dependencies import async_redis
from services.common.ids import shard_of
from services.common.progress import Progress
from services.search.adapters import Owners
from services.search.indexer import created_at
from services.search.model_worker import refresh
from services.search.prefixes import RedisPrefixIndex
from services.search.repository import PostgresSearchIndex
from services.search.service import place_id
from services.search.trending import RedisTrends

PAGE = 2000
LIKES_PAGE = 5000
FOLLOW_CONCURRENCY = 16
FLUSH_EDGES = 50_000
TREND_DAYS = 8
# Users per Redis pipeline when filling the prefix index (a script call of ~25 sets each).
PREFIX_BATCH = 500
# Posts per Redis pipeline when replaying trends (about 8 commands per tag): a large one times out.
TREND_BATCH = 250


def through(after_id: int, first_id: int, now_ms: float) -> float:
    """How far a scan in id order is through its shard, by the time in the ids (they grow with
    time): from the shard's first row to now. 0 when done."""
    if not after_id or not first_id:
        return 0.0
    first_ms = decode(first_id).timestamp_ms
    return max(0.0, min(1.0, (decode(after_id).timestamp_ms - first_ms) / max(now_ms - first_ms, 1)))


async def fill_prefixes(index: PostgresSearchIndex, prefixes: RedisPrefixIndex) -> dict:
    """Autocomplete's prefix index, emptied then filled from every shard's live users; ready at the end."""
    await prefixes.clear()
    total = sum(n for (n,) in await index.db.every_shard(
        "SELECT count(*) FROM {schema}.search_users WHERE NOT deleted"))
    progress = Progress("prefixes", total)
    for shard in range(index.db.logical_shards):
        after = 0
        while users := await index.live_users(shard, after, PREFIX_BATCH):
            await prefixes.put_many(users)
            after = users[-1][0]
            progress.advance(len(users), units=len(users))
    await prefixes.mark_ready()
    return progress.done()


async def rebuild(db: Database, owners: Owners, trends: RedisTrends, prefixes: RedisPrefixIndex) -> dict:
    index = PostgresSearchIndex(db)
    version = datetime.now(UTC)
    shards = db.logical_shards
    report: dict[str, dict] = {}
    await index.clear()
    started_ms = time.time() * 1000

    progress = Progress("users", shards)
    public: set[int] = set()
    user_ids: list[int] = []
    for shard in range(shards):
        after = first = 0
        while True:
            users, after = await owners.users(shard, after, PAGE)
            first = first or (users[0].id if users else 0)
            await index.copy_rows(shard, "search_users", "user_id, username, display_name, is_private, version",
                                  [(u.id, u.username, u.display_name, u.is_private, version) for u in users])
            public |= {u.id for u in users if not u.is_private}
            user_ids += [u.id for u in users]
            progress.advance(len(users), units=0 if after else 1, partial=through(after, first, started_ms))
            if not after:
                break
    report["users"] = progress.done()

    progress = Progress("posts", shards)
    places: dict[int, tuple[str, float, float]] = {}
    post_ids: set[int] = set()
    recent: list[tuple[list[str], int, float]] = []
    trend_since = time.time() - TREND_DAYS * 86_400
    for shard in range(shards):
        after = first = 0
        while True:
            posts, after = await owners.posts(shard, after, PAGE)
            first = first or (posts[0].id if posts else 0)
            rows = []
            for p in posts:
                place = None
                if p.HasField("location") and p.location.name:
                    place = place_id(p.location.name, p.location.lat, p.location.lng)
                    places[place] = (p.location.name, p.location.lat, p.location.lng)
                at = created_at(p.id)
                rows.append((p.id, p.author.id, p.caption, list(p.hashtags), place, at, version))
                post_ids.add(p.id)
                if p.hashtags and p.author.id in public and at.timestamp() >= trend_since:
                    recent.append((list(p.hashtags), p.author.id, at.timestamp()))
            await index.copy_rows(shard, "search_posts",
                                  "post_id, author_id, caption, hashtags, place_id, created_at, version", rows)
            progress.advance(len(posts), units=0 if after else 1, partial=through(after, first, started_ms))
            if not after:
                break
    report["posts"] = progress.done()

    progress = Progress("follows", len(user_ids))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for user_id in user_ids:
        queue.put_nowait(user_id)
    # Edges wait here and go in one COPY per shard and table: a COPY per user costs more than its rows.
    following: dict[int, list[tuple[int, int]]] = defaultdict(list)
    followers: dict[int, list[tuple[int, int]]] = defaultdict(list)
    buffered = [0]

    async def flush() -> None:
        batches = [(shard, "search_following", "follower_id, target_id", rows) for shard, rows in following.items()]
        batches += [(shard, "search_followers", "target_id, follower_id", rows) for shard, rows in followers.items()]
        following.clear(), followers.clear()
        buffered[0] = 0
        for shard, table, columns, rows in batches:
            await index.copy_rows(shard, table, columns, rows)

    async def follows_worker() -> None:
        while not queue.empty():
            user_id = queue.get_nowait()
            targets = await owners.following(user_id)
            following[shard_of(user_id)] += [(user_id, t) for t in targets]
            for t in targets:
                followers[shard_of(t)].append((t, user_id))
            buffered[0] += len(targets)
            if buffered[0] >= FLUSH_EDGES:
                await flush()
            progress.advance(len(targets), units=1)

    await asyncio.gather(*(follows_worker() for _ in range(FOLLOW_CONCURRENCY)))
    await flush()
    report["follows"] = progress.done()

    progress = Progress("likes", shards)
    for shard in range(shards):
        after = (0, 0)
        while True:
            likes = await owners.likes(shard, after, LIKES_PAGE)
            if not likes:
                progress.advance(0, units=1)
                break
            await index.copy_rows(shard, "search_likes", "post_id, user_id, liked_at", [
                (p, u, datetime.fromtimestamp(ms / 1000, UTC)) for p, u, ms in likes if p in post_ids])
            after = likes[-1][:2]
            progress.advance(len(likes))
    report["likes"] = progress.done()

    started = time.monotonic()
    await index.finish_rebuild(version)
    await index.put_places(places)
    report["prefixes"] = await fill_prefixes(index, prefixes)
    progress = Progress("trends", len(recent))
    for start in range(0, len(recent), TREND_BATCH):
        batch = recent[start:start + TREND_BATCH]
        await trends.count_many(batch)
        progress.advance(len(batch), units=len(batch))
    progress.done()
    report["counts_and_trends"] = {"rows": len(places) + len(recent), "seconds": round(time.monotonic() - started, 1)}
    started = time.monotonic()
    progress = Progress("explore model", 1)
    likes_used, pairs = await refresh(index, lambda share: progress.advance(0, partial=share))
    progress.advance(pairs, units=1, force=True)
    report["explore_model"] = {"rows": pairs, "likes": likes_used, "seconds": round(time.monotonic() - started, 1)}
    return report


async def run(only: str | None) -> dict:

    settings = load_settings()
    # NOTE: FOLLOW_CONCURRENCY readers share four connections for their COPYs: a writer waits its
    # turn (a busy machine once made one wait past the request paths' 1.5 s, and the rebuild died).
    db = Database(settings, max_size=4, checkout_timeout_s=600)
    await db.open()
    # The index is search's: the owners' scans admit search.
    channels = MeshChannels(settings, identity="search")
    client = async_redis(settings.redis_url)
    try:
        if only == "prefixes":
            return {"prefixes": await fill_prefixes(PostgresSearchIndex(db), RedisPrefixIndex(client))}
        return await rebuild(db, Owners(channels), RedisTrends(client), RedisPrefixIndex(client))
    finally:
        await channels.close()
        await client.aclose()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["prefixes"],
                        help="fill autocomplete's prefix index alone, from search's own documents")
    args = parser.parse_args()
    started = time.monotonic()
    report = asyncio.run(run(args.only))
    report["total_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
