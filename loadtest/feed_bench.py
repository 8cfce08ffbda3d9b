"""The feed benchmark: hybrid feed through Envoy vs the naive pull-only SQL feed.

    make seed && make bench-feed        (BENCH_USERS, BENCH_CONCURRENCY="1,2,4,8", BENCH_SECONDS)

Against a running, seeded stack (`make run` then `make seed`), in one run:

1. hybrid: `GET /v1/feed` (RANKED, 20 posts, fully hydrated: authors, signed
   media URLs, counts) through Envoy, by each BENCH_CONCURRENCY of clients on
   keep-alive connections for BENCH_SECONDS, as BENCH_USERS distinct seeded
   users (one first page in four is followed by the next page);
2. naive: the pull-only feed in SQL for the same users at the same
   concurrency: the user's follows joined to every shard's posts, ordered,
   limit 20 — ids only, no hydration, so that comparison flatters it;
3. like for like, both straight to the services over gRPC and both with the
   same hydration: the feed service's GetFeed against the naive SQL ids
   followed by posts.BatchGetPosts.

Then the celebrity write path: a post by the most followed account (every
user follows it) must be acknowledged fast, and the time until it shows in a
follower's feed is measured.

Tokens are signed with the stack's own key (as accounts would sign them), so
thousands of users need no password hashing; the benchmark runs beside the
stack. Prints one JSON line per measurement.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable

import psycopg
import redis
from psycopg_pool import AsyncConnectionPool

from services.common.auth import TokenSigner
from services.common.config import Settings, load_settings
from services.common.db import shard_schema
from services.common.ids import shard_of


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 2)}


class HttpClient:
    """One keep-alive HTTP/1.1 connection, as light as a client can be in Python."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n\r\n"
                          .encode())
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def pick_users(settings: Settings, count: int) -> list[int]:
    """Seeded users whose feed is built (active users), up to `count`."""
    client = redis.Redis.from_url(settings.redis_url)
    users = []
    for key in client.scan_iter(match="feed:*", count=5000):
        users.append(int(key.split(b":")[1]))
        if len(users) >= count:
            break
    client.close()
    if not users:
        raise SystemExit("no built feeds found: run `make seed` first")
    return users


async def hybrid(settings: Settings, tokens: dict[int, str], concurrency: int, seconds: float) -> dict:
    users = list(tokens)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client_loop(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        http = HttpClient("127.0.0.1", settings.gateway_port)
        try:
            while time.perf_counter() < deadline:
                token = tokens[rng.choice(users)]
                started = time.perf_counter()
                status, body = await http.get("/v1/feed?page_size=20", token)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1
                    continue
                page_token = json.loads(body).get("next_page_token")
                if page_token and rng.random() < 0.25:
                    started = time.perf_counter()
                    status, _ = await http.get(f"/v1/feed?page_size=20&page_token={page_token}", token)
                    latencies.append((time.perf_counter() - started) * 1000)
                    errors += status != 200
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"op": "feed.hybrid", "concurrency": concurrency, "requests": len(latencies), "errors": errors,
            "requests_per_s": round(len(latencies) / elapsed, 1), **percentiles(latencies)}


def naive_query(settings: Settings) -> str:
    union = " UNION ALL ".join(
        f"SELECT id FROM {shard_schema(s)}.posts WHERE deleted_at IS NULL AND author_id IN (SELECT target_id FROM "
        f"{{following}} WHERE user_id = %(u)s)" for s in range(settings.logical_shards))
    return f"SELECT id FROM ({union}) AS candidates ORDER BY id DESC LIMIT 20"


async def naive(settings: Settings, users: list[int], concurrency: int, seconds: float) -> dict:
    query = naive_query(settings)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with AsyncConnectionPool(settings.database_url, min_size=concurrency, max_size=concurrency) as pool:
        async def client_loop(n: int) -> None:
            rng = random.Random(n)
            while time.perf_counter() < deadline:
                user = rng.choice(users)
                started = time.perf_counter()
                async with pool.connection() as conn:
                    sql = query.replace("{following}", f"{shard_schema(shard_of(user))}.following")
                    await (await conn.execute(sql, {"u": user})).fetchall()
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"op": "feed.naive_sql", "concurrency": concurrency, "requests": len(latencies),
            "requests_per_s": round(len(latencies) / elapsed, 1), **percentiles(latencies)}


async def service_level(settings: Settings, tokens: dict[int, str], concurrency: int, seconds: float) -> list[dict]:
    """Hybrid and naive feeds at the service level, each with the same hydration (posts.BatchGetPosts)."""
    import grpc
    from pictor.feed.v1 import feed_service_pb2, feed_service_pb2_grpc
    from pictor.posts.v1 import posts_service_pb2, posts_service_pb2_grpc

    from services.common.registry import by_name

    feed_channel = grpc.aio.insecure_channel(settings.service_address(by_name("feed")))
    posts_channel = grpc.aio.insecure_channel(settings.service_address(by_name("posts")))
    feed = feed_service_pb2_grpc.FeedServiceStub(feed_channel)
    posts = posts_service_pb2_grpc.PostsServiceStub(posts_channel)
    query = naive_query(settings)
    users = list(tokens)
    results = []
    async with AsyncConnectionPool(settings.database_url, min_size=concurrency, max_size=concurrency) as pool:
        async def hybrid_once(user: int) -> None:
            await feed.GetFeed(feed_service_pb2.GetFeedRequest(page_size=20),
                               metadata=[("authorization", f"Bearer {tokens[user]}")], timeout=10)

        async def naive_once(user: int) -> None:
            async with pool.connection() as conn:
                sql = query.replace("{following}", f"{shard_schema(shard_of(user))}.following")
                ids = [r[0] for r in await (await conn.execute(sql, {"u": user})).fetchall()]
            await posts.BatchGetPosts(posts_service_pb2.BatchGetPostsRequest(viewer_id=user, post_ids=ids), timeout=10)

        for name, once in (("feed.service_hybrid", hybrid_once), ("feed.service_naive", naive_once)):
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            async def client_loop(n: int, once: Callable[[int], Awaitable[None]], deadline: float,
                                  latencies: list[float]) -> None:
                rng = random.Random(n)
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await once(rng.choice(users))
                    latencies.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(client_loop(n, once, deadline, latencies) for n in range(concurrency)))
            results.append({"op": name, "concurrency": concurrency, "requests": len(latencies),
                            "requests_per_s": round(len(latencies) / (time.perf_counter() - started), 1),
                            **percentiles(latencies)})
    await feed_channel.close()
    await posts_channel.close()
    hybrid_result, naive_result = results
    results.append({"op": "feed.service_naive_vs_hybrid", "concurrency": concurrency,
                    "p50_ratio": round(naive_result["p50_ms"] / hybrid_result["p50_ms"], 2),
                    "p99_ratio": round(naive_result["p99_ms"] / hybrid_result["p99_ms"], 2),
                    "throughput_ratio": round(hybrid_result["requests_per_s"] / naive_result["requests_per_s"], 2)})
    return results


async def celebrity_post(settings: Settings, signer: TokenSigner, followers: list[int]) -> dict:
    """Post as the account everyone follows; time the acknowledgement and the arrival in a feed."""
    with psycopg.connect(settings.database_url) as conn:
        star = conn.execute("SELECT user_id FROM pictor_global.usernames WHERE username = 'seed_0000000'").fetchone()
        media = conn.execute("SELECT user_id FROM pictor_global.usernames WHERE username = 'seed_media'").fetchone()
        media_row = conn.execute(f"SELECT id FROM {shard_schema(shard_of(media[0]))}.media WHERE owner_id = %s "
                                 "LIMIT 1", (media[0],)).fetchone()
    if star is None or media_row is None:
        return {"op": "feed.celebrity_post", "skipped": "no seeded celebrity or media"}
    star_id = star[0]
    token = signer.sign(star_id)
    # The star may only post their own media: re-use a seed image by uploading it once.
    import urllib.request

    from loadtest.seed import _image

    def call(method: str, path: str, body: bytes, content_type: str) -> dict:
        request = urllib.request.Request(f"{settings.gateway_url}{path}", data=body, method=method, headers={
            "authorization": f"Bearer {token}", "content-type": content_type})
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    media_id = call("POST", "/v1/media", _image(99), "image/jpeg")["id"]
    started = time.perf_counter()
    post = call("POST", "/v1/posts", json.dumps({"media_ids": [media_id], "caption": "hello everyone"}).encode(),
                "application/json")
    ack_ms = (time.perf_counter() - started) * 1000
    follower = followers[0]
    http = HttpClient("127.0.0.1", settings.gateway_port)
    visible_ms = None
    while time.perf_counter() - started < 30:
        status, body = await http.get("/v1/feed?mode=CHRONOLOGICAL&page_size=5", signer.sign(follower))
        if status == 200 and any(p["id"] == post["id"] for p in json.loads(body)["posts"]):
            visible_ms = (time.perf_counter() - started) * 1000
            break
        await asyncio.sleep(0.01)
    await http.close()
    return {"op": "feed.celebrity_post", "acknowledged_ms": round(ack_ms, 1),
            "in_follower_feed_ms": round(visible_ms, 1) if visible_ms else None}


async def run() -> None:
    settings = load_settings()
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 3600)
    users = pick_users(settings, _env_int("BENCH_USERS", 2000))
    tokens = {u: signer.sign(u) for u in users}
    levels = [int(c) for c in (os.environ.get("BENCH_CONCURRENCY") or "1,2,4,8").split(",")]
    seconds = float(os.environ.get("BENCH_SECONDS") or 20)
    await hybrid(settings, tokens, max(levels), 3)  # warm-up: connections, caches
    for concurrency in levels:
        hybrid_result = await hybrid(settings, tokens, concurrency, seconds)
        print(json.dumps(hybrid_result), flush=True)
        naive_result = await naive(settings, users, concurrency, seconds)
        print(json.dumps(naive_result), flush=True)
        print(json.dumps({
            "op": "feed.naive_vs_hybrid", "concurrency": concurrency,
            "p50_ratio": round(naive_result["p50_ms"] / hybrid_result["p50_ms"], 2),
            "p99_ratio": round(naive_result["p99_ms"] / hybrid_result["p99_ms"], 2),
            "throughput_ratio": round(hybrid_result["requests_per_s"] / naive_result["requests_per_s"], 2),
        }), flush=True)
        for line in await service_level(settings, tokens, concurrency, seconds):
            print(json.dumps(line), flush=True)
    print(json.dumps(await celebrity_post(settings, signer, users)), flush=True)


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
