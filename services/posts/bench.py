"""What cleaning up after deleted posts costs: ``python -m services.posts.bench``.

Against a running stack (``make run`` in another terminal, or the tests'
stack: the PICTOR_* settings say where the database and the services are).
Setup, not timed: ``--posts`` posts of one author, each with its own media
item (rows only: the blobs the collector is asked to delete do not exist,
which costs it the same unlink attempt) and ``--likes`` likes, a tenth as
many comments and saves (the savers spread over every shard), written
straight into PostgreSQL and then marked deleted there. One more, viral post
gets ``--viral-likes`` likes and a tenth as many comments and saves.
Timed: the worker's cleanup of each post (services.posts.cleanup: PurgePost,
ReleaseMedia, the scrub), from ``--concurrency`` tasks, through the
services' own ports; then the viral post's alone. Prints one JSON line::

    {"op": "posts.cleanup", "posts": N, "likes_per_post": N, "concurrency": C, "posts_per_s": N,
     "p50_ms": N, "p99_ms": N, "viral": {"likes": N, "comments": N, "saves": N, "ms": N}}
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import secrets
import statistics
import time

import psycopg

from services.common.clients import EngagementClient, MediaClient, MeshChannels
from services.common.config import Settings, load_settings
from services.common.db import Database, shard_schema
from services.common.ids import IdAllocator, shard_of
from services.engagement.bench import seed_users
from services.posts.cleanup import Cleanup, CleanupConfig
from services.posts.repository import PostgresPostsRepository


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    buffer = io.StringIO("".join("\t".join(map(str, row)) + "\n" for row in rows))
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def seed_deleted_post(settings: Settings, ids: IdAllocator, author: int, likes: int) -> int:
    """A deleted post of `author` with its media row (and media's record that the post uses it), `likes`
    likes and a tenth as many comments and saves."""
    shard = shard_of(author)
    s = shard_schema(shard)
    post_id, media_id = ids.new_id(shard), ids.new_id(shard)
    fans = [ids.new_id(n % settings.logical_shards) for n in range(likes)]
    with psycopg.connect(settings.database_for_shard(shard)) as conn:
        conn.execute(f"INSERT INTO {s}.media (id, owner_id, width, height, placeholder, original_key, "
                     "original_format, original_bytes) VALUES (%s, %s, 1, 1, '', %s, 'jpeg', 1)",
                     (media_id, author, secrets.token_hex(32)))
        _copy(conn, f"{s}.media_variants", "media_id, size, format, width, height, blob_key, byte_size",
              [(media_id, size, fmt, 1, 1, secrets.token_hex(32), 1)
               for size in (150, 320, 640, 1080) for fmt in ("jpeg", "webp")])
        conn.execute(f"INSERT INTO {s}.media_attachments (media_id, post_id, confirmed) VALUES (%s, %s, true)",
                     (media_id, post_id))
        conn.execute(f"INSERT INTO {s}.posts (id, author_id, media_ids, caption, deleted_at) "
                     "VALUES (%s, %s, %s, 'bench', now())", (post_id, author, [media_id]))
        _copy(conn, f"{s}.likes", "post_id, user_id", [(post_id, fan) for fan in fans])
        _copy(conn, f"{s}.comments", "id, post_id, author_id, text",
              [(ids.new_id(shard), post_id, fan, "nice") for fan in fans[::10]])
        conn.execute(f"INSERT INTO {s}.post_counts (post_id, like_count, comment_count) VALUES (%s, %s, %s)",
                     (post_id, likes, len(fans[::10])))
    savers: dict[int, list[int]] = {}
    for fan in fans[::10]:
        savers.setdefault(shard_of(fan), []).append(fan)
    for saver_shard, members in savers.items():
        with psycopg.connect(settings.database_for_shard(saver_shard)) as conn:
            _copy(conn, f"{shard_schema(saver_shard)}.saves", "user_id, post_id", [(m, post_id) for m in members])
    return post_id


async def run(args: argparse.Namespace) -> dict:
    settings = load_settings()
    ids = IdAllocator(settings.logical_shards)
    author = seed_users(settings, 1, prefix="cleanupbench")[0].id
    posts = [seed_deleted_post(settings, ids, author, args.likes) for _ in range(args.posts)]
    viral = seed_deleted_post(settings, ids, author, args.viral_likes)

    db = Database(settings, max_size=args.concurrency + 2)
    await db.open()
    # As posts' cleanup worker calls them.
    channels = MeshChannels(settings, identity="posts")
    cleanup = Cleanup(PostgresPostsRepository(db), EngagementClient(channels), MediaClient(channels),
                      CleanupConfig(), settings.logical_shards)
    try:
        queue = list(posts)
        latencies: list[float] = []

        async def cleaner() -> None:
            while queue:
                post_id = queue.pop()
                started = time.perf_counter()
                assert await cleanup.clean(post_id), f"post {post_id} was not cleaned"
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(cleaner() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        viral_started = time.perf_counter()
        assert await cleanup.clean(viral)
        viral_ms = (time.perf_counter() - viral_started) * 1000
    finally:
        await channels.close()
        await db.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {"op": "posts.cleanup", "posts": args.posts, "likes_per_post": args.likes,
            "concurrency": args.concurrency, "posts_per_s": round(args.posts / elapsed, 1),
            "p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1),
            "viral": {"likes": args.viral_likes, "comments": args.viral_likes // 10,
                      "saves": args.viral_likes // 10, "ms": round(viral_ms, 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--likes", type=int, default=50, help="likes per post (a tenth as many comments, saves)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--viral-likes", type=int, default=100_000)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
