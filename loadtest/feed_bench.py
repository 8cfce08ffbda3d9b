"""The feed benchmark: `make bench-feed`, against a running, seeded stack (`make run`, `make seed`),
started with the per-address read limit raised (wrk reads from one address):
`PICTOR_RATE_LIMIT_READS_ADDRESS=1000000/1 make run`.

    make bench-feed        (BENCH_USERS, BENCH_CONCURRENCY="1,2,4,8", BENCH_SECONDS, BENCH_ACCEPT_ENCODING)

In one run, each figure printed as one JSON line:

1. The load generator: wrk (found on PATH, else installed with apt-get); the line says
   which, and where. Then a warm-up, not measured: every user's first page once, as
   readers who opened the app before (the goals are about warm pages: the posts' shapes
   and each reader's liked/saved answers cached).
2. A page's size: the first RANKED page of 20 posts of sampled users, in bytes as raw JSON,
   gzip and brotli (as Envoy sends them to a client that accepts them) and as protobuf (the
   GetFeed reply over gRPC through the gateway).
3. Through Envoy, by wrk on keep-alive connections, back to back, for BENCH_SECONDS at each
   BENCH_CONCURRENCY (8 always included), each request as the next of BENCH_USERS
   distinct seeded users (loadtest/wrk_tokens.lua rotates their tokens): `GET /v1/users/me`
   (the gateway's cheap-call ceiling), then `GET /v1/feed` (RANKED, 20 posts), then the
   feed's share of the ceiling's throughput. wrk sends no Accept-Encoding unless
   BENCH_ACCEPT_ENCODING names one (e.g. "gzip"), so the figures are of identity replies.
4. Hybrid vs naive, at the same concurrency, from this process:
   - id selection: the 20 newest post ids of the user's feed, by the hybrid's Redis read
     and merge (FeedStore.candidates, then hotpath's k-way merge) vs the pull-only SQL (the
     user's follows joined to every shard's posts, ordered, limit 20);
   - the whole hydrated page over gRPC: FeedService.GetFeed vs that SQL followed by
     posts.BatchGetPosts.
5. The celebrity write path: a post by the account every user follows is acknowledged,
   then timed until it shows in a follower's feed.

Then one `feed.goals` line: each goal of issue 12, its figure and whether it was met.
Tokens are signed with the stack's own key (as accounts signs them), so thousands of users
need no password hashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from services.common.auth import TokenSigner
from services.common.config import RATE_LIMITS, Settings, load_settings
from services.common.db import shard_schema
from services.common.dependencies import async_redis, sync_redis
from services.common.ids import shard_of
from services.common.mesh_tls import gateway_channel, service_channel
from services.common.stats import percentiles
from services.feed.keys import FEED_PATTERN, feed_key, user_of_feed_key

PAGE_SIZE = 20
FEED_PATH = f"/v1/feed?page_size={PAGE_SIZE}&mode=RANKED"
CEILING_PATH = "/v1/users/me"
WRK_SCRIPT = Path(__file__).with_name("wrk_tokens.lua")
# The goals of issue 12.
GOAL_CONNECTIONS = 8
GOAL_CEILING_SHARE = 0.5
GOAL_FEED_P99_MS = 50.0
GOAL_PAGE_JSON_BYTES = 20 * 1024
GOAL_ID_SELECTION_SPEEDUP = 10.0
GOAL_HYDRATED_PAGE_SPEEDUP = 3.0


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def emit(line: dict) -> dict:
    print(json.dumps(line), flush=True)
    return line


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


async def warm_up(settings: Settings, tokens: dict[int, str], connections: int) -> dict:
    """Every user's first page once, as readers who opened the app before: what a warm page is
    (the posts' shapes and each reader's liked/saved answers cached). Progress on stderr."""
    queue = list(tokens.values())
    total, started, failed, done = len(queue), time.perf_counter(), 0, 0

    async def worker() -> None:
        nonlocal failed, done
        client = HttpClient("127.0.0.1", settings.gateway_port)
        try:
            while queue:
                status, _ = await client.get(FEED_PATH, queue.pop())
                failed += status != 200
                done += 1  # pages answered (not taken from the queue: the last ones are still in flight)
                if done % 250 == 0 or done == total:
                    elapsed = time.perf_counter() - started
                    print(f"warm-up: {done}/{total} pages, ~{elapsed / done * (total - done):.0f} s left",
                          file=sys.stderr, flush=True)
        finally:
            await client.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"op": "bench.warm_up", "pages": total, "non_200": failed,
            "seconds": round(time.perf_counter() - started, 1)}


def pick_users(settings: Settings, count: int) -> list[int]:
    """Users whose feed is built (active users), up to `count`: those with a full first page first, in
    Redis's SCAN order (an arbitrary sample of them, not the longest feeds), then the rest, fullest first.

    Full pages first, so that users made by other means in the same Redis (the test suite's, each
    following a few) do not crowd out the seeded ones whose pages the bench measures.
    """
    client = sync_redis(settings.redis_url)
    try:
        users = [user_of_feed_key(key) for key in client.scan_iter(match=FEED_PATTERN, count=5000)]
        with client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.zcard(feed_key(user))
            sizes = pipe.execute()
    finally:
        client.close()
    if not users:
        raise SystemExit("no built feeds found: run `make seed` first")
    # A stable sort: SCAN's order stays among the full pages.
    return [user for _, user in sorted(zip(sizes, users),
                                       key=lambda pair: (pair[0] < PAGE_SIZE, 0 if pair[0] >= PAGE_SIZE else -pair[0]))][:count]


# --- the load generator ---------------------------------------------------------


def load_generator() -> dict:
    """wrk from PATH, or installed from the distribution's packages (Debian/Ubuntu: `wrk`)."""
    installed_now = False
    if shutil.which("wrk") is None and shutil.which("apt-get"):
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]

        def apt_get(*args: str) -> bool:
            return subprocess.run([*sudo, "apt-get", "-q", *args], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False,
                                  env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}).returncode == 0

        if not apt_get("install", "-y", "wrk"):  # the package lists may be missing or stale
            apt_get("update") and apt_get("install", "-y", "wrk")
        installed_now = shutil.which("wrk") is not None
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench-feed needs wrk: install it (apt-get install wrk, brew install wrk) and run again")
    version = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    return {"op": "bench.load_generator", "tool": "wrk", "path": path, "installed_now": installed_now,
            "version": version[0] if version else ""}


def run_wrk(wrk: str, settings: Settings, path: str, connections: int, seconds: float, tokens_file: Path,
            accept_encoding: str) -> dict:
    """One wrk run of GET `path` through Envoy; its figures as loadtest/wrk_tokens.lua reports them.

    One wrk thread: it keeps up with far more than the stack serves here, and leaves the
    second core to the stack."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{settings.gateway_port}{path}",
               "--", str(tokens_file), accept_encoding]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("wrk-json "):
            return json.loads(line.removeprefix("wrk-json "))
    raise SystemExit(f"wrk gave no figures (exit {result.returncode}):\n{result.stdout}{result.stderr}")


def through_envoy(wrk: str, settings: Settings, tokens_file: Path, connections: int, seconds: float,
                  accept_encoding: str) -> list[dict]:
    """The ceiling, the feed, and the feed's share of the ceiling, at one number of connections."""
    lines = []
    for op, path in (("gateway.ceiling", CEILING_PATH), ("feed.envoy", FEED_PATH)):
        figures = run_wrk(wrk, settings, path, connections, seconds, tokens_file, accept_encoding)
        lines.append(emit({"op": op, "route": f"GET {path}", "tool": "wrk", "connections": connections,
                           "accept_encoding": accept_encoding or "identity", **figures}))
    ceiling, feed = lines
    share = round(feed["requests_per_s"] / ceiling["requests_per_s"], 3) if ceiling["requests_per_s"] else 0.0
    clean = feed["non_2xx"] == feed["socket_errors"] == ceiling["non_2xx"] == ceiling["socket_errors"] == 0
    if feed["non_2xx"] or ceiling["non_2xx"]:
        reads = RATE_LIMITS["reads_address"][1]
        print(f"{ceiling['non_2xx'] + feed['non_2xx']} replies were not 2xx: a stack started with the default "
              f"rate limits answers 429 past {reads.count:,} reads in {reads.seconds} s from one address; start "
              "it with PICTOR_RATE_LIMIT_READS_ADDRESS=1000000/1 (README, Rate limits)", file=sys.stderr)
    lines.append(emit({"op": "feed.vs_ceiling", "connections": connections, "throughput_ratio": share,
                       "feed_p99_ms": feed["p99_ms"], "errors": not clean,
                       "goal": f"ratio >= {GOAL_CEILING_SHARE}, p99 <= {GOAL_FEED_P99_MS} ms",
                       "met": clean and share >= GOAL_CEILING_SHARE and feed["p99_ms"] <= GOAL_FEED_P99_MS}))
    return lines


# --- a page's size ---------------------------------------------------------------


def _first_page(settings: Settings, token: str, accept_encoding: str) -> tuple[bytes, str]:
    """The body of GET FEED_PATH as Envoy sent it, and its Content-Encoding."""
    conn = http.client.HTTPConnection("127.0.0.1", settings.gateway_port, timeout=30)
    headers = {"authorization": f"Bearer {token}"}
    if accept_encoding:
        headers["accept-encoding"] = accept_encoding
    try:
        conn.request("GET", FEED_PATH, headers=headers)
        r = conn.getresponse()
        body = r.read()  # as sent, compressed or not (http.client only undoes the chunking)
        if r.status != 200:
            raise SystemExit(f"GET {FEED_PATH}: {r.status} {body[:200]!r}")
        return body, r.getheader("content-encoding") or "identity"
    finally:
        conn.close()


async def page_bytes(settings: Settings, tokens: dict[int, str], sample: int) -> dict:
    """Bytes of full first pages (20 posts) of up to `sample` users: JSON raw, gzip, brotli; protobuf."""
    from pictor.feed.v1 import feed_service_pb2, feed_service_pb2_grpc

    sizes: dict[str, list[int]] = {"json": [], "gzip": [], "br": [], "protobuf": []}
    async with gateway_channel(settings) as channel:
        feed = feed_service_pb2_grpc.FeedServiceStub(channel)
        for token in list(tokens.values())[: sample * 5]:
            raw, _ = _first_page(settings, token, "")
            if len(json.loads(raw)["posts"]) < PAGE_SIZE:
                continue
            sizes["json"].append(len(raw))
            for encoding in ("gzip", "br"):
                body, sent = _first_page(settings, token, encoding)
                if sent != encoding:
                    raise SystemExit(f"asked for {encoding}, Envoy sent {sent}: is its compressor configured?")
                sizes[encoding].append(len(body))
            reply = await feed.GetFeed(feed_service_pb2.GetFeedRequest(page_size=PAGE_SIZE),
                                       metadata=[("authorization", f"Bearer {token}")], timeout=30)
            sizes["protobuf"].append(reply.ByteSize())
            if len(sizes["json"]) >= sample:
                break
    if not sizes["json"]:
        return {"op": "feed.page_bytes", "skipped": f"no sampled user has {PAGE_SIZE} posts in their feed"}
    largest = max(sizes["json"])
    return {"op": "feed.page_bytes", "posts": PAGE_SIZE, "pages": len(sizes["json"]),
            **{f"{name}_bytes": round(statistics.median(values)) for name, values in sizes.items()},
            "json_bytes_max": largest, "json_bytes_per_post": round(statistics.median(sizes["json"]) / PAGE_SIZE),
            "goal": f"json <= {GOAL_PAGE_JSON_BYTES} bytes (largest page)", "met": largest <= GOAL_PAGE_JSON_BYTES}


# --- hybrid vs naive, from this process ---------------------------------------------


def naive_query(shards: list[int], authors: str) -> str:
    """The newest posts of the shards by the `authors` (a subquery), one statement."""
    union = " UNION ALL ".join(
        f"SELECT id FROM {shard_schema(s)}.posts WHERE deleted_at IS NULL AND author_id IN ({authors})"
        for s in shards)
    return f"SELECT id FROM ({union}) AS candidates ORDER BY id DESC LIMIT {PAGE_SIZE}"


async def closed_loop(op: str, once: Callable[[int], Awaitable[object]], users: list[int], concurrency: int,
                      seconds: float) -> dict:
    """`concurrency` clients calling `once(user)` back to back for `seconds`, each for random users."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        rng = random.Random(n)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await once(rng.choice(users))
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return {"op": op, "concurrency": concurrency, "requests": len(latencies),
            "requests_per_s": round(len(latencies) / (time.perf_counter() - started), 1), **percentiles(latencies)}


def speedup(op: str, hybrid: dict, naive: dict, goal: float) -> dict:
    """How many times the hybrid outdoes the naive: in throughput (the verdict) and at p50 and p99."""
    throughput = round(hybrid["requests_per_s"] / naive["requests_per_s"], 2) if naive["requests_per_s"] else 0.0
    return {"op": op, "concurrency": hybrid["concurrency"], "throughput_ratio": throughput,
            "p50_ratio": round(naive["p50_ms"] / hybrid["p50_ms"], 2) if hybrid["p50_ms"] else None,
            "p99_ratio": round(naive["p99_ms"] / hybrid["p99_ms"], 2) if hybrid["p99_ms"] else None,
            "goal": f"throughput_ratio >= {goal}", "met": throughput >= goal}


def naive_sql_ids(settings: Settings, pools: dict[str, AsyncConnectionPool]
                  ) -> Callable[[int], Awaitable[list[int]]]:
    """Pull-only: one statement over every shard, following and posts joined in the database; with
    several databases (PICTOR_SHARD_MAP), the followees first, then one statement per database."""
    if len(pools) == 1:
        (pool,) = pools.values()
        query = naive_query(list(range(settings.logical_shards)),
                            "SELECT target_id FROM {following} WHERE user_id = %(u)s")

        async def ids(user: int) -> list[int]:
            async with pool.connection() as conn:
                sql = query.replace("{following}", f"{shard_schema(shard_of(user))}.following")
                return [r[0] for r in await (await conn.execute(sql, {"u": user})).fetchall()]

        return ids
    queries = {r.url: naive_query(list(range(r.first, r.last + 1)), "SELECT unnest(%(f)s::bigint[])")
               for r in settings.shard_map}

    async def pulled(url: str, followees: list[int]) -> list[int]:
        async with pools[url].connection() as conn:
            return [r[0] for r in await (await conn.execute(queries[url], {"f": followees})).fetchall()]

    async def ids_across(user: int) -> list[int]:
        async with pools[settings.database_for_shard(shard_of(user))].connection() as conn:
            followees = [r[0] for r in await (await conn.execute(
                f"SELECT target_id FROM {shard_schema(shard_of(user))}.following WHERE user_id = %s",
                (user,))).fetchall()]
        found = await asyncio.gather(*(pulled(url, followees) for url in queries))
        return sorted((i for part in found for i in part), reverse=True)[:PAGE_SIZE]

    return ids_across


async def id_selection(settings: Settings, users: list[int], pools: dict[str, AsyncConnectionPool],
                       concurrency: int, seconds: float) -> list[dict]:
    """The 20 newest ids of a feed: the hybrid's Redis read and merge vs the pull-only SQL."""

    from hotpath import merge
    from services.feed.config import FeedConfig
    from services.feed.store import FeedStore

    client = async_redis(settings.redis_url)
    store = FeedStore(client)
    ttl_s = FeedConfig.from_env().ttl_s

    async def hybrid_ids(user: int) -> list[int]:
        # As the feed service asks for a chronological page: enough candidates after exclusions.
        found = await store.candidates(user, None, PAGE_SIZE * 2 + 20, ttl_s)
        ids, _ = merge.newest_members(found.members, limit=PAGE_SIZE, excluded_authors=found.excluded_authors)
        return ids.tolist()

    hybrid = emit(await closed_loop("feed.ids_hybrid", hybrid_ids, users, concurrency, seconds))
    naive = emit(await closed_loop("feed.ids_naive_sql", naive_sql_ids(settings, pools), users, concurrency,
                                   seconds))
    await client.aclose()
    return [hybrid, naive, emit(speedup("feed.ids_hybrid_vs_naive", hybrid, naive, GOAL_ID_SELECTION_SPEEDUP))]


async def hydrated_page(settings: Settings, tokens: dict[int, str], pools: dict[str, AsyncConnectionPool],
                        concurrency: int, seconds: float) -> list[dict]:
    """The whole page over gRPC: FeedService.GetFeed vs the naive SQL ids, then posts.BatchGetPosts."""
    from pictor.feed.v1 import feed_service_pb2, feed_service_pb2_grpc
    from pictor.posts.v1 import posts_service_pb2, posts_service_pb2_grpc

    # As the feed service calls posts (BatchGetPosts is for the mesh only, feed among its callers).
    feed_channel = service_channel(settings, "feed")
    posts_channel = service_channel(settings, "posts", identity="feed")
    feed = feed_service_pb2_grpc.FeedServiceStub(feed_channel)
    posts = posts_service_pb2_grpc.PostsServiceStub(posts_channel)
    naive_ids = naive_sql_ids(settings, pools)

    async def hybrid_page(user: int) -> None:
        await feed.GetFeed(feed_service_pb2.GetFeedRequest(page_size=PAGE_SIZE),
                           metadata=[("authorization", f"Bearer {tokens[user]}")], timeout=10)

    async def naive_page(user: int) -> None:
        ids = await naive_ids(user)
        await posts.BatchGetPosts(posts_service_pb2.BatchGetPostsRequest(viewer_id=user, post_ids=ids), timeout=10)

    users = list(tokens)
    hybrid = emit(await closed_loop("feed.page_hybrid_grpc", hybrid_page, users, concurrency, seconds))
    naive = emit(await closed_loop("feed.page_naive_grpc", naive_page, users, concurrency, seconds))
    await feed_channel.close()
    await posts_channel.close()
    return [hybrid, naive, emit(speedup("feed.page_hybrid_vs_naive", hybrid, naive, GOAL_HYDRATED_PAGE_SPEEDUP))]


# --- the celebrity write path ------------------------------------------------------


async def celebrity_post(settings: Settings, signer: TokenSigner, followers: list[int]) -> dict:
    """Post as the account everyone follows; time the acknowledgement and the arrival in a feed."""
    with psycopg.connect(settings.database_url) as conn:
        star = conn.execute("SELECT user_id FROM pictor_global.usernames WHERE username = 'seed_0000000'").fetchone()
        media = conn.execute("SELECT user_id FROM pictor_global.usernames WHERE username = 'seed_media'").fetchone()
    media_row = None
    if media is not None:
        with psycopg.connect(settings.database_for_shard(shard_of(media[0]))) as conn:
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


def goals(lines: list[dict]) -> dict:
    """Issue 12's goals, each with its figure at GOAL_CONNECTIONS, from the lines printed above."""

    def at_goal(op: str) -> dict:
        return next(line for line in lines if line.get("op") == op and GOAL_CONNECTIONS in
                    (line.get("connections"), line.get("concurrency")))

    page = next(line for line in lines if line.get("op") == "feed.page_bytes")
    # name: (the line that judges it, the figures of that line the goal is about)
    checks = {
        "feed_vs_ceiling": (at_goal("feed.vs_ceiling"), ("throughput_ratio", "feed_p99_ms")),
        "page_json_bytes": (page, ("json_bytes_max",)),
        "id_selection_speedup": (at_goal("feed.ids_hybrid_vs_naive"), ("throughput_ratio",)),
        "hydrated_page_speedup": (at_goal("feed.page_hybrid_vs_naive"), ("throughput_ratio",)),
    }
    verdicts = {name: {**{k: line.get(k) for k in figures}, "goal": line.get("goal"), "met": line.get("met", False)}
                for name, (line, figures) in checks.items()}
    return {"op": "feed.goals", "connections": GOAL_CONNECTIONS, **verdicts,
            "all_met": all(v["met"] for v in verdicts.values())}


async def run() -> None:
    settings = load_settings()
    wrk = emit(load_generator())["path"]
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 3600)
    users = pick_users(settings, _env_int("BENCH_USERS", 2000))
    tokens = {u: signer.sign(u) for u in users}
    levels = sorted({GOAL_CONNECTIONS, *(int(c) for c in (os.environ.get("BENCH_CONCURRENCY") or "1,2,4,8").split(","))})
    seconds = float(os.environ.get("BENCH_SECONDS") or 20)
    accept_encoding = os.environ.get("BENCH_ACCEPT_ENCODING") or ""
    emit(await warm_up(settings, tokens, GOAL_CONNECTIONS))
    lines = [emit(await page_bytes(settings, tokens, _env_int("BENCH_PAGE_SAMPLE", 20)))]
    with tempfile.TemporaryDirectory() as tmp:
        tokens_file = Path(tmp) / "tokens.txt"
        tokens_file.write_text("\n".join(tokens.values()) + "\n")
        async with contextlib.AsyncExitStack() as opened:
            pools = {url: await opened.enter_async_context(
                AsyncConnectionPool(url, min_size=max(levels), max_size=max(levels), open=False))
                for url in settings.database_urls}
            for concurrency in levels:
                lines += through_envoy(wrk, settings, tokens_file, concurrency, seconds, accept_encoding)
                lines += await id_selection(settings, users, pools, concurrency, seconds)
                lines += await hydrated_page(settings, tokens, pools, concurrency, seconds)
    emit(await celebrity_post(settings, signer, users))
    emit(goals(lines))


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
